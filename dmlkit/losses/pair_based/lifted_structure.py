"""The lifted structured loss (Oh Song, Xiang, Jegelka & Savarese, CVPR 2016)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dmlkit.checks import check_real
from dmlkit.distances import Distance
from dmlkit.losses.pair_based.base import PairBasedLoss, _beyond, masked_logsumexp

__all__ = ["LiftedStructureLoss"]


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
        check_real("neg_margin", neg_margin)
        check_real("pos_margin", pos_margin)
        self.neg_margin = float(neg_margin)
        self.pos_margin = float(pos_margin)

    def _loss(self, matrix: Tensor, pos: Tensor, neg: Tensor, in_batch: bool) -> Tensor:
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
