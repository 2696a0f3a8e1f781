"""plots.plot_rho_vs_metric keeps its labels apart; plots.plot_training_curves gives each run its own axis."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg

from dmlkit import plots
from dmlkit.train import History


def test_rho_vs_metric_numbers_every_point_without_overlapping_labels():
    points = {f"method {i}": (0.6 + 0.005 * i, 70.0 + 0.1 * (i % 3)) for i in range(12)}  # a tight cluster
    fig = plots.plot_rho_vs_metric(points, metric_name="held-out MAP@R (%)")
    ax = fig.axes[0]
    renderer = FigureCanvasAgg(fig).get_renderer()
    labels = [t for t in ax.texts]
    assert [t.get_text() for t in labels] == [str(i) for i in range(1, 13)]
    boxes = [t.get_window_extent(renderer) for t in labels]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), "two point labels overlap"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [f"{i + 1}  method {i}" for i in range(12)]


def test_training_curves_one_axis_per_run():
    histories = {}
    for i, name in enumerate(("a", "b", "c")):
        history = History()
        history.steps = list(range(10))
        history.losses = list((10.0**i) * np.exp(-np.arange(10) / 3))
        histories[name] = history
    fig = plots.plot_training_curves(histories)
    visible = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in visible] == ["a", "b", "c"]
    tops = [ax.get_ylim()[1] for ax in visible]
    assert tops[2] > 50 * tops[0], "each run is drawn on its own y-scale"
