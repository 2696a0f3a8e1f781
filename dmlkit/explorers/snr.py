"""Notebook 04's SNR explorer: two feature vectors, the SNR distance against the Euclidean one.

``h_j = h_i + t·n`` for a fixed anchor ``h_i`` and noise direction ``n`` (both 32-d, seeded), and
a common ``mean`` added to every coordinate of both. Yuan et al.'s SNR distance (CVPR 2019)
``d_S = Var(h_j - h_i) / Var(h_i)`` does not change with a common shift (both variances are
shift-free); the squared Euclidean distance over the raw signal power ``‖h_i‖²`` does, because
``‖h_i‖²`` grows with the mean (``‖h‖² = D·Var(h) + D·mean(h)²``). Near zero mean the two nearly
agree (notebook 04, section 1), which is where the paper's zero-mean regulariser
``λ Σ_i |mean(h_i)|``, drawn beside them, pushes the embeddings.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from dmlkit.distances import snr_distance

__all__ = ["draw_snr", "snr_pair"]

_GENERATOR = torch.Generator().manual_seed(0)
ANCHOR = torch.randn(32, generator=_GENERATOR, dtype=torch.float64)
NOISE = torch.randn(32, generator=_GENERATOR, dtype=torch.float64)


def snr_pair(t: float, mean: float) -> dict[str, float]:
    """The distances of ``h_i + mean`` and ``h_i + t·n + mean``."""
    a = ANCHOR + mean
    b = ANCHOR + t * NOISE + mean
    return {
        "d_SNR": float(snr_distance(a[None], b[None])[0, 0]),
        "Euclidean": float((a - b).norm()),
        "squared Euclidean / |h_i|²": float((a - b).pow(2).sum() / a.pow(2).sum()),
        "zero-mean regulariser": float(a.mean().abs() + b.mean().abs()),
    }


def draw_snr(t: float = 0.5, mean: float = 0.0) -> Figure:
    grid = np.linspace(0.0, 2.0, 81)
    means = np.linspace(-2.0, 2.0, 81)
    fig = Figure(figsize=(9.5, 3.4))
    left, right = fig.subplots(1, 2)
    along_t = [snr_pair(float(v), mean) for v in grid]
    for i, name in enumerate(("d_SNR", "squared Euclidean / |h_i|²")):
        left.plot(grid, [p[name] for p in along_t], label=name, color=f"C{i}")
    left.axvline(t, color="0.6", linestyle=":")
    left.set(xlabel="noise scale t", ylabel="distance", title=f"common mean {mean:+.2f}")
    left.legend(fontsize=8)
    along_mean = [snr_pair(t, float(m)) for m in means]
    for i, name in enumerate(("d_SNR", "squared Euclidean / |h_i|²", "zero-mean regulariser")):
        right.plot(means, [p[name] for p in along_mean], label=name, color=f"C{i}")
    right.axvline(mean, color="0.6", linestyle=":")
    right.set(xlabel="common mean added to both", title=f"noise scale t = {t:.2f}")
    right.legend(fontsize=8)
    fig.tight_layout()
    now = snr_pair(t, mean)
    print(f"t = {t:.2f}, mean = {mean:+.2f}: " + ", ".join(f"{k} = {v:.4f}" for k, v in now.items()))
    return fig
