"""plots.plot_leaderboard and plots.plot_grouped_scatter: one colour per family, bars from zero."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import to_rgba

from dmlkit import plots, zoo
from dmlkit.plots.comparisons import FAMILY_COLORS, family_colors

SUMMARY = {
    "A": {"map@r": 0.31, "map@r_std": 0.01, "recall@1": 0.62, "recall@1_std": 0.02, "worst_class_recall@1": 0.20},
    "B": {"map@r": 0.30, "map@r_std": 0.02, "recall@1": 0.60, "recall@1_std": 0.01, "worst_class_recall@1": 0.25},
    "C": {"map@r": 0.28, "map@r_std": 0.01, "recall@1": 0.59, "recall@1_std": 0.03, "worst_class_recall@1": 0.15},
}
FAMILIES = {"A": "proxy-based", "B": "pair-based", "C": "hyperbolic"}


def test_every_family_has_its_own_fixed_colour():
    assert set(zoo.FAMILIES) <= set(FAMILY_COLORS)
    assert len({tuple(c) for c in FAMILY_COLORS.values()}) == len(FAMILY_COLORS)
    # the colour does not depend on the order or company a figure meets the families in
    assert family_colors(["hyperbolic", "pair-based"])["pair-based"] == FAMILY_COLORS["pair-based"]
    other = family_colors(["pair-based", "not a family"])["not a family"]
    assert other not in FAMILY_COLORS.values()


def test_leaderboard_bars_start_at_zero_and_take_the_family_colours():
    fig = plots.plot_leaderboard(SUMMARY, families=FAMILIES)
    for ax in fig.axes:
        assert ax.get_xlim()[0] == 0.0
    bars = fig.axes[0].patches  # worst first (bottom) to best (top): C, B, A
    assert [to_rgba(b.get_facecolor(), alpha=1) for b in bars] == [
        to_rgba(FAMILY_COLORS[FAMILIES[n]], alpha=1) for n in ("C", "B", "A")
    ]
    assert np.isclose(bars[-1].get_width(), 31.0)  # in %, from 0


def test_scatter_and_leaderboard_agree_on_colours():
    scatter = plots.plot_grouped_scatter(
        [("", "ρ", "MAP@R", {FAMILIES[n]: ([1.0], [100 * SUMMARY[n]["map@r"]]) for n in ("A", "C", "B")})]
    )
    for collection, family in zip(scatter.axes[0].collections, ("proxy-based", "hyperbolic", "pair-based")):
        assert to_rgba(collection.get_facecolor()[0], alpha=1) == to_rgba(FAMILY_COLORS[family], alpha=1)
