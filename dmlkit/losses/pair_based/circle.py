"""The circle loss (Sun et al., CVPR 2020)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from dmlkit.checks import check_non_negative, check_positive
from dmlkit.distances import CosineSimilarity
from dmlkit.losses.pair_based.base import PairBasedLoss, _avg_nonzero, masked_logsumexp

__all__ = ["CircleLoss"]


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

    def _loss(self, matrix: Tensor, pos: Tensor, neg: Tensor, in_batch: bool) -> Tensor:
        s = matrix
        detached = s.detach()
        pos_logits = -self.gamma * F.relu(1 + self.m - detached) * (s - (1 - self.m))
        neg_logits = self.gamma * F.relu(detached + self.m) * (s - self.m)
        per_anchor = F.softplus(masked_logsumexp(pos_logits, pos) + masked_logsumexp(neg_logits, neg))
        complete = pos.any(dim=1) & neg.any(dim=1)
        return _avg_nonzero(per_anchor, complete)

    def extra_repr(self) -> str:
        return f"m={self.m}, gamma={self.gamma}"
