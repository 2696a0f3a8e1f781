"""Notebook 08's explorer: NT-Xent on four images with two views each, on the unit circle.

Image ``i``'s first view sits at ``FIRST_VIEWS[i]`` degrees; the second views of images 1–3 at
``SECOND_VIEWS``; the second view of image 0 — the one the student moves — at ``angle`` degrees
from its first view. Each view's positive is its twin, its negatives the six other views
(SimCLR's Eq. 1 with N = 4). The readout gives the loss of the anchor ``0a`` and of the whole
batch, the probability the softmax gives the positive, and the alignment and uniformity of the
eight views (Wang & Isola 2020). The same points are the notebook's worked example.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure

from dmlkit.analysis import alignment, uniformity
from dmlkit.losses.self_supervised import NTXentLoss

__all__ = ["FIRST_VIEWS", "SECOND_VIEWS", "worked_views", "ntxent_terms", "draw_ntxent"]

#: Angles (degrees) of the first view of images 0–3.
FIRST_VIEWS = (0.0, 90.0, 180.0, 270.0)
#: Angles of the second view of images 0–3 (image 0's is the explorer's ``angle``; 30° here).
SECOND_VIEWS = (30.0, 120.0, 150.0, 300.0)


def _points(angles: list[float]) -> torch.Tensor:
    radians = torch.tensor(angles, dtype=torch.float64) * math.pi / 180
    return torch.stack([torch.cos(radians), torch.sin(radians)], dim=1)


def worked_views(angle: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(first, second)`` views ``(4, 2)`` of the worked example; ``angle`` moves image 0's
    second view (degrees from its first view)."""
    second = list(SECOND_VIEWS)
    if angle is not None:
        second[0] = FIRST_VIEWS[0] + angle
    return _points(list(FIRST_VIEWS)), _points(second)


def ntxent_terms(first: torch.Tensor, second: torch.Tensor, temperature: float) -> dict[str, float]:
    """The anchor ``0a``'s loss and positive probability, and the batch's NT-Xent."""
    z = torch.cat([first, second])
    n = first.shape[0]
    logits = (z @ z.T) / temperature
    logits.fill_diagonal_(float("-inf"))
    p = torch.softmax(logits[0], dim=0)
    return {
        "p_positive": float(p[n]),
        "anchor_loss": float(-torch.log(p[n])),
        "loss": float(NTXentLoss(temperature).two_views(first, second)),
    }


def draw_ntxent(temperature: float = 0.5, angle: float = 30.0) -> Figure:
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    first, second = worked_views(angle)
    terms = ntxent_terms(first, second, temperature)
    z = torch.cat([first, second])
    logits = (z @ z.T)[0] / temperature
    logits[0] = float("-inf")
    probabilities = torch.softmax(logits, 0).numpy()
    names = [f"{i}a" for i in range(4)] + [f"{i}b" for i in range(4)]
    fig = Figure(figsize=(9.0, 3.9))
    circle, bars = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
    t = np.linspace(0, 2 * np.pi, 200)
    circle.plot(np.cos(t), np.sin(t), color="0.8")
    for i in range(4):
        for view, marker in ((first, "o"), (second, "s")):
            x, y = view[i].tolist()
            circle.scatter(x, y, color=f"C{i}", marker=marker, s=70, edgecolor="k", zorder=3)
        for view, suffix in ((first, "a"), (second, "b")):
            x, y = view[i].tolist()
            circle.annotate(f"{i}{suffix}", (1.2 * x, 1.2 * y), ha="center", va="center", fontsize=8)
    circle.plot(*zip(first[0].tolist(), second[0].tolist()), color="C0", lw=2)
    circle.set(xlim=(-1.45, 1.45), ylim=(-1.45, 1.45), aspect="equal", title="two views of four images")
    circle.set_xticks([])
    circle.set_yticks([])
    colors = ["0.7"] + ["C3"] * 3 + ["C2"] + ["C3"] * 3
    bars.bar(names[1:], probabilities[1:], color=colors[1:])
    bars.set(
        ylim=(0, 1),
        xlabel="candidate for the anchor 0a (green: its positive 0b)",
        ylabel="softmax probability",
        title=f"τ = {temperature:g}",
    )
    fig.tight_layout()
    print(
        f"angle {angle:g}°, τ = {temperature:g}: p(0b | 0a) = {terms['p_positive']:.3f}, "
        f"anchor loss = {terms['anchor_loss']:.3f}, NT-Xent of the batch = {terms['loss']:.3f}; "
        f"alignment {alignment(first, second):.3f}, uniformity {uniformity(z):.3f}"
    )
    return fig
