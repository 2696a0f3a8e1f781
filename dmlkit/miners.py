"""Miners: which pairs or triplets of a batch a pair-based loss looks at.

A miner reads the distance matrix of a batch (no gradient) and keeps the pairs or triplets that
are informative. Each miner here exists in two forms:

- a mask function (``pair_masks``, ``triplet_mask``, ``batch_hard_triplets``,
  ``multi_similarity_masks``) that works on an ``(M, N)`` matrix and returns boolean masks of a
  fixed shape. The losses in :mod:`dmlkit.losses.pair_based` use these, so that their reductions
  are masked sums rather than boolean indexing whose shape changes from batch to batch;
- a module (``TripletMarginMiner``, ``BatchHardMiner``, ``MultiSimilarityMiner``) with
  pytorch-metric-learning's (PML's) names, call signature and output: index tuples
  ``(anchors, positives, negatives)`` for triplets or ``(anchors, positives, anchors2, negatives)``
  for pairs, in the same order as PML's.

Conventions (as in PML): rows are queries (anchors), columns are references; a sample is never its
own positive; with ``ref_emb`` given, rows and columns are different sets and nothing is removed.
A :class:`~dmlkit.distances.Distance` with ``is_similarity=True`` (cosine) counts larger as closer;
the functions below turn it into a "distance-like" matrix by negation where they need one.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from dmlkit.checks import check_embeddings_and_labels, check_non_negative
from dmlkit.distances import CosineSimilarity, Distance, DistanceModule

__all__ = [
    "pair_masks",
    "masks_to_pairs",
    "triplet_mask",
    "batch_hard_triplets",
    "multi_similarity_masks",
    "TripletMarginMiner",
    "BatchHardMiner",
    "MultiSimilarityMiner",
]

TripletType = Literal["all", "hard", "semihard", "easy"]
_TRIPLET_TYPES = ("all", "hard", "semihard", "easy")


def pair_masks(
    labels: Tensor, ref_labels: Tensor | None = None, self_mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Positive and negative pair masks, both ``(M, N)`` booleans.

    ``pos[i, j]``: same label and not the same sample; ``neg[i, j]``: different labels. Without
    ``ref_labels`` the batch is compared with itself and the diagonal is not a positive pair.
    ``self_mask`` marks further pairs that are one sample seen twice (a query and its own copy in a
    cross-batch memory); they are not positives either.
    """
    same = labels.unsqueeze(1) == (labels if ref_labels is None else ref_labels).unsqueeze(0)
    neg = ~same
    if ref_labels is None:
        same.fill_diagonal_(False)
    if self_mask is not None:
        same = same & ~self_mask
    return same, neg


