"""Leave-one-out retrieval metrics (Recall@k, MAP@R, R-Precision) with an exact k-NN search
in PML's tie order (see the package docstring for the definitions)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from dmlkit.checks import check_chunk_size, check_embeddings_and_labels, check_ks
from dmlkit.ranking import MetricAccumulator, retrieval_queries

__all__ = ["DISTANCES", "retrieval_metrics"]


#: The distances :func:`retrieval_metrics` understands.
DISTANCES = ("cosine", "euclidean")


# Memory allowed for one chunk of the query-by-gallery matrix and the work arrays beside it.
_CHUNK_BUDGET_BYTES = 256 * 2**20


# Chunks never get fewer rows than this (unless the set is smaller): very thin matrix products take
# another BLAS code path whose rounding differs from the full product's, which could reorder ties.
_MIN_CHUNK_ROWS = 64


def _check_distance(distance: str) -> None:
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; choose one of {list(DISTANCES)}")


def _prepare(embeddings: Tensor, distance: str) -> Tensor:
    """float32 (float64 kept), L2-normalised for cosine exactly as PML's ``CosineSimilarity``."""
    if embeddings.dtype != torch.float64:
        embeddings = embeddings.float()
    if distance == "cosine":
        embeddings = F.normalize(embeddings, p=2, dim=1)
    return embeddings.contiguous()


def _chunk_bounds(num_items: int, num_neighbours: int, chunk_size: int | None, element_size: int = 4) -> list[int]:
    """Row boundaries of the query chunks: balanced, each within the memory budget."""
    if chunk_size is None:
        # A row of similarities plus the top-k values, indices and the per-rank work arrays.
        per_row = element_size * num_items + 48 * (num_neighbours + 1)
        chunk_size = _CHUNK_BUDGET_BYTES // per_row
    chunk_size = max(chunk_size, _MIN_CHUNK_ROWS)
    size = math.ceil(num_items / math.ceil(num_items / chunk_size))
    return [*range(0, num_items, size), num_items]


def _drop_self(indices: Tensor, self_index: Tensor) -> Tensor:
    """Remove each query from its own ``k + 1`` neighbours (by index, not by distance 0).

    A duplicate of the query (distance 0, another index) stays a neighbour. When the query is not
    among its ``k + 1`` neighbours (more than ``k`` exact duplicates tie with it), the last
    neighbour is dropped instead, as PML does.
    """
    is_self = indices == self_index.unsqueeze(1)
    kept = indices.shape[1] - 1
    position = torch.where(is_self.any(dim=1), is_self.to(torch.uint8).argmax(dim=1), kept)
    columns = torch.arange(kept, device=indices.device).unsqueeze(0)
    columns = columns + (columns >= position.unsqueeze(1)).to(columns.dtype)  # skip the query
    return indices.gather(1, columns)


def _torch_neighbours(
    prepared: Tensor, query_mask: Tensor, ks: Sequence[int], distance: str, chunk_size: int | None
) -> Iterator[tuple[Tensor, list[Tensor]]]:
    """Yield ``(query_index, [neighbours for each k in ks])`` chunk by chunk.

    The query-by-gallery matrix is computed for a block of rows at a time (never ``N x N`` for
    large ``N``); for each ``k`` the ``k + 1`` nearest come from ``torch.topk`` over the whole row
    and the query itself is then removed. Rows are sliced from the full set so every block's
    values are bitwise the values of the full matrix; rows of left-out queries are dropped before
    the top-k search.
    """
    num_items = prepared.shape[0]
    bounds = _chunk_bounds(num_items, max(ks), chunk_size, prepared.element_size())
    reference_t = prepared.t()
    # One buffer for every block's similarities: a fresh tensor of a few hundred MB per block
    # would be paid for in page faults each time.
    buffer = (
        torch.empty(bounds[1], num_items, dtype=prepared.dtype, device=prepared.device)
        if distance == "cosine"
        else None
    )
    for start, stop in itertools.pairwise(bounds):
        keep = query_mask[start:stop]
        if not bool(keep.any()):
            continue
        block = prepared[start:stop]
        if buffer is not None:
            scores = torch.matmul(block, reference_t, out=buffer[: stop - start])
        else:
            scores = torch.cdist(block, prepared, p=2)
        query_index = torch.arange(start, stop, device=prepared.device)
        if not bool(keep.all()):
            scores, query_index = scores[keep], query_index[keep]
        neighbours = []
        for k in ks:
            _, indices = torch.topk(scores, k + 1, dim=1, largest=distance == "cosine")
            neighbours.append(_drop_self(indices, query_index))
        yield query_index, neighbours


def _faiss_neighbours(
    prepared: Tensor, query_mask: Tensor, ks: Sequence[int], distance: str
) -> Iterator[tuple[Tensor, list[Tensor]]]:
    """The same as :func:`_torch_neighbours` with an exact faiss flat index: on the GPU of the
    embeddings when they are on CUDA and faiss has GPU support (faiss-gpu), else on the CPU."""
    try:
        import faiss
    except ImportError as error:
        raise ImportError(
            "use_faiss=True needs the faiss package (pip install -e '.[scale]' for faiss-cpu, or "
            "faiss-gpu), which is not installed; call retrieval_metrics with use_faiss=False for "
            "the exact torch search"
        ) from error
    vectors = prepared.detach().to("cpu", torch.float32).contiguous().numpy()
    index = faiss.IndexFlatIP(vectors.shape[1]) if distance == "cosine" else faiss.IndexFlatL2(vectors.shape[1])
    if prepared.is_cuda and hasattr(faiss, "StandardGpuResources"):
        index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), prepared.device.index or 0, index)
    index.add(vectors)
    query_index = query_mask.nonzero().flatten()
    queries = vectors[query_index.cpu().numpy()]
    neighbours = []
    for k in ks:
        _, found = index.search(queries, k + 1)
        found = torch.from_numpy(found).to(prepared.device)
        neighbours.append(_drop_self(found, query_index))
    yield query_index, neighbours


