"""From ranked neighbours to retrieval metrics: the one core every retrieval evaluation shares.

:func:`dmlkit.evaluate.retrieval_metrics` (cosine and Euclidean, PML's tie order),
:func:`dmlkit.geometry.retrieval.distance_retrieval_metrics` (any distance, e.g. the Poincaré
``d_c``) and :func:`dmlkit.hashing.hamming_retrieval_metrics` (binary codes) differ only in how
they find and order each query's neighbours. They share, from here:

- :func:`dmlkit.checks.check_ks` and :func:`~dmlkit.checks.check_chunk_size`, the rules for their
  arguments;
- :func:`retrieval_queries`, which items are queries (those with another item of their class)
  and ``R``, the number of those other items;
- :class:`MetricAccumulator`, which turns each block of queries' neighbour hits into
  Recall@k (Song et al., CVPR 2016), MAP@R and R-Precision (Musgrave et al., ECCV 2020):
  with ``rel(i) = 1`` when neighbour ``i`` is of the query's class,
  ``MAP@R = (1/R) sum_{i<=R} P@i rel(i)`` and ``R-Precision = (1/R) sum_{i<=R} rel(i)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["retrieval_queries", "MetricAccumulator"]


def retrieval_queries(labels: Tensor) -> tuple[Tensor, Tensor]:
    """``(others, is_query)``: for every item the number ``R`` of other items of its class, and
    whether it is a query (``R > 0``). ``ValueError`` when no item is a query."""
    _, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    others = counts[inverse] - 1
    is_query = others > 0
    if not bool(is_query.any()):
        raise ValueError(
            f"no query has another item of its class among the {len(labels)} embeddings (every "
            "class has a single item), so there is nothing to retrieve"
        )
    return others, is_query


class MetricAccumulator:
    """Collects per-query hits block by block and averages them into the metrics.

    ``max_r`` is the largest ``R`` of the whole set. ``add(hits, r)`` takes, for a block of
    queries, ``hits`` ``(Q, depth)``: whether the query's ``i``-th nearest neighbour (query
    excluded) is of its class, with ``depth >= max_r``; and ``r`` ``(Q,)``: each query's ``R``.
    Recall@k for a ``k`` beyond ``depth`` reads ``deep_hits`` (a second, deeper search), when
    given.
    """

    def __init__(self, ks: tuple[int, ...], max_r: int) -> None:
        self.ks = ks
        self.max_r = max_r
        self._hits_at: dict[int, list[torch.Tensor]] = {k: [] for k in ks}
        self._average_precision: list[torch.Tensor] = []
        self._r_precision: list[torch.Tensor] = []

    def add(self, hits: Tensor, r: Tensor, deep_hits: Tensor | None = None) -> None:
        for k in self.ks:
            source = hits if k <= hits.shape[1] or deep_hits is None else deep_hits
            self._hits_at[k].append(source[:, :k].any(dim=1))
        if hits.shape[1] < self.max_r:
            raise ValueError(f"hits must reach rank max(R) = {self.max_r}, got {hits.shape[1]} columns")
        rank = torch.arange(1, self.max_r + 1, device=hits.device)
        relevant = hits[:, : self.max_r] & (rank <= r.unsqueeze(1))  # same-class neighbours among the first R
        precision = relevant.cumsum(dim=1).to(torch.float64) / rank  # P@i at every rank i
        r64 = r.to(torch.float64)
        self._average_precision.append((precision * relevant).sum(dim=1) / r64)
        self._r_precision.append(relevant.sum(dim=1) / r64)

    def per_query(self) -> dict[str, Tensor]:
        """``hit@k`` (bool) for every k, ``average_precision_at_r`` and ``r_precision``
        (float64), one entry per query in the order the blocks were added."""
        scores = {f"hit@{k}": torch.cat(self._hits_at[k]) for k in self.ks}
        scores["average_precision_at_r"] = torch.cat(self._average_precision)
        scores["r_precision"] = torch.cat(self._r_precision)
        return scores

    def result(self) -> dict[str, float]:
        """``{"recall@k": ..., "map@r": ..., "r_precision": ...}`` as Python floats."""
        scores = self.per_query()
        results = {f"recall@{k}": scores[f"hit@{k}"].double().mean().item() for k in self.ks}
        results["map@r"] = scores["average_precision_at_r"].mean().item()
        results["r_precision"] = scores["r_precision"].mean().item()
        return results
