"""Notebook 01's pair-loss explorer: each loss and the weight it gives one negative pair.

Anchor 0 has one positive at similarity ``positive`` and two negatives, one at ``other`` and
one moved along the x axis (similarity ``s``). The weight is Wang et al.'s general pair weight
``|∂L/∂S_an|`` (CVPR 2019, Sec. 3), read off the kit's own loss modules with autograd
(:func:`dmlkit.losses.pair_based.pair_weight`), so what the student sees is what trains.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from dmlkit.distances import PrecomputedSimilarity
from dmlkit.losses.pair_based import CircleLoss, ContrastiveLoss, MultiSimilarityLoss, TripletMarginLoss, pair_weight

__all__ = ["draw_pair_losses", "pair_losses"]

LABELS = torch.tensor([0, 0, 1, 1])


def pair_losses(margin: float, alpha: float, beta: float, lam: float) -> dict[str, torch.nn.Module]:
    """The four losses on hand-made similarities (similarity margins, not distance margins)."""
    circle = CircleLoss(m=margin, gamma=80.0)
    circle.distance = PrecomputedSimilarity()
    return {
        "contrastive": ContrastiveLoss(
            pos_margin=1.0, neg_margin=margin, distance=PrecomputedSimilarity(), reduction="mean"
        ),
        "triplet": TripletMarginLoss(margin=margin, mining="all", distance=PrecomputedSimilarity(), reduction="mean"),
        "multi-similarity": MultiSimilarityLoss(alpha, beta, lam, distance=PrecomputedSimilarity()),
        "circle": circle,
    }


def _row(s: float, positive: float, other: float) -> list[float]:
    return [1.0, positive, s, other]


def draw_pair_losses(
    margin: float = 0.4, alpha: float = 2.0, beta: float = 40.0, lam: float = 0.5, positive: float = 0.8
) -> Figure:
    """Loss (left) and the moved negative's pair weight (right) against its similarity ``s``."""
    other = 0.3
    grid = np.linspace(-0.2, 1.0, 121)
    losses = pair_losses(margin, alpha, beta, lam)
    fig = Figure(figsize=(9.5, 3.4))
    left, right = fig.subplots(1, 2)
    readout = []
    for name, loss in losses.items():
        values, weights = [], []
        for s in grid:
            # the other three anchors sit at their ideal (1 with their class, -1 with the other)
            matrix = torch.where(LABELS[:, None] == LABELS[None, :], 1.0, -1.0).double()
            matrix[0] = torch.tensor(_row(s, positive, other), dtype=torch.float64)
            values.append(float(loss(matrix, LABELS)))
            weights.append(pair_weight(loss, _row(s, positive, other), LABELS, column=2))
        scale = max(max(weights), 1e-12)
        top = max(max(values), 1e-12)
        left.plot(grid, np.asarray(values) / top, label=f"{name} (max {top:.3g})")
        right.plot(grid, np.asarray(weights) / scale, label=f"{name} (max {scale:.3g})")
        readout.append(f"{name} {pair_weight(loss, _row(lam, positive, other), LABELS, column=2):.4g}")
    for ax in (left, right):
        ax.axvline(positive, color="0.6", linestyle=":", linewidth=1)
        ax.set_xlabel("similarity s of the moved negative")
    left.set(ylabel="loss of the batch, each over its maximum", title=f"losses (positive at {positive:g})")
    right.set(ylabel="pair weight |∂L/∂s|, each over its maximum", title="weight of the moved negative")
    right.axvline(lam, color="tab:purple", linestyle="--", linewidth=1)
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    fig.tight_layout()
    print(f"weight of a negative at s = λ = {lam:g}: " + ", ".join(readout))
    return fig
