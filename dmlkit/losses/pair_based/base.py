"""The machinery every pair-based loss shares: masked reductions, argument checks and
:class:`PairBasedLoss` (inputs, the ``(M, N)`` matrix, the pair masks, ρ-regularisation)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from dmlkit.checks import check_embeddings_and_labels
from dmlkit.distances import Distance, DistanceModule
from dmlkit.miners import pair_masks

__all__ = ["masked_logsumexp", "PairBasedLoss"]


def masked_logsumexp(x: Tensor, mask: Tensor, dim: int = 1, add_one: bool = False, empty_value: float = 0.0) -> Tensor:
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


def _avg_nonzero(terms: Tensor, mask: Tensor) -> Tensor:
    """Mean of the strictly positive ``terms`` inside ``mask`` (0 when there are none).

    PML's ``AvgNonZeroReducer``: terms that are already satisfied (0) do not dilute the mean.
    """
    terms = terms * mask  # terms are finite; a product is cheaper than torch.where on CPU
    count = (terms > 0).sum()
    return terms.sum() / count.clamp_min(1)


def _masked_mean(terms: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``terms`` inside ``mask`` (0 when the mask is empty)."""
    return (terms * mask).sum() / mask.sum().clamp_min(1)


def _beyond(distance: Distance, x: Tensor | float, y: Tensor | float) -> Tensor:
    """How far ``x`` lies beyond ``y`` on the "far" side: ``x - y`` for a distance, ``y - x`` for a
    similarity (PML's ``distance.margin(x, y)``). Lets one hinge formula serve both kinds."""
    return y - x if distance.is_similarity else x - y  # type: ignore[return-value]


class PairBasedLoss(DistanceModule):
    """Shared machinery: input checks, the ``(M, N)`` matrix and the pair masks.

    Subclasses implement :meth:`_loss` on ``(matrix, pos, neg)``. :meth:`compute_loss` is the
    internal entry point that also takes a reference set and a ``self_mask`` (pairs that are one
    sample seen twice, as in a cross-batch memory), without re-validating its inputs.

    Roth et al.'s ρ-regularisation is not a switch of these masks: it replaces sampled triplets,
    see :mod:`dmlkit.losses.pair_based.distance_weighted`.
    """

    supports_reference: ClassVar[bool] = True

    def forward(
        self, embeddings: Tensor, labels: Tensor, ref_emb: Tensor | None = None, ref_labels: Tensor | None = None
    ) -> Tensor:
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
        embeddings: Tensor,
        labels: Tensor,
        ref_emb: Tensor | None = None,
        ref_labels: Tensor | None = None,
        self_mask: Tensor | None = None,
    ) -> Tensor:
        """The loss of query rows against reference rows (``ref_emb=None``: the batch itself,
        diagonal excluded). ``self_mask`` ``(M, N)`` marks pairs that are not positives because
        they are the same sample twice. Inputs are assumed valid."""
        matrix = self.distance(embeddings, ref_emb)
        pos, neg = pair_masks(labels, ref_labels, self_mask)
        return self._loss(matrix, pos, neg, in_batch=ref_emb is None)

    def _loss(self, matrix: Tensor, pos: Tensor, neg: Tensor, in_batch: bool) -> Tensor:
        raise NotImplementedError
