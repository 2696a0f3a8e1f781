"""Non-Euclidean geometry for embeddings.

- :mod:`dmlkit.geometry.poincare` — the Poincaré ball: Möbius operations, distances, exponential
  and logarithmic maps, the Klein model and the Einstein midpoint, and the
  :class:`HyperbolicProjection` embedding head (Ganea et al., NeurIPS 2018; Khrulkov et al.,
  CVPR 2020; Ermolov et al., CVPR 2022).
- :mod:`dmlkit.geometry.delta` — Gromov δ-hyperbolicity of a set of embeddings (Khrulkov et al.,
  CVPR 2020).
- :mod:`dmlkit.geometry.retrieval` — retrieval metrics and exact nearest neighbours ranked by the
  Poincaré distance (which is not the Euclidean ranking).
- :mod:`dmlkit.geometry.hierarchy` — hyperbolic radii of images, class and group prototypes, with
  a permutation null (does an embedding place general groups nearer the origin?).
- :mod:`dmlkit.geometry.trees` — a tree's metric, Sarkar's construction in the Poincaré disk, a
  fitted Euclidean embedding and their distortion.
"""

from dmlkit.geometry.delta import (
    DeltaHyperbolicity,
    delta_hyperbolicity,
    gromov_delta,
    gromov_products,
    max_min_product,
)
from dmlkit.geometry.hierarchy import HierarchyRadii, class_prototypes, hierarchy_radii
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
from dmlkit.geometry.retrieval import (
    distance_retrieval_metrics,
    hyperbolic_knn,
    hyperbolic_retrieval_metrics,
    with_hyperbolic_metrics,
)

__all__ = [
    "DeltaHyperbolicity",
    "HierarchyRadii",
    "HyperbolicProjection",
    "class_prototypes",
    "clip_features",
    "delta_hyperbolicity",
    "distance_retrieval_metrics",
    "dist",
    "dist0",
    "dist_matrix",
    "einstein_midpoint",
    "expmap",
    "expmap0",
    "gromov_delta",
    "gromov_products",
    "hierarchy_radii",
    "hyperbolic_knn",
    "hyperbolic_retrieval_metrics",
    "klein_to_poincare",
    "lambda_x",
    "logmap",
    "logmap0",
    "max_min_product",
    "mobius_add",
    "mobius_scalar_mul",
    "poincare_to_klein",
    "project",
    "with_hyperbolic_metrics",
]
