"""Notebook 06's episode explorer: a 3-way 1-shot episode in the plane, with unlabelled points.

Three Gaussian classes (seeded); one labelled support point per class — class 0's can be moved
— and unlabelled points of the three classes. The prototypes are Snell et al.'s class means
(ProtoNet) refined by ``steps`` soft k-means steps with the unlabelled points (Ren et al., ICLR
2018, Eq. 4, the kit's :class:`~dmlkit.few_shot.SemiSupervisedPrototypes`); the background
shows the decision regions (nearest prototype, squared Euclidean) and the readout the accuracy
on held-back queries of the same classes.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from dmlkit.few_shot.semi_supervised import SemiSupervisedPrototypes

__all__ = ["CENTRES", "draw_episode", "episode_prototypes"]

CENTRES = torch.tensor([[-1.5, 0.0], [1.5, 0.4], [0.0, 1.8]], dtype=torch.float64)
_G = torch.Generator().manual_seed(0)
SUPPORT = CENTRES + 0.35 * torch.randn(3, 2, generator=_G, dtype=torch.float64)
UNLABELLED = CENTRES.repeat_interleave(6, 0) + 0.55 * torch.randn(18, 2, generator=_G, dtype=torch.float64)
QUERY = CENTRES.repeat_interleave(20, 0) + 0.55 * torch.randn(60, 2, generator=_G, dtype=torch.float64)
QUERY_LABELS = torch.arange(3).repeat_interleave(20)


def episode_prototypes(support0: tuple[float, float], steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(support, prototypes)`` with class 0's support point at ``support0`` after ``steps``
    refinement steps (0: the plain class means)."""
    support = SUPPORT.clone()
    support[0] = torch.tensor(support0, dtype=torch.float64)
    labels = torch.arange(3)
    if steps == 0:
        return support, support.clone()
    refiner = SemiSupervisedPrototypes(distractor="none", num_steps=int(steps))
    return support, refiner.refine(support, labels, UNLABELLED)


def draw_episode(x0: float = -0.2, y0: float = 0.9, steps: int = 0) -> Figure:
    support, prototypes = episode_prototypes((x0, y0), steps)
    xs, ys = np.meshgrid(np.linspace(-3.5, 3.5, 200), np.linspace(-2.2, 3.8, 170))
    grid = torch.tensor(np.stack([xs.ravel(), ys.ravel()], 1))
    regions = torch.cdist(grid, prototypes).argmin(1).reshape(xs.shape).numpy()
    colors = ["tab:blue", "tab:orange", "tab:green"]
    fig = Figure(figsize=(5.2, 4.4))
    ax = fig.subplots()
    ax.contourf(xs, ys, regions, levels=[-0.5, 0.5, 1.5, 2.5], cmap=ListedColormap(colors), alpha=0.15)
    for c in range(3):
        ax.scatter(
            *UNLABELLED[6 * c : 6 * c + 6].T.numpy(),
            color=colors[c],
            s=14,
            alpha=0.5,
            label="unlabelled" if c == 0 else None,
        )
        ax.scatter(
            *support[c].numpy(),
            color=colors[c],
            marker="s",
            s=70,
            edgecolor="k",
            label="support (1 shot)" if c == 0 else None,
        )
        ax.scatter(
            *prototypes[c].numpy(),
            color=colors[c],
            marker="*",
            s=220,
            edgecolor="k",
            label="prototype" if c == 0 else None,
        )
    ax.set(
        xlim=(-3.5, 3.5),
        ylim=(-2.2, 3.8),
        aspect="equal",
        title=f"3-way 1-shot, {steps} soft k-means step{'s' if steps != 1 else ''}",
    )
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    predicted = torch.cdist(QUERY, prototypes).argmin(1)
    accuracy = float((predicted == QUERY_LABELS).double().mean())
    print(
        f"class-0 support at ({x0:+.2f}, {y0:+.2f}), {steps} refinement steps: query accuracy {100 * accuracy:.1f}%, "
        f"class-0 prototype at ({float(prototypes[0, 0]):+.2f}, {float(prototypes[0, 1]):+.2f})"
    )
    return fig
