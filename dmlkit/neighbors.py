"""Exact k-nearest-neighbour search in torch, chunked so memory stays bounded.

Used by the plots (UMAP's ``precomputed_knn`` and retrieval examples) and, through
:func:`knn_by_key`, by :func:`dmlkit.geometry.hyperbolic_knn`. Queries are processed in chunks of
rows so no ``N x N`` matrix is ever held for large ``N``.

- :func:`knn_by_key` — the one engine: ranks every row's candidates by a ranking key (smaller =
  nearer) with a stable sort, so ties go to the lower index; the row itself is its own first
  neighbour at distance 0 (``include_self``) or is excluded by index;
- :func:`exact_knn` — that engine with the cosine or Euclidean distance as the key;
- :func:`row_chunks` — the chunking of query rows, shared with
  :func:`dmlkit.geometry.distance_retrieval_metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from dmlkit.checks import check_embeddings

__all__ = ["exact_knn", "knn_by_key", "row_chunks", "check_neighbour_count"]

# Distances held per chunk by default: 16 Mi entries (64 MB in float32).
_DEFAULT_CHUNK_ENTRIES = 16 * 2**20


def row_chunks(num_rows: int, chunk_size: int) -> Iterator[slice]:
    """Consecutive slices ``[start, min(start + chunk_size, num_rows))`` that cover ``range(num_rows)``.

    ``start`` runs over ``range(0, num_rows, chunk_size)``, so a non-positive ``chunk_size`` gives
    no slice and a non-integer one raises ``TypeError``, as ``range`` does.
    """
    for start in range(0, num_rows, chunk_size):
        yield slice(start, min(start + chunk_size, num_rows))


def check_neighbour_count(k: int, num_rows: int, include_self: bool) -> None:
    """Raise ``ValueError`` unless ``1 <= k <= num_rows`` (``num_rows - 1`` without ``include_self``)."""
    if not 1 <= k <= (num_rows if include_self else num_rows - 1):
        raise ValueError(f"k={k} neighbours impossible among {num_rows} rows (include_self={include_self})")


def _check_shape(name: str, value: Tensor, expected: tuple[int, int]) -> None:
    """Raise ``ValueError`` unless ``value`` is a tensor of shape ``expected`` (what ``name`` returned)."""
    if not isinstance(value, torch.Tensor) or tuple(value.shape) != expected:
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"{name} must return a {expected} tensor, got {shape}")


def knn_by_key(
    embeddings: Tensor,
    k: int,
    ranking_key: Callable[[Tensor, Tensor], Tensor],
    include_self: bool = True,
    chunk_size: int | None = None,
    distances: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """The ``k`` smallest-key neighbours of every row among all rows, in stable order, by chunks of rows.

    For each chunk of query rows ``block = embeddings[start:stop]`` (global indices
    ``rows = arange(start, stop)``), ``ranking_key(block, rows)`` gives a ``(len(rows), N)`` key,
    smaller = nearer; the engine writes ``-inf`` (``include_self``: the row is its own first
    neighbour) or ``+inf`` (the row is excluded by index; duplicates stay neighbours) at each row's
    own column, in place, so the key must be a fresh tensor. A stable ``torch.sort`` of each key row
    keeps the first ``k`` indices, ties broken by the lower index. The distances are the ``k`` kept
    key values or, when given, ``distances(block, indices)`` (``(len(rows), k)``, e.g. a true
    distance evaluated for the kept pairs only); with ``include_self`` the first is set to 0, and
    all are clamped at 0.

    Args:
        embeddings: ``(N, ...)``, already in the dtype and on the device to compute in (not validated here).
        k: neighbours per row, ``1 <= k <= N`` (``N - 1`` without ``include_self``).
        ranking_key: ``(block, rows) -> (len(rows), N)`` key, smaller = nearer.
        include_self: keep each row as its own first neighbour; else exclude it by index.
        chunk_size: query rows per chunk; ``None`` (or 0) for about 16 Mi key entries per chunk.
        distances: ``(block, indices (len(rows), k)) -> (len(rows), k)``; ``None`` returns the key values.

    Returns:
        ``(indices, distances)``, both ``(N, k)``, nearest first.
    """
    n = embeddings.shape[0]
    check_neighbour_count(k, n, include_self)
    chunk_size = chunk_size or max(1, min(n, _DEFAULT_CHUNK_ENTRIES // max(n, 1)))
    device = embeddings.device
    all_indices, all_distances = [], []
    for part in row_chunks(n, chunk_size):
        block = embeddings[part]
        rows = torch.arange(part.start, part.stop, device=device)
        key = ranking_key(block, rows)
        _check_shape("ranking_key", key, (rows.numel(), n))
        key[torch.arange(rows.numel(), device=device), rows] = -math.inf if include_self else math.inf
        order = torch.sort(key, dim=1, stable=True)
        indices = order.indices[:, :k]
        if distances is None:
            kept = order.values[:, :k]
        else:
            kept = distances(block, indices)
            _check_shape("distances", kept, tuple(indices.shape))
        if include_self:
            kept[:, 0] = 0.0
        all_indices.append(indices)
        all_distances.append(kept)
    return torch.cat(all_indices), torch.cat(all_distances).clamp_min(0.0)


def exact_knn(
    embeddings: Tensor, k: int, distance: str = "cosine", include_self: bool = True, chunk_size: int | None = None
) -> tuple[Tensor, Tensor]:
    """Indices and distances of the ``k`` nearest neighbours of every row among all rows.

    :func:`knn_by_key` with the distance itself as the key, computed in float32 from the Gram
    matrix: ``1 - cos`` of the L2-normalised rows, or ``sqrt(max(|x|^2 - 2 x.y + |y|^2, 0))``.

    Args:
        embeddings: ``(N, D)``.
        k: neighbours per row (with ``include_self``, the row itself is the first of them).
        distance: ``"cosine"`` (``1 - cos``) or ``"euclidean"``.
        include_self: keep each row as its own first neighbour (the form UMAP expects); else
            exclude it by index (duplicates at distance 0 stay neighbours).
        chunk_size: rows per chunk; by default about 64 MB of distances per chunk.

    Returns:
        ``(indices, distances)``, both ``(N, k)``, nearest first; ties broken by lower index.
    """
    check_embeddings(embeddings)
    check_neighbour_count(k, embeddings.shape[0], include_self)
    if distance not in ("cosine", "euclidean"):
        raise ValueError(f"distance must be 'cosine' or 'euclidean', got {distance!r}")
    x = embeddings.detach().float()
    if distance == "cosine":
        x = F.normalize(x, dim=1)

        def ranking_key(block: Tensor, rows: Tensor) -> Tensor:
            """``1 - cos`` between the (normalised) block rows and every row."""
            return 1.0 - block @ x.T

    else:
        squared_norms = x.pow(2).sum(1)

        def ranking_key(block: Tensor, rows: Tensor) -> Tensor:
            """Euclidean distance between the block rows (indices ``rows``) and every row, via the Gram matrix."""
            return (squared_norms[rows, None] - 2.0 * block @ x.T + squared_norms[None, :]).clamp_min(0).sqrt()

    return knn_by_key(x, k, ranking_key, include_self=include_self, chunk_size=chunk_size)
