"""The pair-based notebook's figures: pair-weight curves, the (s_n, s_p) plane, mined pairs."""

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from dmlkit import plots


def test_weight_curves_saves_one_panel_per_title(tmp_path):
    x = torch.linspace(-1, 1, 11)
    fig = plots.plot_weight_curves(
        {
            "negatives": {"soft": (x, torch.sigmoid(10 * x)), "hinge": (x, (x > 0).float())},
            "positives": {"soft": (x, torch.sigmoid(-x))},
        },
        vlines={"λ": 0.5},
        save=tmp_path / "w.png",
    )
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert (tmp_path / "w.png").stat().st_size > 0
    assert fig.axes[0].get_lines()[1].get_linestyle() == "--"  # hinge curves are dashed


def test_similarity_plane_draws_boundary_and_arrows(tmp_path):
    m, gamma = 0.4, 80.0

    def circle(s_n, s_p):
        a_p = torch.relu(1 + m - s_p).detach()
        a_n = torch.relu(s_n + m).detach()
        return gamma * (a_n * (s_n - m) - a_p * (s_p - (1 - m)))

    fig = plots.plot_similarity_plane(
        {"triplet": lambda s_n, s_p: gamma * (s_n - s_p + m), "circle": circle},
        resolution=41,
        arrows=4,
        marks={"ideal": (0.0, 1.0)},
        save=tmp_path / "p.png",
    )
    assert len(fig.axes) == 2
    assert (tmp_path / "p.png").exists()
    # the circle's zero level passes through (0, 1 - sqrt(2) m), its lowest point on s_n = 0
    assert abs(circle(torch.tensor(0.0), torch.tensor(1 - math.sqrt(2) * m))) < 1e-5


def test_pair_selection_one_panel_per_rule(tmp_path):
    angles = np.deg2rad([0, 30, 90, 200])
    points = np.stack([np.cos(angles), np.sin(angles)], 1)
    labels = np.array([0, 0, 1, 1])
    fig = plots.plot_pair_selection(
        points,
        labels,
        anchor=0,
        selections={"a": ([1], [2], "1 triplet"), "b": (torch.tensor([1]), torch.tensor([], dtype=torch.long), "")},
        names=["A0", "A1", "B0", "B1"],
        save=tmp_path / "s.png",
    )
    assert len(fig.axes) == 2
    lines = fig.axes[0].get_lines()
    assert len(lines) == 3  # unit circle + one positive + one negative line
    assert (tmp_path / "s.png").exists()


def test_invalid_inputs_raise_value_error():
    with pytest.raises(ValueError, match="at least one panel"):
        plots.plot_weight_curves({})
    with pytest.raises(ValueError, match="at least one loss"):
        plots.plot_similarity_plane({})
    points = np.zeros((3, 2))
    with pytest.raises(ValueError, match="anchor 5"):
        plots.plot_pair_selection(points, [0, 0, 1], anchor=5, selections={"a": ([], [], "")})
    with pytest.raises(ValueError, match=r"\(N, 2\) points"):
        plots.plot_pair_selection(np.zeros((3, 3)), [0, 0, 1], anchor=0, selections={"a": ([], [], "")})
    with pytest.raises(ValueError, match="at least one selection"):
        plots.plot_pair_selection(points, [0, 0, 1], anchor=0, selections={})
