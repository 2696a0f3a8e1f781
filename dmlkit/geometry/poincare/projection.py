"""A layer that maps Euclidean features into the Poincaré ball."""

from __future__ import annotations

import numbers

from torch import Tensor, nn

from dmlkit.checks import check_curvature, check_embeddings, check_positive
from dmlkit.geometry.poincare.operations import clip_features, expmap0, project

__all__ = ["HyperbolicProjection"]


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
        self.c = check_curvature(c)
        if clip_r is not None:
            check_positive("clip_r", clip_r)
            clip_r = float(clip_r)
        self.clip_r = clip_r
        if not (isinstance(eps, numbers.Real) and 0.0 < float(eps) < 1.0):
            raise ValueError(f"eps must lie in (0, 1), got {eps!r}")
        self.eps = float(eps)

    def forward(self, features: Tensor) -> Tensor:
        """Map ``(B, D)`` Euclidean features to ``(B, D)`` points of the ball."""
        check_embeddings(features, "features")
        if self.clip_r is not None:
            features = clip_features(features, self.clip_r)
        if self.c == 0:
            return features
        return project(expmap0(features, c=self.c), c=self.c, eps=self.eps)

    def extra_repr(self) -> str:
        return f"c={self.c}, clip_r={self.clip_r}, eps={self.eps}"
