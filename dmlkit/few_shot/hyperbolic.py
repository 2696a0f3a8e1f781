"""Hyperbolic prototypical networks (Khrulkov et al., CVPR 2020)."""

from __future__ import annotations

import math

from torch import Tensor

from dmlkit.checks import check_curvature
from dmlkit.few_shot.heads import FewShotClassifier, _check_temperature, _episode_batch, _unbatch
from dmlkit.geometry.poincare import dist, klein_to_poincare, poincare_to_klein
from dmlkit.geometry.poincare.core import conformal_gap

__all__ = ["HyperbolicPrototypicalNetworks"]


class HyperbolicPrototypicalNetworks(FewShotClassifier):
    r"""Hyperbolic prototypical networks (Khrulkov et al., CVPR 2020, "Hyperbolic Image
    Embeddings", Sec. 4 "hyperbolic averaging" and the few-shot experiments).

    Embeddings are points of the Poincaré ball of curvature :math:`-c` (the output of
    :class:`dmlkit.geometry.HyperbolicProjection`; Khrulkov et al.'s ``ToPoincare`` is its
    ``clip_r=None`` case). A class prototype is the Einstein midpoint of its support points,
    computed in the Klein model (:func:`dmlkit.geometry.einstein_midpoint`):

    .. math::
        \bar x_K = \frac{\sum_i \gamma_i x_{K,i}}{\sum_i \gamma_i}, \qquad
        \gamma_i = \frac{1}{\sqrt{1 - c\|x_{K,i}\|^2}},

    and a query's logits are :math:`-d_c(x, \bar x)/\tau` with the Poincaré distance
    :func:`dmlkit.geometry.dist` (the authors' code divides by a temperature too; 1 by default).
    ``c = 0`` gives the arithmetic mean and logits :math:`-2\|x - \bar x\|/\tau`.

    Args:
        c: curvature parameter (the authors' few-shot scripts use 0.01–0.05).
        temperature: :math:`\tau`.
    """

    def __init__(self, c: float = 0.05, temperature: float = 1.0) -> None:
        super().__init__()
        self.c = check_curvature(c)
        self.temperature = _check_temperature(temperature)

    def check_points(self, x: Tensor, name: str = "embeddings") -> None:
        """Raise ``ValueError`` unless every row lies inside the ball (:math:`c\\|x\\|^2 < 1`)."""
        if self.c > 0 and (self.c * x.detach().pow(2).sum(dim=-1) >= 1.0).any():
            raise ValueError(
                f"{name} has points on or outside the Poincaré ball of radius "
                f"1/sqrt(c) = {1 / math.sqrt(self.c):.4g}; map the features with "
                f"dmlkit.geometry.HyperbolicProjection(c={self.c})"
            )

    def _midpoints(self, support: Tensor, one_hot: Tensor) -> Tensor:
        sq = support.pow(2).sum(dim=-1, keepdim=True)  # (B, S, 1)
        gamma = (1.0 + self.c * sq) / conformal_gap(sq, self.c)  # Lorentz factor, from Poincaré coordinates
        klein = poincare_to_klein(support, c=self.c)
        weights = one_hot * gamma  # (B, S, n_way)
        mid = weights.transpose(1, 2) @ klein / weights.sum(dim=1).unsqueeze(-1)
        return klein_to_poincare(mid, c=self.c)

    def prototypes(self, support: Tensor, support_labels: Tensor) -> Tensor:
        """``(n_way, D)`` (or ``(B, n_way, D)``) Einstein midpoints of the classes' support points."""
        support3, one_hot, _, _, batched = _episode_batch(support, support_labels, support)
        self.check_points(support3, "support")
        return _unbatch(self._midpoints(support3, one_hot), batched)

    def scores(self, support: Tensor, one_hot: Tensor, query: Tensor, unlabelled: Tensor | None = None) -> Tensor:
        """See :meth:`FewShotClassifier.scores`."""
        prototypes = self._midpoints(support, one_hot)
        distances = dist(query.unsqueeze(2), prototypes.unsqueeze(1), c=self.c)  # (B, Q, n_way)
        return -distances / self.temperature

    def extra_repr(self) -> str:
        return f"c={self.c}, temperature={self.temperature}"
