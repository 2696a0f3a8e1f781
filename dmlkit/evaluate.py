"""Evaluation: embed a dataset, then score retrieval, clustering and per-class gaps.

The retrieval metrics are the leave-one-out ones of deep metric learning: every item of the set
is a query, the rest of the set is the gallery, and a neighbour counts as relevant when it has the
query's class.

- **Recall@k** — fraction of queries with at least one same-class item among their ``k`` nearest
  neighbours (the query itself excluded). This is the "Recall@k" of DML papers (Song et al.,
  CVPR 2016, "Deep Metric Learning via Lifted Structured Feature Embedding"); Recall@1 is PML's
  ``precision_at_1``.
- **R-Precision** and **MAP@R** — Musgrave, Belongie and Lim, ECCV 2020, "A Metric Learning
  Reality Check" (their proposed accuracy metrics). With ``R`` the number of *other* items of the query's class,
  R-Precision is the number of same-class items among the first ``R`` neighbours divided by ``R``,
  and ``MAP@R = (1/R) * sum_{i<=R} P@i * rel(i)``, ``P@i`` being the precision among the first
  ``i`` neighbours and ``rel(i)`` 1 when neighbour ``i`` has the query's class.

Queries whose class has no other item have nothing to retrieve and are left out of every mean.

The numbers equal pytorch-metric-learning's (PML)::

    AccuracyCalculator(include=("precision_at_1", "mean_average_precision_at_r", "r_precision"),
                       k="max_bin_count", knn_func=CustomKNN(CosineSimilarity()))
    .get_accuracy(embeddings, labels, embeddings, labels, ref_includes_query=True)

for ``distance="cosine"`` (with ``knn_func=CustomKNN(LpDistance(normalize_embeddings=False))``
for ``distance="euclidean"``), exact ties included: the neighbours are found with the same
``torch.topk`` over the same rows, and the query is removed from its own neighbour list by index,
as PML does. A note on PML's *default* ``knn_func``: it is ``FaissKNN`` (a faiss ``IndexFlatL2``,
squared Euclidean on the raw, unnormalised embeddings), which needs faiss; without faiss (as in
this project) the calculator must be given a ``knn_func``, and ``CustomKNN(CosineSimilarity())``
is the usual choice. For L2-normalised embeddings the two rank neighbours identically up to float
rounding; ``distance="euclidean"`` ranks like faiss's default on any embeddings.

Besides retrieval: :func:`nmi` (k-means clustering quality) and the subgroup view of Dullerud et
al. (:func:`per_class_recall_at_1`, :func:`worst_class_gap`).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from dmlkit.ranking import MetricAccumulator, check_chunk_size, check_ks, retrieval_queries
from dmlkit.utils import check_embeddings_and_labels, check_probability

__all__ = [
    "DISTANCES",
    "embed",
    "retrieval_metrics",
    "nmi",
    "per_class_recall_at_1",
    "worst_class_gap",
    "summarise_per_class",
    "mean_per_class",
]

#: The distances :func:`retrieval_metrics` understands.
DISTANCES = ("cosine", "euclidean")

# Memory allowed for one chunk of the query-by-gallery matrix and the work arrays beside it.
_CHUNK_BUDGET_BYTES = 256 * 2**20
# Chunks never get fewer rows than this (unless the set is smaller): very thin matrix products take
# another BLAS code path whose rounding differs from the full product's, which could reorder ties.
_MIN_CHUNK_ROWS = 64


# --------------------------------------------------------------------------------------------------
# Embedding a dataset
# --------------------------------------------------------------------------------------------------


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def _default_num_workers() -> int:
    """Loader workers for a dataset without ``get_batch``: leave one core to the main process."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(0, min(cores - 1, 8))


def _batches(data: Any, batch_size: int) -> Iterator[tuple[Any, Any]]:
    if isinstance(data, DataLoader):
        yield from data
    elif hasattr(data, "get_batch"):
        for start in range(0, len(data), batch_size):
            yield data.get_batch(torch.arange(start, min(start + batch_size, len(data))))
    else:
        workers = _default_num_workers()
        loader = DataLoader(
            data,
            batch_size=batch_size,
            shuffle=False,
            num_workers=workers,
            persistent_workers=False,
            pin_memory=False,
        )
        yield from loader


