"""The ranked list loss (Wang, Hua, Kodirov, Hu, Garnier & Robertson, CVPR 2019)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from dmlkit.checks import check_choice, check_non_negative, check_positive, check_probability
from dmlkit.distances import Distance
from dmlkit.losses.pair_based.base import PairBasedLoss

__all__ = ["RankedListLoss"]


class RankedListLoss(PairBasedLoss):
    """Ranked list loss (Wang, Hua, Kodirov, Hu, Garnier & Robertson, CVPR 2019, "Ranked List Loss
    for Deep Metric Learning").

    With a distance ``d``, per anchor: positives with ``d > alpha - margin`` and negatives with
    ``d < alpha`` are kept; weights ``w_p = exp(Tp (d - (alpha - margin)))`` and
    ``w_n = exp(Tn (alpha - d))``; ``L_P`` and ``L_N`` are the weighted means of the hinges
    ``d - (alpha - margin)`` and ``alpha - d``; the anchor's loss is
    ``(1 - imbalance) L_P + imbalance L_N`` and the batch loss their mean over all anchors.
    Negatives lie outside a ball of radius ``alpha``, positives inside ``alpha - margin``.

    ``variant="pml"`` equals PML's ``RankedListLoss`` when ``alpha`` is passed (PML's default alpha
    is ``1 + margin/2``): it adds ``1e-5`` per reference sample to each weight sum and drops a kept
    pair whose distance is exactly 0. ``variant="paper"`` takes exact weighted means (0 for an empty
    set). In both, the gradient also flows through the weights, as in PML.

    Defaults are the authors' CUB-200 setting (``alpha=1.4, margin=0.2, Tp=0, Tn=10``; PML has no
    defaults for ``margin`` and ``Tn`` and warns above 5). Needs a distance, not a similarity.

    Args:
        margin: gap ``m`` between the positive ball and the negative boundary (0.2).
        Tn: temperature of the negative weights (10).
        imbalance: ``lambda``, the weight of the negative part (0.5).
        alpha: the negative boundary (1.4).
        Tp: temperature of the positive weights (0: plain mean, "RLL-Simpler").
        distance: default :class:`~dmlkit.distances.EuclideanDistance`.
        variant: ``"pml"`` or ``"paper"``.
    """

    def __init__(
        self,
        margin: float = 0.2,
        Tn: float = 10.0,
        imbalance: float = 0.5,
        alpha: float = 1.4,
        Tp: float = 0.0,
        distance: Distance | None = None,
        *,
        variant: Literal["pml", "paper"] = "pml",
    ) -> None:
        super().__init__(distance)
        check_non_negative("margin", margin)
        check_non_negative("Tn", Tn)
        check_non_negative("Tp", Tp)
        check_probability("imbalance", imbalance)
        check_positive("alpha", alpha)
        check_choice("variant", variant, ("pml", "paper"))
        if self.distance.is_similarity:
            raise ValueError(
                f"RankedListLoss needs a distance (smaller = closer), got the similarity {type(self.distance).__name__}"
            )
        self.margin = float(margin)
        self.Tn = float(Tn)
        self.imbalance = float(imbalance)
        self.alpha = float(alpha)
        self.Tp = float(Tp)
        self.variant = variant

    def _loss(self, matrix: Tensor, pos: Tensor, neg: Tensor, in_batch: bool) -> Tensor:
        boundary = self.alpha - self.margin
        pos_kept = pos & (matrix > boundary)
        neg_kept = neg & (matrix < self.alpha)
        if self.variant == "pml":
            pos_kept = pos_kept & (matrix > 0)
            neg_kept = neg_kept & (matrix > 0)
        pos_hinge = matrix - boundary
        neg_hinge = self.alpha - matrix
        w_p = torch.exp(self.Tp * pos_hinge) * pos_kept  # zero off the kept pairs
        w_n = torch.exp(self.Tn * neg_hinge) * neg_kept
        num_p = (w_p * pos_hinge).sum(1)
        num_n = (w_n * neg_hinge).sum(1)
        if self.variant == "pml":
            pad = 1e-5 * matrix.shape[1]
            loss_p = num_p / (w_p.sum(1) + pad)
            loss_n = num_n / (w_n.sum(1) + pad)
        else:
            den_p, den_n = w_p.sum(1), w_n.sum(1)
            loss_p = num_p / torch.where(den_p > 0, den_p, torch.ones_like(den_p))
            loss_n = num_n / torch.where(den_n > 0, den_n, torch.ones_like(den_n))
        return ((1 - self.imbalance) * loss_p + self.imbalance * loss_n).mean()

    def extra_repr(self) -> str:
        return (
            f"margin={self.margin}, Tn={self.Tn}, imbalance={self.imbalance}, alpha={self.alpha}, "
            f"Tp={self.Tp}, variant={self.variant!r}"
        )