def masks_to_pairs(pos: Tensor, neg: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(a1, p, a2, n)`` index tuple (PML's pair format) from two ``(M, N)`` masks, row-major."""
    a1, p = torch.nonzero(pos, as_tuple=True)
    a2, n = torch.nonzero(neg, as_tuple=True)
    return a1, p, a2, n


def _closer_is_smaller(matrix: Tensor, distance: Distance) -> Tensor:
    """The matrix as a distance (smaller = closer): similarities are negated."""
    return -matrix if distance.is_similarity else matrix


def triplet_mask(
    dist: Tensor, pos: Tensor, neg: Tensor, margin: float, type_of_triplets: TripletType = "all"
) -> Tensor:
    """``(M, N, N)`` mask of the triplets ``(a, p, n)`` that PML's ``TripletMarginMiner`` keeps.

    ``dist`` is distance-like (smaller = closer). With the triplet margin
    ``t = d(a, n) - d(a, p)``: ``"all"`` keeps ``t <= margin`` (the triplets that violate the
    margin), ``"hard"`` keeps ``t <= 0`` (the negative is at least as close as the positive),
    ``"semihard"`` keeps ``0 < t <= margin`` and ``"easy"`` keeps ``t > margin``.

    This is a dense ``M * N * N`` tensor: fine for a batch of a few hundred, and what
    :class:`TripletMarginMiner` turns into indices.
    """
    if type_of_triplets not in _TRIPLET_TYPES:
        raise ValueError(f"type_of_triplets must be one of {_TRIPLET_TYPES}, got {type_of_triplets!r}")
    valid = pos.unsqueeze(2) & neg.unsqueeze(1)
    triplet_margin = dist.unsqueeze(1) - dist.unsqueeze(2)  # [a, p, n] = d(a, n) - d(a, p)
    if type_of_triplets == "easy":
        return valid & (triplet_margin > margin)
    keep = valid & (triplet_margin <= margin)
    if type_of_triplets == "hard":
        keep &= triplet_margin <= 0
    elif type_of_triplets == "semihard":
        keep &= triplet_margin > 0
    return keep


def batch_hard_triplets(dist: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Hermans et al.'s batch-hard choice per anchor: farthest positive, closest negative.

    ``dist`` is distance-like. Returns ``(hardest_positive, hardest_negative, valid)``, each of
    shape ``(M,)``: column indices, and whether the anchor has at least one positive and one
    negative (the indices of an invalid row are meaningless).
    """
    farthest = torch.where(pos, dist, float("-inf")).max(dim=1)
    closest = torch.where(neg, dist, float("inf")).min(dim=1)
    # A row without positives has max -inf, one without negatives min +inf.
    valid = (farthest.values > float("-inf")) & (closest.values < float("inf"))
    return farthest.indices, closest.indices, valid


def multi_similarity_masks(sim: Tensor, pos: Tensor, neg: Tensor, epsilon: float) -> tuple[Tensor, Tensor]:
    """The pair mining of the multi-similarity loss (Wang et al., CVPR 2019, Sec. 4, "pair
    mining" by relative similarity).

    ``sim`` is similarity-like (larger = closer). A negative pair ``(i, n)`` is kept if
    ``S_in + epsilon > min_p S_ip`` (it is more similar than the least similar positive, up to
    ``epsilon``); a positive pair ``(i, p)`` is kept if ``S_ip - epsilon < max_n S_in``. An anchor
    without positives keeps no negatives and one without negatives keeps no positives.
    """
    min_positive = torch.where(pos, sim, float("inf")).amin(dim=1, keepdim=True)
    max_negative = torch.where(neg, sim, float("-inf")).amax(dim=1, keepdim=True)
    neg_keep = neg & (sim + epsilon > min_positive)
    pos_keep = pos & (sim - epsilon < max_negative)
    return pos_keep, neg_keep


class _Miner(DistanceModule):
    """Shared input handling: validation, the matrix and the pair masks, all without gradient.

    ``forward(embeddings, labels, ref_emb=None, ref_labels=None)`` validates the inputs, computes
    the distance matrix and the positive/negative masks, and hands them to :meth:`mine`.
    """

    def forward(
        self, embeddings: Tensor, labels: Tensor, ref_emb: Tensor | None = None, ref_labels: Tensor | None = None
    ) -> tuple[Tensor, ...]:
        return self.mine(*self._prepare(embeddings, labels, ref_emb, ref_labels))

    def mine(self, matrix: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, ...]:
        raise NotImplementedError

    @torch.no_grad()
    def _prepare(
        self, embeddings: Tensor, labels: Tensor, ref_emb: Tensor | None, ref_labels: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        check_embeddings_and_labels(embeddings, labels)
        if (ref_emb is None) != (ref_labels is None):
            raise ValueError("pass both ref_emb and ref_labels, or neither")
        if ref_emb is not None:
            check_embeddings_and_labels(ref_emb, ref_labels)
        matrix = self.distance(embeddings, ref_emb)
        pos, neg = pair_masks(labels, ref_labels)
        return matrix, pos, neg


class TripletMarginMiner(_Miner):
    """PML's ``TripletMarginMiner``: the triplets whose margin ``d(a,n) - d(a,p)`` is at most
    ``margin`` (``"all"``), and of those the ``"hard"`` (``<= 0``) or ``"semihard"`` (``> 0``)
    ones; ``"easy"`` is the complement of ``"all"``. Semi-hard negatives are those of Schroff et
    al. (CVPR 2015, "FaceNet", Eq. 4), here taken over all positives rather than one.

    Args:
        margin: the margin of the selection (PML's default 0.2).
        type_of_triplets: ``"all"``, ``"hard"``, ``"semihard"`` or ``"easy"``.
        distance: default :class:`~dmlkit.distances.EuclideanDistance` (PML's ``LpDistance``).

    ``forward(embeddings, labels, ref_emb=None, ref_labels=None)`` returns
    ``(anchors, positives, negatives)`` index tensors.
    """

    def __init__(
        self, margin: float = 0.2, type_of_triplets: TripletType = "all", distance: Distance | None = None
    ) -> None:
        super().__init__(distance)
        check_non_negative("margin", margin)
        if type_of_triplets not in _TRIPLET_TYPES:
            raise ValueError(f"type_of_triplets must be one of {_TRIPLET_TYPES}, got {type_of_triplets!r}")
        self.margin = float(margin)
        self.type_of_triplets = type_of_triplets

    def mine(self, matrix: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, ...]:
        dist = _closer_is_smaller(matrix, self.distance)
        keep = triplet_mask(dist, pos, neg, self.margin, self.type_of_triplets)
        a, p, n = torch.nonzero(keep, as_tuple=True)
        return a, p, n

    def extra_repr(self) -> str:
        return f"margin={self.margin}, type_of_triplets={self.type_of_triplets!r}"


class BatchHardMiner(_Miner):
    """Batch-hard mining (Hermans et al., 2017, "In Defense of the Triplet Loss for Person
    Re-Identification", arXiv:1703.07737, Eq. 5): one triplet per anchor, with its farthest
    positive and its closest negative. PML's ``BatchHardMiner``.

    ``forward(embeddings, labels, ref_emb=None, ref_labels=None)`` returns
    ``(anchors, positives, negatives)`` for the anchors that have a positive and a negative.
    """

    def __init__(self, distance: Distance | None = None) -> None:
        super().__init__(distance)

    def mine(self, matrix: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, ...]:
        dist = _closer_is_smaller(matrix, self.distance)
        hardest_positive, hardest_negative, valid = batch_hard_triplets(dist, pos, neg)
        anchors = torch.nonzero(valid, as_tuple=True)[0]
        return anchors, hardest_positive[anchors], hardest_negative[anchors]


class MultiSimilarityMiner(_Miner):
    """The pair mining of the multi-similarity loss (Wang et al., CVPR 2019, "Multi-Similarity
    Loss with General Pair Weighting for Deep Metric Learning", Sec. 4); PML's
    ``MultiSimilarityMiner``. See :func:`multi_similarity_masks`.

    Args:
        epsilon: the mining margin (paper and PML: 0.1).
        distance: default :class:`~dmlkit.distances.CosineSimilarity`.

    ``forward(embeddings, labels, ref_emb=None, ref_labels=None)`` returns ``(a1, p, a2, n)``.
    """

    def __init__(self, epsilon: float = 0.1, distance: Distance | None = None) -> None:
        super().__init__(distance)
        check_non_negative("epsilon", epsilon)
        self.epsilon = float(epsilon)

    def default_distance(self) -> Distance:
        return CosineSimilarity()

    def mine(self, matrix: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, ...]:
        sim = matrix if self.distance.is_similarity else -matrix
        pos_keep, neg_keep = multi_similarity_masks(sim, pos, neg, self.epsilon)
        return masks_to_pairs(pos_keep, neg_keep)

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}"
