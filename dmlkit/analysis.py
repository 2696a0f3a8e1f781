"""How compressed is an embedding space, and how well does it generalise?

Roth et al. (ICML 2020, "Revisiting Training Strategies and Generalization Performance in Deep
Metric Learning", Sec. 5) relate generalisation to unseen classes to how many directions an
embedding space uses: a strongly *compressed* space (few dominant singular values) generalises
worse. This module measures that (spectral decay ρ), the embedding-space density, and the gap
between metrics on training classes and on held-out classes.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from dmlkit.utils import check_embeddings, check_embeddings_and_labels

__all__ = ["singular_value_spectrum", "spectral_decay", "embedding_density", "generalisation_gap"]


def singular_value_spectrum(embeddings: torch.Tensor) -> torch.Tensor:
    """Singular values of the row-normalised (not centred) embeddings, largest first, exact."""
    check_embeddings(embeddings)
    normalised = F.normalize(embeddings.detach().to(torch.float64), dim=1)
    return torch.linalg.svdvals(normalised)


def spectral_decay(embeddings: torch.Tensor, drop: int = 1) -> float:
    """Spectral decay ρ of Roth et al. (ICML 2020, Sec. 5, "ρ(Φ)"): larger = more compressed.

    The rows are L2-normalised (not centred); of the exact singular values ``s_1 >= s_2 >= ...``
    the ``drop`` largest are removed (``drop=1``: the paper's choice, as the first direction of
    non-centred unit vectors mostly carries their mean), the rest normalised to sum to one (``s̄``) and compared with the
    uniform distribution ``u``: ``ρ = KL(u ‖ s̄) = Σ_i u_i log(u_i / s̄_i)``. A space spreading its
    variance evenly over all directions has ρ = 0.

    Args:
        embeddings: ``(N, D)`` embeddings (of training classes, in the paper).
        drop: number of leading singular values left out.
    """
    if drop < 0:
        raise ValueError(f"drop must be non-negative, got {drop}")
    values = singular_value_spectrum(embeddings)
    if values.numel() - drop < 2:
        raise ValueError(
            f"spectral decay needs at least 2 singular values after dropping {drop}; the embeddings "
            f"have shape {tuple(embeddings.shape)}"
        )
    rest = values[drop:].clamp_min(torch.finfo(torch.float64).tiny)
    rest = rest / rest.sum()
    uniform = torch.full_like(rest, 1.0 / rest.numel())
    return float((uniform * (uniform.log() - rest.log())).sum())


def embedding_density(embeddings: torch.Tensor, labels: torch.Tensor) -> float:
    """Embedding-space density π_ratio = π_intra / π_inter (Roth et al., ICML 2020, Sec. 5).

    On L2-normalised embeddings, π_intra is the mean over classes of the mean Euclidean distance
    between two samples of the class, π_inter the mean distance between two class means. A ratio
    near 0 means tight, well-separated classes; larger values a denser, less clustered space.
    Classes with a single sample have no intra-class distance and are left out of π_intra.
    """
    check_embeddings_and_labels(embeddings, labels)
    x = F.normalize(embeddings.detach().to(torch.float64), dim=1)
    classes, inverse = torch.unique(labels, return_inverse=True)
    if classes.numel() < 2:
        raise ValueError("embedding density needs at least 2 classes")
    intra = []
    for c in range(classes.numel()):
        members = x[inverse == c]
        n = members.shape[0]
        if n > 1:
            intra.append(torch.cdist(members, members).sum() / (n * (n - 1)))
    if not intra:
        raise ValueError("embedding density needs at least one class with 2 or more samples")
    counts = torch.bincount(inverse).to(x.dtype)
    means = torch.zeros(classes.numel(), x.shape[1], dtype=x.dtype).index_add_(0, inverse, x) / counts[:, None]
    between = torch.cdist(means, means)
    c = classes.numel()
    inter = between.sum() / (c * (c - 1))
    return float(torch.stack(intra).mean() / inter)


def generalisation_gap(train_metrics: dict[str, float], test_metrics: dict[str, float]) -> dict[str, Any]:
    """Per metric: the value on training classes, on held-out classes, and ``train - test``."""
    shared = [k for k in train_metrics if k in test_metrics]
    if not shared:
        raise ValueError("the two metric dicts share no metric")
    return {k: {"train": train_metrics[k], "test": test_metrics[k], "gap": train_metrics[k] - test_metrics[k]} for k in shared}
