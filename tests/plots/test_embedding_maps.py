"""Tests for the legends of dmlkit.plots.umap_grid (maps coloured by group)."""

from __future__ import annotations

import numpy as np
import pytest

from dmlkit import plots


def _maps():
    rng = np.random.default_rng(0)
    coords = rng.normal(size=(30, 2))
    labels = np.arange(30) % 4
    return {"a": (coords, labels), "b": (coords[::-1], labels)}


def _legend_texts(fig):
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_umap_grid_legend_names_each_highlighted_group_once():
    fig = plots.umap_grid(_maps(), ncols=2, highlight=[0, 2], legend_names={0: "Latin", 1: "Greek", 2: "Cyrillic"})
    assert _legend_texts(fig) == ["Latin", "Cyrillic", "other"]
    assert all(ax.get_legend() is None for ax in fig.axes)  # one legend for the grid, not one per panel


def test_umap_grid_legend_without_highlight_names_every_label_given():
    fig = plots.umap_grid(_maps(), legend_names={0: "Latin", 1: "Greek", 2: "Cyrillic", 3: "symbols"})
    assert _legend_texts(fig) == ["Latin", "Greek", "Cyrillic", "symbols"]
    assert not plots.umap_grid(_maps()).legends  # no names: no legend, as before


def test_umap_grid_legend_colours_match_the_points():
    fig = plots.umap_grid(_maps(), highlight=[3], legend_names={3: "symbols"})
    handle = fig.legends[0].legend_handles[0]
    np.testing.assert_allclose(np.asarray(handle.get_color()), plots.class_colors(4)[3])


def test_umap_grid_rejects_an_empty_legend():
    with pytest.raises(ValueError, match="legend_names is empty"):
        plots.umap_grid(_maps(), legend_names={})
