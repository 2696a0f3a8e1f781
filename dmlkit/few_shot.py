r"""Few-shot classification: metric learning judged on episodes of a handful of labelled images.

An *episode* (Vinyals et al., NeurIPS 2016) draws ``n_way`` classes never seen in training, a
*support set* of ``k_shot`` labelled images of each and a *query set* to classify. A metric
few-shot classifier embeds both sets with a trained network and labels each query by comparing
it with the support embeddings; no weight is changed at test time.

Classifiers (``nn.Module`` heads working on embeddings, never on images)
-----------------------------------------------------------------------
- :class:`PrototypicalNetworks` — Snell, Swersky & Zemel, "Prototypical Networks for Few-shot
  Learning", NeurIPS 2017: a class is its *prototype*, the mean support embedding (Eq. 1), and a
  query's logits are the negative squared Euclidean distances to the prototypes (Eq. 2). Cosine
  similarity and the non-squared distance (easyfsl's choice) are options.
- :class:`MatchingNetworks` — Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra, "Matching
  Networks for One Shot Learning", NeurIPS 2016: attention over the support set by cosine
  similarity (Eqs. 1–2), **without** the full-context embeddings (the LSTMs ``f`` and ``g`` of
  their Sec. 2.1.2); returns log-probabilities, as easyfsl does.
- :class:`SemiSupervisedPrototypes` — Ren, Triantafillou, Ravi, Snell, Swersky, Tenenbaum,
  Larochelle & Zemel, "Meta-Learning for Semi-Supervised Few-Shot Classification", ICLR 2018:
  prototypes refined by soft k-means over unlabelled images (Sec. 3.1, Eq. 4), optionally with
  a distractor cluster at the origin (Eqs. 5–6) or with masking (Eqs. 7–8).
- :class:`HyperbolicPrototypicalNetworks` — Khrulkov, Mirvakhabova, Ustinova, Oseledets &
  Lempitsky, "Hyperbolic Image Embeddings", CVPR 2020: embeddings in the Poincaré ball,
  prototypes as Einstein midpoints (:func:`dmlkit.geometry.einstein_midpoint`), logits the
  negative hyperbolic distance.

Every head is called as ``head(support, support_labels, query)`` and returns ``(Q, n_way)``
scores (logits or log-probabilities; the cross-entropy of either is the episode's loss). The
support labels are the episode's own labels ``0 .. n_way-1``; a leading batch dimension of
episodes, ``(B, S, D)`` / ``(B, S)`` / ``(B, Q, D)``, is accepted everywhere and gives
``(B, Q, n_way)`` — the evaluation runs hundreds of episodes at once that way.

Training and evaluation
-----------------------
- :class:`EpisodicLoss` turns a head into a ``loss(embeddings, labels)`` for
  :func:`dmlkit.train.fit`: each class of a P×K batch gives ``k_shot`` support and ``K - k_shot``
  query images, so ``fit(..., P=n_way, K=k_shot + n_query)`` is episodic training.
- :func:`sample_episodes`, :func:`evaluate_embeddings` and :func:`evaluate_episodes` run the
  standard protocol: the mean accuracy over (at least 600) seeded episodes with a 95% confidence
  interval (:func:`confidence_interval`). The data set is embedded once and episodes index it.
  :func:`paired_difference` compares two methods on the same episodes;
  :func:`format_accuracy_table` prints results as a Markdown table.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dmlkit.geometry.poincare import _check_c, _gap, dist, klein_to_poincare, poincare_to_klein
from dmlkit.utils import check_positive

__all__ = [
    "FewShotClassifier",
    "PrototypicalNetworks",
    "MatchingNetworks",
    "SemiSupervisedPrototypes",
    "HyperbolicPrototypicalNetworks",
    "EpisodicLoss",
    "make_classifier",
    "class_means",
    "distance_statistics",
    "split_support_query",
    "confidence_interval",
    "Episodes",
    "sample_episodes",
    "evaluate_embeddings",
    "evaluate_episodes",
    "paired_difference",
    "format_accuracy_table",
]

#: Names understood by :func:`make_classifier` (and ``method=`` of the loss and the evaluation).
CLASSIFIERS = ("protonet", "matching", "soft_kmeans", "hyperbolic_protonet")


# ----------------------------------------------------------------------------------------------
# validation and shared helpers
# ----------------------------------------------------------------------------------------------
def _check_float(x: torch.Tensor, name: str, dims: tuple[int, ...]) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in dims:
        shapes = " or ".join({2: "(N, D)", 3: "(B, N, D)"}[d] for d in dims)
        raise ValueError(f"{name} must have shape {shapes}, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def _episode_batch(
    support: torch.Tensor,
    support_labels: torch.Tensor,
    query: torch.Tensor,
    unlabelled: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, bool]:
    """Validate an episode (or a batch of them) and return 3-D tensors, one-hot support labels
    ``(B, S, n_way)`` in the support's dtype, the 3-D unlabelled set and whether a batch was given.
    """
    _check_float(support, "support", (2, 3))
    batched = support.dim() == 3
    _check_float(query, "query", (3,) if batched else (2,))
    if not isinstance(support_labels, torch.Tensor):
        raise TypeError(f"support_labels must be a torch.Tensor, got {type(support_labels).__name__}")
    if support_labels.is_floating_point() or support_labels.dtype == torch.bool:
        raise ValueError(f"support_labels must be an integer tensor, got dtype {support_labels.dtype}")
    if not batched:
        support, query = support.unsqueeze(0), query.unsqueeze(0)
    B, S, D = support.shape
    if support_labels.dim() == 1:
        support_labels = support_labels.unsqueeze(0).expand(B, -1)
    if tuple(support_labels.shape) != (B, S):
        raise ValueError(
            f"support_labels must have shape ({S},) or ({B}, {S}) for support of shape "
            f"{tuple(support.shape) if batched else (S, D)}, got {tuple(support_labels.shape)}"
        )
    if query.shape[0] != B or query.shape[2] != D:
        raise ValueError(
            f"query must have {B} episode(s) of {D}-d embeddings like the support, got shape {tuple(query.shape)}"
        )
    if query.shape[1] == 0 or S == 0:
        raise ValueError("support and query must not be empty")
    if int(support_labels.min()) < 0:
        raise ValueError(f"support_labels must be episode labels 0..n_way-1, got {int(support_labels.min())}")
    n_way = int(support_labels.max()) + 1
    one_hot = F.one_hot(support_labels.long(), n_way).to(support.dtype)
    missing = (one_hot.sum(dim=1) == 0).nonzero()
    if missing.numel():
        episode, cls = missing[0].tolist()
        raise ValueError(
            f"support_labels must use every class 0..{n_way - 1} (episode {episode} has no support "
            f"image of class {cls})"
        )
    if unlabelled is not None:
        _check_float(unlabelled, "unlabelled", (3,) if batched else (2,))
        if not batched:
            unlabelled = unlabelled.unsqueeze(0)
        if unlabelled.shape[0] != B or unlabelled.shape[2] != D:
            raise ValueError(
                f"unlabelled must have {B} episode(s) of {D}-d embeddings, got shape {tuple(unlabelled.shape)}"
            )
    return support, one_hot, query, unlabelled, batched


def _squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(B, N, M)`` squared Euclidean distances between rows of ``(B, N, D)`` and ``(B, M, D)``,
    formed from the differences (exact, no Gram-matrix cancellation)."""
    return (x.unsqueeze(2) - y.unsqueeze(1)).pow(2).sum(dim=-1)


