"""The N-pair loss (Sohn, NeurIPS 2016)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dmlkit.checks import check_non_negative
from dmlkit.distances import Distance, DotProductSimilarity
from dmlkit.losses.pair_based.base import PairBasedLoss

__all__ = ["NPairsLoss"]


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

    def __init__(self, distance: Distance | None = None, *, l2_reg_weight: float = 0.0) -> None:
        super().__init__(distance)
        check_non_negative("l2_reg_weight", l2_reg_weight)
        self.l2_reg_weight = float(l2_reg_weight)

    def default_distance(self) -> Distance:
        return DotProductSimilarity()

    def compute_loss(self, embeddings: Tensor, labels: Tensor, *reference: Tensor | None) -> Tensor:
        """The N-pair loss of the batch. The base class's reference arguments (``ref_emb``,
        ``ref_labels``, ``self_mask``) must be absent: the N pairs are built inside the batch."""
        if any(r is not None for r in reference):
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
    def pairs(labels: Tensor) -> tuple[Tensor, Tensor]:
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
