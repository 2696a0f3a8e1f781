r"""Gromov δ-hyperbolicity of a finite metric space: how tree-like are the embeddings?

Khrulkov, Mirvakhabova, Ustinova, Oseledets & Lempitsky, CVPR 2020, "Hyperbolic Image
Embeddings", section "δ-Hyperbolicity", following Gromov (1987) and the estimation procedure
of Fournier, Ismail & Vigneron (2015, "Computing the Gromov hyperbolicity of a discrete metric
space").

For a base point :math:`w` the Gromov product is

.. math::  (x|y)_w = \tfrac12\big(d(x,w) + d(y,w) - d(x,y)\big),

and the space is δ-hyperbolic (relative to :math:`w`) when for all :math:`x, y, z`

.. math::  (x|y)_w \ge \min\big((x|z)_w, (y|z)_w\big) - \delta .

With the matrix :math:`A_{ij} = (x_i|x_j)_w`, the smallest such δ is

.. math::  \delta_w = \max_{i,j}\big[(A \otimes A)_{ij} - A_{ij}\big], \qquad
           (A \otimes A)_{ij} = \max_k \min(A_{ik}, A_{kj})

(the max-min matrix product). Khrulkov et al. report the scale-free
:math:`\delta_{rel} = 2\delta / \operatorname{diam}(X) \in [0, 1]`: 0 for a tree metric, values
near 0 "tree-like" (hyperbolic embeddings suit the data), values near 1 far from a tree. Like
their code, the estimate uses one base point (the first point of a random subsample, 1500 points
by default) instead of maximising over all base points; for any base point
:math:`\delta_w \le \delta \le 2\delta_w`, where δ is the base-free four-point constant. For
four points :math:`\delta_w` is half the gap between the largest and the second-largest of the
three sums :math:`d(x,y) + d(z,w)`, :math:`d(x,z) + d(y,w)`, :math:`d(x,w) + d(y,z)`.

The cost is :math:`O(n^3)` time for ``n`` sampled points (a few seconds for ``n = 1500`` on one
CPU core; only the upper triangle of the symmetric product is formed) and the product is
chunked to bound memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from dmlkit.checks import check_embeddings

__all__ = [
    "DeltaHyperbolicity",
    "gromov_products",
    "max_min_product",
    "gromov_delta",
    "delta_hyperbolicity",
]


@dataclass(frozen=True)
class DeltaHyperbolicity:
    """Result of :func:`delta_hyperbolicity` (means over ``n_tries`` subsamples).

    Attributes:
        delta: δ relative to the base point, in the units of the distance.
        delta_rel: ``2 * delta / diameter`` (Khrulkov et al.'s relative δ), in ``[0, 1]``.
        diameter: largest distance within the subsample.
        n_samples: points per subsample.
        n_tries: number of subsamples averaged.
        deltas: δ of each try.
        deltas_rel: relative δ of each try.
    """

    delta: float
    delta_rel: float
    diameter: float
    n_samples: int
    n_tries: int
    deltas: tuple[float, ...]
    deltas_rel: tuple[float, ...]


def _as_distance_matrix(distance_matrix: Tensor | np.ndarray, tol: float = 1e-6) -> Tensor:
    """Validate a distance matrix and return it in float64, exactly symmetric with a zero diagonal.

    Small asymmetries and diagonal values (up to ``tol`` times the largest distance, what the
    Gram-matrix trick leaves behind) are removed; larger ones raise ``ValueError``.
    """
    d = torch.as_tensor(distance_matrix)
    if d.dim() != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"distance_matrix must be square (n, n), got shape {tuple(d.shape)}")
    if d.shape[0] < 3:
        raise ValueError(f"δ-hyperbolicity needs at least 3 points, got {d.shape[0]}")
    if not (d.is_floating_point() or d.dtype in (torch.int32, torch.int64)):
        raise ValueError(f"distance_matrix must be numeric, got dtype {d.dtype}")
    d = d.to(torch.float64)
    if not torch.isfinite(d).all():
        raise ValueError("distance_matrix contains NaN or infinite values")
    if (d < 0).any():
        raise ValueError(f"distances must be non-negative, found minimum {d.min().item():.3g}")
    scale = d.max().item()
    asym = (d - d.T).abs().max().item()
    if asym > tol * max(scale, 1e-300):
        raise ValueError(f"distance_matrix is not symmetric (largest |d_ij - d_ji| = {asym:.3g})")
    diag = d.diagonal().abs().max().item()
    if diag > tol * max(scale, 1e-300):
        raise ValueError(f"distance_matrix must have a zero diagonal (largest |d_ii| = {diag:.3g})")
    d = 0.5 * (d + d.T)
    return d.fill_diagonal_(0.0)


def gromov_products(distance_matrix: Tensor, base_index: int = 0) -> Tensor:
    r"""Gromov products :math:`A_{ij} = (x_i|x_j)_w = \tfrac12(d_{iw} + d_{jw} - d_{ij})`.

    The base point is ``w = base_index``.
    """
    d = torch.as_tensor(distance_matrix)
    if d.dim() != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"distance_matrix must be square (n, n), got shape {tuple(d.shape)}")
    n = d.shape[0]
    if not 0 <= base_index < n:
        raise ValueError(f"base_index must lie in [0, {n}), got {base_index}")
    row = d[base_index]
    return 0.5 * (row.unsqueeze(1) + row.unsqueeze(0) - d)


def max_min_product(a: Tensor, b: Tensor, max_elements: int = 2**20) -> Tensor:
    r"""The (max, min) matrix product :math:`(A \otimes B)_{ij} = \max_k \min(A_{ik}, B_{kj})`.

    Rows of ``a`` are processed in chunks so that at most ``max_elements`` intermediate values
    exist at once (the default, 8 MiB in float64, stays cache-friendly); the reduction runs over
    the contiguous last dimension.
    """
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"max_min_product needs (m, k) and (k, n) matrices, got {tuple(a.shape)} and {tuple(b.shape)}")
    if max_elements < 1:
        raise ValueError(f"max_elements must be positive, got {max_elements}")
    k, n = b.shape
    b_t = b.T.contiguous().unsqueeze(0)  # (1, n, k)
    chunk = max(1, max_elements // max(1, k * n))
    out = []
    for start in range(0, a.shape[0], chunk):
        block = a[start : start + chunk].unsqueeze(1)  # (chunk, 1, k)
        out.append(torch.minimum(block, b_t).amax(dim=2))
    return torch.cat(out, dim=0)


def _delta_from_products(a: Tensor, max_elements: int = 2**20) -> float:
    """``max_ij [(A (x) A)_ij - A_ij]`` for a symmetric ``A`` without forming the product.

    The product of a symmetric matrix with itself is symmetric, so only the blocks with
    ``j >= i`` are computed (half the work of :func:`max_min_product`).
    """
    n = a.shape[0]
    best = float("-inf")
    start = 0
    while start < n:
        stop = min(n, start + max(1, max_elements // ((n - start) * n)))
        rows = a[start:stop].unsqueeze(1)  # (chunk, 1, n): A_ik
        cols = a[start:].unsqueeze(0)  # (1, n - start, n): A_jk = A_kj
        product = torch.minimum(rows, cols).amax(dim=2)  # (chunk, n - start)
        best = max(best, float((product - a[start:stop, start:]).max().item()))
        start = stop
    return best


def gromov_delta(distance_matrix: Tensor | np.ndarray, base_index: int = 0) -> float:
    r"""δ of a finite metric space relative to the point ``base_index`` (all points used).

    :math:`\delta_w = \max_{ij}[(A\otimes A)_{ij} - A_{ij}]` with ``A`` from
    :func:`gromov_products`; computed in float64.
    """
    d = _as_distance_matrix(distance_matrix)
    return _delta_from_products(gromov_products(d, base_index))


def _euclidean(x: Tensor, y: Tensor) -> Tensor:
    return torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist")


def delta_hyperbolicity(
    points: Tensor | np.ndarray | None = None,
    *,
    distance_matrix: Tensor | np.ndarray | None = None,
    distance_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
    n_samples: int = 1500,
    n_tries: int = 1,
    seed: int = 0,
    precision: Literal["float32", "float64"] = "float32",
) -> DeltaHyperbolicity:
    r"""Estimate δ and :math:`\delta_{rel} = 2\delta/\operatorname{diam}` on random subsamples.

    Give either ``points`` ``(N, D)`` (with ``distance_fn``, default Euclidean; e.g.
    ``functools.partial(dmlkit.geometry.dist_matrix, c=0.1)`` for points of the Poincaré ball)
    or a precomputed ``distance_matrix`` ``(N, N)``. Each try draws ``min(n_samples, N)``
    distinct points without replacement (seeded by ``seed``), uses the first drawn point as the
    base point, and computes δ relative to it exactly (:func:`gromov_delta`); the diameter is the
    largest distance within that subsample. Points are converted to float64 before
    ``distance_fn`` is called.

    Khrulkov et al. (CVPR 2020) report ``delta_rel`` of roughly 0.2-0.3 for the features of
    standard image-recognition networks on CIFAR, CUB and MiniImageNet, as the mean over 10
    random subsamples of 1,500 points (``n_samples=1500, n_tries=10``; the result keeps each
    try, ``deltas_rel``, for a standard deviation); a tree metric gives exactly 0.

    ``precision``: the dtype of the (max, min) product, the O(n³) part. The product only selects
    entries of the Gromov-product matrix, so ``"float32"`` changes δ only by the rounding of
    those entries (relative ~6e-8) and is 2-3× faster than ``"float64"``.
    """
    if (points is None) == (distance_matrix is None):
        raise ValueError("give exactly one of points and distance_matrix")
    if distance_matrix is not None and distance_fn is not None:
        raise ValueError("distance_fn is used with points, not with a distance_matrix")
    for name, value, low in (("n_samples", n_samples, 3), ("n_tries", n_tries, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {seed!r}")

    if points is not None:
        pts = torch.as_tensor(points)
        check_embeddings(pts, "points")
        pts = pts.to(torch.float64)
        fn = distance_fn if distance_fn is not None else _euclidean
        n_total = pts.shape[0]
    else:
        full = _as_distance_matrix(distance_matrix)
        n_total = full.shape[0]
    if n_total < 3:
        raise ValueError(f"δ-hyperbolicity needs at least 3 points, got {n_total}")
    m = min(int(n_samples), n_total)
    product_dtype = {"float32": torch.float32, "float64": torch.float64}.get(precision)
    if product_dtype is None:
        raise ValueError(f"precision must be 'float32' or 'float64', got {precision!r}")

    generator = torch.Generator().manual_seed(int(seed))
    deltas, deltas_rel, diameters = [], [], []
    for _ in range(int(n_tries)):
        idx = torch.randperm(n_total, generator=generator)[:m]
        if points is not None:
            sub = pts[idx.to(pts.device)]
            with torch.no_grad():
                d = _as_distance_matrix(fn(sub, sub).detach())
        else:
            d = full[idx.to(full.device)][:, idx.to(full.device)]
        diameter = float(d.max().item())
        if diameter <= 0:
            raise ValueError("all sampled points coincide (diameter 0): δ_rel is undefined")
        delta = _delta_from_products(gromov_products(d, 0).to(product_dtype))
        deltas.append(delta)
        deltas_rel.append(2.0 * delta / diameter)
        diameters.append(diameter)
    return DeltaHyperbolicity(
        delta=float(np.mean(deltas)),
        delta_rel=float(np.mean(deltas_rel)),
        diameter=float(np.mean(diameters)),
        n_samples=m,
        n_tries=int(n_tries),
        deltas=tuple(deltas),
        deltas_rel=tuple(deltas_rel),
    )
