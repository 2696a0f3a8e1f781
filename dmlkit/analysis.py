"""How compressed is an embedding space, and how well does it generalise?

Roth et al. (ICML 2020, "Revisiting Training Strategies and Generalization Performance in Deep
Metric Learning", Sec. 5) relate generalisation to unseen classes to how many directions an
embedding space uses: a strongly *compressed* space (few dominant singular values) generalises
worse. This module measures that (spectral decay ρ), the embedding-space density, and the gap
between metrics on training classes and on held-out classes, and tests such a relation across
methods with a rank correlation and its bootstrap uncertainty.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dmlkit.checks import check_embeddings, check_embeddings_and_labels, check_int

__all__ = [
    "singular_value_spectrum",
    "spectral_decay",
    "embedding_density",
    "generalisation_gap",
    "alignment",
    "uniformity",
    "rank_correlation",
    "bootstrap_rank_correlation",
]


def singular_value_spectrum(embeddings: Tensor) -> Tensor:
    """Singular values of the row-normalised (not centred) embeddings, largest first, exact."""
    check_embeddings(embeddings)
    normalised = F.normalize(embeddings.detach().to(torch.float64), dim=1)
    return torch.linalg.svdvals(normalised)


def spectral_decay(embeddings: Tensor, mode: int = 1) -> float:
    """Spectral decay ρ of Roth et al. (ICML 2020, Sec. 5, "ρ(Φ)"): larger = more compressed.

    As the authors compute it (``rho_spectrum@mode`` in their repository,
    Revisiting_Deep_Metric_Learning_PyTorch, ``metrics/rho_spectrum.py``): the rows are
    L2-normalised (not centred); the leading ``D - 1`` singular values ``s_1 >= s_2 >= ...`` are
    kept (scikit-learn's ``TruncatedSVD(n_components=D-1)``: the smallest one is left out); of
    those, ``mode=k`` leaves out the ``k - 1`` largest (``s = s[k-1:]``); the rest is normalised to
    sum to one (``s̄``) and compared with the uniform distribution ``u``:
    ``ρ = KL(u ‖ s̄) = Σ_i u_i log(u_i / s̄_i)``. A space spreading its variance evenly over all
    directions has ρ = 0.

    ``mode=1`` (ρ@1, the default) is the metric of the ICML paper. ``mode=2`` (ρ@2) also leaves
    out the largest value, which for uncentred unit vectors mostly carries their mean direction:
    the authors call it a more robust estimate. The two can differ by orders of magnitude (a
    Gaussian shifted by 1 in every coordinate: ρ@1 ≈ 0.07, ρ@2 ≈ 0.001), so always say which.

    Args:
        embeddings: ``(N, D)`` embeddings (of training classes, in the paper).
        mode: ``k`` of ρ@k, an integer >= 1.
    """
    mode = check_int("mode", mode, 1)
    values = singular_value_spectrum(embeddings)[: embeddings.shape[1] - 1]
    if values.numel() - (mode - 1) < 2:
        raise ValueError(
            f"spectral decay ρ@{mode} needs at least 2 singular values after leaving out the {mode - 1} "
            f"largest; the embeddings have shape {tuple(embeddings.shape)}"
        )
    rest = values[mode - 1 :].clamp_min(torch.finfo(torch.float64).tiny)
    rest = rest / rest.sum()
    uniform = torch.full_like(rest, 1.0 / rest.numel())
    return float((uniform * (uniform.log() - rest.log())).sum())


def embedding_density(embeddings: Tensor, labels: Tensor) -> float:
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


def alignment(first: Tensor, second: Tensor, alpha: float = 2.0) -> float:
    """Alignment of positive pairs (Wang & Isola, ICML 2020, "Understanding Contrastive
    Representation Learning through Alignment and Uniformity on the Hypersphere", Eq. 4):
    ``E ‖f(x) − f(x⁺)‖₂^α`` over the rows of ``first`` and ``second`` (two views of the same
    images), after L2 normalisation; ``α = 2`` as in the paper. 0: every pair coincides; 4 at most."""
    check_embeddings(first, "first")
    check_embeddings(second, "second")
    if first.shape != second.shape:
        raise ValueError(f"the two views must have the same shape, got {tuple(first.shape)} and {tuple(second.shape)}")
    a = F.normalize(first.detach().to(torch.float64), dim=1)
    b = F.normalize(second.detach().to(torch.float64), dim=1)
    return float((a - b).norm(dim=1).pow(alpha).mean())


def uniformity(embeddings: Tensor, t: float = 2.0) -> float:
    """Uniformity (Wang & Isola, ICML 2020, Eq. 5): ``log E exp(−t ‖f(x) − f(y)‖²)`` over all
    pairs ``x ≠ y`` of the L2-normalised rows, ``t = 2`` as in the paper. Lower is more uniform:
    0 when every row coincides (collapse), about −3.9 for many points spread evenly on the
    sphere of 64 dimensions (−4 is the limit as the dimension grows)."""
    check_embeddings(embeddings)
    if embeddings.shape[0] < 2:
        raise ValueError("uniformity needs at least 2 embeddings")
    x = F.normalize(embeddings.detach().to(torch.float64), dim=1)
    squared = torch.pdist(x, p=2).pow(2)
    return float(torch.logsumexp(-t * squared, dim=0) - np.log(squared.numel()))


def generalisation_gap(train_metrics: dict[str, float], test_metrics: dict[str, float]) -> dict[str, Any]:
    """Per metric: the value on training classes, on held-out classes, and ``train - test``."""
    shared = [k for k in train_metrics if k in test_metrics]
    if not shared:
        raise ValueError("the two metric dicts share no metric")
    return {
        k: {"train": train_metrics[k], "test": test_metrics[k], "gap": train_metrics[k] - test_metrics[k]}
        for k in shared
    }


def _paired_values(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    b = np.asarray(y, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"x and y must have one value per point, got {a.size} and {b.size} values")
    if a.size < 3:
        raise ValueError(f"a rank correlation needs at least 3 points, got {a.size}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("x and y must be finite (a NaN or inf came in)")
    return a, b


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n along the last axis; tied values share the mean of their ranks."""
    from scipy.stats import rankdata  # scipy comes with scikit-learn

    return rankdata(values, method="average", axis=-1)


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (a * b).sum(axis=-1) / denominator, np.nan)


def rank_correlation(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman's rank correlation: the Pearson correlation of the ranks (ties get average ranks).

    NaN when one of the two has a single distinct value (no ordering to correlate).
    """
    a, b = _paired_values(x, y)
    return float(_pearson_rows(_average_ranks(a), _average_ranks(b)))


def bootstrap_rank_correlation(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    num_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Spearman's rank correlation with a percentile-bootstrap interval and a permutation p-value.

    The points (pairs ``(x_i, y_i)``, e.g. one per trained method) are resampled with
    replacement ``num_resamples`` times; the interval holds the central ``confidence`` share of
    the resampled correlations (resamples whose values are all tied are skipped). The two-sided
    p-value is the share of ``num_resamples`` random permutations of ``y`` whose correlation is at
    least as large in magnitude as the observed one (with the usual +1 correction), i.e. the
    chance of such a correlation if the two were unrelated. Few points give wide intervals: that
    is the message, not a defect.

    Returns:
        ``{"spearman", "low", "high", "p_value", "num_points", "num_resamples"}``.
    """
    a, b = _paired_values(x, y)
    if isinstance(num_resamples, bool) or not isinstance(num_resamples, (int, np.integer)) or num_resamples < 100:
        raise ValueError(f"num_resamples must be an integer >= 100, got {num_resamples!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    observed = rank_correlation(a, b)
    rng = np.random.default_rng(seed)
    n = a.size
    picks = rng.integers(0, n, size=(num_resamples, n))
    resampled = _pearson_rows(_average_ranks(a[picks]), _average_ranks(b[picks]))
    resampled = resampled[np.isfinite(resampled)]
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(resampled, [tail, 1.0 - tail]) if resampled.size else (np.nan, np.nan)
    shuffled = np.argsort(rng.random((num_resamples, n)), axis=1)
    null = _pearson_rows(np.broadcast_to(_average_ranks(a), (num_resamples, n)), _average_ranks(b[shuffled]))
    extreme = np.count_nonzero(np.abs(null) >= abs(observed) - 1e-12) if np.isfinite(observed) else num_resamples
    return {
        "spearman": observed,
        "low": float(low),
        "high": float(high),
        "p_value": float((extreme + 1) / (num_resamples + 1)),
        "num_points": float(n),
        "num_resamples": float(num_resamples),
    }
