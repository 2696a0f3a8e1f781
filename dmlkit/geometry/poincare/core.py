"""Argument checks of points and the numerically careful pieces the Poincaré-ball operations share."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = []


# Below this |argument| the ratios tanh(s)/s and artanh(z)/z use their Taylor series (error
# ~ s^6/7 < 2e-19, below float64 rounding).
_TAYLOR_BELOW = 1e-3


def _check_point(x: Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 0:
        raise ValueError(f"{name} must have at least one dimension (the last one holds the point)")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def _check_pair(x: Tensor, y: Tensor, names: tuple[str, str] = ("x", "y")) -> None:
    _check_point(x, names[0])
    _check_point(y, names[1])
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same last dimension, got {tuple(x.shape)} and {tuple(y.shape)}"
        )


def _sqnorm(x: Tensor) -> Tensor:
    return x.pow(2).sum(dim=-1, keepdim=True)


def conformal_gap(sqnorm: Tensor, c: float) -> Tensor:
    """The conformal gap ``1 - c ||x||^2`` clamped to ``finfo.eps`` (see the module notes)."""
    return (1.0 - c * sqnorm).clamp_min(torch.finfo(sqnorm.dtype).eps)


def _safe_sqrt(value: Tensor) -> Tensor:
    """``sqrt`` that is exactly 0 with a zero gradient at 0 (instead of an infinite one)."""
    positive = value > 0
    tiny = torch.finfo(value.dtype).tiny
    return torch.where(positive, value.clamp_min(tiny).sqrt(), torch.zeros_like(value))


def _tanh_ratio(s: Tensor) -> Tensor:
    """``tanh(s) / s``, equal to 1 at ``s = 0`` and smooth there."""
    small = s.abs() < _TAYLOR_BELOW
    s_safe = torch.where(small, torch.ones_like(s), s)
    s2 = s * s
    return torch.where(small, 1.0 - s2 / 3.0 + 2.0 * s2 * s2 / 15.0, torch.tanh(s_safe) / s_safe)


def _artanh_ratio(z: Tensor, one_minus_z2: Tensor) -> Tensor:
    """``artanh(z) / z`` for ``z >= 0``, given ``1 - z^2`` computed without cancellation.

    Uses ``artanh z = log(1 + z) - log(1 - z^2) / 2``; ``one_minus_z2`` must be clamped > 0.
    """
    small = z < _TAYLOR_BELOW
    z_safe = torch.where(small, torch.ones_like(z), z)
    z2 = z * z
    large = (torch.log1p(z_safe) - 0.5 * torch.log(one_minus_z2)) / z_safe
    return torch.where(small, 1.0 + z2 / 3.0 + z2 * z2 / 5.0, large)


def _distance_from_parts(sq_diff: Tensor, gap_product: Tensor, c: float) -> Tensor:
    r"""Distance from ``E = ||x - y||^2`` and ``P = (1 - c||x||^2)(1 - c||y||^2)``.

    With :math:`z = \sqrt{cE / (cE + P)} = \sqrt{c}\,\|(-x)\oplus_c y\|` and
    :math:`1 - z^2 = P / (cE + P)`:
    :math:`d = \frac{2}{\sqrt c}\operatorname{artanh} z
    = \frac{2}{\sqrt c}\big(\log(1 + z) + \tfrac12\log(1 + cE/P)\big)`
    (equivalently :math:`\frac{1}{\sqrt c}\operatorname{arcosh}(1 + 2cE/P)`).
    """
    if c == 0:
        return 2.0 * _safe_sqrt(sq_diff)
    ce = c * sq_diff
    z = _safe_sqrt(ce / (ce + gap_product))
    return (2.0 / math.sqrt(c)) * (torch.log1p(z) + 0.5 * torch.log1p(ce / gap_product))
