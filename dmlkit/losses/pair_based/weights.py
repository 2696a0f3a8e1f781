"""The weight a pair-based loss gives one pair: Wang et al.'s general pair weighting (CVPR 2019).

Wang, Han, Huang, Dong & Scott ("Multi-Similarity Loss with General Pair Weighting for Deep Metric
Learning", CVPR 2019, Sec. 3, Eq. 1-3) write the gradient of any pair-based loss through the
similarity matrix :math:`S`: :math:`\\partial L/\\partial\theta = \\sum_{ij} (\\partial L/\\partial S_{ij})
(\\partial S_{ij}/\\partial\theta)`, so :math:`w_{ij} = |\\partial L/\\partial S_{ij}|` is the weight of the pair
:math:`(i, j)`. :func:`pair_weight` reads it off with autograd for similarities chosen by hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from dmlkit.distances import PrecomputedSimilarity
from dmlkit.losses.pair_based.base import PairBasedLoss

__all__ = ["pair_weight"]


def pair_weight(loss: PairBasedLoss, similarities: Sequence[float] | Tensor, labels: Tensor, column: int) -> float:
    """``|dL/dS[0, column]| x B`` for anchor 0 whose row of similarities is ``similarities``.

    ``loss`` must compare through a :class:`~dmlkit.distances.PrecomputedSimilarity` (e.g.
    ``MultiSimilarityLoss(distance=PrecomputedSimilarity())``); the other rows of ``S`` are 0 and
    do not involve anchor 0's pairs. The factor ``B`` (the batch size) undoes the loss's mean over
    anchors, so the value is the weight of the paper's per-anchor formula.
    """
    if not isinstance(loss.distance, PrecomputedSimilarity):
        raise ValueError(f"pair_weight needs a loss built with distance=PrecomputedSimilarity(), got {loss.distance!r}")
    labels = torch.as_tensor(labels)
    row = torch.as_tensor(similarities, dtype=torch.float64)
    if labels.dim() != 1 or row.shape != labels.shape:
        raise ValueError(
            f"one similarity per label is needed: {tuple(row.shape)} similarities, {tuple(labels.shape)} labels"
        )
    if not 0 <= column < len(labels):
        raise ValueError(f"column must lie in [0, {len(labels)}), got {column}")
    matrix = torch.zeros(len(labels), len(labels), dtype=torch.float64)
    matrix[0] = row
    matrix.requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(matrix, labels), matrix)
    return len(labels) * grad[0, column].abs().item()
