"""Notebook 02's proxy explorer: the softmax over proxies and the force on one embedding.

Five unit-norm class proxies on the circle, one embedding ``x`` at ``angle`` degrees from its
own proxy (class 0). The loss is the normalised softmax over the proxies' cosines with scale
``s`` (Zhai & Wu's temperature is 1/s) and an additive margin ``m`` on the true class (CosFace,
Wang et al. 2018; ``m = 0`` is Zhai & Wu's normalised softmax and, up to its denominator,
ProxyNCA):
``L = -log( e^{s(cos θ_0 - m)} / (e^{s(cos θ_0 - m)} + Σ_{c≠0} e^{s cos θ_c}) )``.
The force is ``-∂L/∂x`` on the circle (its tangential part: the embedding is normalised).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure

__all__ = ["PROXY_ANGLES", "draw_proxy_softmax", "proxy_softmax"]

#: The proxies' angles in degrees; class 0 is the embedding's own.
PROXY_ANGLES = (0.0, 60.0, 130.0, 200.0, 280.0)


def proxy_softmax(angle: float, scale: float, margin: float) -> tuple[np.ndarray, float, np.ndarray]:
    """``(probabilities over the proxies, loss, tangential force)`` for the embedding at ``angle``."""
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    proxies = torch.tensor([[math.cos(math.radians(a)), math.sin(math.radians(a))] for a in PROXY_ANGLES])
    x = torch.tensor([math.cos(math.radians(angle)), math.sin(math.radians(angle))], requires_grad=True)
    cosines = proxies.double() @ x.double()
    logits = scale * (cosines - margin * torch.nn.functional.one_hot(torch.tensor(0), len(PROXY_ANGLES)))
    loss = torch.nn.functional.cross_entropy(logits.unsqueeze(0), torch.tensor([0]))
    loss.backward()
    force = -x.grad.numpy()
    radial = x.detach().numpy()
    tangential = force - (force @ radial) * radial
    return torch.softmax(logits.detach(), 0).numpy(), float(loss.detach()), tangential


def draw_proxy_softmax(angle: float = 25.0, scale: float = 16.0, margin: float = 0.1) -> Figure:
    probabilities, loss, force = proxy_softmax(angle, scale, margin)
    fig = Figure(figsize=(8.5, 3.8))
    disk, bars = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.2]})
    t = np.linspace(0, 2 * np.pi, 200)
    disk.plot(np.cos(t), np.sin(t), color="0.8")
    colors = [f"C{i}" for i in range(len(PROXY_ANGLES))]
    for i, a in enumerate(PROXY_ANGLES):
        disk.scatter(
            math.cos(math.radians(a)),
            math.sin(math.radians(a)),
            marker="*",
            s=180,
            color=colors[i],
            edgecolor="k",
            zorder=3,
        )
        disk.annotate(
            f"proxy {i}",
            (1.18 * math.cos(math.radians(a)), 1.18 * math.sin(math.radians(a))),
            ha="center",
            va="center",
            fontsize=8,
        )
    x = np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
    disk.scatter(*x, color=colors[0], s=60, edgecolor="k", zorder=4)
    length = np.linalg.norm(force)
    if length > 0:
        arrow = 0.6 * force / max(length, 1e-12) * min(1.0, length)
        disk.annotate("", xy=x + arrow, xytext=x, arrowprops={"arrowstyle": "->", "color": "k", "lw": 2})
    disk.set(xlim=(-1.45, 1.45), ylim=(-1.45, 1.45), aspect="equal", title="embedding (class 0) and its force")
    disk.set_xticks([])
    disk.set_yticks([])
    bars.bar([f"{i}" for i in range(len(PROXY_ANGLES))], probabilities, color=colors)
    bars.set(ylim=(0, 1), xlabel="proxy", ylabel="softmax probability", title=f"scale {scale:g}, margin {margin:g}")
    fig.tight_layout()
    print(
        f"angle {angle:g}°: p(own class) = {probabilities[0]:.3f}, loss = {loss:.3f}, "
        f"|force| = {length:.3f} (towards {'its proxy' if force @ np.array([-x[1], x[0]]) * angle < 0 else 'away'})"
    )
    return fig