def embed(
    model: nn.Module,
    data: Dataset | DataLoader,
    batch_size: int = 512,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Embed every item of ``data`` with ``model``; return ``(embeddings, labels)`` on the CPU.

    The model runs in eval mode under ``torch.no_grad()`` and gets its previous train/eval mode
    back afterwards (even when an error is raised). Datasets held in memory (those with a
    ``get_batch(indices) -> (images, labels)`` method, such as
    :class:`dmlkit.data.base.TensorImageDataset`) are served a batch at a time without a loader;
    other datasets go through a ``DataLoader`` (no shuffling, workers chosen from the CPU count);
    a ``DataLoader`` is used as given.

    Args:
        model: maps a batch of images to ``(batch_size, embedding_size)`` embeddings.
        data: a dataset of ``(image, label)`` items, or a ``DataLoader`` over one.
        batch_size: items per forward pass (ignored for a ``DataLoader``).
        device: where to run the model; default the device of its parameters. The model itself
            is not moved: pass a ``device`` it already lives on.

    Returns:
        ``float32`` embeddings ``(N, embedding_size)`` and ``int64`` labels ``(N,)``, both on the
        CPU, in dataset order.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(data, DataLoader) and len(data) == 0:
        raise ValueError("data is empty: there is nothing to embed")
    device = _model_device(model) if device is None else torch.device(device)

    was_training = model.training
    model.eval()
    embedding_chunks: list[torch.Tensor] = []
    label_chunks: list[torch.Tensor] = []
    try:
        with torch.no_grad():
            for images, labels in _batches(data, batch_size):
                output = model(images.to(device, non_blocking=True))
                if not isinstance(output, torch.Tensor) or output.dim() != 2:
                    shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output)
                    raise ValueError(f"the model must return a 2-D tensor (batch_size, embedding_size), got {shape}")
                embedding_chunks.append(output.detach().to("cpu", torch.float32))
                label_chunks.append(torch.as_tensor(labels).to("cpu", torch.long).reshape(-1))
    finally:
        model.train(was_training)
    if not embedding_chunks:
        raise ValueError("data yielded no batch: there is nothing to embed")
    return torch.cat(embedding_chunks), torch.cat(label_chunks)


# --------------------------------------------------------------------------------------------------
# Nearest neighbours
# --------------------------------------------------------------------------------------------------


def _check_distance(distance: str) -> None:
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; choose one of {list(DISTANCES)}")


def _prepare(embeddings: torch.Tensor, distance: str) -> torch.Tensor:
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


def _drop_self(indices: torch.Tensor, self_index: torch.Tensor) -> torch.Tensor:
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
    prepared: torch.Tensor,
    query_mask: torch.Tensor,
    ks: Sequence[int],
    distance: str,
    chunk_size: int | None,
) -> Iterator[tuple[torch.Tensor, list[torch.Tensor]]]:
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
    prepared: torch.Tensor, query_mask: torch.Tensor, ks: Sequence[int], distance: str
) -> Iterator[tuple[torch.Tensor, list[torch.Tensor]]]:
    """The same as :func:`_torch_neighbours` with an exact faiss index (flat, CPU)."""
    try:
        import faiss
    except ImportError as error:
        raise ImportError(
            "use_faiss=True needs the faiss package (faiss-cpu or faiss-gpu), which is not "
            "installed; call retrieval_metrics with use_faiss=False for the exact torch search"
        ) from error
    vectors = prepared.detach().to("cpu", torch.float32).contiguous().numpy()
    index = faiss.IndexFlatIP(vectors.shape[1]) if distance == "cosine" else faiss.IndexFlatL2(vectors.shape[1])
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
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    ks: Sequence[int],
    distance: str,
    chunk_size: int | None,
    use_faiss: bool,
) -> dict[str, torch.Tensor]:
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


# --------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------


