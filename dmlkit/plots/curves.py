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
    spectra: Mapping[str, Tensor | np.ndarray], mode: int = 1, save: str | os.PathLike | None = None
) -> Figure:
    """The normalised singular values that ρ@``mode`` compares with the uniform distribution
    (:func:`dmlkit.analysis.spectral_decay`), per method, log scale.

    ``spectra[name]`` comes from :func:`dmlkit.analysis.singular_value_spectrum` (all ``D`` values):
    the leading ``D - 1`` are kept, of those the ``mode - 1`` largest left out. A flat curve is an
    uncompressed space (ρ near 0); a steep one a compressed space.
    """
    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.add_subplot()
    for name, values in spectra.items():
        values = _numpy(values)
        values = values[mode - 1 : max(len(values) - 1, mode)]
        ax.plot(np.arange(mode, mode + len(values)), values / values.sum(), label=name)
    ax.set_yscale("log")
    ax.set_xlabel(f"singular value index (the values of ρ@{mode})")
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
    ax.set_xlabel("spectral decay ρ@1 (larger = more compressed)")
    ax.set_ylabel(metric_name)
    fig.tight_layout()
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
