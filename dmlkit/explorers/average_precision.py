"""Notebook 03's AP explorer: move one positive through a ranked list and watch exact AP,
FastAP (L bins, Cakir et al. 2019) and Smooth-AP (temperature τ, Brown et al. 2020) follow it.

The query sits at similarity 1; its gallery holds two fixed positives, five negatives and the
moved positive at similarity ``s``. The values come from the kit's own functions
(:func:`dmlkit.losses.ap_ranking.average_precision`, ``fast_average_precision``,
``smooth_average_precision``) on unit vectors with exactly these cosines to the query.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from dmlkit.losses.ap_ranking import average_precision, fast_average_precision, smooth_average_precision

__all__ = ["GALLERY", "ap_estimates", "draw_ap_path"]

#: ``(cosine to the query, is a positive)`` of the fixed gallery items.
GALLERY = ((0.9, True), (0.8, False), (0.6, False), (0.5, True), (0.3, False), (0.1, False), (-0.2, False))


def _batch(s: float) -> tuple[torch.Tensor, torch.Tensor]:
    cosines = [1.0] + [c for c, _ in GALLERY] + [s]
    labels = [0] + [0 if positive else 1 for _, positive in GALLERY] + [0]
    c = torch.tensor(cosines, dtype=torch.float64).clamp(-1, 1)
    embeddings = torch.stack([c, torch.sqrt(1 - c**2)], dim=1)
    return embeddings, torch.tensor(labels)


def ap_estimates(s: float, bins: int, tau: float) -> dict[str, float]:
    """Exact AP, FastAP and Smooth-AP of the query with the moved positive at cosine ``s``."""
    embeddings, labels = _batch(s)
    return {
        "exact AP": float(average_precision(embeddings, labels)[0]),
        f"FastAP, L={bins}": float(fast_average_precision(embeddings.float(), labels, bins)[0]),
        f"Smooth-AP, τ={tau:g}": float(smooth_average_precision(embeddings.float(), labels, tau)[0]),
    }


def draw_ap_path(s: float = 0.7, bins: int = 10, tau: float = 0.01) -> Figure:
    grid = np.linspace(-0.5, 1.0, 151)
    curves = [ap_estimates(float(v), bins, tau) for v in grid]
    now = ap_estimates(s, bins, tau)
    fig = Figure(figsize=(9.5, 3.4))
    path, ranking = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1]})
    for i, name in enumerate(now):
        path.plot(grid, [c[name] for c in curves], label=name, color=f"C{i}", drawstyle="default")
        path.scatter([s], [now[name]], color=f"C{i}", zorder=3)
    path.axvline(s, color="0.6", linestyle=":")
    path.set(
        xlabel="cosine of the moved positive to the query",
        ylabel="AP estimate",
        ylim=(0, 1.02),
        title="the three estimates along the path",
    )
    path.legend(fontsize=8, loc="upper left")
    items = sorted([(c, p, False) for c, p in GALLERY] + [(s, True, True)], key=lambda t: -t[0])
    for rank, (c, positive, moved) in enumerate(items, start=1):
        ranking.barh(
            -rank,
            c + 0.5,
            left=-0.5,
            color="tab:green" if positive else "tab:red",
            edgecolor="k" if moved else "none",
            linewidth=2,
        )
        ranking.text(-0.48, -rank, f"#{rank}{' (moved)' if moved else ''}", va="center", fontsize=7)
    ranking.set(xlim=(-0.5, 1.0), xlabel="cosine", title="the ranking (green: positive)")
    ranking.set_yticks([])
    fig.tight_layout()
    print(f"s = {s:g}: " + ", ".join(f"{name} = {value:.3f}" for name, value in now.items()))
    return fig
