"""Image figures: a grid of images, retrieval examples (a query and its nearest neighbours)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import Tensor

from dmlkit.neighbors import exact_knn
from dmlkit.plots.figure import _numpy, save_figure

__all__ = ["image_grid", "plot_retrieval"]


def image_grid(
    images: Tensor | np.ndarray,
    nrows: int,
    ncols: int,
    titles: Sequence[str] | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """A grid of images ``(N, C, H, W)`` (values in [0, 1]), row by row."""
    images = _numpy(images)
    fig = Figure(figsize=(ncols * 0.9, nrows * 0.95))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < len(images):
            _show(ax, images[i])
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    fig.tight_layout(pad=0.2)
    return save_figure(fig, save)


def _show(ax: Any, image: np.ndarray) -> None:
    if image.shape[0] == 1:
        ax.imshow(image[0], cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(np.clip(np.transpose(image, (1, 2, 0)), 0, 1))


def frame_neighbour(ax: Any, correct: bool) -> None:
    """Frame a retrieved image: thin green for the query's class, thick red for another."""
    ax.add_patch(
        Rectangle(
            (0, 0),
            1,
            1,
            transform=ax.transAxes,
            fill=False,
            edgecolor="tab:green" if correct else "tab:red",
            linewidth=1.5 if correct else 3,
        )
    )


def plot_retrieval(
    dataset: Any,
    embeddings: Tensor,
    num_queries: int = 6,
    k: int = 6,
    distance: str = "cosine",
    seed: int = 0,
    title: str | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """Queries (left column) and their ``k`` nearest neighbours; wrong neighbours framed in red.

    ``dataset`` must give ``(image, label)`` items in the order of ``embeddings``. Images are
    shown as stored (un-normalise ImageNet-style images before, if needed).
    """
    labels = dataset.labels
    knn, _ = exact_knn(embeddings, k, distance=distance, include_self=False)
    queries = np.random.default_rng(seed).choice(len(labels), size=min(num_queries, len(labels)), replace=False)
    fig = Figure(figsize=((k + 1) * 1.0, num_queries * 1.05))
    axes = fig.subplots(len(queries), k + 1, squeeze=False)
    for row, q in enumerate(queries):
        _show(axes[row, 0], _numpy(dataset[int(q)][0]))
        axes[row, 0].set_title("query" if row == 0 else "", fontsize=8)
        for col, neighbour in enumerate(knn[q].tolist(), start=1):
            ax = axes[row, col]
            _show(ax, _numpy(dataset[int(neighbour)][0]))
            correct = bool(labels[neighbour] == labels[q])
            frame_neighbour(ax, correct)
            if row == 0:
                ax.set_title(f"#{col}", fontsize=8)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout(pad=0.3)
    return save_figure(fig, save)
