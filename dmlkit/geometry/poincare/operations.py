"""Operations of the Poincaré ball of curvature -c: Möbius addition and scaling, the conformal
factor, distances, exponential and logarithmic maps, projection and feature clipping."""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

from dmlkit.checks import check_curvature, check_embeddings, check_positive
from dmlkit.geometry.poincare.core import (
    _artanh_ratio,
    _check_pair,
    _check_point,
    _distance_from_parts,
    _safe_sqrt,
    _sqnorm,
    _tanh_ratio,
    conformal_gap,
)

__all__ = [
    "mobius_add",
    "mobius_scalar_mul",
    "lambda_x",
    "dist",
    "dist0",
    "dist_matrix",
    "expmap0",
    "logmap0",
    "expmap",
    "logmap",
    "project",
    "clip_features",
]


def mobius_add(x: Tensor, y: Tensor, c: float = 1.0) -> Tensor:
    r"""Möbius addition :math:`x \oplus_c y` (Ganea et al., NeurIPS 2018, Section 2).

    .. math::
        x \oplus_c y = \frac{(1 + 2c\langle x,y\rangle + c\|y\|^2)\,x + (1 - c\|x\|^2)\,y}
                            {1 + 2c\langle x,y\rangle + c^2\|x\|^2\|y\|^2}

    Computed with the equivalent forms :math:`1 + 2c\langle x,y\rangle + c\|y\|^2 =
    c\|x+y\|^2 + 1 - c\|x\|^2` and denominator :math:`c\|x+y\|^2 + (1-c\|x\|^2)(1-c\|y\|^2)`
    (sums of non-negative terms inside the ball). Not commutative; ``mobius_add(-x, x) = 0``.
    Broadcasts over leading dimensions; ``c = 0`` gives ``x + y``.
    """
    c = check_curvature(c)
    _check_pair(x, y)
    if c == 0:
        return x + y
    gap_x = 1.0 - c * _sqnorm(x)
    gap_y = 1.0 - c * _sqnorm(y)
    c_sum = c * _sqnorm(x + y)
    numerator = (c_sum + gap_x) * x + gap_x * y
    denominator = (c_sum + gap_x * gap_y).clamp_min(torch.finfo(numerator.dtype).tiny)
    return numerator / denominator


def mobius_scalar_mul(r: float | Tensor, x: Tensor, c: float = 1.0) -> Tensor:
    r"""Möbius scalar multiplication :math:`r \otimes_c x` (Ganea et al., NeurIPS 2018, Section 2).

    .. math::
        r \otimes_c x = \frac{1}{\sqrt c}\tanh\!\big(r \operatorname{artanh}(\sqrt c\|x\|)\big)
        \frac{x}{\|x\|}

    ``r`` is a number or a tensor broadcastable to ``x[..., :1]``. ``c = 0`` gives ``r * x``.
    """
    c = check_curvature(c)
    _check_point(x, "x")
    if isinstance(r, torch.Tensor):
        _check_point(r.reshape(-1) if r.dim() == 0 else r, "r")
    elif not isinstance(r, numbers.Real) or not math.isfinite(float(r)):
        raise ValueError(f"r must be a finite number or tensor, got {r!r}")
    if c == 0:
        return r * x
    sq = _sqnorm(x)
    z = math.sqrt(c) * _safe_sqrt(sq)
    a_ratio = _artanh_ratio(z, conformal_gap(sq, c))  # artanh(z) / z
    t = r * z * a_ratio  # r * artanh(z)
    return _tanh_ratio(t) * r * a_ratio * x


def lambda_x(x: Tensor, c: float = 1.0, keepdim: bool = False) -> Tensor:
    r"""Conformal factor :math:`\lambda^c_x = 2 / (1 - c\|x\|^2)` (Ganea et al., Section 2).

    The Riemannian metric at ``x`` is :math:`(\lambda^c_x)^2` times the Euclidean one. The gap
    ``1 - c||x||^2`` is clamped to ``finfo.eps`` (module notes). ``c = 0`` gives 2.
    """
    c = check_curvature(c)
    _check_point(x, "x")
    out = 2.0 / conformal_gap(_sqnorm(x), c)
    return out if keepdim else out.squeeze(-1)


