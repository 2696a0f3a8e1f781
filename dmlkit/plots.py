"""Figures shared by the notebooks: UMAP maps, retrieval examples, curves, spectra, ρ vs MAP@R.

Every function builds a ``matplotlib.figure.Figure`` (not a pyplot-managed one, so nothing is
shown or kept open as a side effect), optionally saves it with ``save=path`` and returns it. In a
notebook, put the figure as the last expression of a cell to display it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from dmlkit.neighbors import exact_knn

__all__ = [
    "class_colors",
    "umap_2d",
    "plot_umap",
    "umap_grid",
    "plot_retrieval",
    "plot_training_curves",
    "plot_spectrum",
    "plot_rho_vs_metric",
    "image_grid",
    "save_figure",
]


def save_figure(fig: Figure, path: str | os.PathLike | None, dpi: int = 120) -> Figure:
    """Save ``fig`` to ``path`` (creating folders) when a path is given; return the figure."""
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return fig


def class_colors(num_classes: int, seed: int = 0) -> np.ndarray:
    """RGBA colours for many classes: the 60 colours of tab20, tab20b and tab20c, shuffled with a
    fixed seed so neighbouring labels rarely share a hue, repeated when there are more classes."""
    palette = np.concatenate([colormaps[name](np.arange(20)) for name in ("tab20", "tab20b", "tab20c")])
    palette = palette[np.random.default_rng(seed).permutation(len(palette))]
    return palette[np.arange(num_classes) % len(palette)]


def _numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def umap_2d(
    embeddings: torch.Tensor | np.ndarray,
    n_neighbors: int = 15,
    distance: str = "cosine",
    seed: int = 0,
    min_dist: float = 0.1,
    knn: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """2-D UMAP coordinates (McInnes et al., 2018) of ``(N, D)`` embeddings.

    The exact k-nearest-neighbour graph is computed here (:func:`dmlkit.neighbors.exact_knn`) or
    passed as ``knn=(indices, distances)`` (e.g. hyperbolic distances), and given to UMAP as
    ``precomputed_knn``: UMAP then never compiles its approximate NN-descent, which cuts its first
    call from about 38 s to about 9 s for 5,000 points on a 2-core CPU. ``random_state=seed``
    makes the map reproducible; UMAP then runs its optimisation single-threaded (a deliberate
    choice: same seed, same figure).
    """
    import warnings

    with warnings.catch_warnings():  # umap imports tqdm.auto, which warns without ipywidgets
        warnings.filterwarnings("ignore", message=".*IProgress not found.*")
        import umap

    x = embeddings if isinstance(embeddings, torch.Tensor) else torch.as_tensor(np.asarray(embeddings))
    n = x.shape[0]
    if n < 4:
        raise ValueError(f"UMAP needs at least 4 points, got {n}")
    n_neighbors = min(n_neighbors, n - 1)
    if knn is None:
        indices, distances = exact_knn(x.float(), n_neighbors, distance=distance, include_self=True)
        knn = (indices.numpy(), distances.numpy())
    metric = "cosine" if distance == "cosine" else "euclidean"
    reducer = umap.UMAP(
        n_neighbors=n_neighbors,
        min_dist=min_dist,
        metric=metric,
        random_state=seed,
        precomputed_knn=(np.asarray(knn[0]), np.asarray(knn[1]), None),
        n_jobs=1,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*precomputed_knn.*")
        warnings.filterwarnings("ignore", message=".*n_jobs.*")
        return reducer.fit_transform(_numpy(x).astype(np.float32))


def _scatter_classes(
    ax: Any,
    coords: np.ndarray,
    labels: np.ndarray,
    highlight: Sequence[int] | None,
    point_size: float,
) -> None:
    num_classes = int(labels.max()) + 1 if labels.size else 0
    colors = class_colors(num_classes)
    if highlight:
        chosen = np.isin(labels, list(highlight))
        ax.scatter(*coords[~chosen].T, s=point_size, c="0.85", linewidths=0)
        for c in highlight:
            mask = labels == c
            ax.scatter(*coords[mask].T, s=point_size * 3, color=colors[c], linewidths=0, label=str(c))
    else:
        ax.scatter(*coords.T, s=point_size, c=colors[labels], linewidths=0)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_umap(
    coords: np.ndarray,
    labels: torch.Tensor | np.ndarray,
    title: str | None = None,
    highlight: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    point_size: float = 4.0,
    save: str | os.PathLike | None = None,
) -> Figure:
    """One 2-D map coloured by class; ``highlight`` greys all classes but these few."""
    labels = _numpy(labels).astype(int)
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    _scatter_classes(ax, np.asarray(coords), labels, highlight, point_size)
    if highlight:
        names = [class_names[c] if class_names else str(c) for c in highlight]
        handles = ax.get_legend_handles_labels()[0]
        ax.legend(handles, names, fontsize=8, markerscale=2, loc="best")
    if title:
        ax.set_title(title)
    return save_figure(fig, save)


def umap_grid(
    maps: Mapping[str, tuple[np.ndarray, torch.Tensor | np.ndarray]],
    ncols: int = 3,
    highlight: Sequence[int] | None = None,
    point_size: float = 3.0,
    suptitle: str | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """Several methods side by side: ``maps[name] = (coords, labels)`` (coords from :func:`umap_2d`)."""
    if not maps:
        raise ValueError("umap_grid needs at least one map")
    ncols = min(ncols, len(maps))
    nrows = math.ceil(len(maps) / ncols)
    fig = Figure(figsize=(4 * ncols, 4 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, (name, (coords, labels)) in zip(axes.flat, maps.items()):
        _scatter_classes(ax, np.asarray(coords), _numpy(labels).astype(int), highlight, point_size)
        ax.set_title(name)
    for ax in list(axes.flat)[len(maps) :]:
        ax.set_axis_off()
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return save_figure(fig, save)


def image_grid(
    images: torch.Tensor | np.ndarray,
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


def plot_retrieval(
    dataset: Any,
    embeddings: torch.Tensor,
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
            ax.add_patch(
                Rectangle((0, 0), 1, 1, transform=ax.transAxes, fill=False,
                          edgecolor="tab:green" if correct else "tab:red", linewidth=3 if not correct else 1.5)
            )
            if row == 0:
                ax.set_title(f"#{col}", fontsize=8)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout(pad=0.3)
    return save_figure(fig, save)


def plot_training_curves(
    histories: Mapping[str, Any],
    metric: str | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """Loss against step for each run (``histories[name]`` is a :class:`dmlkit.train.History`),
    and, with ``metric``, that evaluation metric against step in a second panel."""
    panels = 2 if metric else 1
    fig = Figure(figsize=(5 * panels, 3.6))
    axes = fig.subplots(1, panels, squeeze=False)[0]
    for name, history in histories.items():
        axes[0].plot(history.steps, history.losses, label=name)
        if metric:
            points = [(e["step"], e[metric]) for e in history.evaluations if metric in e]
            if points:
                axes[1].plot(*zip(*points), marker="o", label=name)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("training loss")
    axes[0].set_title("loss (each on its own scale)")
    if metric:
        axes[1].set_xlabel("step")
        axes[1].set_ylabel(metric)
        axes[1].set_title(f"held-out {metric}")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, save)


def plot_spectrum(
    spectra: Mapping[str, torch.Tensor | np.ndarray],
    drop: int = 1,
    save: str | os.PathLike | None = None,
) -> Figure:
    """Normalised singular values (after dropping the ``drop`` largest) per method, log scale.

    ``spectra[name]`` comes from :func:`dmlkit.analysis.singular_value_spectrum`. A flat curve is
    an uncompressed space (ρ near 0); a steep one a compressed space.
    """
    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.add_subplot()
    for name, values in spectra.items():
        values = _numpy(values)[drop:]
        ax.plot(np.arange(drop + 1, drop + 1 + len(values)), values / values.sum(), label=name)
    ax.set_yscale("log")
    ax.set_xlabel("singular value index")
    ax.set_ylabel("normalised singular value")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, save)


def plot_rho_vs_metric(
    points: Mapping[str, tuple[float, float]],
    metric_name: str = "held-out MAP@R",
    save: str | os.PathLike | None = None,
) -> Figure:
    """Scatter of spectral decay ρ (x) against a metric (y), one labelled point per run."""
    fig = Figure(figsize=(5, 4))
    ax = fig.add_subplot()
    for name, (rho, value) in points.items():
        ax.scatter(rho, value)
        ax.annotate(name, (rho, value), fontsize=8, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("spectral decay ρ (larger = more compressed)")
    ax.set_ylabel(metric_name)
    fig.tight_layout()
    return save_figure(fig, save)