def class_means(embeddings: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
    r"""Prototypes :math:`c_k = \frac{1}{|S_k|}\sum_{(x_i, y_i) \in S_k} f(x_i)` (Snell et al., Eq. 1).

    Args:
        embeddings: ``(B, S, D)`` support embeddings.
        one_hot: ``(B, S, n_way)`` one-hot support labels (every class present).

    Returns:
        ``(B, n_way, D)`` class means.
    """
    return one_hot.transpose(1, 2) @ embeddings / one_hot.sum(dim=1).unsqueeze(-1)


def _unbatch(scores: torch.Tensor, batched: bool) -> torch.Tensor:
    return scores if batched else scores.squeeze(0)


def _check_temperature(temperature: float) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise TypeError(f"temperature must be a number, got {temperature!r}")
    check_positive("temperature", temperature)
    return float(temperature)


# ----------------------------------------------------------------------------------------------
# the classifiers
# ----------------------------------------------------------------------------------------------
class FewShotClassifier(nn.Module):
    """Base of the few-shot heads: ``forward(support, support_labels, query) -> scores``.

    ``uses_unlabelled`` says whether ``forward`` also takes an ``unlabelled`` set (the
    semi-supervised head); the evaluation passes one only to such heads.
    """

    uses_unlabelled: bool = False

    def forward(self, support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        support, one_hot, query, _, batched = _episode_batch(support, support_labels, query)
        self.check_points(support, "support")
        self.check_points(query, "query")
        return _unbatch(self.scores(support, one_hot, query), batched)

    def scores(
        self,
        support: torch.Tensor,
        one_hot: torch.Tensor,
        query: torch.Tensor,
        unlabelled: torch.Tensor | None = None,
    ) -> torch.Tensor:  # pragma: no cover - interface
        """``(B, Q, n_way)`` scores from validated ``(B, S, D)`` support, ``(B, S, n_way)``
        one-hot labels and ``(B, Q, D)`` queries (no checks: :meth:`forward` makes them)."""
        raise NotImplementedError

    def check_points(self, embeddings: torch.Tensor, name: str = "embeddings") -> None:
        """Raise ``ValueError`` for embeddings this head cannot use (default: accepts all)."""


class PrototypicalNetworks(FewShotClassifier):
    r"""Prototypical networks (Snell, Swersky & Zemel, NeurIPS 2017, Sec. 2.2).

    Each class is represented by its prototype, the mean of its support embeddings (Eq. 1),
    and a query :math:`x` gets the logits :math:`-d(f(x), c_k)` (Eq. 2), whose softmax is
    :math:`p(y = k \mid x)`. With the squared Euclidean distance — the paper's choice — the
    classifier is linear in the embedding (Sec. 2.4: :math:`-\|f(x) - c_k\|^2 = 2c_k^\top f(x) -
    \|c_k\|^2 + \text{const}`), so prototypes carve the embedding space into the Voronoi cells
    of the prototypes; the mean is the right representative for any Bregman divergence
    (Sec. 2.3, after Banerjee et al., JMLR 2005), squared Euclidean being one.

    Args:
        distance: ``"squared_euclidean"`` (the paper), ``"euclidean"`` (easyfsl's
            ``PrototypicalNetworks``) or ``"cosine"`` (logits = cosine similarity, which Snell et
            al. found worse).
        temperature: logits are divided by it (1: the paper).
    """

    DISTANCES = ("squared_euclidean", "euclidean", "cosine")

    def __init__(
        self,
        distance: Literal["squared_euclidean", "euclidean", "cosine"] = "squared_euclidean",
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        if distance not in self.DISTANCES:
            raise ValueError(f"distance must be one of {list(self.DISTANCES)}, got {distance!r}")
        self.distance = distance
        self.temperature = _check_temperature(temperature)

    def prototypes(self, support: torch.Tensor, support_labels: torch.Tensor) -> torch.Tensor:
        """``(n_way, D)`` (or ``(B, n_way, D)``) class means of the support set."""
        support3, one_hot, _, _, batched = _episode_batch(support, support_labels, support)
        return _unbatch(class_means(support3, one_hot), batched)

    def logits_from_prototypes(self, prototypes: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """``(B, Q, n_way)`` logits of ``(B, Q, D)`` queries against ``(B, n_way, D)`` prototypes."""
        if self.distance == "cosine":
            logits = F.normalize(query, dim=-1) @ F.normalize(prototypes, dim=-1).transpose(1, 2)
        else:
            squared = _squared_distances(query, prototypes)
            logits = -(squared if self.distance == "squared_euclidean" else squared.clamp_min(1e-12).sqrt())
        return logits / self.temperature

    def scores(
        self,
        support: torch.Tensor,
        one_hot: torch.Tensor,
        query: torch.Tensor,
        unlabelled: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """See :meth:`FewShotClassifier.scores`."""
        return self.logits_from_prototypes(class_means(support, one_hot), query)

    def extra_repr(self) -> str:
        return f"distance={self.distance!r}, temperature={self.temperature}"


class MatchingNetworks(FewShotClassifier):
    r"""Matching networks (Vinyals et al., NeurIPS 2016) **without full-context embeddings**.

    The label distribution of a query :math:`\hat x` is an attention-weighted vote of the
    support labels (Eq. 1), the attention a softmax over the cosine similarities (Eq. 2):

    .. math::
        P(\hat y = k \mid \hat x, S) = \sum_i a(\hat x, x_i)\,[y_i = k], \qquad
        a(\hat x, x_i) = \frac{e^{c(f(\hat x), g(x_i))/\tau}}{\sum_j e^{c(f(\hat x), g(x_j))/\tau}}

    with :math:`c` the cosine similarity and :math:`\tau = 1` in the paper. Here :math:`f = g`
    is the embedding network itself: the full-context embeddings of the paper's Sec. 2.1.2 (a
    bidirectional LSTM over the support set for :math:`g`, an attention LSTM for :math:`f`) are
    **not** implemented — the variant easyfsl and most re-implementations with a small backbone
    use. The output is :math:`\log P` (log-probabilities, as easyfsl's ``MatchingNetworks``),
    computed exactly as a log-sum-exp over each class's support members, so its cross-entropy
    is the paper's training loss.

    Args:
        temperature: :math:`\tau`; the paper uses none (1). A smaller value sharpens the
            attention.
    """

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = _check_temperature(temperature)

    def attention(self, support: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """``(B, Q, S)`` attention logits: cosine similarity / temperature."""
        return F.normalize(query, dim=-1) @ F.normalize(support, dim=-1).transpose(1, 2) / self.temperature

    def scores(
        self,
        support: torch.Tensor,
        one_hot: torch.Tensor,
        query: torch.Tensor,
        unlabelled: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """See :meth:`FewShotClassifier.scores`."""
        logits = self.attention(support, query)  # (B, Q, S)
        # log sum_{i in class k} softmax_i = logsumexp_{i in k}(logit_i) - logsumexp_i(logit_i)
        member = torch.log(one_hot).transpose(1, 2).unsqueeze(1)  # (B, 1, n_way, S): 0 or -inf
        per_class = torch.logsumexp(logits.unsqueeze(2) + member, dim=-1)  # (B, Q, n_way)
        return per_class - torch.logsumexp(logits, dim=-1, keepdim=True)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


def distance_statistics(normalised_distances: torch.Tensor) -> torch.Tensor:
    r"""The five statistics of Ren et al.'s masking MLP (ICLR 2018, Eq. 7), per class.

    Given :math:`\tilde d_{j,c}` ``(B, M, n_way)`` (distances of the ``M`` unlabelled points to
    prototype :math:`c`, normalised by their mean over :math:`j`), returns ``(B, n_way, 5)``:
    min, max, variance, skewness and excess kurtosis over :math:`j` (population moments, as the
    authors' code). A zero variance is treated as one, as there.
    """
    x = normalised_distances
    mean = x.mean(dim=1)
    var = x.var(dim=1, unbiased=False)
    safe = torch.where(var == 0, torch.ones_like(var), var)
    centred = x - mean.unsqueeze(1)
    skew = (centred.pow(3) / safe.unsqueeze(1).pow(1.5)).mean(dim=1)
    kurt = (centred.pow(4) / safe.unsqueeze(1).pow(2)).mean(dim=1) - 3.0
    return torch.stack([x.amin(dim=1), x.amax(dim=1), var, skew, kurt], dim=-1)


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

    def _weights(self, unlabelled: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
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

    def refine(
        self,
        support: torch.Tensor,
        support_labels: torch.Tensor,
        unlabelled: torch.Tensor | None,
    ) -> torch.Tensor:
        """The refined prototypes ``(n_way, D)`` (or ``(B, n_way, D)``) after ``num_steps`` steps."""
        support3, one_hot, _, unlabelled3, batched = _episode_batch(support, support_labels, support, unlabelled)
        return _unbatch(self._refine(support3, one_hot, unlabelled3), batched)

    def _refine(self, support: torch.Tensor, one_hot: torch.Tensor, unlabelled: torch.Tensor | None) -> torch.Tensor:
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
        self,
        support: torch.Tensor,
        support_labels: torch.Tensor,
        query: torch.Tensor,
        unlabelled: torch.Tensor | None = None,
    ) -> torch.Tensor:
        support, one_hot, query, unlabelled, batched = _episode_batch(support, support_labels, query, unlabelled)
        return _unbatch(self.scores(support, one_hot, query, unlabelled), batched)

    def scores(
        self,
        support: torch.Tensor,
        one_hot: torch.Tensor,
        query: torch.Tensor,
        unlabelled: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """See :meth:`FewShotClassifier.scores`."""
        return -_squared_distances(query, self._refine(support, one_hot, unlabelled))

    def extra_repr(self) -> str:
        return (
            f"distractor={self.distractor!r}, num_steps={self.num_steps}, "
            f"distractor_radius={self.distractor_radius:.4g}, mask_threshold={self.mask_threshold}, "
            f"mask_slope={self.mask_slope}"
        )


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
        self.c = _check_c(c)
        self.temperature = _check_temperature(temperature)

    def check_points(self, x: torch.Tensor, name: str = "embeddings") -> None:
        """Raise ``ValueError`` unless every row lies inside the ball (:math:`c\\|x\\|^2 < 1`)."""
        if self.c > 0 and (self.c * x.detach().pow(2).sum(dim=-1) >= 1.0).any():
            raise ValueError(
                f"{name} has points on or outside the Poincaré ball of radius "
                f"1/sqrt(c) = {1 / math.sqrt(self.c):.4g}; map the features with "
                f"dmlkit.geometry.HyperbolicProjection(c={self.c})"
            )

    def _midpoints(self, support: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
        sq = support.pow(2).sum(dim=-1, keepdim=True)  # (B, S, 1)
        gamma = (1.0 + self.c * sq) / _gap(sq, self.c)  # Lorentz factor, from Poincaré coordinates
        klein = poincare_to_klein(support, c=self.c)
        weights = one_hot * gamma  # (B, S, n_way)
        mid = weights.transpose(1, 2) @ klein / weights.sum(dim=1).unsqueeze(-1)
        return klein_to_poincare(mid, c=self.c)

    def prototypes(self, support: torch.Tensor, support_labels: torch.Tensor) -> torch.Tensor:
        """``(n_way, D)`` (or ``(B, n_way, D)``) Einstein midpoints of the classes' support points."""
        support3, one_hot, _, _, batched = _episode_batch(support, support_labels, support)
        self.check_points(support3, "support")
        return _unbatch(self._midpoints(support3, one_hot), batched)

    def scores(
        self,
        support: torch.Tensor,
        one_hot: torch.Tensor,
        query: torch.Tensor,
        unlabelled: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """See :meth:`FewShotClassifier.scores`."""
        prototypes = self._midpoints(support, one_hot)
        distances = dist(query.unsqueeze(2), prototypes.unsqueeze(1), c=self.c)  # (B, Q, n_way)
        return -distances / self.temperature

    def extra_repr(self) -> str:
        return f"c={self.c}, temperature={self.temperature}"


def make_classifier(method: str | FewShotClassifier, **options: Any) -> FewShotClassifier:
    """A head by name — ``"protonet"``, ``"matching"``, ``"soft_kmeans"`` or
    ``"hyperbolic_protonet"`` — with ``options`` passed to its constructor, or ``method`` itself
    when it already is a :class:`FewShotClassifier` (then ``options`` must be empty)."""
    if isinstance(method, FewShotClassifier):
        if options:
            raise ValueError("options are only accepted with a method name, not with a classifier instance")
        return method
    classes = {
        "protonet": PrototypicalNetworks,
        "matching": MatchingNetworks,
        "soft_kmeans": SemiSupervisedPrototypes,
        "hyperbolic_protonet": HyperbolicPrototypicalNetworks,
    }
    if method not in classes:
        raise ValueError(
            f"unknown few-shot method {method!r}; choose one of {list(CLASSIFIERS)} or pass a FewShotClassifier"
        )
    return classes[method](**options)


# ----------------------------------------------------------------------------------------------
# episodic training
# ----------------------------------------------------------------------------------------------
def split_support_query(
    embeddings: torch.Tensor, labels: torch.Tensor, k_shot: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split a labelled batch into an episode: the first ``k_shot`` samples of each class (in
    batch order) are the support, the rest the queries.

    Returns:
        ``(support, support_labels, query, query_labels, classes)``: support and query ordered
        class by class, their episode labels ``0 .. n_way-1`` and the ``n_way`` original labels
        (sorted) that those stand for.

    Raises:
        ValueError: when the batch has fewer than two classes or a class has at most ``k_shot``
        samples (no query left).
    """
    if isinstance(k_shot, bool) or not isinstance(k_shot, int) or k_shot < 1:
        raise ValueError(f"k_shot must be a positive integer, got {k_shot!r}")
    _check_float(embeddings, "embeddings", (2,))
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.shape[0] != embeddings.shape[0]:
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(
            f"labels must be a 1-D tensor with one label per embedding ({embeddings.shape[0]}), got {shape}"
        )
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got dtype {labels.dtype}")
    classes, local = torch.unique(labels, return_inverse=True)
    n_way = classes.numel()
    if n_way < 2:
        raise ValueError(f"an episode needs at least 2 classes, the batch has {n_way}")
    counts = torch.bincount(local, minlength=n_way)
    short = (counts <= k_shot).nonzero().flatten()
    if short.numel():
        c = int(short[0])
        raise ValueError(
            f"class {int(classes[c])} has {int(counts[c])} sample(s) in the batch; an episode needs "
            f"more than k_shot={k_shot} per class (k_shot support + at least one query): train with "
            f"K > k_shot"
        )
    order = torch.sort(local, stable=True).indices
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(labels.shape[0], device=labels.device) - starts[local[order]]
    support_index, query_index = order[rank < k_shot], order[rank >= k_shot]
    return (
        embeddings[support_index],
        local[support_index],
        embeddings[query_index],
        local[query_index],
        classes,
    )


class EpisodicLoss(nn.Module):
    r"""Episodic training as a metric loss: ``forward(embeddings, labels)`` for :func:`dmlkit.train.fit`.

    Each class of the batch gives its first ``k_shot`` samples as the support set and the rest as
    queries (:func:`split_support_query`); the loss is the mean cross-entropy of the queries
    under the head's scores — Snell et al.'s :math:`J` (Algorithm 1) for ``"protonet"``,
    Vinyals et al.'s training objective for ``"matching"``. With :func:`~dmlkit.train.fit`'s
    P×K sampler, ``P`` classes of ``K`` images give a ``P``-way ``k_shot``-shot episode with
    ``K - k_shot`` queries per class (Snell et al. train with more ways than they test).

    Args:
        method: a name of :func:`make_classifier` or a :class:`FewShotClassifier` (its
            parameters, if any, are trained with the model).
        k_shot: support images per class (``K`` must exceed it).
        **options: constructor options of the named head.
    """

    def __init__(self, method: str | FewShotClassifier = "protonet", k_shot: int = 1, **options: Any) -> None:
        super().__init__()
        if isinstance(k_shot, bool) or not isinstance(k_shot, int) or k_shot < 1:
            raise ValueError(f"k_shot must be a positive integer, got {k_shot!r}")
        self.classifier = make_classifier(method, **options)
        self.k_shot = k_shot

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        support, support_labels, query, query_labels, _ = split_support_query(embeddings, labels, self.k_shot)
        scores = self.classifier(support, support_labels, query)
        return F.cross_entropy(scores, query_labels)

    def extra_repr(self) -> str:
        return f"k_shot={self.k_shot}"


# ----------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------
def confidence_interval(accuracies: Sequence[float] | np.ndarray | torch.Tensor) -> tuple[float, float]:
    r"""Mean and 95% confidence half-width :math:`1.96\,\sigma/\sqrt n` of per-episode accuracies.

    :math:`\sigma` is the population standard deviation (NumPy's default, ``ddof=0``), the
    usual choice of few-shot code bases; the normal approximation is sound for the hundreds of
    episodes of the standard protocol (600 or more).
    """
    values = np.asarray(torch.as_tensor(accuracies, dtype=torch.float64).cpu(), dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("confidence_interval needs at least one accuracy")
    if not np.isfinite(values).all():
        raise ValueError("accuracies contain NaN or infinite values")
    return float(values.mean()), float(1.96 * values.std() / math.sqrt(values.size))


@dataclass
class Episodes:
    """Dataset indices of ``E`` episodes, as tensors (built by :func:`sample_episodes`).

    Attributes:
        support: ``(E, n_way * k_shot)``, class by class; labels :attr:`support_labels`.
        query: ``(E, n_way * n_query)``, class by class; labels :attr:`query_labels`.
        unlabelled: ``(E, n_way * n_unlabelled)`` more images of the episode classes.
        distractors: ``(E, n_distractors * n_unlabelled)`` images of other classes.
        classes: ``(E, n_way)`` dataset labels of the episode classes.
    """

    support: torch.Tensor
    support_labels: torch.Tensor
    query: torch.Tensor
    query_labels: torch.Tensor
    unlabelled: torch.Tensor
    distractors: torch.Tensor
    classes: torch.Tensor

    def __len__(self) -> int:
        return self.support.shape[0]


def _check_count(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def sample_episodes(
    labels: torch.Tensor | Sequence[int],
    n_way: int,
    k_shot: int,
    n_query: int,
    num_episodes: int,
    seed: int = 0,
    n_unlabelled: int = 0,
    n_distractors: int = 0,
) -> Episodes:
    """A reproducible list of episodes as index tensors.

    The episodes come from :class:`dmlkit.data.EpisodeSampler` (same seed, same list): with
    ``n_unlabelled = n_distractors = 0`` exactly those of
    ``EpisodeSampler(labels, n_way, k_shot, n_query, num_episodes, seed).episodes()``. For
    semi-supervised episodes (Ren et al., ICLR 2018, Sec. 4) the sampler draws
    ``n_way + n_distractors`` classes with ``k_shot + n_unlabelled`` support images: the first
    ``n_way`` classes are the episode's, their extra images the unlabelled set; the other
    classes are distractors, of which ``n_unlabelled`` images each join the unlabelled set
    (their query images are drawn but unused). The same arguments always give the same labelled
    support and queries, so methods with and without the unlabelled images, or with and without
    the distractors, are compared on identical episodes.
    """
    from dmlkit.data.samplers import EpisodeSampler

    n_way = _check_count("n_way", n_way, 2)
    k_shot = _check_count("k_shot", k_shot, 1)
    n_query = _check_count("n_query", n_query, 1)
    num_episodes = _check_count("num_episodes", num_episodes, 1)
    n_unlabelled = _check_count("n_unlabelled", n_unlabelled, 0)
    n_distractors = _check_count("n_distractors", n_distractors, 0)
    if n_distractors and not n_unlabelled:
        raise ValueError("n_distractors needs n_unlabelled > 0 (distractor images join the unlabelled set)")
    sampler = EpisodeSampler(labels, n_way + n_distractors, k_shot + n_unlabelled, n_query, num_episodes, seed=seed)
    episodes = sampler.episodes()
    ways, shots = n_way + n_distractors, k_shot + n_unlabelled
    support = torch.tensor([e.support for e in episodes], dtype=torch.long).reshape(num_episodes, ways, shots)
    query = torch.tensor([e.query for e in episodes], dtype=torch.long).reshape(num_episodes, ways, n_query)
    classes = torch.tensor([e.classes for e in episodes], dtype=torch.long)
    return Episodes(
        support=support[:, :n_way, :k_shot].reshape(num_episodes, -1),
        support_labels=torch.arange(n_way).repeat_interleave(k_shot),
        query=query[:, :n_way].reshape(num_episodes, -1),
        query_labels=torch.arange(n_way).repeat_interleave(n_query),
        unlabelled=support[:, :n_way, k_shot:].reshape(num_episodes, -1),
        distractors=support[:, n_way:, k_shot:].reshape(num_episodes, -1),
        classes=classes[:, :n_way],
    )


def evaluate_embeddings(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    n_way: int = 5,
    k_shot: int = 1,
    n_query: int = 15,
    num_episodes: int = 600,
    method: str | FewShotClassifier = "protonet",
    seed: int = 0,
    *,
    normalize: bool = False,
    n_unlabelled: int = 0,
    n_distractors: int = 0,
    use_distractors: bool = True,
    episodes_per_batch: int = 100,
) -> dict[str, Any]:
    """Few-shot accuracy of precomputed embeddings over seeded episodes (:func:`sample_episodes`).

    Args:
        embeddings, labels: ``(N, D)`` embeddings of a data set and their ``(N,)`` classes.
        n_way, k_shot, n_query, num_episodes, seed: the episodes (the standard report: 5-way,
            1 and 5 shots, 15 queries, 600 or more episodes).
        method: a head (:func:`make_classifier` name or instance).
        normalize: L2-normalise the embeddings first (for networks trained on the sphere).
        n_unlabelled, n_distractors: semi-supervised episodes; the unlabelled images (and, with
            ``use_distractors``, the distractors') go only to heads with ``uses_unlabelled``.
        use_distractors: include the distractor images in the unlabelled set (they are drawn
            either way, so both settings see the same episodes).
        episodes_per_batch: episodes classified at once (memory ~ this × queries × n_way × D).

    Returns:
        ``{"accuracy": mean, "ci95": 1.96·std/√n, "accuracies": [per episode], "num_episodes",
        "n_way", "k_shot", "n_query"}``.
    """
    if not isinstance(embeddings, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise TypeError("embeddings and labels must be torch tensors")
    _check_float(embeddings, "embeddings", (2,))
    if labels.dim() != 1 or labels.shape[0] != embeddings.shape[0]:
        raise ValueError(
            f"labels must be 1-D with one label per embedding ({embeddings.shape[0]}), got shape {tuple(labels.shape)}"
        )
    episodes_per_batch = _check_count("episodes_per_batch", episodes_per_batch, 1)
    classifier = make_classifier(method)
    episodes = sample_episodes(labels, n_way, k_shot, n_query, num_episodes, seed, n_unlabelled, n_distractors)
    x = F.normalize(embeddings, dim=1) if normalize else embeddings
    classifier.check_points(x)  # once for the whole set; the episodes skip the per-call checks
    device = next((p.device for p in classifier.parameters()), x.device)
    x = x.to(device)
    one_hot = F.one_hot(episodes.support_labels, n_way).to(device, x.dtype).unsqueeze(0)
    query_labels = episodes.query_labels.to(device)
    accuracies = []
    was_training = classifier.training
    classifier.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(episodes), episodes_per_batch):
                rows = slice(start, start + episodes_per_batch)
                support, query = x[episodes.support[rows].to(device)], x[episodes.query[rows].to(device)]
                unlabelled = None
                if classifier.uses_unlabelled:
                    pool = [episodes.unlabelled[rows]]
                    if use_distractors:
                        pool.append(episodes.distractors[rows])
                    unlabelled = x[torch.cat(pool, dim=1).to(device)]
                scores = classifier.scores(support, one_hot.expand(support.shape[0], -1, -1), query, unlabelled)
                accuracies.append((scores.argmax(dim=-1) == query_labels).to(torch.float64).mean(dim=-1).cpu())
    finally:
        classifier.train(was_training)
    per_episode = torch.cat(accuracies)
    mean, half_width = confidence_interval(per_episode)
    return {
        "accuracy": mean,
        "ci95": half_width,
        "accuracies": per_episode.tolist(),
        "num_episodes": len(episodes),
        "n_way": n_way,
        "k_shot": k_shot,
        "n_query": n_query,
    }


def evaluate_episodes(
    model: nn.Module,
    dataset: Any,
    n_way: int = 5,
    k_shot: int = 1,
    n_query: int = 15,
    num_episodes: int = 600,
    method: str | FewShotClassifier = "protonet",
    seed: int = 0,
    **options: Any,
) -> dict[str, Any]:
    """Embed ``dataset`` once with ``model`` (:func:`dmlkit.evaluate.embed`) and evaluate
    ``num_episodes`` seeded episodes on the embeddings (:func:`evaluate_embeddings`, whose
    keyword ``options`` — ``normalize``, ``n_unlabelled``, ... — are passed on).

    Returns ``{"accuracy", "ci95", "accuracies", ...}`` as :func:`evaluate_embeddings`.
    """
    from dmlkit.evaluate import embed

    embeddings, labels = embed(model, dataset)
    return evaluate_embeddings(embeddings, labels, n_way, k_shot, n_query, num_episodes, method, seed, **options)


def paired_difference(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, float]:
    """Mean and 95% half-width of the per-episode accuracy difference ``a - b``.

    ``a`` and ``b`` are results of :func:`evaluate_embeddings` on the *same* episodes (same
    labels, seed and episode settings): pairing removes the episode-to-episode variation both
    share, so the interval is much narrower than comparing two separate intervals.
    """
    keys = ("num_episodes", "n_way", "k_shot", "n_query")
    if any(a.get(k) != b.get(k) for k in keys):
        raise ValueError(
            "paired_difference needs results on the same episodes; got "
            f"{ {k: a.get(k) for k in keys} } and { {k: b.get(k) for k in keys} }"
        )
    return confidence_interval(np.asarray(a["accuracies"]) - np.asarray(b["accuracies"]))


def format_accuracy_table(rows: dict[str, dict[str, Any]]) -> str:
    """A Markdown table: ``rows[name][column]`` is a result of :func:`evaluate_embeddings`
    (shown as ``accuracy ± ci95`` in %), a number (shown with three decimals), a string (shown
    as it is) or ``None`` (–)."""
    if not rows:
        raise ValueError("format_accuracy_table needs at least one row")
    columns: list[str] = []
    for row in rows.values():
        columns += [c for c in row if c not in columns]
    lines = ["| method | " + " | ".join(columns) + " |", "| --- |" + " ---: |" * len(columns)]
    for name, row in rows.items():
        cells = []
        for column in columns:
            value = row.get(column)
            if value is None:
                cells.append("–")
            elif isinstance(value, dict):
                cells.append(f"{100 * value['accuracy']:.1f} ± {100 * value['ci95']:.1f}")
            elif isinstance(value, str):
                cells.append(value)
            else:
                cells.append(f"{float(value):.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