def retrieval_metrics(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
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


def nmi(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    seed: int = 0,
    n_init: int = 10,
    normalize_embeddings: bool = True,
) -> float:
    """Normalised mutual information between the labels and a k-means clustering.

    k-means (scikit-learn's ``KMeans``, ``k`` = number of classes, ``n_init`` restarts seeded by
    ``seed``) clusters the embeddings, and ``normalized_mutual_info_score`` (arithmetic mean
    normalisation) compares the clusters with the classes — the clustering score of Song et al.,
    CVPR 2016, reported alongside Recall@k in most DML papers.

    Args:
        embeddings: ``(N, D)`` floating tensor.
        labels: ``(N,)`` integer labels.
        seed: random state of k-means.
        n_init: k-means restarts (fixed, not scikit-learn's ``"auto"``, so results do not depend
            on its version).
        normalize_embeddings: L2-normalise rows first, to cluster on the sphere where cosine
            retrieval ranks (PML clusters the raw embeddings: pass ``False`` for that).
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    check_embeddings_and_labels(embeddings, labels)
    if isinstance(n_init, bool) or not isinstance(n_init, int) or n_init < 1:
        raise ValueError(f"n_init must be a positive integer, got {n_init!r}")
    vectors = embeddings.detach().to("cpu", torch.float64)
    if normalize_embeddings:
        vectors = F.normalize(vectors, dim=1)
    truth = labels.detach().cpu().numpy()
    num_classes = len(np.unique(truth))
    clusters = KMeans(n_clusters=num_classes, n_init=n_init, random_state=seed).fit_predict(vectors.numpy())
    return float(normalized_mutual_info_score(truth, clusters))


def per_class_recall_at_1(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    distance: str = "cosine",
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Recall@1 of each class: the mean hit@1 over the queries of that class.

    Entry ``c`` belongs to label value ``c`` (the result has ``labels.max() + 1`` entries); a class
    with a single item, or a label value with no item, is ``NaN``. Neighbours are found exactly as
    in :func:`retrieval_metrics` (same tie order), so the item-weighted mean over classes is its
    Recall@1. This is the per-subgroup view of Dullerud et al., ICLR 2022, "Is Fairness Only
    Metric Deep? Evaluating and Addressing Subgroup Gaps in Deep Metric Learning", with classes as
    the subgroups.

    Returns:
        ``float64`` tensor on the CPU.
    """
    check_embeddings_and_labels(embeddings, labels)
    if bool((labels < 0).any()):
        raise ValueError("per_class_recall_at_1 needs non-negative labels (they index the result)")
    scores = _per_query_scores(embeddings, labels, (1,), distance, chunk_size, use_faiss=False)
    query_labels = labels.to(embeddings.device)[scores["query_index"]]
    return mean_per_class(scores["hit@1"], query_labels, int(labels.max()) + 1)


def mean_per_class(values: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The mean of ``values`` over the items of each label ``0 .. num_classes - 1`` (NaN for a
    label with no item), ``float64`` on the CPU: e.g. per-class Recall@1 from per-query hits."""
    labels = labels.detach().cpu().long()
    totals = torch.zeros(num_classes, dtype=torch.float64).index_add_(0, labels, values.detach().cpu().double())
    counts = torch.bincount(labels, minlength=num_classes).double()
    return torch.where(counts > 0, totals / counts.clamp_min(1), torch.nan)


def worst_class_gap(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    fraction: float = 0.1,
    distance: str = "cosine",
    chunk_size: int | None = None,
) -> dict[str, float]:
    """How far the worst classes fall behind the average class in Recall@1.

    Dullerud et al., ICLR 2022, "Is Fairness Only Metric Deep? Evaluating and Addressing Subgroup
    Gaps in Deep Metric Learning", show that an embedding with a good average can serve some
    subgroups much worse than others, and that this gap is inherited by downstream tasks. Here the
    subgroups are the classes: with :func:`per_class_recall_at_1`, the ``ceil(fraction * C)``
    classes with the lowest Recall@1 (among the ``C`` classes with at least two items) are the
    worst ones.

    Returns:
        ``{"recall@1": ...}`` (over queries, as in :func:`retrieval_metrics`),
        ``"mean_class_recall@1"`` (every class weighted equally), ``"worst_class_recall@1"``
        (mean over the worst classes), ``"gap"`` (mean class minus worst classes),
        ``"num_worst_classes"`` and ``"num_classes"``.
    """
    per_class = per_class_recall_at_1(embeddings, labels, distance=distance, chunk_size=chunk_size)
    return summarise_per_class(per_class, labels, fraction)


def summarise_per_class(per_class: torch.Tensor, labels: torch.Tensor, fraction: float = 0.1) -> dict[str, float]:
    """The summary of :func:`worst_class_gap` from per-class Recall@1 values (entry ``c`` for label
    ``c``, NaN for a class without queries), however they were ranked — e.g. by the Poincaré
    distance (:func:`dmlkit.geometry.retrieval.hyperbolic_per_class_recall_at_1`)."""
    check_probability("fraction", fraction)
    if fraction == 0:
        raise ValueError("fraction must be in (0, 1]: it is the share of classes to call worst")
    valid = per_class[~torch.isnan(per_class)]
    if valid.numel() == 0:
        raise ValueError("no class has a query (every class has a single item)")
    worst_count = max(1, math.ceil(fraction * valid.numel() - 1e-9))
    worst = torch.sort(valid).values[:worst_count]
    counts = torch.bincount(labels.detach().cpu(), minlength=per_class.numel()).double()
    has_queries = ~torch.isnan(per_class)
    recall_at_1 = (per_class[has_queries] * counts[has_queries]).sum() / counts[has_queries].sum()
    mean_class = valid.mean().item()
    worst_mean = worst.mean().item()
    return {
        "recall@1": recall_at_1.item(),
        "mean_class_recall@1": mean_class,
        "worst_class_recall@1": worst_mean,
        "gap": mean_class - worst_mean,
        "num_worst_classes": float(worst_count),
        "num_classes": float(valid.numel()),
    }
