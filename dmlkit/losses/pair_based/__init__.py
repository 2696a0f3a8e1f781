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
- :class:`MarginLoss` (Wu, Manmatha, Smola & Krähenbühl, ICCV 2017) and
  :class:`DistanceWeightedTripletLoss` on distance-weighted triplets
  (:class:`DistanceWeightedMiner`), with Roth et al.'s ρ-regularisation (``p_switch``).
- :class:`CrossBatchMemory` (Wang, Zhang, Huang & Scott, CVPR 2020, "XBM"): any of the above
  (except N-pairs) against a queue of embeddings from past batches.

Every loss is an ``nn.Module`` with ``forward(embeddings, labels) -> scalar`` and the class and
argument names of pytorch-metric-learning ("PML"); with the same arguments the value and the
gradient equal PML's (checked in ``tests/losses/test_pair_based.py``). Where PML and the paper
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

:func:`pair_weight` reads the weight a loss gives one pair (Wang et al.'s general pair weighting).
"""

from dmlkit.distances import DotProductSimilarity
from dmlkit.losses.pair_based import (
    base,
    circle,
    contrastive,
    cross_batch_memory,
    distance_weighted,
    lifted_structure,
    multi_similarity,
    n_pairs,
    ranked_list,
    triplet,
    weights,
)
from dmlkit.losses.pair_based.base import PairBasedLoss, masked_logsumexp
from dmlkit.losses.pair_based.circle import CircleLoss
from dmlkit.losses.pair_based.contrastive import ContrastiveLoss
from dmlkit.losses.pair_based.cross_batch_memory import CrossBatchMemory
from dmlkit.losses.pair_based.distance_weighted import (
    DistanceWeightedMiner,
    DistanceWeightedTripletLoss,
    MarginLoss,
    inverse_sphere_weights,
)
from dmlkit.losses.pair_based.lifted_structure import LiftedStructureLoss
from dmlkit.losses.pair_based.multi_similarity import MultiSimilarityLoss
from dmlkit.losses.pair_based.n_pairs import NPairsLoss
from dmlkit.losses.pair_based.ranked_list import RankedListLoss
from dmlkit.losses.pair_based.triplet import TripletMarginLoss
from dmlkit.losses.pair_based.weights import pair_weight

__all__ = [
    *base.__all__,
    *circle.__all__,
    *contrastive.__all__,
    *cross_batch_memory.__all__,
    *distance_weighted.__all__,
    *lifted_structure.__all__,
    *multi_similarity.__all__,
    *n_pairs.__all__,
    *ranked_list.__all__,
    *triplet.__all__,
    *weights.__all__,
    "DotProductSimilarity",
]
