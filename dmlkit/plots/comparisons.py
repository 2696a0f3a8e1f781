"""Comparisons across methods: scatter plots grouped by family and the leaderboard."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from dmlkit.plots.figure import _METRIC_NAMES, _group_colors, save_figure

__all__ = ["plot_grouped_scatter", "plot_leaderboard"]


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
        low = min(
            finite.min() if finite.size else 0, np.nanmin(worst_values) if worst and metric == "recall@1" else np.inf
        )
        ax.set_xlim(max(0.0, low - 5), min(100.0, np.nanmax(means + np.nan_to_num(stds)) + 3))
    axes[0].set_yticks(y, names, fontsize=8)
    if families:
        from matplotlib.patches import Patch

        fig.legend(
            [Patch(color=colors[g]) for g in groups],
            groups,
            loc="lower center",
            ncol=min(len(groups), 6),
            fontsize=8,
            frameon=False,
        )
        fig.tight_layout(rect=(0, 0.06, 1, 1))
    else:
        fig.tight_layout()
    return save_figure(fig, save)
