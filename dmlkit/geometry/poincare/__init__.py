"""The Poincaré ball of curvature :math:`-c`: Möbius operations, distances, maps and midpoints.

The ball is :math:`\\mathbb{D}^n_c = \\{x \\in \\mathbb{R}^n : c\\|x\\|^2 < 1\\}` with the metric
:math:`g_x = (\\lambda^c_x)^2 g^E`, :math:`\\lambda^c_x = 2 / (1 - c\\|x\\|^2)` (the conformal factor).
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
* Distances use the exact identities :math:`\\|(-x)\\oplus_c y\\|^2 = \\|x-y\\|^2 / D` and
  :math:`1 - c\\|(-x)\\oplus_c y\\|^2 = (1-c\\|x\\|^2)(1-c\\|y\\|^2) / D` with
  :math:`D = c\\|x-y\\|^2 + (1-c\\|x\\|^2)(1-c\\|y\\|^2)`, and
  :math:`\\operatorname{artanh} z = \\log(1+z) - \tfrac12\\log(1-z^2)`. Every factor is a sum or
  product of non-negative terms, so ``1 - z`` is never formed by cancellation. Against a
  60-digit reference the float64 distance stays within ~1e-11 relative even for points within
  ``1e-7`` of the boundary (the remaining error is the rounding of ``1 - c||x||^2`` itself,
  ~1e-16 / gap relative). The textbook route ``artanh(sqrt(c) * ||(-x) + y||)`` loses digits
  there: geoopt's ``dist`` is off by ~1e-8 at radius 0.999 (c = 0.1), by ~1e-5 for nearby points
  within 1e-5 of the boundary, and clamps its artanh argument at ``1 - 1e-7``, so it saturates
  for far-apart points that close to the boundary.
* The only clamp that can change a value: the conformal gap :math:`1 - c\\|x\\|^2` is clamped
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

from dmlkit.geometry.poincare import klein, operations, projection
from dmlkit.geometry.poincare.klein import einstein_midpoint, klein_to_poincare, poincare_to_klein
from dmlkit.geometry.poincare.operations import (
    clip_features,
    dist,
    dist0,
    dist_matrix,
    expmap,
    expmap0,
    lambda_x,
    logmap,
    logmap0,
    mobius_add,
    mobius_scalar_mul,
    project,
)
from dmlkit.geometry.poincare.projection import HyperbolicProjection

__all__ = [
    *klein.__all__,
    *operations.__all__,
    *projection.__all__,
]
