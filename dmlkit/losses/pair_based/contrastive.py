"""The contrastive loss (Hadsell, Chopra & LeCun, CVPR 2006)."""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor

from dmlkit.checks import check_choice, check_real
from dmlkit.distances import Distance
from dmlkit.losses.pair_based.base import PairBasedLoss, _avg_nonzero, _beyond

__all__ = ["ContrastiveLoss"]


class ContrastiveLoss(PairBasedLoss):
    """Contrastive loss (Hadsell, Chopra & LeCun, CVPR 2006, "Dimensionality Reduction by Learning
    an Invariant Mapping", Eq. 4), in PML's form.

    For a distance ``d``: positive pairs cost ``[d - pos_margin]_+``, negative pairs cost
    ``[neg_margin - d]_+`` (for a similarity the two inequalities flip: ``[pos_margin - s]_+`` and
    ``[s - neg_margin]_+``). PML reduces each part with ``AvgNonZero`` (the mean of its strictly
    positive terms) and adds the two means.

    The paper's per-pair loss (Eq. 4) is ``(1 - Y) * 1/2 * D^2 + Y * 1/2 * max(0, m - D)^2``
    (``Y = 1`` for a dissimilar pair), summed over all pairs: squared hinges, no positive margin,
    one sum over positive and negative pairs together. ``squared=True`` uses ``1/2 [.]_+^2`` per
    pair and ``reduction="mean"`` averages over all positive and negative pairs together; both,
    with ``pos_margin=0``, give the paper's loss divided by the number of pairs.

    Args:
        pos_margin: positives closer than this cost nothing (paper and PML: 0).
        neg_margin: negatives farther than this cost nothing (PML: 1; Hadsell's ``m``).
        distance: default :class:`~dmlkit.distances.EuclideanDistance` (normalised, not squared,
            like PML's ``LpDistance``).
        squared: ``1/2 [.]_+^2`` instead of ``[.]_+`` (the paper).
        reduction: ``"avg_nonzero"`` (PML, each part separately) or ``"mean"`` (over all pairs).
    """

    def __init__(
        self,
        pos_margin: float = 0.0,
        neg_margin: float = 1.0,
        distance: Distance | None = None,
        *,
        squared: bool = False,
        reduction: Literal["avg_nonzero", "mean"] = "avg_nonzero",
    ) -> None:
        super().__init__(distance)
        check_real("pos_margin", pos_margin)
        check_real("neg_margin", neg_margin)
        check_choice("reduction", reduction, ("avg_nonzero", "mean"))
        if self.distance.is_similarity and not pos_margin > neg_margin:
            raise ValueError(
                "with a similarity, pos_margin must be larger than neg_margin (positives above, "
                f"negatives below), got pos_margin={pos_margin}, neg_margin={neg_margin}"
            )
        if not self.distance.is_similarity and not pos_margin < neg_margin:
            raise ValueError(
                "with a distance, pos_margin must be smaller than neg_margin, got "
                f"pos_margin={pos_margin}, neg_margin={neg_margin}"
            )
        self.pos_margin = float(pos_margin)
        self.neg_margin = float(neg_margin)
        self.squared = bool(squared)
        self.reduction = reduction

    def _loss(self, matrix: Tensor, pos: Tensor, neg: Tensor, in_batch: bool) -> Tensor:
        pos_terms = F.relu(_beyond(self.distance, matrix, self.pos_margin))
        neg_terms = F.relu(_beyond(self.distance, self.neg_margin, matrix))
        if self.squared:
            pos_terms = 0.5 * pos_terms.square()
            neg_terms = 0.5 * neg_terms.square()
        if self.reduction == "avg_nonzero":
            return _avg_nonzero(pos_terms, pos) + _avg_nonzero(neg_terms, neg)
        total = (pos_terms * pos).sum() + (neg_terms * neg).sum()
        return total / (pos.sum() + neg.sum()).clamp_min(1)

    def extra_repr(self) -> str:
        return (
            f"pos_margin={self.pos_margin}, neg_margin={self.neg_margin}, "
            f"squared={self.squared}, reduction={self.reduction!r}"
        )
