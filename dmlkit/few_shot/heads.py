"""Few-shot heads on embeddings: prototypical networks (Snell et al., NeurIPS 2017) and matching
networks (Vinyals et al., NeurIPS 2016), with the shared episode checks."""

from __future__ import annotations

import numbers
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dmlkit.checks import check_positive

__all__ = ["class_means", "FewShotClassifier", "PrototypicalNetworks", "MatchingNetworks", "distance_statistics"]


def _check_float(x: Tensor, name: str, dims: tuple[int, ...]) -> None:
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
    support: Tensor, support_labels: Tensor, query: Tensor, unlabelled: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor, Tensor | None, bool]:
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


def _squared_distances(x: Tensor, y: Tensor) -> Tensor:
    """``(B, N, M)`` squared Euclidean distances between rows of ``(B, N, D)`` and ``(B, M, D)``,
    formed from the differences (exact, no Gram-matrix cancellation)."""
    return (x.unsqueeze(2) - y.unsqueeze(1)).pow(2).sum(dim=-1)


def class_means(embeddings: Tensor, one_hot: Tensor) -> Tensor:
    r"""Prototypes :math:`c_k = \frac{1}{|S_k|}\sum_{(x_i, y_i) \in S_k} f(x_i)` (Snell et al., Eq. 1).

    Args:
        embeddings: ``(B, S, D)`` support embeddings.
        one_hot: ``(B, S, n_way)`` one-hot support labels (every class present).

    Returns:
        ``(B, n_way, D)`` class means.
    """
    return one_hot.transpose(1, 2) @ embeddings / one_hot.sum(dim=1).unsqueeze(-1)


def _unbatch(scores: Tensor, batched: bool) -> Tensor:
    return scores if batched else scores.squeeze(0)


def _check_temperature(temperature: float) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise TypeError(f"temperature must be a number, got {temperature!r}")
    check_positive("temperature", temperature)
    return float(temperature)


class FewShotClassifier(nn.Module):
    """Base of the few-shot heads: ``forward(support, support_labels, query) -> scores``.

    ``uses_unlabelled`` says whether ``forward`` also takes an ``unlabelled`` set (the
    semi-supervised head); the evaluation passes one only to such heads.
    """

    uses_unlabelled: bool = False

    def forward(self, support: Tensor, support_labels: Tensor, query: Tensor) -> Tensor:
        support, one_hot, query, _, batched = _episode_batch(support, support_labels, query)
        self.check_points(support, "support")
        self.check_points(query, "query")
        return _unbatch(self.scores(support, one_hot, query), batched)

    def scores(
        self, support: Tensor, one_hot: Tensor, query: Tensor, unlabelled: Tensor | None = None
    ) -> Tensor:  # pragma: no cover - interface
        """``(B, Q, n_way)`` scores from validated ``(B, S, D)`` support, ``(B, S, n_way)``
        one-hot labels and ``(B, Q, D)`` queries (no checks: :meth:`forward` makes them)."""
        raise NotImplementedError

    def check_points(self, embeddings: Tensor, name: str = "embeddings") -> None:
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

    def prototypes(self, support: Tensor, support_labels: Tensor) -> Tensor:
        """``(n_way, D)`` (or ``(B, n_way, D)``) class means of the support set."""
        support3, one_hot, _, _, batched = _episode_batch(support, support_labels, support)
        return _unbatch(class_means(support3, one_hot), batched)

    def logits_from_prototypes(self, prototypes: Tensor, query: Tensor) -> Tensor:
        """``(B, Q, n_way)`` logits of ``(B, Q, D)`` queries against ``(B, n_way, D)`` prototypes."""
        if self.distance == "cosine":
            logits = F.normalize(query, dim=-1) @ F.normalize(prototypes, dim=-1).transpose(1, 2)
        else:
            squared = _squared_distances(query, prototypes)
            logits = -(squared if self.distance == "squared_euclidean" else squared.clamp_min(1e-12).sqrt())
        return logits / self.temperature

    def scores(self, support: Tensor, one_hot: Tensor, query: Tensor, unlabelled: Tensor | None = None) -> Tensor:
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

    def attention(self, support: Tensor, query: Tensor) -> Tensor:
        """``(B, Q, S)`` attention logits: cosine similarity / temperature."""
        return F.normalize(query, dim=-1) @ F.normalize(support, dim=-1).transpose(1, 2) / self.temperature

    def scores(self, support: Tensor, one_hot: Tensor, query: Tensor, unlabelled: Tensor | None = None) -> Tensor:
        """See :meth:`FewShotClassifier.scores`."""
        logits = self.attention(support, query)  # (B, Q, S)
        # log sum_{i in class k} softmax_i = logsumexp_{i in k}(logit_i) - logsumexp_i(logit_i)
        member = torch.log(one_hot).transpose(1, 2).unsqueeze(1)  # (B, 1, n_way, S): 0 or -inf
        per_class = torch.logsumexp(logits.unsqueeze(2) + member, dim=-1)  # (B, Q, n_way)
        return per_class - torch.logsumexp(logits, dim=-1, keepdim=True)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


def distance_statistics(normalised_distances: Tensor) -> Tensor:
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
