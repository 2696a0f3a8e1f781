"""Pair-based losses: every term compares an anchor with another sample of the batch.

The family, from the oldest to the newest:

- :class:`ContrastiveLoss` (Hadsell, Chopra & LeCun, CVPR 2006): pull positive pairs together,
  push negative pairs beyond a margin.
- :class:`TripletMarginLoss` (Schroff, Kalenichenko & Philbin, CVPR 2015; Hermans, Beyer & Leibe,
  arXiv 2017): a positive closer than a negative by a margin, with triplet mining.
- :class:`LiftedStructureLoss` (Oh Song, Xiang, Jegelka & Savarese, CVPR 2016): each positive pair
  against all negatives of both its ends, through a smooth maximum.
- :class:`NPairsLoss` (Sohn, NeurIPS 2016): softmax over one positive and N-1 negatives.
- :class:`MultiSimilarityLoss` (Wang, Han, Huang, Dong & Scott, CVPR 2019): soft weighting of
  pairs by self- and relative similarity, after pair mining.
- :class:`RankedListLoss` (Wang, Hua, Kodirov, Hu, Garnier & Robertson, CVPR 2019): positives
  inside a ball of radius ``alpha - margin``, negatives outside ``alpha``.
- :class:`CircleLoss` (Sun, Cheng, Zhang, Zhang, Zheng, Wang & Wei, CVPR 2020): self-paced weights
  on similarities with separate optima for positives and negatives.
- :class:`CrossBatchMemory` (Wang, Zhang, Huang & Scott, CVPR 2020, "XBM"): any of the above
  (except N-pairs) against a queue of embeddings from past batches.

Every loss is an ``nn.Module`` with ``forward(embeddings, labels) -> scalar`` and the class and
argument names of pytorch-metric-learning ("PML"); with the same arguments the value and the
gradient equal PML's (checked in ``tests/test_losses_pair_based.py``). Where PML and the paper
differ, the docstring says how, and an option gives the paper's version when that is cheap.

Implementation notes, shared by all losses:

- the batch is compared through an ``(M, N)`` matrix (``distance(embeddings, reference)``) and two
  boolean masks, ``pos`` (same label, not the same sample) and ``neg`` (different labels);
- reductions are masked sums (``(terms * mask).sum() / count``) and masked log-sum-exps
  (:func:`masked_logsumexp`), never boolean indexing, and nothing loops over anchors or pairs.
  Two places have a batch-dependent size on purpose: the triplet loss pads each anchor's
  positives to the largest count (an ``(M, K, N)`` tensor), and the N-pair loss picks its N pairs
  (that is the loss's batch construction);
- ``forward(embeddings, labels, ref_emb=None, ref_labels=None)``: with ``ref_emb`` the rows are the
  batch and the columns the reference set (PML's convention); :class:`CrossBatchMemory` uses this
  through :meth:`PairBasedLoss.compute_loss`.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from dmlkit.distances import CosineSimilarity, Distance, DistanceModule, DotProductSimilarity
from dmlkit.miners import batch_hard_triplets, multi_similarity_masks, pair_masks, switch_negatives
from dmlkit.utils import (
    check_embeddings_and_labels,
    check_non_negative,
    check_positive,
    check_probability,
)

__all__ = [
    "masked_logsumexp",
    "DotProductSimilarity",
    "PairBasedLoss",
    "ContrastiveLoss",
    "TripletMarginLoss",
    "LiftedStructureLoss",
    "NPairsLoss",
    "MultiSimilarityLoss",
    "RankedListLoss",
    "CircleLoss",
    "CrossBatchMemory",
]


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def masked_logsumexp(
    x: torch.Tensor,
    mask: torch.Tensor,
    dim: int = 1,
    add_one: bool = False,
    empty_value: float = 0.0,
) -> torch.Tensor:
    """``log sum_{mask} exp(x)`` along ``dim``; with ``add_one``, ``log(1 + sum_{mask} exp(x))``.

    ``add_one`` is the log-sum-exp with an extra zero logit, the ``log(1 + sum exp)`` of the
    multi-similarity and N-pair losses. Without it, a row whose mask is empty (a log of an empty
    sum) returns ``empty_value``; with it such a row returns 0. The largest logit is subtracted
    first (detached, so the gradient is that of the plain formula) and masked entries get exactly
    zero gradient, also in empty rows.
    """
    x = torch.where(mask, x, float("-inf"))
    shift = x.detach().amax(dim=dim, keepdim=True)
    if add_one:
        shift = shift.clamp_min(0.0)  # the zero logit takes part in the maximum
        total = torch.exp(x - shift).sum(dim=dim, keepdim=True) + torch.exp(-shift)
        return (shift + torch.log(total)).squeeze(dim)
    has_any = mask.any(dim=dim, keepdim=True)
    shift = torch.where(has_any, shift, torch.zeros_like(shift))
    total = torch.exp(x - shift).sum(dim=dim, keepdim=True)
    safe_log = torch.log(torch.where(has_any, total, torch.ones_like(total)))
    empty = torch.full_like(shift, empty_value)
    return torch.where(has_any, shift + safe_log, empty).squeeze(dim)


def _avg_nonzero(terms: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the strictly positive ``terms`` inside ``mask`` (0 when there are none).

    PML's ``AvgNonZeroReducer``: terms that are already satisfied (0) do not dilute the mean.
    """
    terms = terms * mask  # terms are finite; a product is cheaper than torch.where on CPU
    count = (terms > 0).sum()
    return terms.sum() / count.clamp_min(1)


