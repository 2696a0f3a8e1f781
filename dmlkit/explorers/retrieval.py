"""Notebook 00's retrieval browser: one query, its nearest neighbours and its own metrics."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor

from dmlkit.plots.figure import _numpy
from dmlkit.plots.images import _show, frame_neighbour

__all__ = ["draw_retrieval", "query_scores"]


def query_scores(embeddings: Tensor, labels: Tensor, query: int, k: int) -> dict[str, Any]:
    """The ranking of one query (cosine, itself left out) and its metrics, as the kit defines
    them (:func:`dmlkit.evaluate.retrieval_metrics` averages these over queries): ``hit@k``,
    ``ap@r`` (MAP@R's per-query term: the precision at each correct rank among the first R,
    summed and divided by R, R = the other items of the query's class) and ``r_precision``."""
    labels = torch.as_tensor(labels)
    if not 0 <= query < len(labels):
        raise ValueError(f"query must lie in [0, {len(labels)}), got {query}")
    e = F.normalize(embeddings.detach().double(), dim=1)
    similarity = e @ e[query]
    similarity[query] = -torch.inf
    order = torch.argsort(similarity, descending=True, stable=True)[:-1]
    hits = (labels[order] == labels[query]).double()
    r = int(hits.sum())
    if r == 0:
        raise ValueError(f"query {query} has no other item of its class to retrieve")
    ranks = torch.arange(1, len(hits) + 1, dtype=torch.float64)
    precision = torch.cumsum(hits, 0) / ranks
    return {
        "order": order,
        "hits": hits.bool(),
        "R": r,
        f"hit@{k}": bool(hits[:k].any()),
        "ap@r": float((precision[:r] * hits[:r]).sum() / r),
        "r_precision": float(hits[:r].mean()),
    }


def draw_retrieval(dataset: Any, embeddings: Tensor, query: int = 0, k: int = 8) -> Figure:
    """The query image, its ``k`` nearest neighbours (green: same class, red: another) and a
    readout of its AP@R, R-Precision and Recall@k (hit or miss)."""
    scores = query_scores(embeddings, dataset.labels, query, k)
    order = scores["order"][:k].tolist()
    fig = Figure(figsize=(1.1 * (k + 1), 1.6))
    axes = fig.subplots(1, k + 1)
    _show(axes[0], _numpy(dataset[int(query)][0]))
    axes[0].set_title(f"query (class {int(dataset.labels[query])})", fontsize=7)
    for rank, (ax, index) in enumerate(zip(axes[1:], order), start=1):
        _show(ax, _numpy(dataset[int(index)][0]))
        correct = bool(scores["hits"][rank - 1])
        frame_neighbour(ax, correct)
        ax.set_title(f"#{rank} class {int(dataset.labels[index])}", fontsize=7)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout(pad=0.3)
    print(
        f"query {query}: AP@R = {100 * scores['ap@r']:.1f}%, R-Precision = {100 * scores['r_precision']:.1f}% "
        f"(R = {scores['R']}), Recall@{k} = {'hit' if scores[f'hit@{k}'] else 'miss'}, "
        f"correct in the top {k}: {int(scores['hits'][:k].sum())}"
    )
    return fig
