"""Maps of embeddings: UMAP of classes, of proxies among classes, of few-shot episodes, and
the Poincaré disk."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from dmlkit.neighbors import exact_knn
from dmlkit.plots.figure import _episode_colors, _numpy, class_colors, panel_grid, save_figure

__all__ = [
    "umap_2d",
    "plot_umap",
    "umap_grid",
    "umap_with_proxies",
    "plot_episode_maps",
    "plot_poincare_disk",
]


def umap_2d(
    embeddings: Tensor | np.ndarray,
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
    ax: Any, coords: np.ndarray, labels: np.ndarray, highlight: Sequence[int] | None, point_size: float
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
    labels: Tensor | np.ndarray,
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


def _label_handles(labels: Sequence[int], size: float = 6.0) -> list:
    """Legend handles: one dot per label, in that label's colour (:func:`class_colors`)."""
    from matplotlib.lines import Line2D

    colors = class_colors(max(labels) + 1) if labels else []
    return [Line2D([], [], linestyle="none", marker="o", markersize=size, color=colors[k]) for k in labels]


def umap_grid(
    maps: Mapping[str, tuple[Any, ...]],
    ncols: int = 3,
    highlight: Sequence[int] | None = None,
    point_size: float = 3.0,
    suptitle: str | None = None,
    legend_names: Mapping[int, str] | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """Several maps side by side, one panel per entry: ``maps[name] = (coords, labels)`` (coords
    from :func:`umap_2d`), or ``(coords, labels, proxy_coords, proxy_labels)`` (from
    :func:`umap_with_proxies`) to draw the proxies too: stars with a black edge in their class's
    colour. With ``highlight`` the other classes (and their proxies) are grey.

    ``legend_names = {label: name}`` adds one legend below the grid that names the colour of each
    highlighted label (every label in ``legend_names`` when nothing is highlighted), e.g. the
    groups of a map coloured by group; the grey points, if any, are listed as "other"."""
    if not maps:
        raise ValueError("umap_grid needs at least one map")
    if legend_names is not None and not legend_names:
        raise ValueError("legend_names is empty: give {label: name} for the labels to name, or None")
    fig, axes = panel_grid(len(maps), ncols, panel_size=(4, 4))
    for ax, (name, entry) in zip(axes, maps.items()):
        if len(entry) not in (2, 4):
            raise ValueError(f"map {name!r}: expected (coords, labels) or (coords, labels, proxy_coords, proxy_labels)")
        coords, labels = np.asarray(entry[0]), _numpy(entry[1]).astype(int)
        if len(coords) != len(labels):
            raise ValueError(f"map {name!r}: {len(coords)} points but {len(labels)} labels")
        _scatter_classes(ax, coords, labels, highlight, point_size)
        if len(entry) == 4:
            proxy_coords, proxy_labels = np.asarray(entry[2]), _numpy(entry[3]).astype(int)
            if len(proxy_coords) != len(proxy_labels):
                raise ValueError(f"map {name!r}: {len(proxy_coords)} proxies but {len(proxy_labels)} proxy labels")
            _draw_proxies(ax, labels, proxy_coords, proxy_labels, highlight)
        ax.set_title(name)
    if suptitle:
        fig.suptitle(suptitle)
    if legend_names:
        from matplotlib.lines import Line2D

        named = [int(k) for k in (highlight if highlight else legend_names)]
        handles = _label_handles(named)
        texts = [str(legend_names.get(k, k)) for k in named]
        grey = highlight and any(
            not np.isin(_numpy(entry[1]).astype(int), list(highlight)).all() for entry in maps.values()
        )
        if grey:
            handles.append(Line2D([], [], linestyle="none", marker="o", markersize=6, color="0.85"))
            texts.append("other")
        columns = min(len(texts), 4 * min(len(maps), ncols))
        rows = math.ceil(len(texts) / columns)
        height = fig.get_figheight()
        bottom = min(0.4, (0.28 * rows + 0.2) / height)
        fig.legend(
            handles, texts, loc="lower center", ncol=columns, fontsize=9, frameon=False, bbox_to_anchor=(0.5, 0.0)
        )
        fig.tight_layout(rect=(0.0, bottom, 1.0, 1.0))
    else:
        fig.tight_layout()
    return save_figure(fig, save)


def _draw_proxies(ax, labels: np.ndarray, proxy_coords: np.ndarray, proxy_labels: np.ndarray, highlight) -> None:
    """Proxies as stars with a black edge in their class's colour; grey when not highlighted."""
    colors = class_colors(int(max(labels.max(), proxy_labels.max())) + 1)
    chosen = np.isin(proxy_labels, list(highlight)) if highlight else np.ones(len(proxy_labels), bool)
    ax.scatter(*proxy_coords[~chosen].T, s=40, marker="*", c="0.6", edgecolors="0.3", linewidths=0.4)
    ax.scatter(
        *proxy_coords[chosen].T,
        s=110,
        marker="*",
        color=colors[proxy_labels[chosen]],
        edgecolors="black",
        linewidths=0.7,
    )


def umap_with_proxies(
    embeddings: Tensor | np.ndarray,
    proxies: Tensor | np.ndarray,
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
    fig, axes = panel_grid(len(panels), ncols, panel_size=(4, 4))
    for ax, (title, panel) in zip(axes, panels.items()):
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
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return save_figure(fig, save)


def _enlarge_crosses(ax: Any, crosses: list, reach: float) -> None:
    """An enlarged view of crosses that lie close together, in the panel's lower-left corner.

    The corner of the square outside the circle of scaled radius ``reach`` (the outermost dashed
    circle) holds no points; the inset goes there when it has room, and shows only the crosses,
    on limits fitted to them, so that midpoints a few pixels apart in the disk can be told apart."""
    xy = np.array([(x, y) for x, y, _ in crosses], dtype=float)
    spread = float(np.ptp(xy, axis=0).max())
    size = ((1.03 - reach / math.sqrt(2)) / 2.06) - 0.02  # axes fraction free in the corner
    if spread > 0.3 or size < 0.15:
        return  # the crosses are apart already, or the corner has no room
    inset = ax.inset_axes((0.0, 0.0, size, size))
    for x, y, color in crosses:
        inset.scatter([x], [y], marker="X", s=60, color=color, edgecolors="black", linewidths=0.7)
    centre, half = xy.mean(axis=0), max(spread * 0.65, 0.02)  # at most about ×14
    inset.set_xlim(centre[0] - half, centre[0] + half)
    inset.set_ylim(centre[1] - half, centre[1] + half)
    inset.set_aspect("equal")
    inset.set_xticks([])
    inset.set_yticks([])
    for side in inset.spines.values():
        side.set_color("0.6")
    inset.set_title(f"crosses, ×{2 * 1.03 * size / (2 * half):.0f}", fontsize=7, color="0.35")
    ax.indicate_inset_zoom(inset, edgecolor="0.6")


def plot_poincare_disk(
    panels: Mapping[str, tuple[Tensor | np.ndarray, Tensor | np.ndarray]],
    c: float,
    highlight: Sequence[int] | None = None,
    legend_names: Mapping[str, Mapping[int, str]] | None = None,
    annotations: Mapping[str, Sequence[tuple[float, float, str]]] | None = None,
    circles: Sequence[float] = (1.0, 2.0, 3.0, 4.0),
    ncols: int = 3,
    point_size: float = 4.0,
    suptitle: str | None = None,
    marker_name: str = "midpoint of the group",
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
    to panel ``name``, e.g. the midpoint of all classes. An entry ``(x, y, text, label)`` is
    drawn instead as a large cross in ``label``'s colour with a black edge and no text on the
    map — the panel's legend names the colour, and gets one entry saying what the crosses are
    (``marker_name``) — so that many nearby markers (group prototypes) do not write over each
    other.
    """
    if not panels:
        raise ValueError("plot_poincare_disk needs at least one panel")
    if not np.isfinite(c) or c <= 0:
        raise ValueError(f"c must be a positive number (the ball has radius 1/sqrt(c)), got {c!r}")
    scale = math.sqrt(c)
    fig, axes = panel_grid(len(panels), ncols, panel_size=(4.3, 4.3))
    theta = np.linspace(0, 2 * np.pi, 361)
    for ax, (name, (points, labels)) in zip(axes, panels.items()):
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
        crosses = []  # (x, y, colour) of the labelled annotations, in scaled coordinates
        for entry in (annotations or {}).get(name, ()):
            if len(entry) not in (3, 4):
                raise ValueError(f"panel {name!r}: an annotation is (x, y, text) or (x, y, text, label), got {entry!r}")
            x, y, text = entry[:3]
            label = entry[3] if len(entry) == 4 else None
            if label is None:
                ax.scatter([x * scale], [y * scale], marker="X", s=50, color="black", zorder=5)
                ax.annotate(text, (x * scale, y * scale), fontsize=8, xytext=(4, 4), textcoords="offset points")
            else:
                crosses.append((x * scale, y * scale, class_colors(int(label) + 1)[int(label)]))
        for x, y, color in crosses:
            ax.scatter([x], [y], marker="X", s=110, color=color, edgecolors="black", linewidths=0.9, zorder=6)
        marked = bool(crosses)
        if len(crosses) > 1:
            _enlarge_crosses(ax, crosses, max((math.tanh(scale * rho / 2) for rho in circles), default=1.0))
        if shown and names:
            handles = _label_handles(shown, size=5)
            texts = [names.get(h, str(h)) for h in shown]
            if marked:
                from matplotlib.lines import Line2D

                handles.append(
                    Line2D([], [], linestyle="none", marker="X", markersize=8, color="white", markeredgecolor="black")
                )
                texts.append(marker_name)
            ax.legend(
                handles,
                texts,
                fontsize=7,
                loc="upper center",
                bbox_to_anchor=(0.5, 0.0),
                ncol=2,
                frameon=False,
            )
        ax.set_xlim(-1.03, 1.03)
        ax.set_ylim(-1.03, 1.03)
        ax.set_aspect("equal")
        ax.set_axis_off()
        ax.set_title(name)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return save_figure(fig, save)
