r"""Retrieval metrics and nearest neighbours under the Poincaré-ball distance.

:func:`dmlkit.evaluate.retrieval_metrics` ranks neighbours by cosine or Euclidean distance. For
embeddings that live in the Poincaré ball (the output of
:class:`dmlkit.geometry.HyperbolicProjection`) the neighbours must be ranked by the geodesic
distance, and that ranking is **not** the Euclidean one. For a fixed query :math:`x`,

.. math::
    d_c(x, y) = \frac{2}{\sqrt c}\operatorname{artanh}\big(\sqrt c\,\|(-x)\oplus_c y\|\big),
    \qquad
    \|(-x)\oplus_c y\|^2 = \frac{\|x-y\|^2}{c\|x-y\|^2 + (1-c\|x\|^2)(1-c\|y\|^2)},

so :math:`d_c(x, y)` is increasing in :math:`\|(-x)\oplus_c y\|` and, equivalently (the factor
:math:`1-c\|x\|^2` is the same for every gallery item), in
:math:`\|x-y\|^2 / (1-c\|y\|^2)`. A gallery item near the boundary is therefore farther from
the query than a Euclidean-equidistant item near the origin. The two rankings agree when every
gallery item has the same norm (then the denominator is a constant) and for ``c = 0``
(:math:`d_0 = 2\|x-y\|`).

What this module offers:

- :func:`distance_retrieval_metrics` — Recall@k, MAP@R and R-Precision for any distance given as
  a function ``distance_fn(queries, gallery) -> (Q, N)`` (smaller is nearer), with the
  definitions of :mod:`dmlkit.evaluate` (leave-one-out; Recall@k of Song et al., CVPR 2016;
  MAP@R and R-Precision of Musgrave et al., ECCV 2020; queries whose class has no other item
  left out);
- :func:`hyperbolic_retrieval_metrics` — the same ranked by :math:`d_c`, through the cheaper
  key of :func:`hyperbolic_ranking_key` (same order);
- :func:`hyperbolic_knn` — the exact k-nearest-neighbour graph under the hyperbolic distance in
  the ``(indices, distances)`` form of :func:`dmlkit.neighbors.exact_knn` (e.g. for
  ``dmlkit.plots.umap_2d(..., knn=...)``);
- :func:`with_hyperbolic_metrics` — a :class:`dmlkit.experiment.RunResult` whose retrieval
  metrics are recomputed with the hyperbolic distance.

All searches are exact and chunked over query rows (never an ``N x N`` matrix for large ``N``);
distances are computed in float64 by default.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dmlkit.checks import check_chunk_size, check_curvature, check_embeddings, check_embeddings_and_labels, check_ks
from dmlkit.geometry.poincare import dist
from dmlkit.neighbors import check_neighbour_count, knn_by_key, row_chunks
from dmlkit.ranking import MetricAccumulator, retrieval_queries

__all__ = [
    "distance_retrieval_metrics",
    "hyperbolic_retrieval_metrics",
    "hyperbolic_ranking_key",
    "hyperbolic_knn",
    "with_hyperbolic_metrics",
    "hyperbolic_per_class_recall_at_1",
]

# Memory allowed for one block of query-by-gallery distances and the temporaries beside it.
_CHUNK_BUDGET_BYTES = 256 * 2**20
# A block's distance or ranking-key computation holds about this many (Q, N) temporaries.
_TEMPORARIES = 8


def _rows_per_chunk(num_items: int, element_size: int, chunk_size: int | None) -> int:
    if chunk_size is not None:
        return chunk_size
    return max(1, _CHUNK_BUDGET_BYTES // (_TEMPORARIES * element_size * max(num_items, 1)))


def _check_in_ball(embeddings: Tensor, c: float) -> None:
    if c == 0:
        return
    outside = (c * embeddings.detach().double().pow(2).sum(dim=1) >= 1.0).nonzero().flatten()
    if outside.numel():
        raise ValueError(
            f"{outside.numel()} embeddings lie on or outside the Poincaré ball of radius "
            f"1/sqrt(c) = {1.0 / math.sqrt(c):.4g} (first rows {outside[:5].tolist()}); map "
            f"features into the ball with dmlkit.geometry.HyperbolicProjection(c={c})"
        )


def _block_distances(distance_fn: Callable[[Tensor, Tensor], Tensor], block: Tensor, gallery: Tensor) -> Tensor:
    d = distance_fn(block, gallery)
    expected = (block.shape[0], gallery.shape[0])
    if not isinstance(d, torch.Tensor) or tuple(d.shape) != expected:
        shape = tuple(d.shape) if isinstance(d, torch.Tensor) else type(d).__name__
        raise ValueError(f"distance_fn must return a {expected} tensor of distances, got {shape}")
    if torch.isnan(d).any():
        raise ValueError("distance_fn returned NaN distances")
    return d


def distance_retrieval_metrics(
    embeddings: Tensor,
    labels: Tensor,
    distance_fn: Callable[[Tensor, Tensor], Tensor],
    ks: Sequence[int] = (1, 2, 4, 8),
    chunk_size: int | None = None,
    dtype: torch.dtype = torch.float64,
) -> dict[str, float]:
    """Leave-one-out Recall@k, MAP@R and R-Precision under any distance.

    The definitions are those of :func:`dmlkit.evaluate.retrieval_metrics` (see
    :mod:`dmlkit.evaluate`): every item with at least one other item of its class is a query
    against all other items; ``R`` is the number of other items of the query's class;
    R-Precision is the share of the first ``R`` neighbours of the query's class and
    ``MAP@R = (1/R) * sum_{i<=R} P@i * rel(i)``.

    Args:
        embeddings: ``(N, D)`` floating tensor.
        labels: ``(N,)`` integer labels.
        distance_fn: ``(queries (Q, D), gallery (N, D)) -> (Q, N)`` distances, smaller = nearer
            (e.g. ``functools.partial(dmlkit.geometry.dist_matrix, c=0.1)``).
        ks: the ``k`` of Recall@k, each in ``[1, N - 1]``.
        chunk_size: query rows per block (default: from ``N`` and a 256 MB budget).
        dtype: the embeddings are converted to it before ``distance_fn`` is called.

    Returns:
        ``{"recall@k": ..., "map@r": ..., "r_precision": ...}`` as Python floats.

    The query is removed from its own neighbours by index (its distance is set to infinity), and
    the nearest neighbours come from ``torch.topk``; exact ties between distances are ordered as
    ``torch.topk`` orders them.
    """
    check_embeddings_and_labels(embeddings, labels)
    if not callable(distance_fn):
        raise TypeError(f"distance_fn must be callable, got {type(distance_fn).__name__}")
    check_chunk_size(chunk_size)
    num_items = embeddings.shape[0]
    ks = check_ks(ks, num_items)
    x = embeddings.detach().to(dtype)
    labels = labels.to(x.device)
    others, is_query = retrieval_queries(labels)  # R of every item
    queries = is_query.nonzero().flatten()
    max_r = int(others.max())
    depth = max(max_r, max(ks))
    rows = _rows_per_chunk(num_items, x.element_size(), chunk_size)

    accumulator = MetricAccumulator(ks, max_r)
    for part in row_chunks(queries.numel(), rows):
        query_index = queries[part]
        d = _block_distances(distance_fn, x[query_index], x).clone()
        d[torch.arange(query_index.numel(), device=x.device), query_index] = float("inf")
        _, neighbours = torch.topk(d, depth, dim=1, largest=False, sorted=True)
        accumulator.add(labels[neighbours] == labels[query_index].unsqueeze(1), others[query_index])
    return accumulator.result()


def hyperbolic_retrieval_metrics(
    embeddings: Tensor,
    labels: Tensor,
    c: float,
    ks: Sequence[int] = (1, 2, 4, 8),
    chunk_size: int | None = None,
    dtype: torch.dtype = torch.float64,
) -> dict[str, float]:
    r"""Recall@k, MAP@R and R-Precision with neighbours ranked by the Poincaré distance ``d_c``.

    :func:`distance_retrieval_metrics` with :func:`hyperbolic_ranking_key`, which orders the
    gallery exactly as :func:`dmlkit.geometry.dist_matrix` does at a fraction of the cost
    (computed in ``dtype``, float64 by default). Raises ``ValueError`` when a row lies on or outside the ball
    (:math:`c\|x\|^2 \ge 1`). ``c = 0`` ranks by :math:`2\|x - y\|`, i.e. as
    ``retrieval_metrics(..., distance="euclidean")``.
    """
    c = check_curvature(c)
    check_embeddings(embeddings)
    _check_in_ball(embeddings, c)
    return distance_retrieval_metrics(
        embeddings,
        labels,
        functools.partial(hyperbolic_ranking_key, c=c),
        ks=ks,
        chunk_size=chunk_size,
        dtype=dtype,
    )


def hyperbolic_ranking_key(queries: Tensor, gallery: Tensor, c: float) -> Tensor:
    r"""A ``(Q, N)`` matrix that orders every row's gallery items exactly as :math:`d_c` does.

    :math:`\|q - y\|^2 / (1 - c\|y\|^2)`, an increasing function of :math:`d_c(q, y)` for each
    fixed query :math:`q` (module docstring): :math:`\cosh(\sqrt c\,d_c) - 1 =
    2c\|q-y\|^2 / ((1-c\|q\|^2)(1-c\|y\|^2))`. It costs one matrix product and a division,
    against the square roots and logarithms of :func:`dmlkit.geometry.dist_matrix`; the squared
    difference comes from the Gram matrix, with that trick's rounding for near-duplicates. Not a
    distance between queries (it is not symmetric): use it for ranking only.
    """
    c = check_curvature(c)
    q_sq = queries.pow(2).sum(dim=1, keepdim=True)
    g_sq = gallery.pow(2).sum(dim=1)
    sq_diff = (q_sq - 2.0 * (queries @ gallery.T) + g_sq.unsqueeze(0)).clamp_min(0.0)
    if c == 0:
        return sq_diff
    gap = (1.0 - c * g_sq).clamp_min(torch.finfo(gallery.dtype).eps)
    return sq_diff / gap.unsqueeze(0)


def hyperbolic_knn(
    embeddings: Tensor,
    k: int,
    c: float,
    include_self: bool = True,
    chunk_size: int | None = None,
    dtype: torch.dtype = torch.float64,
) -> tuple[Tensor, Tensor]:
    """The exact ``k`` nearest neighbours of every row under the Poincaré distance ``d_c``.

    The same contract as :func:`dmlkit.neighbors.exact_knn`: ``(indices, distances)``, both
    ``(N, k)``, nearest first, ties broken by the lower index (stable sort); with
    ``include_self`` each row is its own first neighbour at distance 0 (the form UMAP's
    ``precomputed_knn`` expects), otherwise it is excluded by index. The neighbours are ranked by
    :func:`hyperbolic_ranking_key` (the order of :math:`d_c`) and only the ``k`` distances kept
    are evaluated, with :func:`dmlkit.geometry.dist` (the chunked engine
    :func:`dmlkit.neighbors.knn_by_key`). Distances are returned in float32
    (``dtype`` is the precision they are computed in).
    """
    c = check_curvature(c)
    check_embeddings(embeddings)
    _check_in_ball(embeddings, c)
    check_chunk_size(chunk_size)
    n = embeddings.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be an integer, got {k!r}")
    check_neighbour_count(k, n, include_self)
    x = embeddings.detach().to(dtype)

    def ranking_key(block: Tensor, rows: Tensor) -> Tensor:
        """:func:`hyperbolic_ranking_key` of the block rows against every row (the order of ``d_c``)."""
        return hyperbolic_ranking_key(block, x, c=c)

    def distances(block: Tensor, indices: Tensor) -> Tensor:
        """``d_c`` from each block row to its ``k`` kept neighbours only, with :func:`dmlkit.geometry.dist`."""
        return dist(block.unsqueeze(1), x[indices], c=c)

    rows = _rows_per_chunk(n, x.element_size(), chunk_size)
    indices, d = knn_by_key(x, k, ranking_key, include_self=include_self, chunk_size=rows, distances=distances)
    return indices, d.float()


def with_hyperbolic_metrics(result: Any, c: float, ks: Sequence[int] = (1, 2, 4, 8)) -> Any:
    """A copy of a :class:`dmlkit.experiment.RunResult` with hyperbolic retrieval metrics.

    :func:`dmlkit.experiment.run_method` ranks by cosine or Euclidean distance; for a model whose
    embeddings live in the Poincaré ball, call it (e.g. with ``distance="euclidean"``) and pass
    the result here: ``train_metrics`` and ``test_metrics`` are recomputed with
    :func:`hyperbolic_retrieval_metrics` (an ``"nmi"`` entry is kept), and ``settings["distance"]``
    becomes ``"poincare(c=...)"``. ρ and the density are left as they are: both are defined on
    L2-normalised rows, i.e. on the directions of the embeddings, which the exponential map at
    the origin does not change.
    """
    c = check_curvature(c)
    for name in ("train_embeddings", "train_labels", "test_embeddings", "test_labels", "settings"):
        if not hasattr(result, name):
            raise TypeError(f"result must be a dmlkit.experiment.RunResult (no attribute {name!r})")
    train = hyperbolic_retrieval_metrics(result.train_embeddings, result.train_labels, c, ks=ks)
    test = hyperbolic_retrieval_metrics(result.test_embeddings, result.test_labels, c, ks=ks)
    if "nmi" in result.test_metrics:
        test["nmi"] = result.test_metrics["nmi"]
    return replace(
        result,
        train_metrics=train,
        test_metrics=test,
        settings={**result.settings, "distance": f"poincare(c={c:g})"},
    )


def hyperbolic_per_class_recall_at_1(
    embeddings: Tensor, labels: Tensor, c: float, chunk_size: int | None = None
) -> Tensor:
    """Recall@1 of each class under the Poincaré distance ``d_c``: the share of the class's queries
    whose nearest other point (:func:`hyperbolic_knn`, ties to the lower index) is of that class.

    The contract of :func:`dmlkit.evaluate.per_class_recall_at_1`: entry ``c`` for label value
    ``c``, NaN for a class with a single item (it has no query); ``float64`` on the CPU.
    """
    check_embeddings_and_labels(embeddings, labels)
    if bool((labels < 0).any()):
        raise ValueError("hyperbolic_per_class_recall_at_1 needs non-negative labels (they index the result)")
    nearest, _ = hyperbolic_knn(embeddings, k=1, c=c, include_self=False, chunk_size=chunk_size)
    labels = labels.detach().cpu().long()
    from dmlkit.evaluate import mean_per_class

    hit = (labels[nearest[:, 0].cpu()] == labels).double()
    num_classes = int(labels.max()) + 1
    is_query = torch.bincount(labels, minlength=num_classes)[labels] > 1
    return mean_per_class(hit[is_query], labels[is_query], num_classes)
