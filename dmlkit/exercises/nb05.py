"""Self-checks of notebook 05 (hyperbolic embeddings): ``check("05.k", answer)``.

- ``05.1``: how far from the origin an unclipped head can reach at c = 0.1.
- ``05.2``: the ratio of the direct distance to the detour through the origin for ``p = 0.99 e₁``
  and ``q = 0.99 e₂`` in the unit disk (c = 1); ``05.2b``: the detour's excess over the direct
  path there (it tends to 2·ln(1/sin(θ/2)) = ln 2 at right angles).
- ``05.5``: the room at the head's reach, ``sinh(√c R)/(√c R)``, for ``c = 3`` and ``CLIP_R = 1``.
- ``05.6``: Möbius addition written by the student, against
  :func:`dmlkit.geometry.poincare.operations.mobius_add`.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from dmlkit.exercises import Feedback, close_to, exercise, same_function

__all__ = ["WRONG"]


@exercise("05.1")
def unclipped_reach(answer: Any) -> Feedback:
    c = 0.1
    reach = 2 / math.sqrt(c) * math.atanh(1 - 1e-3)
    return close_to(
        answer,
        reach,
        tol=0.01,
        what="the reach without clipping at c = 0.1",
        why="the projection keeps ‖x‖ ≤ (1 − 1e-3)/√c, and d(0, x) = (2/√c)·artanh(√c‖x‖) = 6.32 · artanh(0.999)",
    )


def _corner_distances() -> tuple[float, float]:
    from dmlkit.geometry import dist

    o = torch.zeros(2, dtype=torch.float64)
    p = torch.tensor([0.99, 0.0], dtype=torch.float64)
    q = torch.tensor([0.0, 0.99], dtype=torch.float64)
    return float(dist(p, q, c=1.0)), float(dist(o, p, c=1.0) + dist(o, q, c=1.0))


@exercise("05.2")
def corner_ratio(answer: Any) -> Feedback:
    direct, detour = _corner_distances()
    return close_to(
        answer,
        direct / detour,
        tol=1e-3,
        what="d(p, q) / (d(0, p) + d(0, q)) at 0.99",
        why=f"d(p, q) = {direct:.4f}, the detour 2·ln(199) = {detour:.4f}: the ratio creeps towards 1",
    )


@exercise("05.2b")
def corner_gap(answer: Any) -> Feedback:
    direct, detour = _corner_distances()
    return close_to(
        answer,
        detour - direct,
        tol=1e-3,
        what="d(0, p) + d(0, q) − d(p, q) at 0.99",
        why="it is already ln 2 = 0.6931 to three decimals: the difference tends to 2·ln(1/sin(θ/2)), "
        "a constant, while both distances grow without bound",
    )


@exercise("05.5")
def room_at_reach(answer: Any) -> Feedback:
    c, reach = 3.0, 2 * 1.0
    room = math.sinh(math.sqrt(c) * reach) / (math.sqrt(c) * reach)
    return close_to(
        answer,
        room,
        tol=1e-2,
        what="the room sinh(√c R)/(√c R) at c = 3 with CLIP_R = 1",
        why="the reach is R = 2·CLIP_R = 2, and √3·2 = 3.46: sinh(3.46)/3.46 ≈ 4.6 (at CLIP_R = 2.3 it would be ≈ 181)",
    )


def _mobius_inputs() -> list[tuple[torch.Tensor, torch.Tensor, float]]:
    g = torch.Generator().manual_seed(5)
    inputs = []
    for shape, c in (((6, 2), 1.0), ((4, 5), 0.1), ((3, 2, 3), 2.0), ((5, 3), 0.5)):
        radius = 1 / math.sqrt(c)
        x, y = (torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(2))
        # points strictly inside the ball of radius 1/sqrt(c), at random radii up to 0.9 of it
        x = (
            x
            / x.norm(dim=-1, keepdim=True)
            * torch.rand(shape[:-1] + (1,), generator=g, dtype=torch.float64)
            * 0.9
            * radius
        )
        y = (
            y
            / y.norm(dim=-1, keepdim=True)
            * torch.rand(shape[:-1] + (1,), generator=g, dtype=torch.float64)
            * 0.9
            * radius
        )
        inputs.append((x, y, c))
    return inputs


@exercise("05.6")
def mobius_add_yourself(answer: Any) -> Feedback:
    from dmlkit.geometry.poincare.operations import mobius_add

    if not callable(answer):
        return Feedback(False, f"the answer should be a function (x, y, c) -> x ⊕_c y, got {type(answer).__name__}")
    inputs = _mobius_inputs()

    def reference(x, y, c):
        return mobius_add(x, y, c=c)

    feedback = same_function(answer, reference, inputs, what="your Möbius addition")
    if feedback:
        return Feedback(True, feedback.message + " (points in balls of curvature −1, −0.1, −2 and −0.5, batched)")
    x, y, c = inputs[1]
    try:
        got = torch.as_tensor(answer(x, y, c), dtype=torch.float64)
    except Exception:
        return feedback
    if got.shape == x.shape and torch.allclose(got, mobius_add(y, x, c=c), rtol=1e-4, atol=1e-6):
        return Feedback(
            False,
            "you computed y ⊕ x: Möbius addition is not commutative — x's coefficient is "
            "1 + 2c⟨x,y⟩ + c‖y‖² and y's is 1 − c‖x‖²",
        )
    if got.shape == x.shape and torch.allclose(got, mobius_add(x, y, c=1.0), rtol=1e-4, atol=1e-6):
        return Feedback(
            False,
            "your function gives the c = 1 result at c = 0.1: every ⟨x,y⟩ and ‖·‖² term carries c "
            "(and the c²‖x‖²‖y‖² term of the denominator)",
        )
    if got.shape == x.shape and torch.allclose(got, x + y, rtol=1e-4, atol=1e-6):
        return Feedback(False, "that is x + y, the flat limit c → 0; the ball's addition bends it")
    return Feedback(
        False,
        feedback.message + " — inner products and squared norms over the last dimension, "
        "keepdim=True so they broadcast against (…, D)",
    )


def _wrong_mobius(x: torch.Tensor, y: torch.Tensor, c: float) -> torch.Tensor:
    """A plausible mistake: the arguments' roles swapped."""
    from dmlkit.geometry.poincare.operations import mobius_add

    return mobius_add(y, x, c=c)


WRONG = {"05.1": 2 * 2.3, "05.2": 0.7071, "05.2b": math.log(4), "05.5": 1.39, "05.6": _wrong_mobius}
