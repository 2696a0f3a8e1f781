"""Notebook 05's Poincaré-disk explorer: two points, the geodesic between them, their distances.

Points are given by polar coordinates inside the ball of curvature ``-c`` (radius ``1/√c``):
``r`` is the fraction of that radius. The geodesic is ``γ(t) = x ⊕ (t ⊗ ((−x) ⊕ y))`` (Möbius
operations of the kit); the dashed circle is the largest radius the clipped features can reach,
``tanh(√c · clip_r)/√c`` (Guo et al., CVPR 2022, feature clipping before ``expmap0``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure

from dmlkit.geometry.poincare.operations import dist, dist0, mobius_add, mobius_scalar_mul

__all__ = ["draw_poincare", "point", "reach"]


def point(r: float, degrees: float, c: float) -> torch.Tensor:
    """The point at fraction ``r`` of the ball's radius ``1/√c``, at angle ``degrees``."""
    if not 0 <= r < 1:
        raise ValueError(f"r is a fraction of the ball's radius in [0, 1), got {r}")
    radius = r / math.sqrt(c)
    return torch.tensor(
        [radius * math.cos(math.radians(degrees)), radius * math.sin(math.radians(degrees))], dtype=torch.float64
    )


def reach(clip_r: float, c: float) -> float:
    """The largest norm of ``expmap0`` of a feature clipped to Euclidean norm ``clip_r``."""
    return math.tanh(math.sqrt(c) * clip_r) / math.sqrt(c)


def draw_poincare(
    r1: float = 0.5, angle1: float = 20.0, r2: float = 0.9, angle2: float = 140.0, c: float = 1.0, clip_r: float = 2.3
) -> Figure:
    if not c > 0:
        raise ValueError(f"the curvature c must be positive, got {c}")
    x, y = point(r1, angle1, c), point(r2, angle2, c)
    t = torch.linspace(0, 1, 100, dtype=torch.float64)[:, None]
    direction = mobius_add(-x, y, c)
    geodesic = mobius_add(x.expand(100, 2), mobius_scalar_mul(t, direction.expand(100, 2), c), c).numpy()
    radius = 1 / math.sqrt(c)
    fig = Figure(figsize=(4.6, 4.6))
    ax = fig.subplots()
    u = np.linspace(0, 2 * np.pi, 300)
    ax.plot(radius * np.cos(u), radius * np.sin(u), color="k", linewidth=1)
    reachable = reach(clip_r, c)
    ax.plot(
        reachable * np.cos(u),
        reachable * np.sin(u),
        color="tab:purple",
        linestyle="--",
        linewidth=1,
        label=f"reach of clip_r={clip_r:g}",
    )
    ax.plot(geodesic[:, 0], geodesic[:, 1], color="tab:blue", label="geodesic")
    ax.plot([x[0], y[0]], [x[1], y[1]], color="0.6", linestyle=":", label="Euclidean segment")
    for p, name in ((x, "x"), (y, "y")):
        ax.scatter(*p.numpy(), s=40, zorder=3, color="tab:orange")
        ax.annotate(name, p.numpy(), textcoords="offset points", xytext=(5, 5))
    ax.scatter([0], [0], marker="+", color="k")
    ax.set(
        xlim=(-1.05 * radius, 1.05 * radius),
        ylim=(-1.05 * radius, 1.05 * radius),
        aspect="equal",
        title=f"Poincaré disk, c = {c:g}",
    )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    d = float(dist(x, y, c))
    print(
        f"d(x, y) = {d:.3f}, d(0, x) = {float(dist0(x, c)):.3f}, d(0, y) = {float(dist0(y, c)):.3f}, "
        f"Euclidean |x - y| = {float((x - y).norm()):.3f}, reach of the clipped features = "
        f"{reachable / radius:.3f} of the radius"
    )
    return fig
