"""Semi-supervised prototypes refined with unlabelled images (Ren et al., ICLR 2018)."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from dmlkit.checks import check_positive
from dmlkit.few_shot.heads import FewShotClassifier, _episode_batch, _squared_distances, _unbatch, distance_statistics

__all__ = ["SemiSupervisedPrototypes"]


class SemiSupervisedPrototypes(FewShotClassifier):
    r"""Prototypes refined with unlabelled images by soft k-means (Ren et al., ICLR 2018).

    Starting from the prototypes :math:`p_c` of the labelled support (Snell et al.'s class
    means), each refinement step assigns every unlabelled embedding :math:`\tilde x_j` softly to
    the prototypes and recomputes them with the labelled points at weight one (Eq. 4):

    .. math::
        \tilde p_c = \frac{\sum_i h(x_i) z_{i,c} + \sum_j h(\tilde x_j) \tilde z_{j,c}}
                          {\sum_i z_{i,c} + \sum_j \tilde z_{j,c}}, \qquad
        \tilde z_{j,c} = \frac{\exp(-\|h(\tilde x_j) - p_c\|^2)}{\sum_{c'} \exp(-\|h(\tilde x_j) - p_{c'}\|^2)}

    (:math:`z_{i,c} = [y_i = c]`). Queries are then classified like Snell et al.'s, by
    :math:`-\|h(x) - \tilde p_c\|^2`. Three variants (``distractor=``), the paper's three models:

    - ``"none"`` — *soft k-means* (Sec. 3.1): every unlabelled image is assumed to belong to an
      episode class; distractors (images of other classes) pull prototypes away.
    - ``"cluster"`` — *soft k-means with a distractor cluster* (Sec. 3.2, Eqs. 5–6): an extra
      cluster with its centre fixed **at the origin** and its own length scale :math:`r`
      absorbs the distractors:
      :math:`\tilde z_{j,c} \propto \exp\big(-\|h(\tilde x_j) - p_c\|^2 / r_c^2 - A(r_c)\big)`
      with :math:`A(r) = \tfrac12\log(2\pi) + \log r`, :math:`r_c = 1` for the episode classes
      and :math:`r_{N+1} =` ``distractor_radius`` (learned when ``learn_radius=True``; the
      authors' code starts it at 100 and, unlike the equation, divides the squared distances
      by :math:`2r^2` — this class follows the equation). Only the ``n_way`` real clusters are
      refined; the distractor cluster just takes its share of each unlabelled image.
    - ``"masked"`` — *masked soft k-means* (Sec. 3.3, Eqs. 7–8): with the normalised distances
      :math:`\tilde d_{j,c} = d_{j,c} / (\tfrac1M\sum_j d_{j,c})` a soft mask
      :math:`m_{j,c} = \sigma(-\gamma_c(\tilde d_{j,c} - \beta_c))` multiplies
      :math:`\tilde z_{j,c}`, so images far from a prototype relative to the others do not move
      it. The paper predicts :math:`(\beta_c, \gamma_c)` per class with a small MLP on
      :func:`distance_statistics`; pass such a network as ``mask_net`` (it must map
      ``(..., 5)`` to ``(..., 2)`` raw values; :math:`\beta = e^{o_0}`, :math:`\gamma = e^{o_1}`
      as in the authors' code), or leave ``None`` to use the fixed ``mask_threshold``
      (:math:`\beta`) and ``mask_slope`` (:math:`\gamma`) for every class.

    Without unlabelled images (``unlabelled=None`` or empty) this is :class:`PrototypicalNetworks`.
    The paper meta-trains the network through the refinement; used on a network trained
    without it (as in the kit's notebook), the refinement is a test-time procedure whose free
    parameters (``distractor_radius``, ``mask_threshold``) should be chosen on training classes.

    Args:
        distractor: ``"none"``, ``"cluster"`` or ``"masked"`` (above).
        num_steps: refinement steps (default 1).
        distractor_radius: :math:`r_{N+1}` of the distractor cluster.
        learn_radius: make :math:`\log r_{N+1}` a parameter, for meta-training through the
            refinement as Ren et al. do (:class:`EpisodicLoss` gives no unlabelled images, so
            that needs a training loop that draws them).
        mask_threshold, mask_slope: fixed :math:`\beta`, :math:`\gamma` of the masked variant.
        mask_net: optional module predicting :math:`(\log\beta, \log\gamma)` from the statistics.
    """

    uses_unlabelled = True
    VARIANTS = ("none", "cluster", "masked")

    def __init__(
        self,
        distractor: Literal["none", "cluster", "masked"] = "none",
        num_steps: int = 1,
        distractor_radius: float = 1.0,
        learn_radius: bool = False,
        mask_threshold: float = 1.0,
        mask_slope: float = 10.0,
        mask_net: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if distractor not in self.VARIANTS:
            raise ValueError(f"distractor must be one of {list(self.VARIANTS)}, got {distractor!r}")
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
            raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
        check_positive("distractor_radius", distractor_radius)
        check_positive("mask_threshold", mask_threshold)
        check_positive("mask_slope", mask_slope)
        if mask_net is not None and distractor != "masked":
            raise ValueError("mask_net is only used with distractor='masked'")
        self.distractor = distractor
        self.num_steps = num_steps
        log_radius = torch.tensor(math.log(float(distractor_radius)))
        if learn_radius:
            self.log_radius = nn.Parameter(log_radius)
        else:
            self.register_buffer("log_radius", log_radius)
        self.mask_threshold = float(mask_threshold)
        self.mask_slope = float(mask_slope)
        self.mask_net = mask_net

    @property
    def distractor_radius(self) -> float:
        return float(self.log_radius.detach().exp())

    def _weights(self, unlabelled: Tensor, prototypes: Tensor) -> Tensor:
        """``(B, M, n_way)`` weights :math:`\\tilde z_{j,c}` (times the mask when masked)."""
        squared = _squared_distances(unlabelled, prototypes)  # (B, M, n_way)
        if self.distractor == "cluster":
            log_r = self.log_radius.to(unlabelled.dtype)
            half_log_2pi = 0.5 * math.log(2.0 * math.pi)
            real = -squared - half_log_2pi  # r_c = 1: log r_c = 0
            origin = -unlabelled.pow(2).sum(dim=-1, keepdim=True) * torch.exp(-2.0 * log_r) - half_log_2pi - log_r
            return torch.softmax(torch.cat([real, origin], dim=-1), dim=-1)[..., :-1]
        weights = torch.softmax(-squared, dim=-1)
        if self.distractor == "masked":
            mean = squared.mean(dim=1, keepdim=True)
            normalised = squared / torch.where(mean == 0, torch.ones_like(mean), mean)
            if self.mask_net is not None:
                out = self.mask_net(distance_statistics(normalised).detach())  # (B, n_way, 2)
                beta, gamma = out[..., 0].exp().unsqueeze(1), out[..., 1].exp().unsqueeze(1)
            else:
                beta, gamma = self.mask_threshold, self.mask_slope
            weights = weights * torch.sigmoid(-gamma * (normalised - beta))
        return weights

    def refine(self, support: Tensor, support_labels: Tensor, unlabelled: Tensor | None) -> Tensor:
        """The refined prototypes ``(n_way, D)`` (or ``(B, n_way, D)``) after ``num_steps`` steps."""
        support3, one_hot, _, unlabelled3, batched = _episode_batch(support, support_labels, support, unlabelled)
        return _unbatch(self._refine(support3, one_hot, unlabelled3), batched)

    def _refine(self, support: Tensor, one_hot: Tensor, unlabelled: Tensor | None) -> Tensor:
        labelled_sum = one_hot.transpose(1, 2) @ support  # (B, n_way, D)
        labelled_count = one_hot.sum(dim=1).unsqueeze(-1)  # (B, n_way, 1)
        prototypes = labelled_sum / labelled_count
        if unlabelled is None or unlabelled.shape[1] == 0:
            return prototypes
        for _ in range(self.num_steps):
            weights = self._weights(unlabelled, prototypes)  # (B, M, n_way)
            prototypes = (labelled_sum + weights.transpose(1, 2) @ unlabelled) / (
                labelled_count + weights.sum(dim=1).unsqueeze(-1)
            )
        return prototypes

    def forward(
        self, support: Tensor, support_labels: Tensor, query: Tensor, unlabelled: Tensor | None = None
    ) -> Tensor:
        support, one_hot, query, unlabelled, batched = _episode_batch(support, support_labels, query, unlabelled)
        return _unbatch(self.scores(support, one_hot, query, unlabelled), batched)

    def scores(self, support: Tensor, one_hot: Tensor, query: Tensor, unlabelled: Tensor | None = None) -> Tensor:
        """See :meth:`FewShotClassifier.scores`."""
        return -_squared_distances(query, self._refine(support, one_hot, unlabelled))

    def extra_repr(self) -> str:
        return (
            f"distractor={self.distractor!r}, num_steps={self.num_steps}, "
            f"distractor_radius={self.distractor_radius:.4g}, mask_threshold={self.mask_threshold}, "
            f"mask_slope={self.mask_slope}"
        )
