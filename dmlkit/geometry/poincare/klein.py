"""The Klein model and the Einstein midpoint (the hyperbolic average)."""

from __future__ import annotations

import torch
from torch import Tensor

from dmlkit.checks import check_curvature, check_embeddings
from dmlkit.geometry.poincare.core import _check_point, _sqnorm, conformal_gap

__all__ = ["poincare_to_klein", "klein_to_poincare", "einstein_midpoint"]


def poincare_to_klein(x: Tensor, c: float = 1.0) -> Tensor:
    r"""Poincaré to Klein coordinates, :math:`x_K = 2x_D / (1 + c\|x_D\|^2)` (Khrulkov et al.).

    Both models live in the same ball of radius :math:`1/\sqrt c`; Klein geodesics are straight
    chords, which is why averaging is done there.
    """
    c = check_curvature(c)
    _check_point(x, "x")
    return 2.0 * x / (1.0 + c * _sqnorm(x))


def klein_to_poincare(x: Tensor, c: float = 1.0) -> Tensor:
    r"""Klein to Poincaré coordinates, :math:`x_D = x_K / (1 + \sqrt{1 - c\|x_K\|^2})`.

    The inverse of :func:`poincare_to_klein` (Khrulkov et al., CVPR 2020).

    The gap :math:`1 - c\|x_K\|^2` is clamped to ``finfo.eps`` (module notes).
    """
    c = check_curvature(c)
    _check_point(x, "x")
    return x / (1.0 + torch.sqrt(conformal_gap(_sqnorm(x), c)))


def einstein_midpoint(x: Tensor, weights: Tensor | None = None, c: float = 1.0) -> Tensor:
    r"""Weighted Einstein midpoint of Poincaré points, computed in the Klein model.

    Khrulkov et al., CVPR 2020, "Hyperbolic Image Embeddings" (hyperbolic averaging), used for the
    prototypes of hyperbolic prototypical networks:

    .. math::
        \bar x_K = \frac{\sum_i w_i\gamma_i\,x_{K,i}}{\sum_i w_i\gamma_i}, \qquad
        \gamma_i = \frac{1}{\sqrt{1 - c\|x_{K,i}\|^2}}

    with :math:`x_K` from :func:`poincare_to_klein`, then mapped back with
    :func:`klein_to_poincare`. The Lorentz factor is evaluated from the Poincaré coordinates as
    :math:`\gamma = (1 + c\|x_D\|^2)/(1 - c\|x_D\|^2)` (the same number, without cancellation).
    It equals Ungar's Möbius gyromidpoint (geoopt's ``weighted_midpoint``); for two points with
    equal weights it is the midpoint of the geodesic between them. ``c = 0`` gives the weighted
    arithmetic mean.

    Args:
        x: ``(N, D)`` points in the ball.
        weights: ``None`` (equal weights), ``(N,)`` or ``(K, N)`` non-negative weights; every row
            needs a positive sum. With ``(K, N)`` one midpoint per row is returned, e.g. class
            prototypes from a one-hot ``(num_classes, N)`` matrix.
        c: curvature parameter (``>= 0``).

    Returns:
        ``(D,)`` for ``None`` or ``(N,)`` weights, ``(K, D)`` for ``(K, N)`` weights.
    """
    c = check_curvature(c)
    check_embeddings(x, "x")
    n = x.shape[0]
    if weights is None:
        weights = torch.ones(n, dtype=x.dtype, device=x.device)
    if not isinstance(weights, torch.Tensor):
        raise TypeError(f"weights must be a torch.Tensor or None, got {type(weights).__name__}")
    if weights.dim() not in (1, 2) or weights.shape[-1] != n:
        raise ValueError(
            f"weights must have shape ({n},) or (K, {n}) for x of shape {tuple(x.shape)}, got {tuple(weights.shape)}"
        )
    weights = weights.to(x.dtype)
    if not torch.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("weights must be finite and non-negative")
    if (weights.sum(dim=-1) <= 0).any():
        raise ValueError("every row of weights needs a positive sum")
    sq = _sqnorm(x).squeeze(-1)
    gamma = (1.0 + c * sq) / conformal_gap(sq, c)
    klein = poincare_to_klein(x, c=c)
    w = weights * gamma  # (N,) or (K, N)
    mid_klein = (w @ klein) / w.sum(dim=-1, keepdim=True)
    return klein_to_poincare(mid_klein, c=c)