def _masked_mean(terms: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``terms`` inside ``mask`` (0 when the mask is empty)."""
    return (terms * mask).sum() / mask.sum().clamp_min(1)


def _beyond(distance: Distance, x: torch.Tensor | float, y: torch.Tensor | float) -> torch.Tensor:
    """How far ``x`` lies beyond ``y`` on the "far" side: ``x - y`` for a distance, ``y - x`` for a
    similarity (PML's ``distance.margin(x, y)``). Lets one hinge formula serve both kinds."""
    return y - x if distance.is_similarity else x - y  # type: ignore[return-value]


def _check_real(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite real number."""
    try:
        finite = torch.isfinite(torch.tensor(float(value))).item()
    except (TypeError, ValueError):
        finite = False
    if isinstance(value, bool) or not finite:
        raise ValueError(f"{name} must be a finite number, got {value!r}")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


# --------------------------------------------------------------------------------------------
# Base class
# --------------------------------------------------------------------------------------------


class PairBasedLoss(DistanceModule):
    """Shared machinery: input checks, the ``(M, N)`` matrix and the pair masks.

    Subclasses implement :meth:`_loss` on ``(matrix, pos, neg)``. :meth:`compute_loss` is the
    internal entry point that also takes a reference set and a ``self_mask`` (pairs that are one
    sample seen twice, as in a cross-batch memory), without re-validating its inputs.

    ``p_switch`` (0 by default) is Roth et al.'s ρ-regularisation: in training mode each anchor,
    with this probability, gets one of its positives as a negative
    (:func:`~dmlkit.miners.switch_negatives`); set it with
    :func:`dmlkit.losses.rho_regularization.rho_regularize`. In eval mode the loss is unchanged.
    """

    supports_reference: ClassVar[bool] = True
    #: whether the pair masks can be switched by ρ-regularisation (False where the loss builds
    #: its own tuples instead of using the masks, as the N-pair loss does).
    supports_rho_regularization: ClassVar[bool] = True
    p_switch: float = 0.0

    def forward(
        self,
        embeddings: torch.Tensor,
        labels: torch.Tensor,
        ref_emb: torch.Tensor | None = None,
        ref_labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The loss of the batch; with ``ref_emb``/``ref_labels``, of the batch against them."""
        check_embeddings_and_labels(embeddings, labels)
        if ref_emb is None and ref_labels is None:
            return self.compute_loss(embeddings, labels)
        if ref_emb is None or ref_labels is None:
            raise ValueError("pass both ref_emb and ref_labels, or neither")
        if not self.supports_reference:
            raise ValueError(f"{type(self).__name__} has no form with a reference set (ref_emb)")
        check_embeddings_and_labels(ref_emb, ref_labels)
        if ref_emb.shape[1] != embeddings.shape[1]:
            raise ValueError(f"embeddings have {embeddings.shape[1]} dimensions but ref_emb has {ref_emb.shape[1]}")
        return self.compute_loss(embeddings, labels, ref_emb, ref_labels)

    def compute_loss(
        self,
        embeddings: torch.Tensor,
        labels: torch.Tensor,
        ref_emb: torch.Tensor | None = None,
        ref_labels: torch.Tensor | None = None,
        self_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The loss of query rows against reference rows (``ref_emb=None``: the batch itself,
        diagonal excluded). ``self_mask`` ``(M, N)`` marks pairs that are not positives because
        they are the same sample twice. Inputs are assumed valid."""
        matrix = self.distance(embeddings, ref_emb)
        pos, neg = pair_masks(labels, ref_labels, self_mask)
        if self.p_switch > 0 and self.training:
            pos, neg = switch_negatives(pos, neg, self.p_switch)
        return self._loss(matrix, pos, neg, in_batch=ref_emb is None)

    def _loss(self, matrix: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, in_batch: bool) -> torch.Tensor:
        raise NotImplementedError


# --------------------------------------------------------------------------------------------
# Contrastive
# --------------------------------------------------------------------------------------------


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
        _check_real("pos_margin", pos_margin)
        _check_real("neg_margin", neg_margin)
        _check_choice("reduction", reduction, ("avg_nonzero", "mean"))
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

    def _loss(self, matrix: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, in_batch: bool) -> torch.Tensor:
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


# --------------------------------------------------------------------------------------------
# Triplet
# --------------------------------------------------------------------------------------------

_TRIPLET_MINING = ("all", "semihard", "hard", "batch_hard")


def _padded_positives(pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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
    d_ap: torch.Tensor, d_an: torch.Tensor, margin: float, mining: str, smooth_loss: bool
) -> tuple[torch.Tensor, torch.Tensor]:
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
        _check_choice("mining", mining, _TRIPLET_MINING)
        _check_choice("reduction", reduction, ("avg_nonzero", "mean"))
        if mining == "semihard" and margin == 0:
            raise ValueError("semihard mining keeps d(a,p) < d(a,n) <= d(a,p) + margin: it needs margin > 0, got 0")
        self.margin = float(margin)
        self.mining = mining
        self.reduction = reduction
        self.smooth_loss = bool(smooth_loss)

    def _loss(self, matrix: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, in_batch: bool) -> torch.Tensor:
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

    def _batch_hard(self, dist: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
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


# --------------------------------------------------------------------------------------------
# Lifted structure
# --------------------------------------------------------------------------------------------


class LiftedStructureLoss(PairBasedLoss):
    """Lifted structured embedding loss (Oh Song, Xiang, Jegelka & Savarese, CVPR 2016, "Deep
    Metric Learning via Lifted Structured Feature Embedding", Eq. 4, the smooth bound).

    For each positive pair ``(i, j)``::

        J_ij = log( sum_{k in N_i} exp(neg_margin - D_ik) + sum_{l in N_j} exp(neg_margin - D_jl) )
               + D_ij - pos_margin
        loss = 1 / (2 |P|) * sum_{(i,j) in P} [J_ij]_+^2

    ``P`` being the ordered positive pairs and ``N_i`` the negatives of ``i`` (for a similarity the
    signs flip: ``s - neg_margin`` and ``pos_margin - s``). A pair with no negative at either end
    contributes 0 (a log of an empty sum); a batch of one class gives 0.

    Equal to PML's ``LiftedStructureLoss`` for a batch. How PML differs from the paper: it
    L2-normalises the embeddings first (the paper does not: pass
    ``EuclideanDistance(normalize_embeddings=False)``), and it adds ``pos_margin`` (the paper has
    none: the default 0 is the paper). The paper's ``alpha`` is ``neg_margin`` (both default 1).

    Against a reference set (``ref_emb``, :class:`CrossBatchMemory`) only the anchor's negatives
    among the references enter the log-sum-exp: the negatives of a reference sample would need
    reference-to-reference distances. PML's version of this case compares query with memory
    indices and is not meaningful, so there is nothing to match.

    Args:
        neg_margin: the paper's ``alpha`` (1).
        pos_margin: subtracted from ``D_ij`` (0).
        distance: default :class:`~dmlkit.distances.EuclideanDistance`.
    """

    def __init__(self, neg_margin: float = 1.0, pos_margin: float = 0.0, distance: Distance | None = None) -> None:
        super().__init__(distance)
        _check_real("neg_margin", neg_margin)
        _check_real("pos_margin", pos_margin)
        self.neg_margin = float(neg_margin)
        self.pos_margin = float(pos_margin)

    def _loss(self, matrix: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, in_batch: bool) -> torch.Tensor:
        neg_logits = _beyond(self.distance, self.neg_margin, matrix)
        row_lse = masked_logsumexp(neg_logits, neg, empty_value=float("-inf"))  # (M,)
        has_neg = neg.any(dim=1)
        if in_batch:
            # log(exp(r_i) + exp(r_j)); entries where both ends lack negatives are fed zeros (no
            # NaN gradient from logaddexp(-inf, -inf)) and left out below.
            either = has_neg.unsqueeze(1) | has_neg.unsqueeze(0)
            zero = torch.zeros_like(matrix)
            r_i = torch.where(either, row_lse.unsqueeze(1).expand_as(matrix), zero)
            r_j = torch.where(either, row_lse.unsqueeze(0).expand_as(matrix), zero)
            neg_part = torch.logaddexp(r_i, r_j)
            usable = pos & either
        else:
            neg_part = torch.where(has_neg, row_lse, torch.zeros_like(row_lse)).unsqueeze(1)
            usable = pos & has_neg.unsqueeze(1)
        per_pair = F.relu(neg_part + _beyond(self.distance, matrix, self.pos_margin)).square() / 2
        per_pair = torch.where(usable, per_pair, torch.zeros_like(per_pair))
        return per_pair.sum() / pos.sum().clamp_min(1)

    def extra_repr(self) -> str:
        return f"neg_margin={self.neg_margin}, pos_margin={self.pos_margin}"


# --------------------------------------------------------------------------------------------
# N-pairs
# --------------------------------------------------------------------------------------------


class NPairsLoss(PairBasedLoss):
    """Multi-class N-pair loss (Sohn, NeurIPS 2016, "Improved Deep Metric Learning with Multi-class
    N-pair Loss Objective", the N-pair-mc loss of Sec. 3.2).

    From each class with at least two samples one pair is taken — the class's first sample as
    anchor and its second as positive (PML's choice). With ``N`` such pairs and similarity ``f``::

        loss = 1/N * sum_i log(1 + sum_{j != i} exp(f(a_i, p_j) - f(a_i, p_i)))

    i.e. the cross-entropy of the anchors over the ``N`` positives. Other samples of a class are
    not used.

    How PML differs from the paper: PML's default similarity is a dot product of *normalised*
    embeddings (cosine); Sohn uses the raw inner product of unnormalised embeddings and keeps
    their norms small with an L2 penalty (Sec. 3.2). The paper's version is
    ``NPairsLoss(DotProductSimilarity(normalize_embeddings=False), l2_reg_weight=...)``, the
    penalty being ``l2_reg_weight * mean ||f||^2`` over the anchors and positives used.

    Args:
        distance: default :class:`DotProductSimilarity` (normalised, as PML). A distance (not a
            similarity) is negated, as in PML.
        l2_reg_weight: weight of the L2 penalty on embedding norms (PML: none, 0).
    """

    supports_reference = False
    supports_rho_regularization = False

    def __init__(self, distance: Distance | None = None, *, l2_reg_weight: float = 0.0) -> None:
        super().__init__(distance)
        check_non_negative("l2_reg_weight", l2_reg_weight)
        self.l2_reg_weight = float(l2_reg_weight)

    def default_distance(self) -> Distance:
        return DotProductSimilarity()

    def compute_loss(
        self,
        embeddings: torch.Tensor,
        labels: torch.Tensor,
        ref_emb: torch.Tensor | None = None,
        ref_labels: torch.Tensor | None = None,
        self_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if ref_emb is not None:
            raise ValueError("NPairsLoss has no form with a reference set (ref_emb)")
        anchors, positives = self.pairs(labels)
        if anchors.numel() == 0:
            return embeddings.sum() * 0.0  # no class with two samples: zero, still on the graph
        # Row i: anchor i against every positive; its own positive is column i.
        matrix = self.distance(embeddings[anchors], embeddings[positives])
        logits = matrix if self.distance.is_similarity else -matrix
        loss = F.cross_entropy(logits, torch.arange(anchors.numel(), device=logits.device))
        if self.l2_reg_weight > 0:
            used = torch.cat([anchors, positives])
            loss = loss + self.l2_reg_weight * embeddings[used].square().sum(1).mean()
        return loss

    @staticmethod
    def pairs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(anchors, positives)``: the first and second sample of each class that has two,
        classes in increasing label order (as PML).

        This builds the N pairs (the N-pair "batch construction", not a reduction), so its output
        has one entry per such class. A stable sort keeps each class's samples in batch order.
        """
        sorted_labels, order = torch.sort(labels, stable=True)
        starts = torch.ones_like(sorted_labels, dtype=torch.bool)
        starts[1:] = sorted_labels[1:] != sorted_labels[:-1]  # first sample of a class
        has_second = torch.zeros_like(starts)
        has_second[:-1] = starts[:-1] & ~starts[1:]  # ... followed by one of the same class
        first = torch.nonzero(has_second).flatten()
        return order[first], order[first + 1]

    def extra_repr(self) -> str:
        return f"l2_reg_weight={self.l2_reg_weight}"


# --------------------------------------------------------------------------------------------
# Multi-similarity
# --------------------------------------------------------------------------------------------


class MultiSimilarityLoss(PairBasedLoss):
    """Multi-similarity loss (Wang, Han, Huang, Dong & Scott, CVPR 2019, "Multi-Similarity Loss
    with General Pair Weighting for Deep Metric Learning", Sec. 4), with optional pair mining.

    Per anchor ``i`` with similarities ``S``::

        1/alpha * log(1 + sum_{p in P_i} exp(-alpha (S_ip - base)))
      + 1/beta  * log(1 + sum_{n in N_i} exp( beta (S_in - base)))

    averaged over all anchors of the batch (an anchor without positives or negatives has 0 in
    that part). With ``epsilon=None`` ``P_i``/``N_i`` are all positives/negatives — PML's
    ``MultiSimilarityLoss`` alone. With a number the paper's mining keeps negatives with
    ``S_in + epsilon > min_p S_ip`` and positives with ``S_ip - epsilon < max_n S_in``
    (:func:`~dmlkit.miners.multi_similarity_masks`) — PML's loss with
    ``MultiSimilarityMiner(epsilon)``.

    Defaults are the authors' released code: ``alpha=2, beta=40, base=0.5`` (``lambda`` in the
    paper), mining ``epsilon=0.1`` (PML's ``beta`` default is 50). That code also drops an anchor
    entirely when mining leaves it without a positive or without a negative (PML keeps the part
    that remains): ``skip_incomplete_anchors=True`` does the same. The mean stays over all anchors.

    One PML corner case is not copied: when mining leaves at most one positive pair and at most
    one negative pair in the whole batch, PML's ``GenericPairLoss`` returns 0; here those pairs
    still count.

    Args:
        alpha, beta: scales of positives and negatives (2, 40).
        base: the similarity margin ``lambda`` (0.5).
        epsilon: ``None`` (no mining) or the mining margin (paper: 0.1).
        distance: default :class:`~dmlkit.distances.CosineSimilarity`.
        skip_incomplete_anchors: the released code's treatment of anchors left incomplete.
    """

    def __init__(
        self,
        alpha: float = 2.0,
        beta: float = 40.0,
        base: float = 0.5,
        epsilon: float | None = None,
        distance: Distance | None = None,
        *,
        skip_incomplete_anchors: bool = False,
    ) -> None:
        super().__init__(distance)
        check_positive("alpha", alpha)
        check_positive("beta", beta)
        _check_real("base", base)
        if epsilon is not None:
            check_non_negative("epsilon", epsilon)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.base = float(base)
        self.epsilon = None if epsilon is None else float(epsilon)
        self.skip_incomplete_anchors = bool(skip_incomplete_anchors)

    def default_distance(self) -> Distance:
        return CosineSimilarity()

    def _loss(self, matrix: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, in_batch: bool) -> torch.Tensor:
        if self.epsilon is not None:
            sim = matrix.detach() if self.distance.is_similarity else -matrix.detach()
            pos, neg = multi_similarity_masks(sim, pos, neg, self.epsilon)
        pos_logits = self.alpha * _beyond(self.distance, matrix, self.base)
        neg_logits = self.beta * _beyond(self.distance, self.base, matrix)
        per_anchor = (
            masked_logsumexp(pos_logits, pos, add_one=True) / self.alpha
            + masked_logsumexp(neg_logits, neg, add_one=True) / self.beta
        )
        if self.skip_incomplete_anchors:
            complete = pos.any(dim=1) & neg.any(dim=1)
            per_anchor = torch.where(complete, per_anchor, torch.zeros_like(per_anchor))
        return per_anchor.mean()

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha}, beta={self.beta}, base={self.base}, epsilon={self.epsilon}, "
            f"skip_incomplete_anchors={self.skip_incomplete_anchors}"
        )


# --------------------------------------------------------------------------------------------
# Ranked list
# --------------------------------------------------------------------------------------------


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
        _check_choice("variant", variant, ("pml", "paper"))
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

    def _loss(self, matrix: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, in_batch: bool) -> torch.Tensor:
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


# --------------------------------------------------------------------------------------------
# Circle
# --------------------------------------------------------------------------------------------


class CircleLoss(PairBasedLoss):
    """Circle loss (Sun, Cheng, Zhang, Zhang, Zheng, Wang & Wei, CVPR 2020, "Circle Loss: A Unified
    Perspective of Pair Similarity Optimization", Sec. 3), pair-label form on cosine similarities.

    Per anchor, with ``O_p = 1 + m``, ``O_n = -m``, ``Delta_p = 1 - m``, ``Delta_n = m`` and the
    self-paced weights ``a_p = [O_p - s_p]_+``, ``a_n = [s_n - O_n]_+`` (treated as constants)::

        loss = softplus( logsumexp_p(-gamma a_p (s_p - Delta_p))
                         + logsumexp_n( gamma a_n (s_n - Delta_n)) )

    i.e. ``log(1 + sum_n sum_p exp(gamma (a_n (s_n - Delta_n) - a_p (s_p - Delta_p))))``. Anchors
    without a positive or a negative are left out; the batch loss is PML's ``AvgNonZero`` over
    anchors (the mean over the anchors with a positive loss). Equal to PML's ``CircleLoss``.

    Defaults ``m=0.4, gamma=80`` are the paper's fine-grained retrieval setting and PML's (face
    recognition: 0.25 and 256; re-identification: 0.25 and 128). Always cosine similarity, as PML
    requires.
    """

    def __init__(self, m: float = 0.4, gamma: float = 80.0) -> None:
        super().__init__(CosineSimilarity())
        check_non_negative("m", m)
        check_positive("gamma", gamma)
        self.m = float(m)
        self.gamma = float(gamma)

    def _loss(self, matrix: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, in_batch: bool) -> torch.Tensor:
        s = matrix
        detached = s.detach()
        pos_logits = -self.gamma * F.relu(1 + self.m - detached) * (s - (1 - self.m))
        neg_logits = self.gamma * F.relu(detached + self.m) * (s - self.m)
        per_anchor = F.softplus(masked_logsumexp(pos_logits, pos) + masked_logsumexp(neg_logits, neg))
        complete = pos.any(dim=1) & neg.any(dim=1)
        return _avg_nonzero(per_anchor, complete)

    def extra_repr(self) -> str:
        return f"m={self.m}, gamma={self.gamma}"


# --------------------------------------------------------------------------------------------
# Cross-batch memory
# --------------------------------------------------------------------------------------------


class CrossBatchMemory(nn.Module):
    """Cross-batch memory, "XBM" (Wang, Zhang, Huang & Scott, CVPR 2020, "Cross-Batch Memory for
    Embedding Learning").

    A FIFO queue of the last ``memory_size`` (detached) embeddings and their labels. Each call
    counts one iteration. For the first ``start_iteration`` calls (the warm-up) the loss is the
    wrapped loss on the batch and nothing is stored. Afterwards the batch is enqueued (replacing the
    oldest entries) and the loss becomes::

        loss(batch) + memory_weight * loss(batch as anchors, memory as references)

    where a batch sample and its own copy in the memory are not a positive pair. This is the
    training step of the authors' released code (enqueue, then batch loss plus weighted memory
    loss); its defaults are ``memory_weight=1`` and a warm-up of 1000 iterations in the sample
    configuration. The memory is detached: gradients flow only through the batch's side.

    Differences from PML's ``CrossBatchMemory``: PML has no warm-up and returns only the memory
    term (``loss(batch vs memory)``, which contains the batch itself); ``include_batch_loss=False,
    start_iteration=0, memory_weight=1`` gives exactly PML's value. PML accepts a separate miner;
    here mining is the wrapped loss's own (``TripletMarginLoss(mining=...)``,
    ``MultiSimilarityLoss(epsilon=...)``), applied to the batch-versus-memory pairs as PML's
    miners are. PML also supports ``enqueue_mask``; this class does not.

    Wrappable: Contrastive, Triplet, LiftedStructure (anchor-side negatives only, see there),
    MultiSimilarity, RankedList (not in PML), Circle. Not N-pairs (nor in PML).

    The queue and its labels are buffers (saved in ``state_dict``); the write position, the fill
    level and the iteration count are plain attributes, reset by :meth:`reset_queue`. With mining,
    PML's miners see a sample's own copy in the memory as a positive before PML removes the pair;
    that can change which negatives PML keeps for an anchor whose only positive is itself (rare;
    here such an anchor has no positive and keeps no mined negative).

    Args:
        loss: a :class:`PairBasedLoss` with a reference form.
        embedding_size: size of the stored embeddings.
        memory_size: number of stored embeddings (PML: 1024; the paper sizes it to the dataset,
            e.g. the whole training set of a small one).
        start_iteration: warm-up iterations without memory (released code: 1000; PML: 0).
        memory_weight: weight of the memory term (1).
        include_batch_loss: add the plain batch loss after warm-up (released code: yes; PML: no).
    """

    embedding_memory: torch.Tensor
    label_memory: torch.Tensor

    def __init__(
        self,
        loss: PairBasedLoss,
        embedding_size: int,
        memory_size: int = 1024,
        *,
        start_iteration: int = 1000,
        memory_weight: float = 1.0,
        include_batch_loss: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(loss, PairBasedLoss):
            raise ValueError(f"loss must be a dmlkit pair-based loss (PairBasedLoss), got {type(loss).__name__}")
        if not loss.supports_reference:
            raise ValueError(f"{type(loss).__name__} cannot be used with a cross-batch memory")
        for name, value, minimum in (
            ("embedding_size", embedding_size, 1),
            ("memory_size", memory_size, 1),
            ("start_iteration", start_iteration, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        check_non_negative("memory_weight", memory_weight)
        self.loss = loss
        self.embedding_size = embedding_size
        self.memory_size = memory_size
        self.start_iteration = start_iteration
        self.memory_weight = float(memory_weight)
        self.include_batch_loss = bool(include_batch_loss)
        self.register_buffer("embedding_memory", torch.zeros(memory_size, embedding_size))
        self.register_buffer("label_memory", torch.zeros(memory_size, dtype=torch.long))
        self.reset_queue()

    def reset_queue(self) -> None:
        """Empty the memory and restart the iteration count (and so the warm-up)."""
        self.embedding_memory.zero_()
        self.label_memory.zero_()
        self.queue_idx = 0
        self.num_filled = 0
        self.iteration = 0

    def _enqueue(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Store the batch (detached) and return the memory slot of each of its rows."""
        memory = self.embedding_memory
        if memory.dtype != embeddings.dtype or memory.device != embeddings.device:
            self.embedding_memory = self.embedding_memory.to(embeddings.device, embeddings.dtype)
            self.label_memory = self.label_memory.to(embeddings.device)
        batch = embeddings.shape[0]
        slots = (self.queue_idx + torch.arange(batch, device=embeddings.device)) % self.memory_size
        self.embedding_memory[slots] = embeddings.detach()
        self.label_memory[slots] = labels.detach().to(self.label_memory.dtype)
        self.queue_idx = (self.queue_idx + batch) % self.memory_size
        self.num_filled = min(self.num_filled + batch, self.memory_size)
        return slots

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_embeddings_and_labels(embeddings, labels)
        if embeddings.shape[1] != self.embedding_size:
            raise ValueError(f"expected embeddings of size {self.embedding_size}, got {embeddings.shape[1]}")
        if embeddings.shape[0] > self.memory_size:
            raise ValueError(f"the batch ({embeddings.shape[0]}) is larger than the memory ({self.memory_size})")
        self.iteration += 1
        if self.iteration <= self.start_iteration:
            return self.loss.compute_loss(embeddings, labels)
        slots = self._enqueue(embeddings, labels)
        memory = self.embedding_memory[: self.num_filled]
        memory_labels = self.label_memory[: self.num_filled]
        self_mask = torch.zeros(embeddings.shape[0], self.num_filled, dtype=torch.bool, device=embeddings.device)
        self_mask[torch.arange(embeddings.shape[0], device=embeddings.device), slots] = True
        loss = self.memory_weight * self.loss.compute_loss(embeddings, labels, memory, memory_labels, self_mask)
        if self.include_batch_loss:
            loss = loss + self.loss.compute_loss(embeddings, labels)
        return loss

    def extra_repr(self) -> str:
        return (
            f"embedding_size={self.embedding_size}, memory_size={self.memory_size}, "
            f"start_iteration={self.start_iteration}, memory_weight={self.memory_weight}, "
            f"include_batch_loss={self.include_batch_loss}"
        )
