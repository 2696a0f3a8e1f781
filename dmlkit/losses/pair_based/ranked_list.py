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

    ``variant="paper"`` treats the weights as constants: they are computed from detached
    distances, so the gradient is the weighted mean of the hinges' gradients,
    ``dL_N/dd_j = -w_j / sum(w)``. This is what the authors do: in their Caffe layer
    ``DistanceWeightedValidPairLossV12Layer::Backward_cpu``
    (github.com/XinshaoAmosWang/Ranked-List-Loss-for-DML,
    ``CaffeMex_RLL_GR_V03_Simp/src/caffe/layers/distance_weighted_valid_pair_loss_V12_layer.cpp``;
    the same in the 2019 releases under ``New Layers by Xinshao Wang/``) ``pair_weights`` are plain
    numbers (``pow(base, T * m_dist)``) that only scale each pair's distance gradient from
    ``ContrastiveLossV2Layer::Backward_cpu`` by ``w / sum(w)``, and the paper's Fig. 1 describes the
    query's gradient as a weighted combination of the non-trivial examples' directions. It takes
    exact weighted means (0 for an empty set).

    ``variant="pml"`` equals PML's ``RankedListLoss`` when ``alpha`` is passed (PML's default alpha
    is ``1 + margin/2``): it adds ``1e-5`` per reference sample to each weight sum, drops a kept
    pair whose distance is exactly 0, and lets the gradient flow through the weights. Then
    ``dL_N/dh_j = (w_j / sum(w)) (1 + Tn (h_j - L_N))`` for a negative's hinge ``h_j = alpha - d_j``:
    the total push is unchanged, but it is moved to the hardest negatives, and a kept negative whose
    hinge is more than ``1/Tn`` below the anchor's ``L_N`` is *pulled towards* the anchor (the same
    for positives when ``Tp > 0``).

    Not reproduced from the authors' code, in either variant: there each sample receives only the
    gradient of its own list's loss (as the query, not as a member of the other lists); anchors are
    weighted by their share of the batch's total weight instead of ``1/N``; the 2019 release pulls
    along ``x_i - x_j`` (the gradient of ``d^2 / 2``), the TPAMI release along the unit vector; and the
    TPAMI release places the boundaries at ``1 -/+ margin/2`` (PML's default alpha), reading but not
    using ``negative_threshold``, where the 2019 release uses ``alpha - margin`` and ``alpha`` as
    here. The authors L2-normalise the embeddings and use the Euclidean distance, as this loss does
    by default.

    Defaults are the authors' CUB-200 recipe (``CUB_V01/60_n1.4_pn0.2_tp0_tn10/train.prototxt``:
    ``alpha=1.4, margin=0.2, Tp=0, Tn=10``, 512-d GoogLeNet embeddings; with the TPAMI layer the
    boundaries it trains with are 0.9 and 1.1). PML has no defaults for ``margin`` and ``Tn`` and
    warns above 5. Needs a distance, not a similarity.

    Args:
        margin: gap ``m`` between the positive ball and the negative boundary (0.2).
        Tn: temperature of the negative weights (10).
        imbalance: ``lambda``, the weight of the negative part (0.5).
        alpha: the negative boundary (1.4).
        Tp: temperature of the positive weights (0: plain mean, "RLL-Simpler").
        distance: default :class:`~dmlkit.distances.EuclideanDistance`.
        variant: ``"pml"`` (weights carry gradient) or ``"paper"`` (weights are constants).
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
        if self.variant == "paper":  # the weights are constants, as in the paper and the authors' code
            weight_p, weight_n = pos_hinge.detach(), neg_hinge.detach()
        else:  # PML differentiates through them
            weight_p, weight_n = pos_hinge, neg_hinge
        w_p = torch.exp(self.Tp * weight_p) * pos_kept  # zero off the kept pairs
        w_n = torch.exp(self.Tn * weight_n) * neg_kept
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
