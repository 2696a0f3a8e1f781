"""AP-ranking losses: optimise the average precision (AP) of the ranking each query induces.

Every item of the batch is, in turn, a query; the rest of the batch is its retrieval set
``Ω_q``, and the items of its class form its positive set ``P_q``. Ranking ``Ω_q`` by similarity
to the query, the average precision is

    AP_q = (1/|P_q|) · Σ_{i∈P_q} R(i, P_q) / R(i, Ω_q),
    R(i, S) = 1 + Σ_{j∈S, j≠i} 1[s_qj > s_qi],

the mean over the positives of the precision at each positive's rank (``R(i, S)`` is the rank of
``i`` within ``S``). AP is piecewise constant in the embeddings, so it has no useful gradient. The
two losses here make it differentiable in two different ways:

- :class:`FastAPLoss` (Cakir et al., CVPR 2019) quantises the *distances*: AP becomes a sum over
  a soft histogram of squared distances, linear in the number of pairs.
- :class:`SmoothAPLoss` (Brown et al., ECCV 2020) smooths the *ranks*: the indicator in
  ``R(i, S)`` becomes a sigmoid of the similarity difference, cubic in the batch size.

:func:`average_precision` is the exact (non-differentiable) AP that both approximate; use it to
check an approximation or to measure a batch. :func:`fast_average_precision` and
:func:`smooth_average_precision` give the per-query approximations (differentiable).
"""

from __future__ import annotations

import numbers
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from dmlkit.checks import check_embeddings_and_labels, check_positive
from dmlkit.distances import Distance, get_distance

__all__ = [
    "FastAPLoss",
    "SmoothAPLoss",
    "average_precision",
    "fast_average_precision",
    "smooth_average_precision",
]

# Smooth-AP builds a (queries, B, B) tensor; queries are processed in chunks of at most this
# many elements (2**20 float32 values = 4 MiB), which bounds the memory and keeps each chunk
# close to the CPU caches (2**18 to 2**20 timed best on CPU). Tests lower it to exercise the
# chunking.
_SMOOTH_AP_CHUNK_ELEMENTS = 2**20
# average_precision computes (queries, B) score rows in chunks of at most this many elements.
_AP_CHUNK_ELEMENTS = 2**24


def _retrieval_masks(labels: Tensor, include_query: bool) -> tuple[Tensor, Tensor]:
    """Boolean ``(B, B)`` masks: row ``q`` marks ``q``'s retrieval set and its positives."""
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    if include_query:
        return torch.ones_like(same), same
    off_diagonal = ~torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return off_diagonal, same & off_diagonal


def _mean_over_queries(per_query: Tensor, has_positive: Tensor, embeddings: Tensor) -> Tensor:
    """``1 - mean`` of the per-query AP over queries with positives (0 if there are none)."""
    count = has_positive.sum()
    if count == 0:
        # Nothing to rank: a zero that is still part of the graph, so backward() works.
        return embeddings.sum() * 0.0
    return 1.0 - (per_query * has_positive).sum() / count


