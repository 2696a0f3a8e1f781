"""Non-Euclidean geometry for embeddings.

- :mod:`dmlkit.geometry.poincare` — the Poincaré ball: Möbius operations, distances, exponential
  and logarithmic maps, the Klein model and the Einstein midpoint, and the
  :class:`HyperbolicProjection` embedding head (Ganea et al., NeurIPS 2018; Khrulkov et al.,
  CVPR 2020; Ermolov et al., CVPR 2022).
- :mod:`dmlkit.geometry.delta` — Gromov δ-hyperbolicity of a set of embeddings (Khrulkov et al.,
  CVPR 2020).
"""

from dmlkit.geometry.delta import (
    DeltaHyperbolicity,
    delta_hyperbolicity,
    gromov_delta,
    gromov_products,
    max_min_product,
)
from dmlkit.geometry.poincare import (
    HyperbolicProjection,
    clip_features,
    dist,
    dist0,
    dist_matrix,
    einstein_midpoint,
    expmap,
    expmap0,
    klein_to_poincare,
    lambda_x,
    logmap,
    logmap0,
    mobius_add,
    mobius_scalar_mul,
    poincare_to_klein,
    project,
)

__all__ = [
    "DeltaHyperbolicity",
    "HyperbolicProjection",
    "clip_features",
    "delta_hyperbolicity",
    "dist",
    "dist0",
    "dist_matrix",
    "einstein_midpoint",
    "expmap",
    "expmap0",
    "gromov_delta",
    "gromov_products",
    "klein_to_poincare",
    "lambda_x",
    "logmap",
    "logmap0",
    "max_min_product",
    "mobius_add",
    "mobius_scalar_mul",
    "poincare_to_klein",
    "project",
]
