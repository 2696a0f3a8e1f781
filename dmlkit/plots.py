"""Figures shared by the notebooks: UMAP maps, retrieval examples, curves, spectra, ρ vs MAP@R.

Every function builds a ``matplotlib.figure.Figure`` (not a pyplot-managed one, so nothing is
shown or kept open as a side effect), optionally saves it with ``save=path`` and returns it.

In a notebook every figure goes through one line, :func:`show`::

    plots.show(plots.plot_training_curves(histories), OUT_DIR / "training_curves.png")

which writes the file and shows that very file inline, once, in JupyterLab, VS Code and a
papermill-executed notebook alike. (A bare ``Figure`` as a cell's last value is shown as an image
only after ``%matplotlib inline``; without it, IPython prints ``<Figure size ...>``.)
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
    "show",
]


def save_figure(fig: Figure, path: str | os.PathLike | None, dpi: int = 120) -> Figure:
    """Save ``fig`` to ``path`` (creating folders) when a path is given; return the figure."""
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return fig


def show(fig: Figure, path: str | os.PathLike | None = None, dpi: int = 120) -> None:
    """Save ``fig`` to ``path`` (a ``.png``; folders are created) and show it inline, once.

    The image shown is the saved file itself (the same bytes), published as ``image/png`` with
    its file name in the output's metadata, so what a reader sees in JupyterLab or VS Code, what
    an executed notebook keeps and what lands in ``OUT_DIR`` are one picture. Outside a Jupyter
    kernel (a script, a plain Python shell) the figure is only saved. Returns ``None`` on purpose:
    a cell ending in ``show(...)`` has no value left for IPython to display a second time.
    """
    if not isinstance(fig, Figure):
        raise TypeError(f"show() expects a matplotlib Figure, got {type(fig).__name__}")
    if path is not None:
        path = Path(path)
        if path.suffix.lower() != ".png":
            raise ValueError(f"show() saves PNG files; got {str(path)!r} (use a name ending in .png)")
        if path.parent.exists() and not path.parent.is_dir():
            raise NotADirectoryError(f"cannot save {path.name}: {path.parent} is not a folder")
        save_figure(fig, path, dpi=dpi)
        png = path.read_bytes()
    else:
        import io

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        png = buffer.getvalue()
    if _in_jupyter_kernel():
        import base64

        from IPython.display import display

        name = path.name if path is not None else "figure"
        display(
            {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": f"[figure: {name}]"},
            raw=True,
            metadata={"image/png": {"dmlkit_figure": name}},
        )


def _in_jupyter_kernel() -> bool:
    """True inside an IPython kernel (JupyterLab, VS Code, papermill), False in a script."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


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


# --------------------------------------------------------------------------------------------
# Pair-based family (notebook 01): pair weights, the (s_n, s_p) plane, which pairs a miner keeps
# --------------------------------------------------------------------------------------------


def plot_weight_curves(
    panels: Mapping[str, Mapping[str, tuple[Any, Any]]],
    xlabel: str = "similarity of the pair",
    ylabel: str = "weight of the pair",
    vlines: Mapping[str, float] | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """Curves side by side: ``panels[title][label] = (x, y)``, one panel per title.

    Meant for pair weights as a function of a pair's similarity (the general pair-weighting view
    of Wang et al., CVPR 2019); a label starting with ``"hinge"`` is drawn dashed, and ``vlines``
    (``{label: x}``) adds labelled vertical lines to every panel (a margin, a threshold).
    """
    if not panels:
        raise ValueError("plot_weight_curves needs at least one panel")
    fig = Figure(figsize=(4.8 * len(panels), 3.6))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, curves) in zip(axes, panels.items()):
        for label, (x, y) in curves.items():
            style = "--" if label.startswith("hinge") else "-"
            ax.plot(_numpy(x), _numpy(y), style, label=label)
        for label, x in (vlines or {}).items():
            ax.axvline(x, color="0.6", linewidth=0.8, linestyle=":")
            ax.annotate(label, (x, 1.0), xycoords=("data", "axes fraction"), fontsize=8,
                        xytext=(2, -10), textcoords="offset points", color="0.4")
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, save)