# --------------------------------------------------------------------------------------------
# Exact average precision
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def average_precision(
    embeddings: Tensor,
    labels: Tensor,
    *,
    distance: str | Distance = "cosine",
    include_query: bool = False,
    ties: Literal["optimistic", "pessimistic"] = "optimistic",
) -> Tensor:
    """Exact average precision of every item used as a query against the rest of the batch.

    ``AP_q = (1/|P_q|) · Σ_{i∈P_q} R(i, P_q) / R(i, Ω_q)`` with ranks counted from the
    similarities (Brown et al., ECCV 2020, "Smooth-AP", Sec. 3, the AP and ranking-function
    equations). It is the area under the query's precision-recall curve: the mean, over its
    positives, of the precision at the rank of each positive. Not differentiable (computed under
    ``torch.no_grad``).

    Args:
        embeddings: ``(B, D)`` embeddings.
        labels: ``(B,)`` integer labels; items with the query's label are its positives.
        distance: how to rank, a name for :func:`dmlkit.distances.get_distance` or a
            :class:`~dmlkit.distances.Distance` (similarities rank high-first, distances
            low-first). The default cosine similarity gives the ranking both losses approximate.
        include_query: if True the query is part of its own retrieval and positive sets (as in
            the official Smooth-AP code); by default it is left out, as in retrieval.
        ties: ``"optimistic"`` counts only strictly better items in a rank (the strict indicator
            of the Smooth-AP paper: a tie is resolved in favour of the item being ranked);
            ``"pessimistic"`` counts tied items as ranked before it. Without ties both agree.

    Returns:
        ``(B,)`` tensor (the embeddings' dtype) with the AP of each query, ``NaN`` for a query
        without positives. ``average_precision(...).nanmean()`` is the batch's mean AP.
    """
    check_embeddings_and_labels(embeddings, labels)
    if ties not in ("optimistic", "pessimistic"):
        raise ValueError(f"ties must be 'optimistic' or 'pessimistic', got {ties!r}")
    dist = get_distance(distance)
    labels = labels.to(embeddings.device)
    batch_size = embeddings.shape[0]
    rows_per_chunk = max(1, _AP_CHUNK_ELEMENTS // batch_size)
    result = torch.empty(batch_size, dtype=torch.float64, device=embeddings.device)
    columns = torch.arange(batch_size, device=embeddings.device)
    for start in range(0, batch_size, rows_per_chunk):
        stop = min(start + rows_per_chunk, batch_size)
        scores = dist(embeddings[start:stop], embeddings)
        if not dist.is_similarity:
            scores = -scores  # higher is better from here on
        same = labels[start:stop].unsqueeze(1) == labels.unsqueeze(0)
        valid = torch.ones_like(same)
        if not include_query:
            valid &= columns.unsqueeze(0) != columns[start:stop].unsqueeze(1)
        positive = same & valid
        minus_inf = torch.tensor(float("-inf"), dtype=scores.dtype, device=scores.device)
        # Items outside a set get -inf: never better than, nor tied with, a finite score.
        rank_all = _ranks(torch.where(valid, scores, minus_inf), scores, ties)
        rank_pos = _ranks(torch.where(positive, scores, minus_inf), scores, ties)
        precision = (rank_pos / rank_all).masked_fill(~positive, 0.0)
        num_positive = positive.sum(1)
        ap = precision.sum(1) / num_positive.clamp_min(1)
        result[start:stop] = ap.masked_fill(num_positive == 0, float("nan"))
    return result.to(embeddings.dtype)


def _ranks(set_scores: Tensor, scores: Tensor, ties: str) -> Tensor:
    """Rank of every ``scores[q, i]`` within the finite entries of ``set_scores[q]`` (float64).

    Optimistic: ``1 + #{j: set_j > s_i}``; pessimistic: ``#{j: set_j >= s_i}`` (which counts
    ``i`` itself when it belongs to the set, as it does for the positives ranked here).
    """
    ordered, _ = set_scores.sort(dim=1)
    n = set_scores.shape[1]
    if ties == "optimistic":
        better = n - torch.searchsorted(ordered, scores, right=True)
        return (better + 1).double()
    not_worse = n - torch.searchsorted(ordered, scores, right=False)
    return not_worse.double()


# --------------------------------------------------------------------------------------------
# FastAP
# --------------------------------------------------------------------------------------------


def _check_num_bins(num_bins: int) -> int:
    if isinstance(num_bins, bool) or not isinstance(num_bins, numbers.Integral) or num_bins < 1:
        raise ValueError(f"num_bins must be an integer >= 1, got {num_bins!r}")
    return int(num_bins)


def _fast_ap(embeddings: Tensor, labels: Tensor, num_bins: int) -> tuple[Tensor, Tensor]:
    """Per-query FastAP (0 where there is no positive) and the mask of queries with positives."""
    labels = labels.to(embeddings.device)
    normalized = F.normalize(embeddings, dim=1)
    # Squared Euclidean distance of unit vectors, 2 - 2 cos, in [0, 4] (clamped against rounding).
    squared = (2.0 - 2.0 * (normalized @ normalized.T)).clamp(0.0, 4.0)
    retrieval, positive = _retrieval_masks(labels, include_query=False)
    dtype = embeddings.dtype
    positive_f, retrieval_f = positive.to(dtype), retrieval.to(dtype)

    # Triangular soft binning: bin centres z_l = l*Δ, Δ = 4/L, weight max(0, 1 - |d² - z_l|/Δ).
    # A distance u = d²/Δ between centres b and b+1 gives weight 1 - (u - b) to bin b and u - b
    # to bin b+1, nothing elsewhere, so two scatter-adds build each histogram in O(B²) instead of
    # evaluating all L+1 triangles. Exactly at a bin centre (a kink of the triangles) this takes
    # the right-hand derivative.
    scaled = squared * (num_bins / 4.0)
    lower = scaled.detach().floor().clamp(max=num_bins - 1).long()
    upper_weight = scaled - lower
    lower_weight = 1.0 - upper_weight

    def histogram(mask: Tensor) -> Tensor:
        hist = torch.zeros(labels.shape[0], num_bins + 1, dtype=dtype, device=embeddings.device)
        hist = hist.scatter_add(1, lower, lower_weight * mask)
        return hist.scatter_add(1, lower + 1, upper_weight * mask)

    h_pos = histogram(positive_f)  # h⁺_l: positives in bin l
    h_all = histogram(retrieval_f)  # h_l: all items in bin l
    cum_pos = h_pos.cumsum(1)  # H⁺_l
    cum_all = h_all.cumsum(1)  # H_l
    # FastAP_q = (1/N⁺_q) Σ_l h⁺_l H⁺_l / H_l; where H_l = 0 the numerator is 0 too.
    terms = h_pos * cum_pos / torch.where(cum_all > 0, cum_all, torch.ones_like(cum_all))
    num_positive = positive_f.sum(1)
    per_query = terms.sum(1) / num_positive.clamp_min(1.0)
    return per_query, num_positive > 0


def fast_average_precision(embeddings: Tensor, labels: Tensor, num_bins: int = 10) -> Tensor:
    """Per-query FastAP (differentiable): ``(B,)``, ``NaN`` for queries without positives.

    See :class:`FastAPLoss` for the definition; the loss is ``1 - nanmean`` of this.
    """
    check_embeddings_and_labels(embeddings, labels)
    per_query, has_positive = _fast_ap(embeddings, labels, _check_num_bins(num_bins))
    return torch.where(has_positive, per_query, torch.full_like(per_query, float("nan")))


class FastAPLoss(nn.Module):
    """FastAP (Cakir, He, Xia, Kulis & Sclaroff, CVPR 2019, "Deep Metric Learning to Rank").

    AP is the area under the precision-recall curve. FastAP computes it over *distance bins*
    instead of rank positions (Sec. 3 of the paper): with the squared Euclidean distance of unit
    vectors, ``d² ∈ [0, 4]``, and ``L+1`` bin centres ``z_l = 4l/L``, each retrieved item adds
    the triangular weight ``max(0, 1 - |d² - z_l| / Δ)``, ``Δ = 4/L``, to the bins around its
    distance (the paper's soft binning, which makes the histogram differentiable). With ``h⁺_l``
    (``h_l``) the soft count of positives (of all items) in bin ``l`` and ``H⁺_l``, ``H_l`` the
    cumulative counts up to bin ``l``,

        FastAP_q = (1/N⁺_q) · Σ_l h⁺_l · H⁺_l / H_l,

    precision ``H⁺_l / H_l`` at each bin weighted by the recall increment ``h⁺_l / N⁺_q``. The
    loss is the mean of ``1 - FastAP_q`` over the queries that have at least one positive (a
    batch without any gives 0). The cost is O(B²·D + B²) for a batch of B, no triplets.

    Equal to PML's ``FastAPLoss(num_bins)`` (``LpDistance(power=2)`` on normalised embeddings,
    MeanReducer over anchors with positives), values and gradients. Only exactly at a bin
    centre, a kink of the triangles, can the gradients differ: there dmlkit takes the right-hand
    derivative, and PML's depends on how its distance rounds. Paper setting: 10 bins, batch 256,
    512-d, ResNet-18 (the authors' batches take half their images from each of two product
    categories).

    Args:
        num_bins: ``L``, the number of distance bins (``L+1`` bin centres); at least 1.
    """

    def __init__(self, num_bins: int = 10) -> None:
        super().__init__()
        self.num_bins = _check_num_bins(num_bins)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        check_embeddings_and_labels(embeddings, labels)
        per_query, has_positive = _fast_ap(embeddings, labels, self.num_bins)
        return _mean_over_queries(per_query, has_positive, embeddings)

    def extra_repr(self) -> str:
        return f"num_bins={self.num_bins}"


# --------------------------------------------------------------------------------------------
# Smooth-AP
# --------------------------------------------------------------------------------------------


def _sigmoid_of_differences(scaled: Tensor) -> Tensor:
    """``σ(clamp(t_j - t_i, ±50))`` as a ``(C, B, B)`` tensor from the ``(C, B)`` rows ``t``.

    Entry ``[c, i, j]`` compares item ``j`` with item ``i`` for the query of row ``c``.
    """
    out = scaled.unsqueeze(1) - scaled.unsqueeze(2)
    return out.clamp_(-50.0, 50.0).sigmoid_()


class _SmoothAPFunction(torch.autograd.Function):
    """Per-query Smooth-AP from the similarity matrix, with a hand-written backward.

    Autograd would keep several ``(B, B, B)`` tensors alive between forward and backward; this
    function keeps only ``(B, B)`` rank matrices and recomputes the sigmoids chunk by chunk.

    For one query (``τ`` the temperature, ``σ_ij = σ((s_j - s_i)/τ)``, ``n = |P|``):
    ``∂AP/∂σ_ij = (1/n)·(1[j∈P]/R_Ω(i) - R_P(i)/R_Ω(i)²·1[j∈Ω])`` for ``i∈P, j≠i``, and
    ``∂σ_ij/∂s_j = -∂σ_ij/∂s_i = σ_ij(1 - σ_ij)/τ``. The clamp at ±50 would zero that derivative
    outside the clamp; we keep ``σ(1-σ)`` there, which is below 2e-22. Differentiable once
    (no double backward).
    """

    @staticmethod
    def forward(ctx, similarity: Tensor, retrieval: Tensor, positive: Tensor, temperature: float) -> Tensor:
        batch_size = similarity.shape[0]
        scaled = similarity / temperature
        masks = torch.stack((retrieval, positive), dim=2)  # (B, B, 2)
        counts = torch.empty(batch_size, batch_size, 2, dtype=similarity.dtype, device=similarity.device)
        step = max(1, _SMOOTH_AP_CHUNK_ELEMENTS // (batch_size * batch_size))
        for start in range(0, batch_size, step):
            stop = min(start + step, batch_size)
            sig = _sigmoid_of_differences(scaled[start:stop])
            torch.bmm(sig, masks[start:stop], out=counts[start:stop])
        # The sums include j = i, whose sigmoid is σ(0) = 1/2 exactly: take it out again.
        rank_all = 1.0 + counts[..., 0] - 0.5 * retrieval  # R(i, Ω_q)
        rank_pos = 1.0 + counts[..., 1] - 0.5 * positive  # R(i, P_q)
        num_positive = positive.sum(1)
        ap = (positive * rank_pos / rank_all).sum(1) / num_positive.clamp_min(1.0)
        ctx.save_for_backward(scaled, masks, rank_all, rank_pos, num_positive)
        ctx.temperature = temperature
        return ap

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_ap: Tensor):
        scaled, masks, rank_all, rank_pos, num_positive = ctx.saved_tensors
        retrieval, positive = masks[..., 0], masks[..., 1]
        batch_size = scaled.shape[0]
        weight = (grad_ap / num_positive.clamp_min(1.0)).unsqueeze(1)
        # g_ij = (a_i·1[j∈P] - b_i·1[j∈Ω]) · σ_ij(1-σ_ij), per query.
        a = weight * positive / rank_all
        b = weight * positive * rank_pos / rank_all.square()
        coefficients = torch.stack((a, b), dim=1)  # (B, 2, B)
        # Σ_i g_ij (the gradient reaching s_j) and Σ_j g_ij (reaching s_i, with a minus sign),
        # gathered chunk by chunk; only the O(B³) work runs inside the loop.
        into_j = torch.empty(batch_size, 2, batch_size, dtype=scaled.dtype, device=scaled.device)
        from_i = torch.empty(batch_size, batch_size, 2, dtype=scaled.dtype, device=scaled.device)
        step = max(1, _SMOOTH_AP_CHUNK_ELEMENTS // (batch_size * batch_size))
        for start in range(0, batch_size, step):
            stop = min(start + step, batch_size)
            sig = _sigmoid_of_differences(scaled[start:stop])
            slope = sig.addcmul_(sig, sig, value=-1.0)  # σ'(x) = σ - σ², in place
            torch.bmm(coefficients[start:stop], slope, out=into_j[start:stop])
            torch.bmm(slope, masks[start:stop], out=from_i[start:stop])
        grad = positive * into_j[:, 0] - retrieval * into_j[:, 1] - a * from_i[..., 1] + b * from_i[..., 0]
        return grad / ctx.temperature, None, None, None


def _smooth_ap(embeddings: Tensor, labels: Tensor, temperature: float, include_query: bool) -> tuple[Tensor, Tensor]:
    labels = labels.to(embeddings.device)
    normalized = F.normalize(embeddings, dim=1)
    similarity = normalized @ normalized.T  # cosine similarity s_qj
    retrieval, positive = _retrieval_masks(labels, include_query)
    dtype = embeddings.dtype
    per_query = _SmoothAPFunction.apply(similarity, retrieval.to(dtype), positive.to(dtype), float(temperature))
    return per_query, positive.any(1)


def smooth_average_precision(
    embeddings: Tensor, labels: Tensor, temperature: float = 0.01, include_query: bool = False
) -> Tensor:
    """Per-query Smooth-AP (differentiable): ``(B,)``, ``NaN`` for queries without positives.

    See :class:`SmoothAPLoss` for the definition; the loss is ``1 - nanmean`` of this. As
    ``temperature → 0`` it tends to :func:`average_precision` (same ``include_query``).
    """
    check_embeddings_and_labels(embeddings, labels)
    check_positive("temperature", temperature)
    per_query, has_positive = _smooth_ap(embeddings, labels, temperature, include_query)
    return torch.where(has_positive, per_query, torch.full_like(per_query, float("nan")))


class SmoothAPLoss(nn.Module):
    """Smooth-AP (Brown, Xie, Kalogeiton & Zisserman, ECCV 2020, "Smooth-AP: Smoothing the Path
    Towards Large-Scale Image Retrieval").

    AP written with ranks (Sec. 3, the AP and ranking-function equations),
    ``AP_q = (1/|P_q|) · Σ_{i∈P_q} R(i, P_q) / R(i, Ω_q)`` with
    ``R(i, S) = 1 + Σ_{j∈S, j≠i} 1[D_ij > 0]`` and the difference matrix ``D_ij = s_qj - s_qi``
    of cosine similarities, is smoothed by replacing the indicator with the sigmoid
    ``σ(D_ij / τ)`` (Sec. 3.2); as in the authors' code the sigmoid's argument is clamped to
    ``[-50, 50]``. The loss is ``1 - mean_q AP_q`` over the queries that have at least one
    positive (0 if none has). A small ``τ`` approximates the ranking closely but gives gradients
    only to pairs whose similarities are within a few ``τ`` of each other; the paper uses
    ``τ = 0.01``.

    Every batch is handled, whatever its class counts and order. Memory and time are O(B³): the
    ``(B, B, B)`` sigmoid tensor is built in chunks of queries and recomputed in backward (a
    hand-written backward), so the peak extra memory is a few MiB plus ``O(B²)``.

    Differences from PML 2.9's ``SmoothAPLoss(temperature)``, which follows the authors' code:

    - PML infers the batch layout as ``B // number_of_labels`` and reads the batch as contiguous
      blocks of that size; the result is right only when labels come in contiguous blocks and
      classes per batch equals samples per class (and it raises ``ValueError`` when class counts
      differ). This implementation uses the label masks and is right for any batch.
    - The authors' code and PML keep the query in its own retrieval and positive sets (the
      query is always its own best match). The paper's retrieval setting leaves it out, and so
      does this class by default; ``include_query=True`` reproduces the authors' (and PML's)
      values on the batches where PML is right.
    - PML does not clamp the sigmoid's argument (a difference below 1e-21).

    Args:
        temperature: ``τ`` of the sigmoid, > 0.
        include_query: count the query in its own retrieval and positive sets (authors' code).
    """

    def __init__(self, temperature: float = 0.01, include_query: bool = False) -> None:
        super().__init__()
        check_positive("temperature", temperature)
        self.temperature = float(temperature)
        self.include_query = bool(include_query)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        check_embeddings_and_labels(embeddings, labels)
        per_query, has_positive = _smooth_ap(embeddings, labels, self.temperature, self.include_query)
        return _mean_over_queries(per_query, has_positive, embeddings)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, include_query={self.include_query}"
