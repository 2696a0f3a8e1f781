"""Two-dimensional fields: the (s_n, s_p) plane, pair selection by a miner, decision regions
of prototypes, distance contours and proxy forces."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure
from torch import Tensor

from dmlkit.plots.figure import _check_rows, _episode_colors, _numpy, class_colors, panel_grid, save_figure

__all__ = [
    "plot_similarity_plane",
    "plot_pair_selection",
    "plot_decision_regions",
    "plot_contour_panels",
    "plot_proxy_forces",
]


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
        ax.quiver(
            _numpy(a_n),
            _numpy(a_p),
            _numpy(-g_n / scale),
            _numpy(-g_p / scale),
            angles="xy",
            scale_units="xy",
            scale=1 / (0.9 * (coarse[1] - coarse[0]).item()),
            color="tab:blue",
            width=0.004,
        )
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
    points: Tensor | np.ndarray,
    labels: Tensor | np.ndarray,
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
    fig, axes = panel_grid(len(selections), ncols, panel_size=(3.4, 3.5))
    # few classes: distinct hues that are neither the green nor the red of the lines
    palette = ["tab:blue", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:cyan", "tab:olive", "tab:gray"]
    colors = palette if labels.max() < len(palette) else class_colors(int(labels.max()) + 1)
    markers = "osD^vP*X"
    for ax, (rule, (positives, negatives, note)) in zip(axes, selections.items()):
        if unit_circle:
            t = np.linspace(0, 2 * np.pi, 200)
            ax.plot(np.cos(t), np.sin(t), color="0.85", linewidth=0.8, zorder=0)
        for index, colour in ((positives, "tab:green"), (negatives, "tab:red")):
            for j in np.asarray(_numpy(torch.as_tensor(index)), dtype=int).reshape(-1):
                ax.plot(*zip(points[anchor], points[j]), color=colour, linewidth=1.6, zorder=1)
        for c in np.unique(labels):
            mask = labels == c
            ax.scatter(
                *points[mask].T,
                s=40,
                color=colors[c],
                marker=markers[c % len(markers)],
                edgecolors="k",
                linewidths=0.4,
                zorder=2,
            )
        ax.scatter(*points[anchor], s=160, facecolors="none", edgecolors="k", linewidths=1.5, zorder=3)
        if names is not None:
            for name, (x, y) in zip(names, points):
                ax.annotate(name, (x, y), fontsize=8, xytext=(4, 4), textcoords="offset points")
        ax.set_title(f"{rule}\n{note}" if note else rule, fontsize=9)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.margins(0.12)
    fig.tight_layout()
    return save_figure(fig, save)


def plot_decision_regions(
    support: Tensor | np.ndarray,
    support_labels: Tensor | np.ndarray,
    panels: Mapping[str, Mapping[str, Any]],
    queries: Tensor | np.ndarray | None = None,
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
            ax.scatter(*protos.T, c=colors[: len(protos)], marker="*", s=260, edgecolors="k", linewidths=1.0, zorder=4)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return save_figure(fig, save)


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
    fig, axes = panel_grid(len(panels), ncols or len(panels), panel_size=(panel_size, panel_size))
    for ax, (title, panel) in zip(axes, panels.items()):
        x, y = np.asarray(panel["x"]), np.asarray(panel["y"])
        handles, names = [], []
        for field in panel["fields"]:
            z = _numpy(field["z"])
            if z.shape != (len(y), len(x)):
                raise ValueError(f"panel {title!r}: z has shape {z.shape}, expected {(len(y), len(x))}")
            color = field.get("color", "tab:blue")
            lines = ax.contour(
                x,
                y,
                z,
                levels=field["levels"],
                colors=color,
                linestyles=field.get("linestyle", "solid"),
                linewidths=1.2,
            )
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
    fig.tight_layout()
    return save_figure(fig, save)


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
    fig, axes = panel_grid(len(panels), ncols, panel_size=(4.2, 4.3))
    for ax, (title, panel) in zip(axes, panels.items()):
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
                    ax.plot(
                        *np.stack([x[i], p[m]]).T,
                        color="tab:green" if w[i, m] < 0 else "tab:red",
                        linewidth=0.3 + 4.0 * (abs(w[i, m]) / top) ** emphasis,
                        alpha=0.5,
                        zorder=1,
                    )
        forces = [
            _numpy(panel[k]).astype(float) for k in ("embedding_forces", "proxy_forces") if panel.get(k) is not None
        ]
        longest = max((np.linalg.norm(f, axis=1).max() for f in forces), default=0.0) or 1.0
        for key, origin in (("embedding_forces", x), ("proxy_forces", p)):
            if panel.get(key) is None:
                continue
            f = _numpy(panel[key]).astype(float)
            _check_rows(key, f, rows=len(origin), cols=2)
            norms = np.linalg.norm(f, axis=1, keepdims=True)
            f = (
                np.where(norms > 0, f / np.where(norms > 0, norms, 1.0), 0.0)
                * arrow_length
                * (norms / longest) ** emphasis
            )
            ax.quiver(
                origin[:, 0],
                origin[:, 1],
                f[:, 0],
                f[:, 1],
                angles="xy",
                scale_units="xy",
                scale=1,
                width=0.006,
                color="0.2",
                zorder=4,
            )
        ax.scatter(*x.T, s=36, color=colors[labels], edgecolors="white", linewidths=0.5, zorder=3)
        ax.scatter(*p.T, s=220, marker="*", color=colors[proxy_labels], edgecolors="black", linewidths=0.8, zorder=5)
        ax.set_xlim(-1.45, 1.45)
        ax.set_ylim(-1.45, 1.45)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, save)
