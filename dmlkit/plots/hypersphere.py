"""Views on the unit circle: what alignment and uniformity (Wang & Isola, ICML 2020) measure."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure
from torch import Tensor

from dmlkit.plots.figure import _numpy, save_figure

__all__ = ["plot_circle_views"]


def plot_circle_views(
    panels: Mapping[str, tuple[Tensor, Tensor]],
    captions: Mapping[str, str] | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """One panel per configuration: ``panels[title] = (first, second)``, two ``(N, 2)`` views of
    N images, drawn on the unit circle after L2 normalisation — image ``i``'s two views in colour
    ``i`` (circle and square), joined by a line (the distance alignment averages). ``captions``
    are printed under each panel (the numbers of that configuration)."""
    if not panels:
        raise ValueError("plot_circle_views needs at least one panel")
    fig = Figure(figsize=(3.6 * len(panels), 4.0))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    t = np.linspace(0, 2 * np.pi, 200)
    for ax, (title, (first, second)) in zip(axes, panels.items()):
        a, b = _numpy(first).astype(float), _numpy(second).astype(float)
        if a.shape != b.shape or a.ndim != 2 or a.shape[1] != 2:
            raise ValueError(f"{title}: the views must both be (N, 2), got {a.shape} and {b.shape}")
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        ax.plot(np.cos(t), np.sin(t), color="0.85", zorder=1)
        for i in range(len(a)):
            color = f"C{i % 10}"
            ax.plot([a[i, 0], b[i, 0]], [a[i, 1], b[i, 1]], color=color, lw=2, zorder=2)
            ax.scatter(*a[i], color=color, marker="o", s=60, edgecolor="k", zorder=3)
            ax.scatter(*b[i], color=color, marker="s", s=50, edgecolor="k", zorder=3)
        ax.set(xlim=(-1.3, 1.3), ylim=(-1.3, 1.3), aspect="equal", title=title)
        ax.set_xticks([])
        ax.set_yticks([])
        if captions and title in captions:
            ax.set_xlabel(captions[title], fontsize=8)
    fig.tight_layout()
    return save_figure(fig, save)
