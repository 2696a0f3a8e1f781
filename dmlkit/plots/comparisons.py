"""Comparisons across methods: scatter plots grouped by family and the leaderboard.

Every figure that colours methods by their family uses :data:`FAMILY_COLORS`, so a family has
one colour in the leaderboard's bars and in every scatter plot (notebook 07 draws both)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from dmlkit.plots.figure import _METRIC_NAMES, save_figure

__all__ = ["FAMILY_COLORS", "family_colors", "plot_grouped_scatter", "plot_leaderboard"]

_TAB10 = colormaps["tab10"](np.arange(10))
#: One colour per family of methods (:data:`dmlkit.zoo.FAMILIES`, plus notebook 00's
#: ``"introduction"`` and notebook 08's ``"self-supervised"``), the same in every figure; tab10's colours, fixed by family, not by the
#: order in which a figure happens to meet the families.
FAMILY_COLORS: dict[str, tuple[float, float, float, float]] = {
    family: tuple(float(c) for c in _TAB10[i])
    for i, family in enumerate(
        (
            "pair-based",
            "proxy-based",
            "AP ranking",
            "SNR distance",
            "hyperbolic",
            "few-shot",
            "introduction",
            "self-supervised",
        )
    )
}


def family_colors(groups: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
    """The colour of each group: :data:`FAMILY_COLORS` for a family, and for any other group
    (a method name, ``""``) one of tab10's colours that no family uses, in order of appearance."""
    spare = [tuple(float(c) for c in _TAB10[i]) for i in range(len(FAMILY_COLORS), 10)]
    colors: dict[str, tuple[float, float, float, float]] = {}
    others = 0
    for group in dict.fromkeys(groups):
        if group in FAMILY_COLORS:
            colors[group] = FAMILY_COLORS[group]
        else:
            colors[group] = spare[others % len(spare)]
            others += 1
    return colors


def _family_order(groups: Iterable[str]) -> list[str]:
    """The distinct groups, families first in :data:`FAMILY_COLORS` order, then the others as met,
    so that every figure's legend lists the families in one order."""
    distinct = list(dict.fromkeys(groups))
    return [f for f in FAMILY_COLORS if f in distinct] + [g for g in distinct if g not in FAMILY_COLORS]


def plot_grouped_scatter(
    panels: Sequence[tuple[str, str, str, Mapping[str, tuple[Sequence[float], Sequence[float]]]]],
    save: str | os.PathLike | None = None,
) -> Figure:
    """Side-by-side scatter panels, points coloured by group (e.g. the family of each method).

    Each panel is ``(title, xlabel, ylabel, {group: (xs, ys)})``; a group keeps its colour across
    panels (a family its :data:`FAMILY_COLORS` colour) and appears once in the legend.
    """
    if not panels:
        raise ValueError("no panel to draw")
    groups = _family_order(g for _, _, _, data in panels for g in data)
    colors = family_colors(groups)
    fig = Figure(figsize=(5 * len(panels), 4.2))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, xlabel, ylabel, data) in zip(axes, panels):
        for group, (xs, ys) in data.items():
            ax.scatter(xs, ys, s=22, color=colors[group], label=group, alpha=0.85)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", linestyle="", color=colors[g], alpha=0.85) for g in groups]
    fig.legend(handles, groups, loc="lower center", ncol=min(len(groups), 7), fontsize=8, frameon=False)
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
    first by the first metric, one panel per metric, in %; bars coloured by family
    (:data:`FAMILY_COLORS`). Every value axis starts at 0, so a bar's length is its value and
    the gaps between methods look as large as they are. ``worst`` (a key of the summary) is
    drawn as a black diamond on the panel of ``"recall@1"``."""
    names = sorted(summary, key=lambda n: summary[n].get(metrics[0], -math.inf))
    groups = _family_order((families or {}).get(n, "") for n in names)
    colors = family_colors(groups)
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
        tops = (means + np.nan_to_num(stds))[np.isfinite(means)]
        ax.set_xlim(0.0, min(100.0, tops.max() + 3) if tops.size else 100.0)
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
