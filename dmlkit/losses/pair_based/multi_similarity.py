"""The multi-similarity loss (Wang, Han, Huang, Dong & Scott, CVPR 2019)."""

from __future__ import annotations

import torch
from torch import Tensor

from dmlkit.checks import check_non_negative, check_positive, check_real
from dmlkit.distances import CosineSimilarity, Distance
from dmlkit.losses.pair_based.base import PairBasedLoss, _beyond, masked_logsumexp
from dmlkit.miners import multi_similarity_masks

__all__ = ["MultiSimilarityLoss"]


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
        check_real("base", base)
        if epsilon is not None:
            check_non_negative("epsilon", epsilon)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.base = float(base)
        self.epsilon = None if epsilon is None else float(epsilon)
        self.skip_incomplete_anchors = bool(skip_incomplete_anchors)

    def default_distance(self) -> Distance:
        return CosineSimilarity()

    def _loss(self, matrix: Tensor, pos: Tensor, neg: Tensor, in_batch: bool) -> Tensor:
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
