"""Curves: training histories, singular-value spectra, ρ against a metric, pair weights,
scaling, metric trajectories and sweeps."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from torch import Tensor

from dmlkit.plots.figure import _numpy, save_figure

__all__ = [
    "plot_training_curves",
    "plot_spectrum",
    "plot_rho_vs_metric",
    "plot_weight_curves",
    "plot_scaling",
    "plot_metric_trajectories",
    "plot_sweep",
]


def plot_training_curves(
    histories: Mapping[str, Any], metric: str | None = None, save: str | os.PathLike | None = None
) -> Figure:
    """Loss against step, one panel per run, each panel on its own y-axis (losses of different
    methods have different scales and are not comparable); ``histories[name]`` is a
    :class:`dmlkit.train.History`. With ``metric``, a last panel draws that evaluation metric
    against step for every run on one shared axis (the same metric, so comparable)."""
    from dmlkit.plots.figure import panel_grid

    names = list(histories)
    if not names:
        raise ValueError("plot_training_curves needs at least one history")
    count = len(names) + (1 if metric else 0)
    fig, axes = panel_grid(count, ncols=min(count, 4), panel_size=(3.3, 2.7))
    colours = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    for i, name in enumerate(names):
        history, ax = histories[name], axes[i]
        ax.plot(history.steps, history.losses, color=colours(i % colours.N))
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel("training loss", fontsize=8)
        ax.tick_params(labelsize=7)
    if metric:
        ax = axes[-1]
        for i, name in enumerate(names):
            points = [(e["step"], e[metric]) for e in histories[name].evaluations if metric in e]
            if points:
                ax.plot(*zip(*points), marker="o", color=colours(i % colours.N), label=name)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel(metric, fontsize=8)
        ax.set_title(f"held-out {metric} (one shared axis)", fontsize=9)
        ax.tick_params(labelsize=7)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.suptitle(
        "training loss, one panel per run, each on its own y-axis\n(loss values of different methods are not comparable)",
        fontsize=9,
    )
    fig.tight_layout()
    return save_figure(fig, save)


def plot_spectrum(
    spectra: Mapping[str, Tensor | np.ndarray],
    mode: int = 1,
    save: str | os.PathLike | None = None,
    of: str = "training-class embeddings",
) -> Figure:
    """The normalised singular values that ρ@``mode`` compares with the uniform distribution
    (:func:`dmlkit.analysis.spectral_decay`), per method, log scale.

    ``spectra[name]`` comes from :func:`dmlkit.analysis.singular_value_spectrum` (all ``D`` values
    of the row-normalised, uncentred embeddings, largest first): the leading ``D - 1`` are kept
    (the smallest left out, as scikit-learn's ``TruncatedSVD(n_components=D-1)`` in Roth et al.'s
    code), of those the ``mode - 1`` largest left out, and the rest normalised to sum to 1. ``of``
    names the embeddings in the title. A flat curve is an uncompressed space (ρ near 0); a steep
    one a compressed space.
    """
    fig = Figure(figsize=(5.8, 4.0))
    ax = fig.add_subplot()
    dims = set()
    for name, values in spectra.items():
        values = _numpy(values)
        dims.add(len(values))
        values = values[mode - 1 : max(len(values) - 1, mode)]
        ax.plot(np.arange(mode, mode + len(values)), values / values.sum(), label=name)
    d = dims.pop() if len(dims) == 1 else None
    kept = f"k = {mode}..{d - 1} of D = {d}" if d else f"k = {mode}..D−1"
    first = "the largest included" if mode == 1 else f"the {mode - 1} largest left out"
    ax.set_yscale("log")
    ax.set_xlabel(f"k (the values of ρ@{mode}: {kept}; {first}, the smallest left out)", fontsize=8)
    ax.set_ylabel(r"$\sigma_k \,/\, \Sigma_j\, \sigma_j$ (sum over the same k)", fontsize=9)
    ax.set_title(f"normalised singular values of the L2-normalised {of}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, save)


def _repel_offsets(xy: np.ndarray, size: tuple[float, float], gap: float = 2.0) -> list[tuple[float, float]]:
    """Offsets (display points) for one small label per point in ``xy`` (display points), chosen
    greedily so that no label box overlaps another label or a marker: the first free spot among
    eight directions at growing distances."""
    w, h = size
    placed: list[tuple[float, float, float, float]] = []
    markers = [(x - 3.5, y - 3.5, x + 3.5, y + 3.5) for x, y in xy]

    def free(box: tuple[float, float, float, float]) -> bool:
        return not any(
            box[0] < o[2] + gap and o[0] < box[2] + gap and box[1] < o[3] + gap and o[1] < box[3] + gap
            for o in placed + markers
        )

    offsets = []
    directions = [(1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1)]
    for x, y in xy:
        choice = (5.0, 4.0)
        for radius in (5.0, 9.0, 14.0, 20.0, 28.0, 38.0):
            spots = [(dx * radius, dy * radius) for dx, dy in directions]
            hit = next(
                (
                    (ox, oy)
                    for ox, oy in spots
                    if free(
                        (x + ox - (w if ox < 0 else 0), y + oy - h / 2, x + ox + (0 if ox < 0 else w), y + oy + h / 2)
                    )
                ),
                None,
            )
            if hit is not None:
                choice = hit
                break
        ox, oy = choice
        placed.append((x + ox - (w if ox < 0 else 0), y + oy - h / 2, x + ox + (0 if ox < 0 else w), y + oy + h / 2))
        offsets.append(choice)
    return offsets


def plot_rho_vs_metric(
    points: Mapping[str, tuple[float, float]],
    metric_name: str = "held-out MAP@R",
    save: str | os.PathLike | None = None,
) -> Figure:
    """Scatter of spectral decay ρ (x) against a metric (y), one numbered point per run.

    Each point carries a number, placed beside it where it overlaps no other number or marker
    (:func:`_repel_offsets`), and the legend beside the axes says which run each number is — so
    that the labels stay readable however close the runs lie."""
    names = list(points)
    fig = Figure(figsize=(7.4, 4.2))
    ax = fig.add_axes((0.11, 0.13, 0.52, 0.8))
    colours = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    for i, name in enumerate(names):
        rho, value = points[name]
        ax.scatter(rho, value, color=colours(i % colours.N), s=30, zorder=3, label=f"{i + 1}  {name}")
    ax.set_xlabel("spectral decay ρ@1 (larger = more compressed)")
    ax.set_ylabel(metric_name)
    ax.margins(0.12)
    if names:
        ax.get_xlim(), ax.get_ylim()  # settle the autoscaled limits, so that data map to display points
        xy = ax.transData.transform(np.array([points[n] for n in names], dtype=float)) * 72.0 / fig.dpi
        width = 6.0 * len(str(len(names))) + 2.0
        for i, (ox, oy) in enumerate(_repel_offsets(xy, (width, 9.0))):
            ax.annotate(
                str(i + 1),
                np.asarray(points[names[i]], dtype=float),
                xytext=(ox, oy),
                textcoords="offset points",
                fontsize=8,
                ha="right" if ox < 0 else "left",
                va="center",
                arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.5"} if abs(ox) > 9 or abs(oy) > 9 else None,
            )
        ax.legend(
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            fontsize=8,
            frameon=False,
            handletextpad=0.3,
            borderaxespad=0.0,
        )
    return save_figure(fig, save)


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
            ax.annotate(
                label,
                (x, 1.0),
                xycoords=("data", "axes fraction"),
                fontsize=8,
                xytext=(2, -10),
                textcoords="offset points",
                color="0.4",
            )
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
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
    # more runs than the default cycle's 10 colours: tab20, so no two lines share a colour
    colors = matplotlib.colormaps["tab20"].colors if len(histories) > 10 else [None] * len(histories)
    for (name, history), color in zip(histories.items(), colors):
        for ax, metric in zip(axes, metrics):
            points = [(e["step"], e[metric]) for e in history.evaluations if metric in e]
            if points:
                style = "--" if "p_switch" in name else "-"
                ax.plot(*zip(*points), style, marker="o", markersize=3, label=name, color=color)
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