def _per_query_scores(
    embeddings: Tensor, labels: Tensor, ks: Sequence[int], distance: str, chunk_size: int | None, use_faiss: bool
) -> dict[str, Tensor]:
    """Per-query hit@k, AP@R and R-Precision for the queries that have something to retrieve.

    Returns a dict with ``query_index`` (indices of those queries), ``hit@k`` (bool) for every k,
    ``average_precision_at_r`` and ``r_precision`` (float64).
    """
    check_embeddings_and_labels(embeddings, labels)
    _check_distance(distance)
    check_chunk_size(chunk_size)
    ks = check_ks(ks, embeddings.shape[0])
    labels = labels.to(embeddings.device)
    others, query_mask = retrieval_queries(labels)  # R of every item: the other items of its class

    # PML's k for MAP@R and R-Precision is the largest R ("max_bin_count" minus the query); the
    # Recall@k that need more neighbours than that get their own top-k search (same tie order as
    # PML's for everything PML reports).
    max_r = int(others.max())
    search_ks = [max_r]
    extra = sorted({k for k in ks if k > search_ks[0]})
    if extra:
        search_ks.append(extra[-1])

    if use_faiss:
        found = _faiss_neighbours(_prepare(embeddings, distance), query_mask, search_ks, distance)
    else:
        found = _torch_neighbours(_prepare(embeddings, distance), query_mask, search_ks, distance, chunk_size)

    accumulator = MetricAccumulator(ks, max_r)
    query_indices = []
    for query_index, neighbours in found:
        query_indices.append(query_index)
        query_labels = labels[query_index].unsqueeze(1)
        hits = [labels[indices] == query_labels for indices in neighbours]
        accumulator.add(hits[0], others[query_index], hits[1] if len(hits) > 1 else None)
    return {"query_index": torch.cat(query_indices), **accumulator.per_query()}


def retrieval_metrics(
    embeddings: Tensor,
    labels: Tensor,
    ks: Sequence[int] = (1, 2, 4, 8),
    distance: str = "cosine",
    chunk_size: int | None = None,
    use_faiss: bool = False,
) -> dict[str, float]:
    """Leave-one-out Recall@k, MAP@R and R-Precision of a labelled set of embeddings.

    Every item is a query against all the others; see the module docstring for the definitions
    (Recall@k as in Song et al., CVPR 2016; MAP@R and R-Precision from Musgrave et al., ECCV
    2020). Queries whose class has no other item are left out.

    The search is exact: the query-by-gallery matrix is computed for a block of queries at a time
    (``chunk_size`` rows; by default as many as fit in about 256 MB) and ``torch.topk`` keeps the
    ``max(R) + 1`` nearest of each row, the query itself being removed by index. Exact ties are
    therefore ordered as ``torch.topk`` orders them — deterministic for the same values on the
    same device, and the very order PML's ``CustomKNN`` sees, so the results equal PML's
    ``AccuracyCalculator(..., k="max_bin_count")`` on the same embeddings (module docstring).
    (Where many distances tie exactly, as with duplicated or quantised embeddings, the values do
    depend on that order — any order is as defensible — by a few percent in contrived cases.)
    Recall@k for a ``k`` larger than the largest ``R`` comes from a second top-k search.

    Args:
        embeddings: ``(N, D)`` floating tensor, on any device (the search runs there); computed in
            float32 (float64 kept).
        labels: ``(N,)`` integer class labels.
        ks: the ``k`` of Recall@k; each at least 1 and at most ``N - 1``.
        distance: ``"cosine"`` (embeddings L2-normalised, neighbours by largest cosine similarity;
            PML's ``CosineSimilarity``) or ``"euclidean"`` (Euclidean distance on the raw,
            unnormalised embeddings; PML's ``LpDistance(normalize_embeddings=False)``, and the
            ranking of PML's default faiss ``IndexFlatL2``). For normalised embeddings both give
            the same ranking up to rounding.
        chunk_size: rows of queries per block (default: from ``N`` and the memory budget); at
            least 64, since thinner matrix products may round differently and reorder exact ties.
        use_faiss: search with an exact faiss flat index instead of torch; needs faiss installed
            (``ImportError`` otherwise). faiss orders exact ties its own way, so tied results may
            differ from the torch search's.

    Returns:
        ``{"recall@k": ... for k in ks, "map@r": ..., "r_precision": ...}`` as Python floats in
        ``[0, 1]``.

    Raises:
        ValueError: bad shapes or values, an unknown distance, a ``k`` outside ``[1, N - 1]``, or
            no query with another item of its class.
    """
    scores = _per_query_scores(embeddings, labels, ks, distance, chunk_size, use_faiss)
    results = {f"recall@{k}": scores[f"hit@{k}"].double().mean().item() for k in check_ks(ks, len(labels))}
    results["map@r"] = scores["average_precision_at_r"].mean().item()
    results["r_precision"] = scores["r_precision"].mean().item()
    return results
