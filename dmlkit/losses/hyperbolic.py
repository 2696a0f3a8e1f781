r"""Hyperbolic metric-learning losses on the Poincaré ball.

- :class:`PairwiseCrossEntropyLoss` — the pairwise cross-entropy of Ermolov et al., CVPR 2022,
  "Hyperbolic Vision Transformers: Combining Improvements in Metric Learning" (Hyp-ViT), with
  logits :math:`-d_c(z_i, z_j)/\tau`, generalised from two views per class to any labelled batch;
  ``c = 0`` is the paper's spherical baseline (cosine similarity logits).
- :class:`HyperbolicPrototypeLoss` — a distance-based softmax over one learnable representative
  (proxy) per class placed in the ball, logits :math:`-d_c(z, p_y)/\tau`; the proxy idea of
  Movshovitz-Attias et al. (ICCV 2017, ProxyNCA) with the hyperbolic distance-softmax of the
  hyperbolic prototypical networks of Khrulkov et al. (CVPR 2020, "Hyperbolic Image Embeddings").

Both expect embeddings that already lie in the ball — the output of
:class:`dmlkit.geometry.HyperbolicProjection` (clip, ``expmap0``, project) — and raise
``ValueError`` for a row with :math:`c\|z\|^2 \ge 1`. Neither needs a Riemannian optimiser: the
only parameters (the proxies) are Euclidean vectors mapped into the ball by ``expmap0``.
Distances come from :func:`dmlkit.geometry.dist_matrix` (no ``(B, B, D)`` tensor).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dmlkit.checks import check_class_batch, check_curvature, check_embeddings_and_labels, check_positive
from dmlkit.geometry.poincare import dist_matrix, expmap0, project

__all__ = ["PairwiseCrossEntropyLoss", "HyperbolicPrototypeLoss"]

# Ermolov et al.'s temperatures: 0.2 for the hyperbolic model, 0.1 for the spherical baseline.
_DEFAULT_TEMPERATURE = {True: 0.2, False: 0.1}


def _resolve_temperature(temperature: float | None, c: float) -> float:
    if temperature is None:
        return _DEFAULT_TEMPERATURE[c > 0]
    check_positive("temperature", temperature)
    return float(temperature)


def _check_inside_ball(embeddings: Tensor, c: float) -> None:
    if c == 0:
        return
    outside = (c * embeddings.detach().pow(2).sum(dim=1) >= 1.0).nonzero().flatten()
    if outside.numel():
        raise ValueError(
            f"{outside.numel()} embeddings lie on or outside the Poincaré ball of radius "
            f"1/sqrt(c) = {1.0 / math.sqrt(c):.4g} (first rows {outside[:5].tolist()}); map "
            f"features into the ball with dmlkit.geometry.HyperbolicProjection(c={c})"
        )


def _logits(embeddings: Tensor, reference: Tensor | None, c: float, temperature: float) -> Tensor:
    """``-d_c(x, y) / temperature`` for ``c > 0``; cosine similarity / temperature for ``c = 0``."""
    if c > 0:
        return -dist_matrix(embeddings, reference, c=c) / temperature
    x = F.normalize(embeddings, dim=1)
    y = x if reference is None else F.normalize(reference, dim=1)
    return (x @ y.T) / temperature


class PairwiseCrossEntropyLoss(nn.Module):
    r"""Pairwise cross-entropy with hyperbolic-distance logits (Ermolov et al., CVPR 2022).

    Hyp-ViT (method section, "pairwise cross-entropy loss") samples two views of each of ``K``
    images and, for a positive pair :math:`(i, j)`, uses

    .. math::
        l_{ij} = -\log\frac{\exp(-d_c(z_i, z_j)/\tau)}
                         {\sum_{k=1, k\ne i}^{2K}\exp(-d_c(z_i, z_k)/\tau)},

    averaged over all positive pairs, both :math:`(i, j)` and :math:`(j, i)`. The denominator
    runs over every other sample in the batch, the positive included.

    **Generalisation to labelled batches (what this class computes).** Every ordered pair
    :math:`(i, j)`, :math:`i \ne j`, with the same label is a positive pair; its term is
    :math:`l_{ij}` above with the denominator over all :math:`k \ne i` (so the other positives of
    the anchor stay in the denominator); the loss is the mean of :math:`l_{ij}` over all positive
    pairs of the batch:

    .. math::
        L = \frac{1}{|\mathcal P|}\sum_{(i,j)\in\mathcal P} l_{ij}, \qquad
        \mathcal P = \{(i, j) : i \ne j,\ y_i = y_j\}.

    With exactly two samples per class this is the paper's loss term for term. With more, an
    anchor with more positives weighs more (the mean is per pair, not per anchor), which is the
    literal reading of "averaged over positive pairs". Samples whose class has no other member
    in the batch only act as negatives. A batch without any positive pair gives a zero loss
    (connected to the graph).
    With ``c = 0`` and two views per class it equals pytorch-metric-learning's
    ``NTXentLoss(temperature)`` (cosine similarity); with more views it does not, because
    ``NTXentLoss`` leaves the other positives out of the denominator.

    Logits: :math:`-d_c(z_i, z_j)/\tau` for ``c > 0`` (embeddings must lie in the ball); for
    ``c = 0`` the spherical baseline of the paper, :math:`\cos(z_i, z_j)/\tau` on L2-normalised
    embeddings (not the Euclidean limit :math:`-2\|z_i - z_j\|/\tau` of the distance). The
    masked log-sum-exp excludes :math:`k = i`; there is no loop over pairs.

    Args:
        c: curvature parameter; 0.1 as in Ermolov et al. ``c = 0`` selects the spherical variant.
        temperature: :math:`\tau`; ``None`` takes the paper's value, 0.2 for ``c > 0`` and 0.1
            for the spherical baseline (``c = 0``).
    """

    def __init__(self, c: float = 0.1, temperature: float | None = None) -> None:
        super().__init__()
        self.c = check_curvature(c)
        self.temperature = _resolve_temperature(temperature, self.c)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        check_embeddings_and_labels(embeddings, labels)
        _check_inside_ball(embeddings, self.c)
        n = embeddings.shape[0]
        self_mask = torch.eye(n, dtype=torch.bool, device=embeddings.device)
        positive = (labels.unsqueeze(1) == labels.unsqueeze(0)) & ~self_mask
        num_pairs = positive.sum()
        if n < 2 or num_pairs == 0:
            return embeddings.sum() * 0.0
        logits = _logits(embeddings, None, self.c, self.temperature)
        logits = logits.masked_fill(self_mask, float("-inf"))
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        return -log_prob.masked_fill(~positive, 0.0).sum() / num_pairs

    def extra_repr(self) -> str:
        return f"c={self.c}, temperature={self.temperature}"


class HyperbolicPrototypeLoss(nn.Module):
    r"""Softmax over negative hyperbolic distances to one learnable proxy per class.

    Each class :math:`y` has a representative :math:`p_y = \operatorname{proj}(\exp^c_0(v_y))`
    in the ball, where :math:`v_y` is the Euclidean parameter row ``proxies[y]`` (so a plain
    optimiser suffices, no Riemannian one; ``proj`` keeps it within ``(1 - 1e-3)/sqrt(c)``, as
    :class:`~dmlkit.geometry.HyperbolicProjection` does for embeddings). The loss is the
    cross-entropy of the logits :math:`-d_c(z, p_k)/\tau`:

    .. math::
        L = \frac1B\sum_{i=1}^{B} -\log\frac{\exp(-d_c(z_i, p_{y_i})/\tau)}
                                        {\sum_{k=1}^{C}\exp(-d_c(z_i, p_k)/\tau)}.

    This is the classification rule of the hyperbolic prototypical networks of Khrulkov et al.
    (CVPR 2020, "Hyperbolic Image Embeddings"), whose prototypes are Einstein midpoints of
    support embeddings (:func:`dmlkit.geometry.einstein_midpoint`), with the prototypes made
    learnable proxies as in ProxyNCA (Movshovitz-Attias et al., ICCV 2017; here the positive
    proxy stays in the denominator, as in PML's ``ProxyNCALoss``) and the curvature and
    temperature of Ermolov et al. (CVPR 2022). It is a construction of this kit, not the loss of
    one paper. ``c = 0`` gives the spherical counterpart, logits :math:`\cos(z, v_k)/\tau` —
    the normalised softmax of Zhai & Wu (BMVC 2019).

    The proxies are initialised :math:`\mathcal N(0, 1/D)` (tangent norm about 1, inside the
    region that the clipped head reaches: tangent norm at most ``clip_r = 2.3``).

    Args:
        num_classes: number of training classes; labels must lie in ``[0, num_classes)``.
        embedding_size: dimension ``D`` of the embeddings.
        c: curvature parameter (``c = 0``: spherical variant).
        temperature: :math:`\tau`; ``None`` gives 0.2 for ``c > 0`` and 0.1 for ``c = 0`` (the
            values of Ermolov et al.).
    """

    def __init__(self, num_classes: int, embedding_size: int, c: float = 0.1, temperature: float | None = None) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        if isinstance(embedding_size, bool) or not isinstance(embedding_size, int) or embedding_size < 1:
            raise ValueError(f"embedding_size must be a positive integer, got {embedding_size!r}")
        self.num_classes = num_classes
        self.embedding_size = embedding_size
        self.c = check_curvature(c)
        self.temperature = _resolve_temperature(temperature, self.c)
        self.proxies = nn.Parameter(torch.randn(num_classes, embedding_size) / math.sqrt(embedding_size))

    def ball_proxies(self) -> Tensor:
        """The class representatives in the ball, ``project(expmap0(proxies))`` (``(C, D)``).

        For ``c = 0`` the raw (Euclidean) proxies, which the spherical variant normalises.
        """
        if self.c == 0:
            return self.proxies
        return project(expmap0(self.proxies, c=self.c), c=self.c, eps=1e-3)

    def logits(self, embeddings: Tensor) -> Tensor:
        """``(B, C)`` logits ``-d_c(z, p_k) / temperature`` (cosine / temperature for ``c = 0``)."""
        proxies = self.ball_proxies().to(embeddings.dtype)
        return _logits(embeddings, proxies, self.c, self.temperature)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        check_class_batch(embeddings, labels, self.num_classes, self.embedding_size, type(self).__name__)
        _check_inside_ball(embeddings, self.c)
        return F.cross_entropy(self.logits(embeddings), labels)

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, embedding_size={self.embedding_size}, c={self.c}, "
            f"temperature={self.temperature}"
        )