def dist(x: Tensor, y: Tensor, c: float = 1.0, keepdim: bool = False) -> Tensor:
    r"""Geodesic distance (Ganea et al., NeurIPS 2018, Section 2), row-wise with broadcasting.

    .. math::
        d_c(x, y) = \frac{2}{\sqrt c}\operatorname{artanh}\big(\sqrt c\,\|(-x)\oplus_c y\|\big)
        = \frac{1}{\sqrt c}\operatorname{arcosh}\!\Big(1 + \frac{2c\|x-y\|^2}
          {(1-c\|x\|^2)(1-c\|y\|^2)}\Big)

    evaluated through the cancellation-free form described in the module notes. ``c = 0`` gives
    ``2 ||x - y||``. The value at ``x = y`` is exactly 0 with a zero gradient.
    """
    c = check_curvature(c)
    _check_pair(x, y)
    sq_diff = _sqnorm(x - y)
    gap_product = conformal_gap(_sqnorm(x), c) * conformal_gap(_sqnorm(y), c)
    out = _distance_from_parts(sq_diff, gap_product, c)
    return out if keepdim else out.squeeze(-1)


def dist0(x: Tensor, c: float = 1.0, keepdim: bool = False) -> Tensor:
    r"""Distance to the origin, :math:`\frac{2}{\sqrt c}\operatorname{artanh}(\sqrt c\|x\|)`.

    The hyperbolic "radius" of a point: it grows without bound as ``x`` approaches the boundary.
    ``c = 0`` gives ``2 ||x||``.
    """
    c = check_curvature(c)
    _check_point(x, "x")
    sq = _sqnorm(x)
    out = _distance_from_parts(sq, conformal_gap(sq, c), c)
    return out if keepdim else out.squeeze(-1)


def dist_matrix(x: Tensor, y: Tensor | None = None, c: float = 1.0) -> Tensor:
    r"""The ``(M, N)`` matrix of distances between the rows of ``x`` (M, D) and ``y`` (N, D).

    Same formula as :func:`dist`, but :math:`\|x_i - y_j\|^2` comes from the Gram matrix
    (:math:`\|x_i\|^2 - 2\langle x_i, y_j\rangle + \|y_j\|^2`), so memory is ``O(MN)``, not
    ``O(MND)``. The price is the usual one of this trick (``torch.cdist`` pays it too): for two
    nearly identical rows the squared difference carries an absolute rounding error of about
    ``finfo.eps * (||x||^2 + ||y||^2)``. With ``y=None`` the diagonal is exactly 0. Use
    :func:`dist` with broadcasting (``dist(x[:, None], y[None])``) when near-duplicates must be
    resolved to full precision.
    """
    c = check_curvature(c)
    check_embeddings(x, "x")
    same = y is None
    if same:
        y = x
    else:
        check_embeddings(y, "y")
        if x.shape[1] != y.shape[1]:
            raise ValueError(f"x has {x.shape[1]} dimensions but y has {y.shape[1]}")
    x_sq = x.pow(2).sum(dim=1)
    y_sq = x_sq if same else y.pow(2).sum(dim=1)
    sq_diff = (x_sq.unsqueeze(1) - 2.0 * (x @ y.T) + y_sq.unsqueeze(0)).clamp_min(0.0)
    if same:
        eye = torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
        sq_diff = sq_diff.masked_fill(eye, 0.0)
    gap_product = conformal_gap(x_sq, c).unsqueeze(1) * conformal_gap(y_sq, c).unsqueeze(0)
    return _distance_from_parts(sq_diff, gap_product, c)


def expmap0(u: Tensor, c: float = 1.0) -> Tensor:
    r"""Exponential map at the origin (Ganea et al., NeurIPS 2018, Lemma 2 with :math:`x = 0`).

    .. math::  \exp^c_0(u) = \tanh(\sqrt c\|u\|)\,\frac{u}{\sqrt c\|u\|}

    Maps any Euclidean vector into the open ball; its Jacobian at ``u = 0`` is the identity.
    For :math:`\sqrt c\|u\| \gtrsim 19` (float64) or ``9`` (float32) ``tanh`` rounds to 1 and the
    result lies on the boundary: call :func:`project` afterwards (as :class:`HyperbolicProjection`
    does). ``c = 0`` gives ``u``.
    """
    c = check_curvature(c)
    _check_point(u, "u")
    if c == 0:
        return u
    s = math.sqrt(c) * _safe_sqrt(_sqnorm(u))
    return _tanh_ratio(s) * u


