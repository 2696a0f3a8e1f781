"""Self-checks of notebook 08 (self- and semi-supervised learning): ``check("08.k", answer)``.

- ``08.1``: the worked example's anchor ``0a`` loss at τ = 1 (a number).
- ``08.2``: NT-Xent of two views, written by the student, compared with
  :meth:`dmlkit.losses.self_supervised.NTXentLoss.two_views` (SimCLR's Eq. 1).
- ``08.4``: the certainty weight of Iscen et al.'s Eq. (12) for a row of propagated scores.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from dmlkit.exercises import Feedback, close_to, exercise, same_function

__all__ = ["WRONG"]


def _anchor_loss(temperature: float) -> float:
    from dmlkit.explorers.instance_discrimination import ntxent_terms, worked_views

    return ntxent_terms(*worked_views(), temperature)["anchor_loss"]


@exercise("08.1")
def anchor_loss_at_one(answer: Any) -> Feedback:
    """The loss of the anchor 0a in the worked example at τ = 1."""
    expected = _anchor_loss(1.0)
    feedback = close_to(
        answer,
        expected,
        what="the anchor's loss at τ = 1",
        why="−log of e^{cos(0a,0b)} over the sum of e^{cos(0a, v)} for the seven other views",
    )
    if feedback:
        return Feedback(
            True,
            f"{feedback.message}; at τ = 0.5 it was {_anchor_loss(0.5):.3f}: a higher temperature flattens the "
            "softmax, so the same well-placed positive earns less probability",
        )
    return feedback


def _inputs() -> list[tuple[torch.Tensor, torch.Tensor, float]]:
    generator = torch.Generator().manual_seed(8)
    cases = []
    for n, d, tau in ((4, 2, 0.5), (6, 3, 0.1), (8, 5, 1.0), (3, 4, 0.07)):
        first = torch.randn(n, d, generator=generator, dtype=torch.float64)
        cases.append((first, first + 0.3 * torch.randn(n, d, generator=generator, dtype=torch.float64), tau))
    return cases


def _kit_ntxent(first: torch.Tensor, second: torch.Tensor, temperature: float) -> torch.Tensor:
    from dmlkit.losses.self_supervised import NTXentLoss

    return NTXentLoss(temperature).two_views(first, second)


@exercise("08.2")
def ntxent_yourself(answer: Any) -> Feedback:
    """``ntxent(first, second, temperature)``: SimCLR's loss averaged over the 2N views."""
    feedback = same_function(answer, _kit_ntxent, _inputs(), what="your ntxent(first, second, temperature)", atol=1e-6)
    if not feedback:
        return Feedback(
            False,
            feedback.message + "; hints: normalise the rows, leave each view's similarity with itself out of the "
            "denominator (−inf before the logsumexp), and average over all 2N anchors",
        )
    return feedback


def _certainty(scores: list[float]) -> float:
    z = torch.tensor(scores, dtype=torch.float64).clamp_min(0)
    z_hat = z / z.sum()
    entropy = -(torch.special.xlogy(z_hat, z_hat)).sum()
    return float(1 - entropy / math.log(len(scores)))


@exercise("08.4")
def certainty_weight(answer: Any) -> Feedback:
    """ω for the propagated scores z = (0.6, 0.3, 0.1, 0.0) over four classes."""
    return close_to(
        answer,
        _certainty([0.6, 0.3, 0.1, 0.0]),
        what="ω",
        why="normalise z to sum 1, take its entropy H (0·log 0 = 0), and ω = 1 − H / log c with c = 4",
    )


#: A wrong answer per check (the test asserts that each check refuses it).
WRONG = {
    "08.1": _anchor_loss(0.5),
    "08.2": lambda first, second, temperature: torch.nn.functional.cross_entropy(
        torch.nn.functional.normalize(first, dim=1) @ torch.nn.functional.normalize(second, dim=1).T / temperature,
        torch.arange(first.shape[0]),
    ),
    "08.4": 1 - _certainty([0.6, 0.3, 0.1, 0.0]),
}
