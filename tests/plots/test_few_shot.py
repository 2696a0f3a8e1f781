"""The few-shot notebook's figures: decision regions of prototypes and episode maps."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from dmlkit import plots
from dmlkit.few_shot import HyperbolicPrototypicalNetworks, PrototypicalNetworks


def test_decision_regions_one_panel_per_head_and_ball_mask(tmp_path):
    support = torch.tensor([[0.3, 0.0], [0.4, 0.1], [-0.3, 0.2], [-0.2, 0.3]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    seen = {}

    def hyperbolic(grid):
        seen["max_norm"] = float(grid.norm(dim=1).max())
        return HyperbolicPrototypicalNetworks(c=1.0)(support, labels, grid).argmax(1)

    panels = {
        "euclidean": {
            "predict": lambda g: PrototypicalNetworks()(support, labels, g).argmax(1),
            "prototypes": PrototypicalNetworks().prototypes(support, labels),
        },
        "ball": {"predict": hyperbolic, "ball_radius": 1.0},
    }
    fig = plots.plot_decision_regions(
        support,
        labels,
        panels,
        queries=support[:1],
        extent=(-1.1, 1.1, -1.1, 1.1),
        resolution=40,
        save=tmp_path / "r.png",
    )
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert (tmp_path / "r.png").stat().st_size > 0
    assert seen["max_norm"] < 1.0  # grid points outside the ball are never classified
    with pytest.raises(ValueError, match="at least one panel"):
        plots.plot_decision_regions(support, labels, {})


def test_episode_maps_grid(tmp_path):
    rng = np.random.default_rng(0)
    panel = {
        "coords": rng.normal(size=(9, 2)),
        "labels": torch.tensor([0, 0, 1, 1, 0, 1, 1, 0, 1]),
        "roles": ["support"] * 4 + ["query"] * 3 + ["prototype"] * 2,
        "correct": [True] * 4 + [True, False, True] + [True] * 2,
    }
    fig = plots.plot_episode_maps({"a": panel, "b": panel, "c": panel}, ncols=2, suptitle="x", save=tmp_path / "e.png")
    assert len(fig.axes) == 4 and not fig.axes[3].axison  # the empty fourth cell is hidden
    assert (tmp_path / "e.png").stat().st_size > 0
    with pytest.raises(ValueError, match="at least one panel"):
        plots.plot_episode_maps({})