def logmap0(y: Tensor, c: float = 1.0) -> Tensor:
    r"""Logarithmic map at the origin, the inverse of :func:`expmap0` (Ganea et al., Lemma 2).

    .. math::  \log^c_0(y) = \operatorname{artanh}(\sqrt c\|y\|)\,\frac{y}{\sqrt c\|y\|}

    ``c = 0`` gives ``y``.
    """
    c = check_curvature(c)
    _check_point(y, "y")
    if c == 0:
        return y
    sq = _sqnorm(y)
    z = math.sqrt(c) * _safe_sqrt(sq)
    return _artanh_ratio(z, conformal_gap(sq, c)) * y


def expmap(x: Tensor, u: Tensor, c: float = 1.0) -> Tensor:
    r"""Exponential map at ``x`` of the tangent vector ``u`` (Ganea et al., NeurIPS 2018, Lemma 2).

    .. math::
        \exp^c_x(u) = x \oplus_c \Big(\tanh\big(\sqrt c\,\tfrac{\lambda^c_x\|u\|}{2}\big)
        \frac{u}{\sqrt c\|u\|}\Big)

    ``c = 0`` gives ``x + u``.
    """
    c = check_curvature(c)
    _check_pair(x, u, ("x", "u"))
    if c == 0:
        return x + u
    half_lambda = 1.0 / conformal_gap(_sqnorm(x), c)  # lambda_x / 2
    s = math.sqrt(c) * half_lambda * _safe_sqrt(_sqnorm(u))
    return mobius_add(x, _tanh_ratio(s) * half_lambda * u, c=c)


def logmap(x: Tensor, y: Tensor, c: float = 1.0) -> Tensor:
    r"""Logarithmic map at ``x`` of the point ``y``, the inverse of :func:`expmap` (Lemma 2).

    .. math::
        \log^c_x(y) = \frac{2}{\sqrt c\,\lambda^c_x}\operatorname{artanh}\big(\sqrt c\|w\|\big)
        \frac{w}{\|w\|}, \qquad w = (-x)\oplus_c y

    Its Riemannian norm :math:`\lambda^c_x\|\log^c_x(y)\|` equals :func:`dist`. ``c = 0`` gives
    ``y - x``.
    """
    c = check_curvature(c)
    _check_pair(x, y)
    if c == 0:
        return y - x
    gap_x = conformal_gap(_sqnorm(x), c)
    gap_product = gap_x * conformal_gap(_sqnorm(y), c)
    ce = c * _sqnorm(x - y)
    z = _safe_sqrt(ce / (ce + gap_product))  # sqrt(c) * ||w||
    one_minus_z2 = gap_product / (ce + gap_product)
    w = mobius_add(-x, y, c=c)
    return gap_x * _artanh_ratio(z, one_minus_z2) * w  # 2 / lambda_x = gap_x


def project(x: Tensor, c: float = 1.0, eps: float = 1e-3) -> Tensor:
    r"""Rescale rows with :math:`\|x\| > (1 - \epsilon)/\sqrt c` onto that radius; others unchanged.

    ``eps = 1e-3`` is the value of Ermolov et al. (CVPR 2022) and of Khrulkov et al.'s hyptorch;
    geoopt's ``PoincareBall.projx`` uses 4e-3 (float32) or 1e-5 (float64) instead. ``c = 0``
    returns ``x`` (no boundary).
    """
    c = check_curvature(c)
    _check_point(x, "x")
    if not (isinstance(eps, numbers.Real) and 0.0 < float(eps) < 1.0):
        raise ValueError(f"eps must lie in (0, 1), got {eps!r}")
    if c == 0:
        return x
    max_norm = (1.0 - float(eps)) / math.sqrt(c)
    norm = _safe_sqrt(_sqnorm(x))
    scale = max_norm / norm.clamp_min(max_norm)
    return torch.where(norm > max_norm, x * scale, x)


def clip_features(x: Tensor, clip_r: float) -> Tensor:
    r"""Feature clipping :math:`x \mapsto \min(1, r/\|x\|)\,x` (Guo et al., CVPR 2022).

    "Clipped Hyperbolic Classifiers Are Super-Hyperbolic Classifiers" (the feature-clipping
    equation of their method section): Euclidean features whose norm exceeds ``r`` are scaled back
    to norm ``r`` before :func:`expmap0`, which keeps hyperbolic embeddings away from the boundary
    where the gradients of the exponential map vanish. Implemented as ``x * r / max(||x||, r)``
    so that the zero vector has a finite gradient.
    """
    _check_point(x, "x")
    check_positive("clip_r", clip_r)
    norm = _safe_sqrt(_sqnorm(x))
    return x * (float(clip_r) / norm.clamp_min(float(clip_r)))
