"""Light, batched image augmentation on tensors (runs on the training device)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["random_affine"]


def random_affine(
    images: Tensor,
    generator: torch.Generator | None = None,
    max_rotation: float = 10.0,
    max_shift: float = 0.08,
    scale: tuple[float, float] = (0.9, 1.1),
) -> Tensor:
    """Rotate, scale and shift every image of a ``(B, C, H, W)`` batch by its own random amount.

    Args:
        images: the batch (any device).
        generator: a CPU generator for reproducible draws.
        max_rotation: largest rotation in degrees.
        max_shift: largest shift as a fraction of the image side.
        scale: range of the zoom factor.
    """
    if images.dim() != 4:
        raise ValueError(f"expected a (B, C, H, W) batch, got shape {tuple(images.shape)}")
    batch = images.shape[0]
    draws = torch.rand(batch, 4, generator=generator, dtype=torch.float32)
    angle = (draws[:, 0] * 2 - 1) * math.radians(max_rotation)
    zoom = scale[0] + draws[:, 1] * (scale[1] - scale[0])
    shift = (draws[:, 2:] * 2 - 1) * (2 * max_shift)  # affine_grid coordinates span [-1, 1]
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1).to(
        images.device, images.dtype
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
