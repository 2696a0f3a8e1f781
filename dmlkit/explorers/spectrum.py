"""Notebook 07's ρ explorer: shape a singular-value spectrum, read ρ@1 and ρ@2.

Embeddings ``X = U diag(σ) Vᵀ`` (500 × 64, seeded orthonormal ``U``, ``V``) with a power-law
spectrum ``σ_k ∝ k^(-decay)`` and a common direction of weight ``shared`` added to every row
(what an uncentred set of unit vectors has: their mean). ρ is computed by the kit exactly as
for trained embeddings (:func:`dmlkit.analysis.spectral_decay`: rows normalised, not centred);
the spectrum drawn is :func:`dmlkit.analysis.singular_value_spectrum` of the same rows, beside
an isotropic Gaussian's for reference.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from dmlkit.analysis import singular_value_spectrum, spectral_decay

__all__ = ["draw_spectrum", "shaped_embeddings"]

_G = torch.Generator().manual_seed(0)
_U, _ = torch.linalg.qr(torch.randn(500, 64, generator=_G, dtype=torch.float64))
_V, _ = torch.linalg.qr(torch.randn(64, 64, generator=_G, dtype=torch.float64))
_ISOTROPIC = torch.randn(500, 64, generator=_G, dtype=torch.float64)


def shaped_embeddings(decay: float, shared: float) -> torch.Tensor:
    """500 × 64 embeddings with spectrum ``k^(-decay)`` and a shared direction of weight ``shared``."""
    sigma = torch.arange(1, 65, dtype=torch.float64).pow(-decay)
    x = _U @ torch.diag(sigma * np.sqrt(500)) @ _V.T
    x = x / x.norm(dim=1, keepdim=True)
    return x + shared * _V[:, 0]


def draw_spectrum(decay: float = 0.5, shared: float = 0.0) -> Figure:
    x = shaped_embeddings(decay, shared)
    fig = Figure(figsize=(7.5, 3.4))
    ax = fig.subplots()
    for values, name in ((singular_value_spectrum(x), "shaped"), (singular_value_spectrum(_ISOTROPIC), "isotropic")):
        values = (values / values.sum()).numpy()
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", markersize=3, label=name)
    ax.set(
        yscale="log",
        xlabel="k (largest first)",
        ylabel="σ_k / Σσ (row-normalised, uncentred)",
        title=f"decay {decay:g}, shared direction {shared:g}",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    print(
        f"ρ@1 = {spectral_decay(x, 1):.4f}, ρ@2 = {spectral_decay(x, 2):.4f} "
        f"(isotropic Gaussian: ρ@1 = {spectral_decay(_ISOTROPIC, 1):.4f}, ρ@2 = {spectral_decay(_ISOTROPIC, 2):.4f})"
    )
    return fig
