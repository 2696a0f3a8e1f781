"""Per-class Recall@1 and the worst classes (Dullerud et al., ICLR 2022)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dmlkit.checks import check_embeddings_and_labels, check_probability
from dmlkit.evaluate.retrieval import _per_query_scores

__all__ = ["per_class_recall_at_1", "mean_per_class", "worst_class_gap", "summarise_per_class"]


def per_class_recall_at_1(
    embeddings: Tensor, labels: Tensor, distance: str = "cosine", chunk_size: int | None = None
) -> Tensor:
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


def mean_per_class(values: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """The mean of ``values`` over the items of each label ``0 .. num_classes - 1`` (NaN for a
    label with no item), ``float64`` on the CPU: e.g. per-class Recall@1 from per-query hits."""
    labels = labels.detach().cpu().long()
    totals = torch.zeros(num_classes, dtype=torch.float64).index_add_(0, labels, values.detach().cpu().double())
    counts = torch.bincount(labels, minlength=num_classes).double()
    return torch.where(counts > 0, totals / counts.clamp_min(1), torch.nan)


def worst_class_gap(
    embeddings: Tensor, labels: Tensor, fraction: float = 0.1, distance: str = "cosine", chunk_size: int | None = None
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


def summarise_per_class(per_class: Tensor, labels: Tensor, fraction: float = 0.1) -> dict[str, float]:
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
