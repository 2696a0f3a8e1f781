"""Shared by the tests: batches of every label layout, value-and-gradient comparison with a reference
(pytorch-metric-learning or a loop written from the paper's equation) in float64, and the retrieval
metrics written from their definitions."""

from __future__ import annotations

import torch
import torch.nn.functional as F

ATOL = 1e-6

#: label layouts: balanced P×K, singletons mixed in, unequal class sizes, a single class
LABELS = {
    "balanced": [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4,
    "singletons": [0, 0, 0, 1, 2, 2, 3, 4, 4, 4, 4, 5, 6, 6, 7],
    "unequal": [0] * 6 + [1] * 2 + [2] * 3 + [3] * 5 + [4] * 2,
    "one_class": [3] * 8,
}


def make_batch(kind: str, seed: int = 0, dim: int = 8, unit: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 embeddings and shuffled labels of the given kind: unit-norm, or (``unit=False``)
    raw outputs with different norms and a non-zero mean."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.tensor(LABELS[kind])
    labels = labels[torch.randperm(len(labels), generator=generator)]
    embeddings = torch.randn(len(labels), dim, generator=generator, dtype=torch.float64)
    if unit:
        return F.normalize(embeddings, dim=1), labels
    scales = torch.linspace(0.5, 3.0, len(labels), dtype=torch.float64)[:, None]
    return scales * embeddings + 0.3, labels


def value_and_grad(loss_fn, embeddings, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss value and its gradient with respect to the embeddings (zeros when unused)."""
    leaf = embeddings.detach().clone().requires_grad_(True)
    loss = loss_fn(leaf, labels)
    assert loss.dim() == 0
    (grad,) = torch.autograd.grad(loss, leaf, allow_unused=True)
    return loss.detach(), torch.zeros_like(leaf) if grad is None else grad


def assert_same(ours, reference, embeddings, labels, atol: float = ATOL) -> None:
    """Equal value and gradient to ``atol``."""
    value, grad = value_and_grad(ours, embeddings, labels)
    ref_value, ref_grad = value_and_grad(reference, embeddings, labels)
    torch.testing.assert_close(value, ref_value.to(value.dtype), atol=atol, rtol=0)
    torch.testing.assert_close(grad, ref_grad, atol=atol, rtol=0)


def metrics_from_ranked_relevance(ranked: list[list[bool]], ks) -> dict[str, float]:
    """Recall@k, MAP@R and R-Precision from their definitions (Musgrave et al., ECCV 2020, Sec. 3.2).

    ``ranked`` holds, for each query, whether each other item is of the query's class, in the
    order of the ranking (the query itself left out). A query with no other item of its class
    (R = 0) is skipped, as every implementation under test does.
    """
    hits: dict[int, list[bool]] = {k: [] for k in ks}
    average_precisions, r_precisions = [], []
    for relevant in ranked:
        r = sum(relevant)
        if r == 0:
            continue
        for k in ks:
            hits[k].append(any(relevant[:k]))
        found, precision_sum = 0, 0.0
        for i, rel in enumerate(relevant[:r], start=1):
            if rel:
                found += 1
                precision_sum += found / i
        average_precisions.append(precision_sum / r)
        r_precisions.append(found / r)
    results = {f"recall@{k}": sum(hits[k]) / len(hits[k]) for k in ks}
    results["map@r"] = sum(average_precisions) / len(average_precisions)
    results["r_precision"] = sum(r_precisions) / len(r_precisions)
    return results
