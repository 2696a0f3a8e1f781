"""Exact k-nearest-neighbour search in torch, chunked so memory stays bounded.

Used by the plots (UMAP's ``precomputed_knn`` and retrieval examples). Queries are processed in
chunks of rows so no ``N x N`` matrix is ever held for large ``N``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dmlkit.checks import check_embeddings

__all__ = ["exact_knn"]


def exact_knn(
    embeddings: Tensor, k: int, distance: str = "cosine", include_self: bool = True, chunk_size: int | None = None
) -> tuple[Tensor, Tensor]:
    """Indices and distances of the ``k`` nearest neighbours of every row among all rows.

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
    n = embeddings.shape[0]
    if not 1 <= k <= (n if include_self else n - 1):
        raise ValueError(f"k={k} neighbours impossible among {n} rows (include_self={include_self})")
    if distance not in ("cosine", "euclidean"):
        raise ValueError(f"distance must be 'cosine' or 'euclidean', got {distance!r}")
    x = embeddings.detach().float()
    if distance == "cosine":
        x = F.normalize(x, dim=1)
    squared_norms = x.pow(2).sum(1)
    chunk_size = chunk_size or max(1, min(n, (16 * 2**20) // max(n, 1)))
    all_indices, all_distances = [], []
    for start in range(0, n, chunk_size):
        block = x[start : start + chunk_size]
        rows = torch.arange(start, start + block.shape[0], device=x.device)
        if distance == "cosine":
            d = 1.0 - block @ x.T
        else:
            d = (squared_norms[rows, None] - 2.0 * block @ x.T + squared_norms[None, :]).clamp_min(0).sqrt()
        # ties: a stable sort on distance keeps the lower index first
        d[torch.arange(block.shape[0]), rows] = -torch.inf if include_self else torch.inf
        order = torch.sort(d, dim=1, stable=True)
        idx = order.indices[:, :k]
        dist = order.values[:, :k]
        if include_self:
            dist[:, 0] = 0.0
        all_indices.append(idx)
        all_distances.append(dist)
    return torch.cat(all_indices), torch.cat(all_distances).clamp_min(0.0)