def plot_similarity_plane(
    violations: Mapping[str, Any],
    limits: tuple[float, float] = (0.0, 1.0),
    resolution: int = 201,
    arrows: int = 9,
    marks: Mapping[str, tuple[float, float]] | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """Decision boundaries of pair losses in the plane of a negative and a positive similarity.

    ``violations[name]`` is a callable ``z(s_n, s_p) -> tensor`` (elementwise, differentiable)
    whose loss is ``softplus(z)``: the boundary ``z = 0`` is drawn bold, other levels of ``z``
    thin, and arrows show ``-grad softplus(z)``, the direction in which the loss moves the pair
    of similarities (length relative to the largest arrow of the panel). A triplet-style loss
    ``z = gamma (s_n - s_p + m)`` gives a straight boundary and arrows of one direction; Circle
    loss (Sun et al., CVPR 2020, Fig. 1) a circular boundary and arrows that point towards its
    optimum. ``marks`` (``{label: (s_n, s_p)}``) adds labelled points to every panel.
    """
    if not violations:
        raise ValueError("plot_similarity_plane needs at least one loss")
    low, high = limits
    fig = Figure(figsize=(4.4 * len(violations), 4.2))
    axes = fig.subplots(1, len(violations), squeeze=False)[0]
    grid = torch.linspace(low, high, resolution, dtype=torch.float64)
    s_p, s_n = torch.meshgrid(grid, grid, indexing="ij")
    coarse = torch.linspace(low, high, arrows + 2, dtype=torch.float64)[1:-1]
    a_p, a_n = torch.meshgrid(coarse, coarse, indexing="ij")
    for ax, (name, violation) in zip(axes, violations.items()):
        with torch.no_grad():
            z = violation(s_n, s_p)
        levels = np.linspace(float(z.min()), float(z.max()), 12)
        ax.contour(_numpy(s_n), _numpy(s_p), _numpy(z), levels=levels, colors="0.8", linewidths=0.6)
        ax.contour(_numpy(s_n), _numpy(s_p), _numpy(z), levels=[0.0], colors="tab:red", linewidths=2)
        sn, sp = a_n.clone().requires_grad_(True), a_p.clone().requires_grad_(True)
        loss = torch.nn.functional.softplus(violation(sn, sp)).sum()
        g_n, g_p = torch.autograd.grad(loss, (sn, sp))
        scale = float(torch.sqrt(g_n**2 + g_p**2).max()) or 1.0
        ax.quiver(_numpy(a_n), _numpy(a_p), _numpy(-g_n / scale), _numpy(-g_p / scale),
                  angles="xy", scale_units="xy", scale=1 / (0.9 * (coarse[1] - coarse[0]).item()),
                  color="tab:blue", width=0.004)
        for label, (x, y) in (marks or {}).items():
            ax.plot([x], [y], "k*", markersize=9, clip_on=False, zorder=5)
            ax.annotate(label, (x, y), fontsize=8, xytext=(4, 4), textcoords="offset points")
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_aspect("equal")
        ax.set_xlabel("$s_n$ (similarity to a negative)")
        ax.set_ylabel("$s_p$ (similarity to a positive)")
        ax.set_title(name + "\n(red: decision boundary)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, save)


def plot_pair_selection(
    points: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray,
    anchor: int,
    selections: Mapping[str, tuple[Any, Any, str]],
    ncols: int = 3,
    unit_circle: bool = True,
    names: Sequence[str] | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """Which pairs of one anchor a mining rule keeps, one panel per rule, for a 2-D batch.

    ``selections[rule] = (positives, negatives, note)``: indices of the kept positives and
    negatives of ``anchor`` (green and red lines from the anchor) and a note printed under the
    title (e.g. how many pairs or triplets the rule keeps in the whole batch). Points are
    coloured by class, the anchor is drawn large; ``unit_circle`` draws the circle on which
    normalised 2-D embeddings lie; ``names`` labels the points.
    """
    if not selections:
        raise ValueError("plot_pair_selection needs at least one selection")
    points = _numpy(points).astype(float)
    labels = _numpy(labels).astype(int)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) != len(labels):
        raise ValueError(f"need (N, 2) points and N labels, got {points.shape} and {labels.shape}")
    if not 0 <= anchor < len(points):
        raise ValueError(f"anchor {anchor} is not an index of the {len(points)} points")
    ncols = min(ncols, len(selections))
    nrows = math.ceil(len(selections) / ncols)
    fig = Figure(figsize=(3.4 * ncols, 3.5 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    # few classes: distinct hues that are neither the green nor the red of the lines
    palette = ["tab:blue", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:cyan", "tab:olive", "tab:gray"]
    colors = palette if labels.max() < len(palette) else class_colors(int(labels.max()) + 1)
    markers = "osD^vP*X"
    for ax, (rule, (positives, negatives, note)) in zip(axes.flat, selections.items()):
        if unit_circle:
            t = np.linspace(0, 2 * np.pi, 200)
            ax.plot(np.cos(t), np.sin(t), color="0.85", linewidth=0.8, zorder=0)
        for index, colour in ((positives, "tab:green"), (negatives, "tab:red")):
            for j in np.asarray(_numpy(torch.as_tensor(index)), dtype=int).reshape(-1):
                ax.plot(*zip(points[anchor], points[j]), color=colour, linewidth=1.6, zorder=1)
        for c in np.unique(labels):
            mask = labels == c
            ax.scatter(*points[mask].T, s=40, color=colors[c], marker=markers[c % len(markers)],
                       edgecolors="k", linewidths=0.4, zorder=2)
        ax.scatter(*points[anchor], s=160, facecolors="none", edgecolors="k", linewidths=1.5, zorder=3)
        if names is not None:
            for name, (x, y) in zip(names, points):
                ax.annotate(name, (x, y), fontsize=8, xytext=(4, 4), textcoords="offset points")
        ax.set_title(f"{rule}\n{note}" if note else rule, fontsize=9)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.margins(0.12)
    for ax in list(axes.flat)[len(selections):]:
        ax.set_axis_off()
    fig.tight_layout()
    return save_figure(fig, save)


__all__ += ["plot_weight_curves", "plot_similarity_plane", "plot_pair_selection"]


def plot_poincare_disk(
    panels: Mapping[str, tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray]],
    c: float,
    highlight: Sequence[int] | None = None,
    legend_names: Mapping[str, Mapping[int, str]] | None = None,
    annotations: Mapping[str, Sequence[tuple[float, float, str]]] | None = None,
    circles: Sequence[float] = (1.0, 2.0, 3.0, 4.0),
    ncols: int = 3,
    point_size: float = 4.0,
    suptitle: str | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """2-D points of the Poincaré ball of curvature ``-c`` drawn in the disk, one panel per entry.

    ``panels[name] = (points (N, 2), labels (N,))``. Coordinates are multiplied by ``sqrt(c)`` so
    the boundary (radius ``1/sqrt(c)``) is the unit circle. Dashed circles mark the points at
    hyperbolic distance ``ρ`` (each value of ``circles``) from the origin: since
    ``d(0, x) = (2/sqrt(c)) artanh(sqrt(c) ||x||)``, they have scaled radius ``tanh(sqrt(c) ρ / 2)``
    and crowd towards the boundary. ``highlight`` greys all labels but these, in every panel
    (labels absent from a panel are skipped there); ``legend_names[name] = {label: text}`` adds a legend for them to panel ``name``;
    ``annotations[name] = [(x, y, text), ...]`` (ball coordinates) adds black markers with text
    to panel ``name``, e.g. group prototypes.
    """
    if not panels:
        raise ValueError("plot_poincare_disk needs at least one panel")
    if not np.isfinite(c) or c <= 0:
        raise ValueError(f"c must be a positive number (the ball has radius 1/sqrt(c)), got {c!r}")
    scale = math.sqrt(c)
    ncols = min(ncols, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(4.3 * ncols, 4.3 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    theta = np.linspace(0, 2 * np.pi, 361)
    for ax, (name, (points, labels)) in zip(axes.flat, panels.items()):
        coords = _numpy(points).astype(np.float64)
        if coords.ndim != 2 or coords.shape[1] != 2:
            raise ValueError(f"panel {name!r}: points must have shape (N, 2), got {coords.shape}")
        if (np.linalg.norm(coords, axis=1) * scale >= 1).any():
            raise ValueError(f"panel {name!r}: points lie on or outside the ball of radius 1/sqrt(c)")
        ax.plot(np.cos(theta), np.sin(theta), color="black", linewidth=1)
        for rho in circles:
            r = math.tanh(scale * rho / 2)
            ax.plot(r * np.cos(theta), r * np.sin(theta), color="0.6", linewidth=0.7, linestyle="--")
            ax.annotate(f"d={rho:g}", (r * np.cos(0.6), r * np.sin(0.6)), fontsize=7, color="0.45")
        labels = _numpy(labels).astype(int)
        shown = [h for h in highlight if h in set(labels.tolist())] if highlight else None
        _scatter_classes(ax, coords * scale, labels, shown, point_size)
        names = (legend_names or {}).get(name)
        if shown and names:
            handles = ax.get_legend_handles_labels()[0]
            ax.legend(handles, [names.get(h, str(h)) for h in shown], fontsize=7, markerscale=2,
                      loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, frameon=False)
        for x, y, text in (annotations or {}).get(name, ()):
            ax.scatter([x * scale], [y * scale], marker="X", s=50, color="black", zorder=5)
            ax.annotate(text, (x * scale, y * scale), fontsize=8, xytext=(4, 4), textcoords="offset points")
        ax.set_xlim(-1.03, 1.03)
        ax.set_ylim(-1.03, 1.03)
        ax.set_aspect("equal")
        ax.set_axis_off()
        ax.set_title(name)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_axis_off()
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return save_figure(fig, save)


__all__ += ["plot_poincare_disk"]


# --------------------------------------------------------------------------------------------
# Few-shot family (notebook 06): decision regions of prototypes, episodes in a UMAP map
# --------------------------------------------------------------------------------------------


def _episode_colors(n_way: int) -> np.ndarray:
    """tab10's distinct colours for the few classes of an episode; :func:`class_colors` beyond 10."""
    return colormaps["tab10"](np.arange(n_way)) if n_way <= 10 else class_colors(n_way)


def plot_decision_regions(
    support: torch.Tensor | np.ndarray,
    support_labels: torch.Tensor | np.ndarray,
    panels: Mapping[str, Mapping[str, Any]],
    queries: torch.Tensor | np.ndarray | None = None,
    extent: tuple[float, float, float, float] | None = None,
    resolution: int = 300,
    save: str | os.PathLike | None = None,
) -> Figure:
    """Decision regions of few-shot classifiers on 2-D points, one panel per classifier.

    ``panels[title]`` is a mapping with ``"predict"``: a callable taking a ``(G, 2)`` float64
    tensor of grid points and returning their ``(G,)`` class indices (``-1``: no class, left
    white), and optionally ``"prototypes"`` (``(n_way, 2)``, drawn as stars) and
    ``"ball_radius"`` (a circle of that radius around the origin is drawn and the grid outside it
    left white — the Poincaré ball). ``support`` (dots) and ``queries`` (crosses) are drawn in
    every panel, coloured by class.
    """
    if not panels:
        raise ValueError("plot_decision_regions needs at least one panel")
    points = _numpy(support).astype(float)
    labels = _numpy(support_labels).astype(int)
    n_way = int(labels.max()) + 1
    colors = _episode_colors(n_way)
    if extent is None:
        low, high = points.min(axis=0), points.max(axis=0)
        pad = 0.25 * float((high - low).max())
        extent = (low[0] - pad, high[0] + pad, low[1] - pad, high[1] + pad)
    xs = np.linspace(extent[0], extent[1], resolution)
    ys = np.linspace(extent[2], extent[3], resolution)
    gx, gy = np.meshgrid(xs, ys)
    grid = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], axis=1), dtype=torch.float64)
    fig = Figure(figsize=(4.2 * len(panels), 4.2))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, panel) in zip(axes, panels.items()):
        radius = panel.get("ball_radius")
        predicted = np.full(grid.shape[0], -1, dtype=int)
        inside = np.ones(grid.shape[0], dtype=bool)
        if radius is not None:
            inside = (grid.pow(2).sum(dim=1) < (0.999 * radius) ** 2).numpy()
        predicted[inside] = _numpy(panel["predict"](grid[torch.as_tensor(inside)])).astype(int)
        image = np.ones((grid.shape[0], 4))
        known = predicted >= 0
        image[known] = colors[predicted[known]] * [1, 1, 1, 0] + [0, 0, 0, 0.35]
        image[~known] = [1, 1, 1, 1]
        ax.imshow(image.reshape(resolution, resolution, 4), origin="lower", extent=extent, aspect="equal")
        boundary = predicted.reshape(resolution, resolution).astype(float)
        ax.contour(gx, gy, boundary, levels=np.arange(n_way) + 0.5, colors="0.3", linewidths=0.7)
        if radius is not None:
            angle = np.linspace(0, 2 * np.pi, 400)
            ax.plot(radius * np.cos(angle), radius * np.sin(angle), color="0.2", linewidth=1)
        ax.scatter(*points.T, c=colors[labels], s=40, edgecolors="k", linewidths=0.6, zorder=3)
        if queries is not None:
            ax.scatter(*_numpy(queries).astype(float).T, c="k", marker="x", s=40, zorder=3)
        if panel.get("prototypes") is not None:
            protos = _numpy(panel["prototypes"]).astype(float)
            ax.scatter(*protos.T, c=colors[: len(protos)], marker="*", s=260, edgecolors="k",
                       linewidths=1.0, zorder=4)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return save_figure(fig, save)


def plot_episode_maps(
    panels: Mapping[str, Mapping[str, Any]],
    ncols: int = 2,
    suptitle: str | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """2-D maps of few-shot episodes: support images, queries and prototypes, one panel each.

    ``panels[title]`` holds ``"coords"`` ``(N, 2)`` (e.g. from :func:`umap_2d`), ``"labels"``
    ``(N,)`` episode labels, ``"roles"`` ``(N,)`` strings ``"support"``, ``"query"`` or
    ``"prototype"``, and optionally ``"correct"`` ``(N,)`` booleans for the queries (a wrongly
    classified query is circled in red). Supports are large dots, queries small crosses,
    prototypes black-edged stars, all coloured by class.
    """
    if not panels:
        raise ValueError("plot_episode_maps needs at least one panel")
    ncols = min(ncols, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(4 * ncols, 4 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, (title, panel) in zip(axes.flat, panels.items()):
        coords = np.asarray(panel["coords"], dtype=float)
        labels = _numpy(panel["labels"]).astype(int)
        roles = np.asarray(panel["roles"])
        colors = _episode_colors(int(labels.max()) + 1)
        correct = np.asarray(panel["correct"], dtype=bool) if panel.get("correct") is not None else None
        query = roles == "query"
        ax.scatter(*coords[query].T, c=colors[labels[query]], marker="x", s=18, linewidths=1.0)
        if correct is not None:
            wrong = query & ~correct
            ax.scatter(*coords[wrong].T, facecolors="none", edgecolors="tab:red", s=70, linewidths=1.2)
        support = roles == "support"
        ax.scatter(*coords[support].T, c=colors[labels[support]], s=55, edgecolors="k", linewidths=0.6)
        proto = roles == "prototype"
        ax.scatter(*coords[proto].T, c=colors[labels[proto]], marker="*", s=300, edgecolors="k", linewidths=1.0)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(panels):]:
        ax.set_axis_off()
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return save_figure(fig, save)


__all__ += ["plot_decision_regions", "plot_episode_maps"]


# --------------------------------------------------------------------------------------------
# Proxy-based family (notebook 02): proxies in 2-D, proxies among embeddings, scaling curves
# --------------------------------------------------------------------------------------------


def _check_rows(name: str, array: np.ndarray, rows: int | None = None, cols: int | None = None) -> None:
    if array.ndim != 2 or (rows is not None and array.shape[0] != rows) or (cols is not None and array.shape[1] != cols):
        expected = f"({rows if rows is not None else 'N'}, {cols if cols is not None else 'D'})"
        raise ValueError(f"{name} must have shape {expected}, got {tuple(array.shape)}")


def plot_proxy_forces(
    panels: Mapping[str, Mapping[str, Any]],
    ncols: int = 3,
    arrow_length: float = 0.35,
    emphasis: float = 0.5,
    save: str | os.PathLike | None = None,
) -> Figure:
    """Toy 2-D geometry of proxy losses: samples, proxies, and what the loss does to them.

    ``panels[title]`` is a mapping with

    - ``embeddings`` ``(N, 2)`` and ``labels`` ``(N,)``: the samples (dots, coloured by class);
    - ``proxies`` ``(M, 2)`` and ``proxy_labels`` ``(M,)``: the proxies (stars);
    - optional ``embedding_forces`` ``(N, 2)`` and ``proxy_forces`` ``(M, 2)``: descent
      directions (minus the gradient), drawn as arrows, scaled together so that the longest arrow
      of the panel is ``arrow_length`` long;
    - optional ``pair_weights`` ``(N, M)``: ``∂loss/∂s(x_i, p_m)`` for the similarity of sample
      ``i`` and proxy ``m``, drawn as a segment between them, green where negative (gradient
      descent raises the similarity: the pair is pulled together), red where positive (pushed
      apart), its width growing with ``|weight| / max |weight|`` of the panel.

    Arrow lengths and segment widths are drawn proportional to ``(magnitude / largest) ** emphasis``
    (default 0.5, the square root) so that small forces stay visible; ``emphasis=1`` draws them
    linearly. Classes are coloured with tab10 (up to 10 classes). The unit circle is drawn: the
    proxy losses compare directions only.
    """
    if not 0 < emphasis <= 1:
        raise ValueError(f"emphasis must lie in (0, 1], got {emphasis}")
    if not panels:
        raise ValueError("plot_proxy_forces needs at least one panel")
    ncols = min(ncols, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(4.2 * ncols, 4.3 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, (title, panel) in zip(axes.flat, panels.items()):
        missing = {"embeddings", "labels", "proxies", "proxy_labels"} - set(panel)
        if missing:
            raise ValueError(f"panel {title!r} lacks {sorted(missing)}")
        x = _numpy(panel["embeddings"]).astype(float)
        p = _numpy(panel["proxies"]).astype(float)
        labels = _numpy(panel["labels"]).astype(int)
        proxy_labels = _numpy(panel["proxy_labels"]).astype(int)
        _check_rows("embeddings", x, cols=2)
        _check_rows("proxies", p, cols=2)
        if labels.shape != (len(x),) or proxy_labels.shape != (len(p),):
            raise ValueError(f"panel {title!r}: one label per sample and per proxy is needed")
        num_classes = int(max(labels.max(), proxy_labels.max())) + 1
        colors = colormaps["tab10"](np.arange(num_classes) % 10)
        angle = np.linspace(0, 2 * np.pi, 200)
        ax.plot(np.cos(angle), np.sin(angle), color="0.85", linewidth=1, zorder=0)
        weights = panel.get("pair_weights")
        if weights is not None:
            w = _numpy(weights).astype(float)
            _check_rows("pair_weights", w, rows=len(x), cols=len(p))
            top = np.abs(w).max() or 1.0
            for i in range(len(x)):
                for m in range(len(p)):
                    if abs(w[i, m]) < 1e-3 * top:
                        continue
                    ax.plot(*np.stack([x[i], p[m]]).T, color="tab:green" if w[i, m] < 0 else "tab:red",
                            linewidth=0.3 + 4.0 * (abs(w[i, m]) / top) ** emphasis, alpha=0.5, zorder=1)
        forces = [_numpy(panel[k]).astype(float) for k in ("embedding_forces", "proxy_forces") if panel.get(k) is not None]
        longest = max((np.linalg.norm(f, axis=1).max() for f in forces), default=0.0) or 1.0
        for key, origin in (("embedding_forces", x), ("proxy_forces", p)):
            if panel.get(key) is None:
                continue
            f = _numpy(panel[key]).astype(float)
            _check_rows(key, f, rows=len(origin), cols=2)
            norms = np.linalg.norm(f, axis=1, keepdims=True)
            f = np.where(norms > 0, f / np.where(norms > 0, norms, 1.0), 0.0) * arrow_length * (norms / longest) ** emphasis
            ax.quiver(origin[:, 0], origin[:, 1], f[:, 0], f[:, 1], angles="xy", scale_units="xy", scale=1,
                      width=0.006, color="0.2", zorder=4)
        ax.scatter(*x.T, s=36, color=colors[labels], edgecolors="white", linewidths=0.5, zorder=3)
        ax.scatter(*p.T, s=220, marker="*", color=colors[proxy_labels], edgecolors="black", linewidths=0.8, zorder=5)
        ax.set_xlim(-1.45, 1.45)
        ax.set_ylim(-1.45, 1.45)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=10)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_axis_off()
    fig.tight_layout()
    return save_figure(fig, save)


def umap_with_proxies(
    embeddings: torch.Tensor | np.ndarray,
    proxies: torch.Tensor | np.ndarray,
    n_neighbors: int = 15,
    seed: int = 0,
    min_dist: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """One 2-D UMAP map of embeddings and proxies together; returns ``(embedding_coords, proxy_coords)``.

    Both are L2-normalised (the proxy losses compare directions only) and mapped jointly with
    :func:`umap_2d` (exact cosine k-NN graph), so a proxy lands among the embeddings it is most
    similar to — or apart, when no embedding is near it.
    """
    x = embeddings if isinstance(embeddings, torch.Tensor) else torch.as_tensor(np.asarray(embeddings))
    p = proxies if isinstance(proxies, torch.Tensor) else torch.as_tensor(np.asarray(proxies))
    if x.dim() != 2 or p.dim() != 2 or x.shape[1] != p.shape[1]:
        raise ValueError(
            f"embeddings (N, D) and proxies (M, D) must share D, got {tuple(x.shape)} and {tuple(p.shape)}"
        )
    if p.shape[0] == 0:
        raise ValueError("umap_with_proxies needs at least one proxy")
    normalize = torch.nn.functional.normalize
    joint = torch.cat([normalize(x.detach().float(), dim=1), normalize(p.detach().float(), dim=1)])
    coords = umap_2d(joint, n_neighbors=n_neighbors, distance="cosine", seed=seed, min_dist=min_dist)
    return coords[: x.shape[0]], coords[x.shape[0] :]


def proxy_umap_grid(
    maps: Mapping[str, tuple[np.ndarray, Any, np.ndarray, Any]],
    ncols: int = 3,
    highlight: Sequence[int] | None = None,
    point_size: float = 3.0,
    suptitle: str | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """Maps of embeddings with their proxies: ``maps[name] = (coords, labels, proxy_coords, proxy_labels)``
    (coordinates from :func:`umap_with_proxies`). Proxies are stars with a black edge, in their
    class's colour; with ``highlight`` the other classes and their proxies are grey."""
    if not maps:
        raise ValueError("proxy_umap_grid needs at least one map")
    ncols = min(ncols, len(maps))
    nrows = math.ceil(len(maps) / ncols)
    fig = Figure(figsize=(4 * ncols, 4 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, (name, (coords, labels, proxy_coords, proxy_labels)) in zip(axes.flat, maps.items()):
        labels = _numpy(labels).astype(int)
        proxy_labels = _numpy(proxy_labels).astype(int)
        coords, proxy_coords = np.asarray(coords), np.asarray(proxy_coords)
        if len(coords) != len(labels) or len(proxy_coords) != len(proxy_labels):
            raise ValueError(f"map {name!r}: one label per point and per proxy is needed")
        _scatter_classes(ax, coords, labels, highlight, point_size)
        colors = class_colors(int(max(labels.max(), proxy_labels.max())) + 1)
        chosen = np.isin(proxy_labels, list(highlight)) if highlight else np.ones(len(proxy_labels), bool)
        ax.scatter(*proxy_coords[~chosen].T, s=40, marker="*", c="0.6", edgecolors="0.3", linewidths=0.4)
        ax.scatter(*proxy_coords[chosen].T, s=110, marker="*", color=colors[proxy_labels[chosen]],
                   edgecolors="black", linewidths=0.7)
        ax.set_title(name)
    for ax in list(axes.flat)[len(maps) :]:
        ax.set_axis_off()
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return save_figure(fig, save)


def plot_scaling(
    panels: Mapping[str, Mapping[str, tuple[Any, Any]]],
    xlabel: str,
    logx: bool = True,
    logy: Sequence[str] = (),
    save: str | os.PathLike | None = None,
) -> Figure:
    """Curves against a size (number of classes, ...): ``panels[ylabel][series] = (x, y)``, one
    panel per quantity, with markers at the measured sizes; ``logy`` names the panels drawn with
    a logarithmic y axis. The x ticks are the measured sizes."""
    from matplotlib.ticker import NullLocator

    if not panels:
        raise ValueError("plot_scaling needs at least one panel")
    unknown = set(logy) - set(panels)
    if unknown:
        raise ValueError(f"logy names panels that do not exist: {sorted(unknown)}")
    fig = Figure(figsize=(4.6 * len(panels), 3.7))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (ylabel, series) in zip(axes, panels.items()):
        sizes: set[float] = set()
        for label, (x, y) in series.items():
            ax.plot(_numpy(x), _numpy(y), marker="o", label=label)
            sizes.update(float(v) for v in np.ravel(_numpy(x)))
        if logx:
            ax.set_xscale("log")
            ax.xaxis.set_minor_locator(NullLocator())
        ticks = sorted(sizes)
        ax.set_xticks(ticks, [f"{v:,.0f}" if v == int(v) else f"{v:g}" for v in ticks])
        if ylabel in logy:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, save)


__all__ += ["plot_proxy_forces", "umap_with_proxies", "proxy_umap_grid", "plot_scaling"]


# --------------------------------------------------------------------------------------------------
# Distance geometry: iso-distance contours (notebook 04, SNR distance)
# --------------------------------------------------------------------------------------------------


def plot_contour_panels(
    panels: Mapping[str, Mapping[str, Any]],
    ncols: int | None = None,
    panel_size: float = 3.6,
    save: str | os.PathLike | None = None,
) -> Figure:
    """Iso-value contours of scalar fields over a 2-D grid, one panel per entry, side by side.

    ``panels[title]`` is a mapping with ``x`` and ``y`` (1-D grid coordinates), ``fields`` (a list
    of mappings with ``z`` of shape ``(len(y), len(x))``, ``levels``, and optionally ``color``,
    ``linestyle`` and ``label``), optionally ``points`` (``{name: (x, y)}``, drawn as labelled
    markers), ``xlabel`` and ``ylabel``. Contour lines are labelled with their level; axes keep
    equal scales so circles look like circles.
    """
    if not panels:
        raise ValueError("plot_contour_panels needs at least one panel")
    ncols = min(ncols or len(panels), len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(panel_size * ncols, panel_size * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, (title, panel) in zip(axes.flat, panels.items()):
        x, y = np.asarray(panel["x"]), np.asarray(panel["y"])
        handles, names = [], []
        for field in panel["fields"]:
            z = _numpy(field["z"])
            if z.shape != (len(y), len(x)):
                raise ValueError(f"panel {title!r}: z has shape {z.shape}, expected {(len(y), len(x))}")
            color = field.get("color", "tab:blue")
            lines = ax.contour(x, y, z, levels=field["levels"], colors=color,
                               linestyles=field.get("linestyle", "solid"), linewidths=1.2)
            ax.clabel(lines, fontsize=7, fmt="%g")
            if field.get("label"):
                handles.append(lines.legend_elements()[0][0])
                names.append(field["label"])
        for name, (px, py) in panel.get("points", {}).items():
            ax.plot(px, py, marker="o", color="black", markersize=4)
            ax.annotate(name, (px, py), xytext=(4, 4), textcoords="offset points", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(panel.get("xlabel", ""), fontsize=8)
        ax.set_ylabel(panel.get("ylabel", ""), fontsize=8)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
        if handles:
            ax.legend(handles, names, fontsize=7, loc="lower left")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_axis_off()
    fig.tight_layout()
    return save_figure(fig, save)


__all__ += ["plot_contour_panels"]


# --------------------------------------------------------------------------------------------
# Synthesis (notebook 07): scatter by family, leaderboard, trajectories during training, sweeps
# --------------------------------------------------------------------------------------------


_METRIC_NAMES = {"map@r": "MAP@R", "recall@1": "Recall@1", "r_precision": "R-Precision"}


def _group_colors(groups: Sequence[str]) -> dict[str, Any]:
    palette = colormaps["tab10"](np.arange(10))
    return {group: palette[i % 10] for i, group in enumerate(groups)}


def plot_grouped_scatter(
    panels: Sequence[tuple[str, str, str, Mapping[str, tuple[Sequence[float], Sequence[float]]]]],
    save: str | os.PathLike | None = None,
) -> Figure:
    """Side-by-side scatter panels, points coloured by group (e.g. the family of each method).

    Each panel is ``(title, xlabel, ylabel, {group: (xs, ys)})``; a group keeps its colour across
    panels and appears once in the legend.
    """
    if not panels:
        raise ValueError("no panel to draw")
    groups = list(dict.fromkeys(g for _, _, _, data in panels for g in data))
    colors = _group_colors(groups)
    fig = Figure(figsize=(5 * len(panels), 4.2))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, xlabel, ylabel, data) in zip(axes, panels):
        for group, (xs, ys) in data.items():
            ax.scatter(xs, ys, s=22, color=colors[group], label=group, alpha=0.85)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(groups), 6), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return save_figure(fig, save)


def plot_leaderboard(
    summary: Mapping[str, Mapping[str, float]],
    metrics: Sequence[str] = ("map@r", "recall@1"),
    worst: str | None = "worst_class_recall@1",
    families: Mapping[str, str] | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """Horizontal bars of mean ± std per method (from :func:`dmlkit.zoo.summarise_seeds`), best
    first by the first metric, one panel per metric, in %; bars coloured by family. ``worst``
    (a key of the summary) is drawn as a black diamond on the panel of ``"recall@1"``."""
    names = sorted(summary, key=lambda n: summary[n].get(metrics[0], -math.inf))
    groups = list(dict.fromkeys((families or {}).get(n, "") for n in reversed(names)))
    colors = _group_colors(groups)
    fig = Figure(figsize=(4.2 * len(metrics) + 1.5, 0.32 * len(names) + 1.6))
    axes = fig.subplots(1, len(metrics), squeeze=False, sharey=True)[0]
    y = np.arange(len(names))
    for ax, metric in zip(axes, metrics):
        means = np.array([100 * summary[n].get(metric, np.nan) for n in names])
        stds = np.array([100 * summary[n].get(metric + "_std", np.nan) for n in names])
        bar_colors = [colors[(families or {}).get(n, "")] for n in names]
        ax.barh(y, means, xerr=np.nan_to_num(stds), color=bar_colors, capsize=2, alpha=0.9)
        if worst and metric == "recall@1":
            worst_values = np.array([100 * summary[n].get(worst, np.nan) for n in names])
            ax.scatter(worst_values, y, marker="D", color="black", s=18, zorder=3, label="worst 10% of classes")
            ax.legend(fontsize=8, loc="lower right")
        ax.set_xlabel(f"held-out {_METRIC_NAMES.get(metric, metric)} (%)")
        finite = means[np.isfinite(means)]
        low = min(finite.min() if finite.size else 0, np.nanmin(worst_values) if worst and metric == "recall@1" else np.inf)
        ax.set_xlim(max(0.0, low - 5), min(100.0, np.nanmax(means + np.nan_to_num(stds)) + 3))
    axes[0].set_yticks(y, names, fontsize=8)
    if families:
        from matplotlib.patches import Patch

        fig.legend([Patch(color=colors[g]) for g in groups], groups, loc="lower center", ncol=min(len(groups), 6),
                   fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0.06, 1, 1))
    else:
        fig.tight_layout()
    return save_figure(fig, save)


def plot_metric_trajectories(
    histories: Mapping[str, Any],
    metrics: Sequence[str] = ("rho", "map@r"),
    labels: Mapping[str, str] | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """Each evaluation metric against the training step, one panel per metric, one line per run
    (``histories[name]`` is a :class:`dmlkit.train.History` with periodic evaluations)."""
    fig = Figure(figsize=(5 * len(metrics), 3.8))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for name, history in histories.items():
        for ax, metric in zip(axes, metrics):
            points = [(e["step"], e[metric]) for e in history.evaluations if metric in e]
            if points:
                style = "--" if "p_switch" in name else "-"
                ax.plot(*zip(*points), style, marker="o", markersize=3, label=name)
    for ax, metric in zip(axes, metrics):
        ax.set_xlabel("training step")
        ax.set_ylabel((labels or {}).get(metric, metric))
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, save)


def plot_sweep(
    series: Mapping[str, Mapping[float, Mapping[str, float]]],
    metrics: Sequence[str],
    x_label: str,
    labels: Mapping[str, str] | None = None,
    percent: Sequence[str] = (),
    save: str | os.PathLike | None = None,
) -> Figure:
    """Mean ± std of each metric against a swept setting, one panel per metric, one line per
    series: ``series[name][x]`` holds ``metric`` and ``metric + "_std"`` (as
    :func:`dmlkit.zoo.summarise_seeds` writes them)."""
    fig = Figure(figsize=(4.5 * len(metrics), 3.6))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for name, points in series.items():
        xs = sorted(points)
        for ax, metric in zip(axes, metrics):
            scale = 100.0 if metric in percent else 1.0
            means = [scale * points[x][metric] for x in xs]
            stds = [scale * points[x].get(metric + "_std", 0.0) for x in xs]
            ax.errorbar(xs, means, yerr=np.nan_to_num(stds), marker="o", capsize=3, label=name)
    for ax, metric in zip(axes, metrics):
        ax.set_xlabel(x_label)
        ax.set_ylabel((labels or {}).get(metric, metric) + (" (%)" if metric in percent else ""))
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, save)


__all__ += ["plot_grouped_scatter", "plot_leaderboard", "plot_metric_trajectories", "plot_sweep"]
