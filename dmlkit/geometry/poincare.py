r"""The Poincaré ball of curvature :math:`-c`: Möbius operations, distances, maps and midpoints.

The ball is :math:`\mathbb{D}^n_c = \{x \in \mathbb{R}^n : c\|x\|^2 < 1\}` with the metric
:math:`g_x = (\lambda^c_x)^2 g^E`, :math:`\lambda^c_x = 2 / (1 - c\|x\|^2)` (the conformal factor).
The formulas are those of Ganea, Bécigneul & Hofmann, NeurIPS 2018, "Hyperbolic Neural
Networks", Section 2 (Möbius addition, Möbius scalar multiplication, distance) and Lemma 2
(exponential and logarithmic maps); the Klein model and the Einstein midpoint follow Khrulkov et
al., CVPR 2020, "Hyperbolic Image Embeddings" (the paragraph on hyperbolic averaging), and Ungar,
"A Gyrovector Space Approach to Hyperbolic Geometry" (2008).

Names and argument order follow geoopt's ``PoincareBall`` methods (``mobius_add``, ``dist``,
``expmap0``, ``logmap0``, ``expmap``, ``logmap``, ``lambda_x``, ``mobius_scalar_mul``) so that a
reader can move between the two; the curvature is a keyword ``c`` (a Python number, fixed)
instead of a manifold object, and all functions work on the last dimension and broadcast over the
leading ones. Unlike geoopt's methods, nothing is projected back into the ball unless you call
:func:`project`; compare with geoopt using ``project=False`` and a float64 curvature (geoopt
stores ``c`` through a softplus).

Numerics (what is clamped, and why)
-----------------------------------
* Distances use the exact identities :math:`\|(-x)\oplus_c y\|^2 = \|x-y\|^2 / D` and
  :math:`1 - c\|(-x)\oplus_c y\|^2 = (1-c\|x\|^2)(1-c\|y\|^2) / D` with
  :math:`D = c\|x-y\|^2 + (1-c\|x\|^2)(1-c\|y\|^2)`, and
  :math:`\operatorname{artanh} z = \log(1+z) - \tfrac12\log(1-z^2)`. Every factor is a sum or
  product of non-negative terms, so ``1 - z`` is never formed by cancellation. Against a
  60-digit reference the float64 distance stays within ~1e-11 relative even for points within
  ``1e-7`` of the boundary (the remaining error is the rounding of ``1 - c||x||^2`` itself,
  ~1e-16 / gap relative). The textbook route ``artanh(sqrt(c) * ||(-x) + y||)`` loses digits
  there: geoopt's ``dist`` is off by ~1e-8 at radius 0.999 (c = 0.1), by ~1e-5 for nearby points
  within 1e-5 of the boundary, and clamps its artanh argument at ``1 - 1e-7``, so it saturates
  for far-apart points that close to the boundary.
* The only clamp that can change a value: the conformal gap :math:`1 - c\|x\|^2` is clamped
  to at least ``torch.finfo(dtype).eps`` (float32: 1.2e-7, float64: 2.2e-16) wherever it is
  divided by or its logarithm is taken (``dist``, ``dist0``, ``dist_matrix``, ``logmap0``,
  ``logmap``, ``lambda_x``, ``mobius_scalar_mul``, ``klein_to_poincare``). A point on or beyond
  the boundary is therefore treated as lying at that gap; values and gradients stay finite. In
  float32 a point within ``1e-5`` of the boundary has a gap of ~2e-5, far above the clamp, so
  the clamp does not bias it. (Denominators such as that of ``mobius_add`` are also floored at
  ``finfo.tiny``, which only matters for an exact 0/0.)
* ``tanh(s)/s`` and ``artanh(z)/z`` are evaluated by their Taylor series for ``|s| < 1e-3``, so
  ``expmap0``/``logmap0`` have the identity as Jacobian at the origin, and the distance of a
  point to itself is exactly 0 with a zero (sub)gradient instead of NaN.

Curvature ``c = 0``
-------------------
``c = 0`` is accepted and gives the Euclidean limit of every formula: ``mobius_add`` is ``x + y``,
``expmap0``/``logmap0`` are the identity, ``expmap(x, u) = x + u``, ``logmap(x, y) = y - x``,
``project`` does nothing, ``lambda_x = 2`` and ``dist = 2 ||x - y||`` (the conformal factor tends
to 2, so the limit metric is ``4 g^E``; the factor 2 is not a bug). ``c < 0`` (a sphere) is not
supported and raises ``ValueError``.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from dmlkit.utils import check_embeddings, check_positive

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
    "poincare_to_klein",
    "klein_to_poincare",
    "einstein_midpoint",
    "HyperbolicProjection",
]

# Below this |argument| the ratios tanh(s)/s and artanh(z)/z use their Taylor series (error
# ~ s^6/7 < 2e-19, below float64 rounding).
_TAYLOR_BELOW = 1e-3


# ----------------------------------------------------------------------------------------------
# validation and small helpers
# ----------------------------------------------------------------------------------------------
def _check_c(c: float) -> float:
    """Return ``c`` as a float after checking that it is a finite number ``>= 0``."""
    if isinstance(c, torch.Tensor):
        if c.numel() != 1:
            raise ValueError(f"c must be a single number, got a tensor of shape {tuple(c.shape)}")
        c = c.item()
    if isinstance(c, bool) or not isinstance(c, numbers.Real):
        raise TypeError(f"c must be a real number, got {c!r} ({type(c).__name__})")
    c = float(c)
    if not math.isfinite(c) or c < 0:
        raise ValueError(
            f"c must be a finite number >= 0 (the ball has curvature -c; c = 0 is the Euclidean limit), got {c!r}"
        )
    return c


def _check_point(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 0:
        raise ValueError(f"{name} must have at least one dimension (the last one holds the point)")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def _check_pair(x: torch.Tensor, y: torch.Tensor, names: tuple[str, str] = ("x", "y")) -> None:
    _check_point(x, names[0])
    _check_point(y, names[1])
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same last dimension, got {tuple(x.shape)} and {tuple(y.shape)}"
        )


def _sqnorm(x: torch.Tensor) -> torch.Tensor:
    return x.pow(2).sum(dim=-1, keepdim=True)


def _gap(sqnorm: torch.Tensor, c: float) -> torch.Tensor:
    """The conformal gap ``1 - c ||x||^2`` clamped to ``finfo.eps`` (see the module notes)."""
    return (1.0 - c * sqnorm).clamp_min(torch.finfo(sqnorm.dtype).eps)


def _safe_sqrt(value: torch.Tensor) -> torch.Tensor:
    """``sqrt`` that is exactly 0 with a zero gradient at 0 (instead of an infinite one)."""
    positive = value > 0
    tiny = torch.finfo(value.dtype).tiny
    return torch.where(positive, value.clamp_min(tiny).sqrt(), torch.zeros_like(value))


def _tanh_ratio(s: torch.Tensor) -> torch.Tensor:
    """``tanh(s) / s``, equal to 1 at ``s = 0`` and smooth there."""
    small = s.abs() < _TAYLOR_BELOW
    s_safe = torch.where(small, torch.ones_like(s), s)
    s2 = s * s
    return torch.where(small, 1.0 - s2 / 3.0 + 2.0 * s2 * s2 / 15.0, torch.tanh(s_safe) / s_safe)


def _artanh_ratio(z: torch.Tensor, one_minus_z2: torch.Tensor) -> torch.Tensor:
    """``artanh(z) / z`` for ``z >= 0``, given ``1 - z^2`` computed without cancellation.

    Uses ``artanh z = log(1 + z) - log(1 - z^2) / 2``; ``one_minus_z2`` must be clamped > 0.
    """
    small = z < _TAYLOR_BELOW
    z_safe = torch.where(small, torch.ones_like(z), z)
    z2 = z * z
    large = (torch.log1p(z_safe) - 0.5 * torch.log(one_minus_z2)) / z_safe
    return torch.where(small, 1.0 + z2 / 3.0 + z2 * z2 / 5.0, large)


def _distance_from_parts(sq_diff: torch.Tensor, gap_product: torch.Tensor, c: float) -> torch.Tensor:
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


# ----------------------------------------------------------------------------------------------
# Möbius operations
# ----------------------------------------------------------------------------------------------
def mobius_add(x: torch.Tensor, y: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    r"""Möbius addition :math:`x \oplus_c y` (Ganea et al., NeurIPS 2018, Section 2).

    .. math::
        x \oplus_c y = \frac{(1 + 2c\langle x,y\rangle + c\|y\|^2)\,x + (1 - c\|x\|^2)\,y}
                            {1 + 2c\langle x,y\rangle + c^2\|x\|^2\|y\|^2}

    Computed with the equivalent forms :math:`1 + 2c\langle x,y\rangle + c\|y\|^2 =
    c\|x+y\|^2 + 1 - c\|x\|^2` and denominator :math:`c\|x+y\|^2 + (1-c\|x\|^2)(1-c\|y\|^2)`
    (sums of non-negative terms inside the ball). Not commutative; ``mobius_add(-x, x) = 0``.
    Broadcasts over leading dimensions; ``c = 0`` gives ``x + y``.
    """
    c = _check_c(c)
    _check_pair(x, y)
    if c == 0:
        return x + y
    gap_x = 1.0 - c * _sqnorm(x)
    gap_y = 1.0 - c * _sqnorm(y)
    c_sum = c * _sqnorm(x + y)
    numerator = (c_sum + gap_x) * x + gap_x * y
    denominator = (c_sum + gap_x * gap_y).clamp_min(torch.finfo(numerator.dtype).tiny)
    return numerator / denominator


def mobius_scalar_mul(r: float | torch.Tensor, x: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    r"""Möbius scalar multiplication :math:`r \otimes_c x` (Ganea et al., NeurIPS 2018, Section 2).

    .. math::
        r \otimes_c x = \frac{1}{\sqrt c}\tanh\!\big(r \operatorname{artanh}(\sqrt c\|x\|)\big)
        \frac{x}{\|x\|}

    ``r`` is a number or a tensor broadcastable to ``x[..., :1]``. ``c = 0`` gives ``r * x``.
    """
    c = _check_c(c)
    _check_point(x, "x")
    if isinstance(r, torch.Tensor):
        _check_point(r.reshape(-1) if r.dim() == 0 else r, "r")
    elif not isinstance(r, numbers.Real) or not math.isfinite(float(r)):
        raise ValueError(f"r must be a finite number or tensor, got {r!r}")
    if c == 0:
        return r * x
    sq = _sqnorm(x)
    z = math.sqrt(c) * _safe_sqrt(sq)
    a_ratio = _artanh_ratio(z, _gap(sq, c))  # artanh(z) / z
    t = r * z * a_ratio  # r * artanh(z)
    return _tanh_ratio(t) * r * a_ratio * x


def lambda_x(x: torch.Tensor, c: float = 1.0, keepdim: bool = False) -> torch.Tensor:
    r"""Conformal factor :math:`\lambda^c_x = 2 / (1 - c\|x\|^2)` (Ganea et al., Section 2).

    The Riemannian metric at ``x`` is :math:`(\lambda^c_x)^2` times the Euclidean one. The gap
    ``1 - c||x||^2`` is clamped to ``finfo.eps`` (module notes). ``c = 0`` gives 2.
    """
    c = _check_c(c)
    _check_point(x, "x")
    out = 2.0 / _gap(_sqnorm(x), c)
    return out if keepdim else out.squeeze(-1)


# ----------------------------------------------------------------------------------------------
# distances
# ----------------------------------------------------------------------------------------------
def dist(x: torch.Tensor, y: torch.Tensor, c: float = 1.0, keepdim: bool = False) -> torch.Tensor:
    r"""Geodesic distance (Ganea et al., NeurIPS 2018, Section 2), row-wise with broadcasting.

    .. math::
        d_c(x, y) = \frac{2}{\sqrt c}\operatorname{artanh}\big(\sqrt c\,\|(-x)\oplus_c y\|\big)
        = \frac{1}{\sqrt c}\operatorname{arcosh}\!\Big(1 + \frac{2c\|x-y\|^2}
          {(1-c\|x\|^2)(1-c\|y\|^2)}\Big)

    evaluated through the cancellation-free form described in the module notes. ``c = 0`` gives
    ``2 ||x - y||``. The value at ``x = y`` is exactly 0 with a zero gradient.
    """
    c = _check_c(c)
    _check_pair(x, y)
    sq_diff = _sqnorm(x - y)
    gap_product = _gap(_sqnorm(x), c) * _gap(_sqnorm(y), c)
    out = _distance_from_parts(sq_diff, gap_product, c)
    return out if keepdim else out.squeeze(-1)


def dist0(x: torch.Tensor, c: float = 1.0, keepdim: bool = False) -> torch.Tensor:
    r"""Distance to the origin, :math:`\frac{2}{\sqrt c}\operatorname{artanh}(\sqrt c\|x\|)`.

    The hyperbolic "radius" of a point: it grows without bound as ``x`` approaches the boundary.
    ``c = 0`` gives ``2 ||x||``.
    """
    c = _check_c(c)
    _check_point(x, "x")
    sq = _sqnorm(x)
    out = _distance_from_parts(sq, _gap(sq, c), c)
    return out if keepdim else out.squeeze(-1)


def dist_matrix(x: torch.Tensor, y: torch.Tensor | None = None, c: float = 1.0) -> torch.Tensor:
    r"""The ``(M, N)`` matrix of distances between the rows of ``x`` (M, D) and ``y`` (N, D).

    Same formula as :func:`dist`, but :math:`\|x_i - y_j\|^2` comes from the Gram matrix
    (:math:`\|x_i\|^2 - 2\langle x_i, y_j\rangle + \|y_j\|^2`), so memory is ``O(MN)``, not
    ``O(MND)``. The price is the usual one of this trick (``torch.cdist`` pays it too): for two
    nearly identical rows the squared difference carries an absolute rounding error of about
    ``finfo.eps * (||x||^2 + ||y||^2)``. With ``y=None`` the diagonal is exactly 0. Use
    :func:`dist` with broadcasting (``dist(x[:, None], y[None])``) when near-duplicates must be
    resolved to full precision.
    """
    c = _check_c(c)
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
    gap_product = _gap(x_sq, c).unsqueeze(1) * _gap(y_sq, c).unsqueeze(0)
    return _distance_from_parts(sq_diff, gap_product, c)


# ----------------------------------------------------------------------------------------------
# exponential and logarithmic maps
# ----------------------------------------------------------------------------------------------
def expmap0(u: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    r"""Exponential map at the origin (Ganea et al., NeurIPS 2018, Lemma 2 with :math:`x = 0`).

    .. math::  \exp^c_0(u) = \tanh(\sqrt c\|u\|)\,\frac{u}{\sqrt c\|u\|}

    Maps any Euclidean vector into the open ball; its Jacobian at ``u = 0`` is the identity.
    For :math:`\sqrt c\|u\| \gtrsim 19` (float64) or ``9`` (float32) ``tanh`` rounds to 1 and the
    result lies on the boundary: call :func:`project` afterwards (as :class:`HyperbolicProjection`
    does). ``c = 0`` gives ``u``.
    """
    c = _check_c(c)
    _check_point(u, "u")
    if c == 0:
        return u
    s = math.sqrt(c) * _safe_sqrt(_sqnorm(u))
    return _tanh_ratio(s) * u


def logmap0(y: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    r"""Logarithmic map at the origin, the inverse of :func:`expmap0` (Ganea et al., Lemma 2).

    .. math::  \log^c_0(y) = \operatorname{artanh}(\sqrt c\|y\|)\,\frac{y}{\sqrt c\|y\|}

    ``c = 0`` gives ``y``.
    """
    c = _check_c(c)
    _check_point(y, "y")
    if c == 0:
        return y
    sq = _sqnorm(y)
    z = math.sqrt(c) * _safe_sqrt(sq)
    return _artanh_ratio(z, _gap(sq, c)) * y


def expmap(x: torch.Tensor, u: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    r"""Exponential map at ``x`` of the tangent vector ``u`` (Ganea et al., NeurIPS 2018, Lemma 2).

    .. math::
        \exp^c_x(u) = x \oplus_c \Big(\tanh\big(\sqrt c\,\tfrac{\lambda^c_x\|u\|}{2}\big)
        \frac{u}{\sqrt c\|u\|}\Big)

    ``c = 0`` gives ``x + u``.
    """
    c = _check_c(c)
    _check_pair(x, u, ("x", "u"))
    if c == 0:
        return x + u
    half_lambda = 1.0 / _gap(_sqnorm(x), c)  # lambda_x / 2
    s = math.sqrt(c) * half_lambda * _safe_sqrt(_sqnorm(u))
    return mobius_add(x, _tanh_ratio(s) * half_lambda * u, c=c)


def logmap(x: torch.Tensor, y: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    r"""Logarithmic map at ``x`` of the point ``y``, the inverse of :func:`expmap` (Lemma 2).

    .. math::
        \log^c_x(y) = \frac{2}{\sqrt c\,\lambda^c_x}\operatorname{artanh}\big(\sqrt c\|w\|\big)
        \frac{w}{\|w\|}, \qquad w = (-x)\oplus_c y

    Its Riemannian norm :math:`\lambda^c_x\|\log^c_x(y)\|` equals :func:`dist`. ``c = 0`` gives
    ``y - x``.
    """
    c = _check_c(c)
    _check_pair(x, y)
    if c == 0:
        return y - x
    gap_x = _gap(_sqnorm(x), c)
    gap_product = gap_x * _gap(_sqnorm(y), c)
    ce = c * _sqnorm(x - y)
    z = _safe_sqrt(ce / (ce + gap_product))  # sqrt(c) * ||w||
    one_minus_z2 = gap_product / (ce + gap_product)
    w = mobius_add(-x, y, c=c)
    return gap_x * _artanh_ratio(z, one_minus_z2) * w  # 2 / lambda_x = gap_x


# ----------------------------------------------------------------------------------------------
# staying inside the ball
# ----------------------------------------------------------------------------------------------
def project(x: torch.Tensor, c: float = 1.0, eps: float = 1e-3) -> torch.Tensor:
    r"""Rescale rows with :math:`\|x\| > (1 - \epsilon)/\sqrt c` onto that radius; others unchanged.

    ``eps = 1e-3`` is the value of Ermolov et al. (CVPR 2022) and of Khrulkov et al.'s hyptorch;
    geoopt's ``PoincareBall.projx`` uses 4e-3 (float32) or 1e-5 (float64) instead. ``c = 0``
    returns ``x`` (no boundary).
    """
    c = _check_c(c)
    _check_point(x, "x")
    if not (isinstance(eps, numbers.Real) and 0.0 < float(eps) < 1.0):
        raise ValueError(f"eps must lie in (0, 1), got {eps!r}")
    if c == 0:
        return x
    max_norm = (1.0 - float(eps)) / math.sqrt(c)
    norm = _safe_sqrt(_sqnorm(x))
    scale = max_norm / norm.clamp_min(max_norm)
    return torch.where(norm > max_norm, x * scale, x)


def clip_features(x: torch.Tensor, clip_r: float) -> torch.Tensor:
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


# ----------------------------------------------------------------------------------------------
# Klein model and the Einstein midpoint
# ----------------------------------------------------------------------------------------------
def poincare_to_klein(x: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    r"""Poincaré to Klein coordinates, :math:`x_K = 2x_D / (1 + c\|x_D\|^2)` (Khrulkov et al.).

    Both models live in the same ball of radius :math:`1/\sqrt c`; Klein geodesics are straight
    chords, which is why averaging is done there.
    """
    c = _check_c(c)
    _check_point(x, "x")
    return 2.0 * x / (1.0 + c * _sqnorm(x))


def klein_to_poincare(x: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    r"""Klein to Poincaré coordinates, :math:`x_D = x_K / (1 + \sqrt{1 - c\|x_K\|^2})`.

    The inverse of :func:`poincare_to_klein` (Khrulkov et al., CVPR 2020).

    The gap :math:`1 - c\|x_K\|^2` is clamped to ``finfo.eps`` (module notes).
    """
    c = _check_c(c)
    _check_point(x, "x")
    return x / (1.0 + torch.sqrt(_gap(_sqnorm(x), c)))


def einstein_midpoint(x: torch.Tensor, weights: torch.Tensor | None = None, c: float = 1.0) -> torch.Tensor:
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
    c = _check_c(c)
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
    gamma = (1.0 + c * sq) / _gap(sq, c)
    klein = poincare_to_klein(x, c=c)
    w = weights * gamma  # (N,) or (K, N)
    mid_klein = (w @ klein) / w.sum(dim=-1, keepdim=True)
    return klein_to_poincare(mid_klein, c=c)


# ----------------------------------------------------------------------------------------------
# the embedding head
# ----------------------------------------------------------------------------------------------
class HyperbolicProjection(nn.Module):
    r"""Euclidean features to the Poincaré ball: clip, ``expmap0``, project.

    The head of Ermolov et al., CVPR 2022, "Hyperbolic Vision Transformers: Combining
    Improvements in Metric Learning" (method section): the backbone's feature :math:`f` is

    1. clipped to norm at most ``clip_r`` (feature clipping, Guo et al., CVPR 2022, "Clipped
       Hyperbolic Classifiers Are Super-Hyperbolic Classifiers"; ``clip_r = 2.3`` is the value
       Ermolov et al. use), see :func:`clip_features`;
    2. mapped into the ball by :func:`expmap0`;
    3. projected to norm at most :math:`(1 - 10^{-3})/\sqrt c` (:func:`project`).

    The module has no parameters: everything before it is Euclidean, so a plain optimiser
    (Adam, SGD) trains the whole model. A Riemannian optimiser (geoopt's ``RiemannianAdam`` on
    ``geoopt.ManifoldParameter``) is only needed when parameters themselves live in the ball;
    the losses in :mod:`dmlkit.losses.hyperbolic` avoid that by storing Euclidean parameters and
    mapping them with ``expmap0`` too.

    With ``c = 0`` (the Euclidean limit) only the clipping is applied. ``clip_r=None`` turns
    clipping off.

    Args:
        c: curvature parameter (ball radius :math:`1/\sqrt c`); 0.1 as in Ermolov et al.
        clip_r: clipping radius for the Euclidean features, or ``None``.
        eps: relative margin kept from the boundary by :func:`project`.
    """

    def __init__(self, c: float = 0.1, clip_r: float | None = 2.3, eps: float = 1e-3) -> None:
        super().__init__()
        self.c = _check_c(c)
        if clip_r is not None:
            check_positive("clip_r", clip_r)
            clip_r = float(clip_r)
        self.clip_r = clip_r
        if not (isinstance(eps, numbers.Real) and 0.0 < float(eps) < 1.0):
            raise ValueError(f"eps must lie in (0, 1), got {eps!r}")
        self.eps = float(eps)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Map ``(B, D)`` Euclidean features to ``(B, D)`` points of the ball."""
        check_embeddings(features, "features")
        if self.clip_r is not None:
            features = clip_features(features, self.clip_r)
        if self.c == 0:
            return features
        return project(expmap0(features, c=self.c), c=self.c, eps=self.eps)

    def extra_repr(self) -> str:
        return f"c={self.c}, clip_r={self.clip_r}, eps={self.eps}"
