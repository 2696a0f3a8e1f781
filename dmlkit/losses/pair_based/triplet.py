"""The triplet margin loss with its mining rules (Schroff et al., CVPR 2015; Hermans et al., 2017)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from dmlkit.checks import check_choice, check_non_negative
from dmlkit.distances import Distance
from dmlkit.losses.pair_based.base import PairBasedLoss, _avg_nonzero, _masked_mean
from dmlkit.miners import batch_hard_triplets

__all__ = ["TripletMarginLoss"]


_TRIPLET_MINING = ("all", "semihard", "hard", "batch_hard")


def _padded_positives(pos: Tensor) -> tuple[Tensor, Tensor]:
    """Column indices of each row's positives, left-aligned and padded to the largest count.

    Returns ``(index, valid)`` of shape ``(M, K)``, ``K`` the most positives any row has; padded
    slots hold index 0 and ``valid=False``. A batch has few positives per anchor, so triplets
    ``(a, p, n)`` fit in an ``(M, K, N)`` tensor instead of ``(M, N, N)``.
    """
    rows, cols = pos.shape
    counts = pos.sum(dim=1)
    width = int(counts.max()) if rows else 0
    rank = pos.cumsum(dim=1) - 1  # position of each positive among its row's positives
    slot = torch.where(pos, rank, width)  # everything else lands in a spare last column
    columns = torch.arange(cols, device=pos.device).expand(rows, cols)
    index = torch.zeros(rows, width + 1, dtype=torch.long, device=pos.device)
    index = index.scatter(1, slot, columns)[:, :width]
    valid = torch.arange(width, device=pos.device) < counts.unsqueeze(1)
    return index, valid


def _triplet_selection(
    d_ap: Tensor, d_an: Tensor, margin: float, mining: str, smooth_loss: bool
) -> tuple[Tensor, Tensor]:
    """Which triplets are selected and which of them count in the loss, from detached distances.

    ``d_ap`` is ``(M, K, 1)`` with ``-inf`` in padded slots, ``d_an`` is ``(M, 1, N)`` with ``+inf``
    off the negatives, so invalid triplets fail every comparison below. Returns
    ``(selected, active)``: for the hinge, active = selected with a positive hinge
    ``d_ap - d_an + margin``; for the smooth loss every selected triplet is active.
    """
    threshold = d_ap + margin  # a negative closer than this violates the margin
    if mining == "all":
        # The hinge ignores triplets with d_an >= d_ap + margin, so "all" needs no margin test
        # (PML's miner keeps d_an - d_ap <= margin: the same active set).
        selected = (d_an < float("inf")) & (d_ap > float("-inf"))
        active = selected if smooth_loss else d_an < threshold
    elif mining == "hard":  # PML: d_an - d_ap <= 0
        selected = d_an <= d_ap
        active = selected if (smooth_loss or margin > 0) else d_an < d_ap
    else:  # semihard — PML: 0 < d_an - d_ap <= margin
        farther = d_an > d_ap
        selected = farther & (d_an <= threshold)
        active = selected if smooth_loss else farther & (d_an < threshold)
    return selected, active


class TripletMarginLoss(PairBasedLoss):
    """Triplet margin loss with triplet mining (Schroff, Kalenichenko & Philbin, CVPR 2015,
    "FaceNet", Eqs. 1-4; Hermans, Beyer & Leibe, 2017, "In Defense of the Triplet Loss for Person
    Re-Identification", arXiv:1703.07737, batch hard Eq. 5 and batch all).

    Each selected triplet ``(a, p, n)`` costs ``[d(a,p) - d(a,n) + margin]_+``.

    ``mining`` picks the triplets and matches a PML miner followed by PML's ``TripletMarginLoss``
    with the same margin:

    - ``"all"``: every valid triplet (``TripletMarginMiner(margin, "all")``; Hermans' "batch all");
    - ``"semihard"``: ``d(a,p) < d(a,n) <= d(a,p) + margin`` (FaceNet's semi-hard negatives, Eq. 4,
      for every positive; ``TripletMarginMiner(margin, "semihard")``);
    - ``"hard"``: ``d(a,n) <= d(a,p)`` (``TripletMarginMiner(margin, "hard")``);
    - ``"batch_hard"``: per anchor its farthest positive and closest negative (Hermans' batch hard,
      ``BatchHardMiner()``).

    ``reduction="avg_nonzero"`` (PML) averages over the triplets with a positive loss — Hermans'
    "BA≠0"; ``"mean"`` averages over all selected triplets, which for ``"batch_hard"`` is Hermans'
    batch-hard loss (a mean over anchors) and for ``"all"`` his "batch all". FaceNet (Eq. 3) sums.

    Differences from the papers: FaceNet uses the *squared* Euclidean distance of unit vectors with
    ``margin=0.2``; pass ``distance=EuclideanDistance(squared=True)`` for it (the default distance,
    PML's, is not squared). ``smooth_loss=True`` replaces the hinge by ``softplus`` (PML's option);
    with ``margin=0`` and ``"batch_hard"`` it is Hermans' soft-margin loss. Under
    ``smooth_loss``, ``"all"`` means all valid triplets (PML's loss without a miner). PML's default
    margin is 0.05; here it is the paper's 0.2. PML's ``swap`` and ``triplets_per_anchor`` are not
    offered.

    Triplets are laid out as ``(anchor, k-th positive, negative)`` in an ``(M, K, N)`` tensor, ``K``
    the largest number of positives of an anchor (:func:`_padded_positives`), rather than
    ``(M, N, N)``. For the hinge, once it is known which triplets are active the loss is linear in
    the distances, ``(sum_ap c_ap (d_ap + margin) - sum_an c_an d_an) / count`` with ``c`` the
    number of active triplets a pair belongs to; value and gradient are those of the
    triplet-by-triplet sum.

    Args:
        margin: the margin (FaceNet: 0.2; PML's default 0.05).
        mining: ``"all"``, ``"semihard"``, ``"hard"`` or ``"batch_hard"``.
        distance: default :class:`~dmlkit.distances.EuclideanDistance`.
        reduction: ``"avg_nonzero"`` or ``"mean"``.
        smooth_loss: ``softplus`` instead of the hinge.
    """

    def __init__(
        self,
        margin: float = 0.2,
        mining: Literal["all", "semihard", "hard", "batch_hard"] = "all",
        distance: Distance | None = None,
        *,
        reduction: Literal["avg_nonzero", "mean"] = "avg_nonzero",
        smooth_loss: bool = False,
    ) -> None:
        super().__init__(distance)
        check_non_negative("margin", margin)
        check_choice("mining", mining, _TRIPLET_MINING)
        check_choice("reduction", reduction, ("avg_nonzero", "mean"))
        if mining == "semihard" and margin == 0:
            raise ValueError("semihard mining keeps d(a,p) < d(a,n) <= d(a,p) + margin: it needs margin > 0, got 0")
        self.margin = float(margin)
        self.mining = mining
        self.reduction = reduction
        self.smooth_loss = bool(smooth_loss)

    def _loss(self, matrix: Tensor, pos: Tensor, neg: Tensor, in_batch: bool) -> Tensor:
        dist = -matrix if self.distance.is_similarity else matrix
        if self.mining == "batch_hard":
            return self._batch_hard(dist, pos, neg)
        index, valid = _padded_positives(pos)
        d_ap = dist.gather(1, index)  # (M, K): anchor-positive distances, with gradient
        with torch.no_grad():
            inf = float("inf")
            selected, active = _triplet_selection(
                torch.where(valid, d_ap, -inf).unsqueeze(2),
                torch.where(neg, dist, inf).unsqueeze(1),
                self.margin,
                self.mining,
                self.smooth_loss,
            )
        if self.smooth_loss:
            terms = F.softplus(d_ap.unsqueeze(2) - dist.unsqueeze(1) + self.margin)  # [a, p, n]
            if self.reduction == "avg_nonzero":
                return _avg_nonzero(terms, active)
            return _masked_mean(terms, selected)
        # The hinge is linear on its active set: sum over active triplets of
        # (d_ap + margin - d_an) = sum_ap c_ap (d_ap + margin) - sum_an c_an d_an, with c the
        # number of active triplets each pair belongs to. Same value and gradient, no (M, K, N)
        # tensor in the autograd graph.
        weights = active.to(dist.dtype)
        per_positive = weights.sum(dim=2)  # (M, K)
        per_negative = weights.sum(dim=1)  # (M, N)
        total = (per_positive * (d_ap + self.margin)).sum() - (per_negative * dist).sum()
        count = per_positive.sum() if self.reduction == "avg_nonzero" else selected.sum()
        return total / count.clamp_min(1)

    def _batch_hard(self, dist: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        hardest_positive, hardest_negative, valid = batch_hard_triplets(dist.detach(), pos, neg)
        ap = dist.gather(1, hardest_positive.unsqueeze(1)).squeeze(1)
        an = dist.gather(1, hardest_negative.unsqueeze(1)).squeeze(1)
        violation = ap - an + self.margin
        terms = F.softplus(violation) if self.smooth_loss else F.relu(violation)
        if self.reduction == "avg_nonzero":
            return _avg_nonzero(terms, valid)
        return _masked_mean(terms, valid)

    def extra_repr(self) -> str:
        return (
            f"margin={self.margin}, mining={self.mining!r}, reduction={self.reduction!r}, "
            f"smooth_loss={self.smooth_loss}"
        )
