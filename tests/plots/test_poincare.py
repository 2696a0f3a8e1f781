"""Tests for dmlkit.plots.plot_poincare_disk."""

from __future__ import annotations

import pytest
import torch

from dmlkit.plots import plot_poincare_disk


def test_draws_panels_and_saves(tmp_path):
    g = torch.Generator().manual_seed(0)
    points = torch.rand(40, 2, generator=g) * 1.5 - 0.75  # inside the ball of radius 1/sqrt(0.5)
    labels = torch.arange(40) % 5
    fig = plot_poincare_disk(
        {"a": (points, labels), "b": (points.numpy(), labels.numpy())},
        c=0.5,
        highlight=[0, 3, 9],
        legend_names={"a": {0: "zero", 3: "three"}},
        annotations={"b": [(0.1, 0.2, "mid")]},
        save=tmp_path / "disk.png",
    )
    assert (tmp_path / "disk.png").stat().st_size > 0
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["a", "b"]
    legend = axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["zero", "three"]  # label 9 absent: skipped
    assert axes[1].get_legend() is None


def test_invalid_arguments():
    points, labels = torch.zeros(3, 2), torch.zeros(3, dtype=torch.long)
    with pytest.raises(ValueError, match="at least one panel"):
        plot_poincare_disk({}, c=1.0)
    with pytest.raises(ValueError, match="c must be a positive"):
        plot_poincare_disk({"a": (points, labels)}, c=0.0)
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        plot_poincare_disk({"a": (torch.zeros(3, 3), labels)}, c=1.0)
    with pytest.raises(ValueError, match="outside the ball"):
        plot_poincare_disk({"a": (torch.ones(3, 2), labels)}, c=1.0)


def test_labelled_annotations_are_coloured_crosses_named_in_the_legend():
    g = torch.Generator().manual_seed(1)
    points = torch.rand(60, 2, generator=g) - 0.5
    labels = torch.arange(60) % 3
    fig = plot_poincare_disk(
        {"groups": (points, labels)},
        c=1.0,
        highlight=[0, 1, 2],
        legend_names={"groups": {0: "Latin", 1: "Greek", 2: "Cyrillic"}},
        annotations={"groups": [(0.1, 0.0, "Latin", 0), (0.0, 0.1, "Greek", 1), (0.0, 0.0, "all")]},
        marker_name="midpoint of the script",
    )
    ax = next(ax for ax in fig.axes if ax.get_title() == "groups")
    texts = [t.get_text() for t in ax.texts]
    assert "all" in texts and "Latin" not in texts and "Greek" not in texts  # no text over the crosses
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["Latin", "Greek", "Cyrillic", "midpoint of the script"]
    with pytest.raises(ValueError, match=r"\(x, y, text\) or \(x, y, text, label\)"):
        plot_poincare_disk({"a": (points, labels)}, c=1.0, annotations={"a": [(0.0, 0.0)]})


def test_crosses_close_together_get_an_enlarged_view():
    g = torch.Generator().manual_seed(2)
    points = (torch.rand(300, 2, generator=g) - 0.5) * 1.2  # c = 0.1: well inside the reach circle
    labels = torch.arange(300) % 4
    crosses = [(0.30 + 0.05 * k, 0.20 - 0.03 * k, f"g{k}", k) for k in range(4)]  # a few pixels apart
    fig = plot_poincare_disk(
        {"groups": (points, labels)},
        c=0.1,
        highlight=[0, 1, 2, 3],
        circles=(1.0, 2.0, 4.6),
        legend_names={"groups": {k: f"g{k}" for k in range(4)}},
        annotations={"groups": crosses},
    )
    ax = next(ax for ax in fig.axes if ax.get_title() == "groups")
    insets = [child for child in ax.child_axes]
    assert len(insets) == 1 and insets[0].get_title().startswith("crosses, ×")
    assert len(insets[0].collections) == 4  # one cross per group, nothing else
    apart = [(-1.0 + 0.5 * k, 0.0, f"g{k}", k) for k in range(4)]  # spread over the disk: no inset needed
    fig = plot_poincare_disk({"groups": (points, labels)}, c=0.1, highlight=[0, 1], annotations={"groups": apart})
    assert not next(ax for ax in fig.axes if ax.get_title() == "groups").child_axes
