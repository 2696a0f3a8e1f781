r"""Distance-weighted sampling with Roth et al.'s ρ-regularisation, and the two losses it feeds.

**Distance-weighted sampling** (Wu, Manmatha, Smola & Krähenbühl, ICCV 2017, "Sampling Matters in
Deep Embedding Learning", Sec. 4). Distances between random points of the unit sphere in
:math:`\mathbb R^n` follow :math:`q(d) \propto d^{n-2}(1 - d^2/4)^{(n-3)/2}` (Eq. 3), so drawing
negatives uniformly yields almost only far ones. Each anchor draws its negative with probability
:math:`\propto q(d)^{-1}` instead (Eq. 4), the distance clamped below at a cutoff (0.5) so that
near-duplicates do not dominate; its positive is drawn uniformly among its class.

**ρ-regularisation** (Roth, Milbich, Sinha, Gupta, Ommer & Cohen, ICML 2020, "Revisiting Training
Strategies and Generalization Performance in Deep Metric Learning", Sec. 5). The authors' batch
miner ``rho_distance`` (Revisiting_Deep_Metric_Learning_PyTorch, ``batchminer/rho_distance.py``)
is the sampler above with a switch: with probability ``p_switch`` an anchor's triplet becomes
:math:`(a, a, p')` — the anchor itself as its positive, a same-class sample :math:`p'` (uniform)
as its negative — so the loss pushes :math:`p'` away from :math:`a` and the space keeps some
intra-class variation (less compression, a lower ρ). The switch replaces the sampled triplet,
after sampling. They use ``p_switch`` between 0.15 and 0.4 with the margin loss and the triplet
loss.

- :class:`DistanceWeightedMiner` returns PML-style ``(anchors, positives, negatives)``, one
  triplet per anchor that has another sample of its class;
- :class:`MarginLoss` — Wu et al.'s margin loss (Eq. 5) with a learnable boundary β per class;
  equal to PML's ``MarginLoss`` on the same triplets;
- :class:`DistanceWeightedTripletLoss` — the triplet loss on the sampled triplets, averaged over
  them as the authors' ``criteria/triplet.py`` does.

Both losses take ``p_switch`` in their constructor (0 turns the regulariser off) and sample anew
at every call in training mode; ``forward(embeddings, labels, indices_tuple)`` takes given
triplets instead, as PML's losses do.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dmlkit.checks import check_embeddings_and_labels, check_int, check_non_negative, check_positive, check_probability
from dmlkit.distances import DistanceModule, EuclideanDistance
from dmlkit.miners import pair_masks

__all__ = ["DistanceWeightedMiner", "MarginLoss", "DistanceWeightedTripletLoss", "inverse_sphere_weights"]


def inverse_sphere_weights(distances: Tensor, dim: int, cutoff: float = 0.5) -> Tensor:
    """Unnormalised log-weights :math:`\\log q(d)^{-1}` of Wu et al.'s Eq. 4 for distances between
    unit vectors of ``dim`` dimensions: ``(2 - n) log d - (n - 3)/2 · log(1 - d²/4)``, with ``d``
    clamped to ``[cutoff, 2)`` (the upper clamp keeps the logarithm finite at antipodal points)."""
    d = distances.clamp(min=cutoff, max=2.0 - 1e-6)
    return (2.0 - dim) * d.log() - (dim - 3.0) / 2.0 * torch.log(1.0 - 0.25 * d.pow(2))


class DistanceWeightedMiner(DistanceModule):
    """Distance-weighted triplets (Wu et al., ICCV 2017) with ρ-regularisation's switch (Roth et
    al., ICML 2020): see the module docstring.

    Args:
        p_switch: probability that an anchor's triplet becomes ``(a, a, p')``; in ``[0, 1]``.
        cutoff: lower clamp of the distances in the sampling weights (Wu et al. and Roth et al.: 0.5).
        distance: Euclidean distance of L2-normalised embeddings (the default, PML's
            ``LpDistance()``), the distance the sphere density assumes.

    ``forward(embeddings, labels)`` returns ``(anchors, positives, negatives)`` index tensors, one
    triplet per anchor with at least one other sample of its class (and, unless switched, one of
    another class); a switched triplet has ``positives[i] == anchors[i]``. Random draws come from
    torch's global generator (seeded by :func:`dmlkit.seed_everything`) or ``generator``.
    """

    def __init__(self, p_switch: float = 0.0, cutoff: float = 0.5, distance: EuclideanDistance | None = None) -> None:
        super().__init__(distance)
        if (
            not isinstance(self.distance, EuclideanDistance)
            or self.distance.squared
            or not self.distance.normalize_embeddings
        ):
            raise ValueError(
                "distance-weighted sampling assumes points on the unit sphere: pass EuclideanDistance() "
                f"(normalised, not squared), got {self.distance!r}"
            )
        self.p_switch = check_probability("p_switch", p_switch)
        self.cutoff = check_positive("cutoff", cutoff)

    @torch.no_grad()
    def forward(
        self, embeddings: Tensor, labels: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        check_embeddings_and_labels(embeddings, labels)
        labels = labels.to(embeddings.device)
        dist = self.distance(embeddings)
        pos, neg = pair_masks(labels)
        device = embeddings.device
        source = generator.device if generator is not None else device

        def draw(*shape: int) -> Tensor:
            return torch.rand(*shape, generator=generator, device=source).to(device)

        has_pos, has_neg = pos.any(dim=1), neg.any(dim=1)
        switched = (draw(len(labels)) < self.p_switch) & has_pos
        keep = has_pos & (switched | has_neg)
        # a uniform positive per anchor: the positive with the largest uniform score
        positive = torch.where(pos, draw(*pos.shape), -1.0).argmax(dim=1)
        # a negative with probability ∝ q(d)^-1: Gumbel-max over the log-weights of the negatives
        log_w = inverse_sphere_weights(dist, embeddings.shape[1], self.cutoff)
        gumbel = -torch.log(-torch.log(draw(*neg.shape).clamp_min(1e-20)))
        negative = torch.where(neg, log_w + gumbel, -math.inf).argmax(dim=1)
        anchors = torch.arange(len(labels), device=device)
        positives = torch.where(switched, anchors, positive)
        negatives = torch.where(switched, positive, negative)
        return anchors[keep], positives[keep], negatives[keep]

    def extra_repr(self) -> str:
        return f"p_switch={self.p_switch}, cutoff={self.cutoff}"


class _SampledTripletLoss(DistanceModule):
    """A loss on triplets: sampled by a :class:`DistanceWeightedMiner` or given (``indices_tuple``)."""

    def __init__(self, p_switch: float, cutoff: float, distance: EuclideanDistance | None) -> None:
        super().__init__(distance)
        self.miner = DistanceWeightedMiner(p_switch, cutoff, self.distance)

    @property
    def p_switch(self) -> float:
        return self.miner.p_switch

    def forward(
        self, embeddings: Tensor, labels: Tensor, indices_tuple: tuple[Tensor, Tensor, Tensor] | None = None
    ) -> Tensor:
        check_embeddings_and_labels(embeddings, labels)
        labels = labels.to(embeddings.device)
        if indices_tuple is None:
            indices_tuple = self.miner(embeddings, labels)
        anchors, positives, negatives = (t.to(embeddings.device) for t in indices_tuple)
        if anchors.numel() == 0:
            return embeddings.sum() * 0.0  # no anchor with a positive: zero, still on the graph
        d_ap = self.distance.paired(embeddings[anchors], embeddings[positives])
        d_an = self.distance.paired(embeddings[anchors], embeddings[negatives])
        return self._loss(d_ap, d_an, labels[anchors])

    def _loss(self, d_ap: Tensor, d_an: Tensor, anchor_labels: Tensor) -> Tensor:
        raise NotImplementedError


class MarginLoss(_SampledTripletLoss):
    r"""Margin loss (Wu, Manmatha, Smola & Krähenbühl, ICCV 2017, Eq. 5) on distance-weighted
    triplets, with ρ-regularisation (Roth et al., ICML 2020) through ``p_switch``.

    Per triplet, with :math:`\beta` the boundary of the anchor's class:
    :math:`[d(a,p) - \beta + \alpha]_+ + [\beta - d(a,n) + \alpha]_+`; the sum is divided by the
    number of non-zero terms, plus :math:`\nu \sum \beta` over the triplets (Wu et al.'s
    regulariser, ν = 0 in Roth et al.). Equal to PML's ``MarginLoss(margin, nu, beta,
    learn_beta, num_classes)`` on the same triplets.

    Args:
        num_classes: training classes (one β each, when learned).
        margin: α (Wu et al. and Roth et al.: 0.2).
        beta: initial β (1.2).
        learn_beta: learn one β per class (the papers' setting; its learning rate is the loss's,
            ``Budget.loss_lr``), else a fixed β.
        nu: weight of the β regulariser (0).
        p_switch, cutoff: the sampler's (:class:`DistanceWeightedMiner`).
    """

    def __init__(
        self,
        num_classes: int,
        margin: float = 0.2,
        beta: float = 1.2,
        learn_beta: bool = True,
        nu: float = 0.0,
        p_switch: float = 0.0,
        cutoff: float = 0.5,
        distance: EuclideanDistance | None = None,
    ) -> None:
        super().__init__(p_switch, cutoff, distance)
        self.num_classes = check_int("num_classes", num_classes, 1)
        self.margin = check_non_negative("margin", margin)
        self.nu = check_non_negative("nu", nu)
        beta = check_positive("beta", beta)
        self.learn_beta = bool(learn_beta)
        values = torch.full((self.num_classes if self.learn_beta else 1,), beta)
        self.beta = nn.Parameter(values) if self.learn_beta else nn.Buffer(values)

    def _loss(self, d_ap: Tensor, d_an: Tensor, anchor_labels: Tensor) -> Tensor:
        if self.learn_beta and int(anchor_labels.max()) >= self.num_classes:
            raise ValueError(f"labels must lie in [0, {self.num_classes}) for a learned beta per class")
        beta = self.beta[anchor_labels] if self.learn_beta else self.beta.expand_as(d_ap)
        beta = beta.to(d_ap.dtype)
        pos_loss = F.relu(d_ap - beta + self.margin)
        neg_loss = F.relu(beta - d_an + self.margin)
        count = (pos_loss > 0).sum() + (neg_loss > 0).sum()
        loss = (pos_loss + neg_loss).sum() / count.clamp_min(1)
        return loss + self.nu * beta.sum() if self.nu > 0 else loss

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, margin={self.margin}, learn_beta={self.learn_beta}, nu={self.nu}, {self.miner.extra_repr()}"


class DistanceWeightedTripletLoss(_SampledTripletLoss):
    r"""The triplet loss :math:`[d(a,p) - d(a,n) + m]_+` on distance-weighted triplets, averaged
    over the sampled triplets (Roth et al.'s ``criteria/triplet.py``), with ρ-regularisation
    through ``p_switch``. Equal to PML's ``TripletMarginLoss(margin, reducer=MeanReducer())`` on
    the same triplets.

    Args:
        margin: m (Roth et al.: 0.2).
        p_switch, cutoff: the sampler's (:class:`DistanceWeightedMiner`).
    """

    def __init__(
        self, margin: float = 0.2, p_switch: float = 0.0, cutoff: float = 0.5, distance: EuclideanDistance | None = None
    ) -> None:
        super().__init__(p_switch, cutoff, distance)
        self.margin = check_non_negative("margin", margin)

    def _loss(self, d_ap: Tensor, d_an: Tensor, anchor_labels: Tensor) -> Tensor:
        return F.relu(d_ap - d_an + self.margin).mean()

    def extra_repr(self) -> str:
        return f"margin={self.margin}, {self.miner.extra_repr()}"
