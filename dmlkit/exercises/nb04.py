"""Self-checks of notebook 04 (the SNR distance): ``check("04.k", answer)``.

- ``04.2``: the margin on squared distances that asks for the separation a Euclidean triplet
  margin of 0.2 asks for, at distances near 1.
- ``04.3``: how much narrower the paired 95 % interval gets from 3 to 5 seeds.
- ``04.6``: the SNR distance written by the student, against :func:`dmlkit.distances.snr_distance`.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from dmlkit.exercises import Feedback, close_to, exercise, same_function

__all__ = ["WRONG"]


@exercise("04.2")
def squared_margin(answer: Any) -> Feedback:
    # d_an^2 - d_ap^2 = (d_an - d_ap)(d_an + d_ap) ~ m * 2d at d ~ 1
    return close_to(
        answer,
        0.4,
        tol=0.02,
        what="the margin on d² matching a margin of 0.2 on d near d = 1",
        why="d_an² − d_ap² = (d_an − d_ap)(d_an + d_ap) ≈ 0.2 · 2d = 0.4 at d ≈ 1",
    )


@exercise("04.3")
def interval_shrink(answer: Any) -> Feedback:
    from scipy import stats

    expected = (stats.t.ppf(0.975, 2) / math.sqrt(3)) / (stats.t.ppf(0.975, 4) / math.sqrt(5))
    return close_to(
        answer,
        expected,
        tol=0.01,
        what="the factor by which the 95 % half-width shrinks from 3 to 5 seeds",
        why="half-width = t(0.975, n−1) · s / √n: (4.303/√3) / (2.776/√5) ≈ 2.0 — the t quantile falls as well "
        "as √n grows, so it is more than √(5/3) ≈ 1.29",
    )


def _snr_inputs() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(4)
    shapes = [(1, 4, 5), (3, 4, 6), (5, 2, 16)]  # (M, N, D): M anchors, N others, D features
    inputs = []
    for m, n, d in shapes:
        anchors = torch.randn(m, d, generator=g, dtype=torch.float64) + 0.5  # non-zero means: centring matters
        others = torch.randn(n, d, generator=g, dtype=torch.float64) * 2.0 - 0.3  # other scale: normalising matters
        inputs.append((anchors, others))
    return inputs


@exercise("04.6")
def snr_distance_yourself(answer: Any) -> Feedback:
    from dmlkit.distances import snr_distance

    if not callable(answer):
        return Feedback(
            False, f"the answer should be a function (anchors, others) -> (M, N), got {type(answer).__name__}"
        )
    inputs = _snr_inputs()
    feedback = same_function(answer, snr_distance, inputs, what="your SNR distance")
    if feedback:
        return Feedback(True, feedback.message + " (variances over the features; the 1/(D−1) cancels in the ratio)")
    anchors, others = inputs[1]
    try:
        got = torch.as_tensor(answer(anchors, others), dtype=torch.float64)
    except Exception:
        return feedback
    reversed_roles = snr_distance(others, anchors).T  # Var(a - b) / Var(b): the other side as the signal
    normalised = snr_distance(anchors, others, normalize_embeddings=True)
    if got.shape == (4, 3):
        return Feedback(False, "your result is (N, M); the kit's row i is anchor i and column j is other j: (M, N)")
    if got.shape == reversed_roles.shape and torch.allclose(got, reversed_roles, rtol=1e-4, atol=1e-6):
        return Feedback(
            False,
            "you divided by the variance of the other vector: the anchor (row i) is the signal, "
            "d[i, j] = Var(others[j] − anchors[i]) / Var(anchors[i]) — the distance is not symmetric",
        )
    if got.shape == normalised.shape and torch.allclose(got, normalised, rtol=1e-4, atol=1e-6):
        return Feedback(
            False,
            "you L2-normalised the rows first: that is PML's convention (normalize_embeddings=True); "
            "the plain formula, the kit's default, takes the vectors as given",
        )
    return Feedback(
        False,
        feedback.message + " — variance over the D features of one vector (dim=1), of the "
        "difference others[j] − anchors[i] for every pair (broadcast (M, 1, D) against (1, N, D))",
    )


def _wrong_snr(anchors: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """A plausible mistake: the other vector as the signal."""
    noise = others[None, :, :] - anchors[:, None, :]
    return noise.var(dim=2) / others.var(dim=1)[None, :]


WRONG = {"04.2": 0.2, "04.3": math.sqrt(5 / 3), "04.6": _wrong_snr}
