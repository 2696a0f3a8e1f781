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
