"""Proxy-based losses: each class is represented by learnable vectors (proxies) kept in the loss.

A proxy loss compares every embedding of the batch with a small set of class representatives
instead of with the other embeddings of the batch, so it needs no pair or triplet mining and sees
every class at every step. The representatives are ordinary parameters: give the loss's
parameters to the optimiser (usually with a larger learning rate than the network's) and plot them
from :attr:`proxies`.

Every loss here keeps them in a parameter named ``proxies`` of shape
``(num_classes, embedding_size)``; :class:`SoftTripleLoss` keeps ``centers_per_class`` of them
per class, ``(num_classes * centers_per_class, embedding_size)`` with row ``c * K + k`` the
centre ``k`` of class ``c``. Embeddings and proxies are L2-normalised inside the losses, so the
proxies' norms carry no meaning (only their directions do).

- :class:`ProxyNCALoss` — Movshovitz-Attias et al., ICCV 2017, and the ProxyNCA++ setting of
  Teh et al., ECCV 2020 (:meth:`ProxyNCALoss.proxynca_plus_plus`).
- :class:`ProxyAnchorLoss` — Kim et al., CVPR 2020.
- :class:`SoftTripleLoss` and :class:`SparseCentersRegularizer` — Qian et al., ICCV 2019.
- :class:`NormalizedSoftmaxLoss` — Zhai & Wu, BMVC 2019.

Comparing with pytorch-metric-learning (PML)
--------------------------------------------
Class and argument names are PML's. The parameters are laid out as rows here; to copy them
across: PML ``ProxyNCALoss.proxies`` and ``ProxyAnchorLoss.proxies`` are ``(C, D)`` like ours,
``SoftTripleLoss.fc`` is ``(D, C*K)`` (our ``proxies.T``) and ``NormalizedSoftmaxLoss.W`` is
``(D, C)`` (our ``proxies.T``). With the same proxies, the values and gradients equal PML's (the
tests check this in float64), with the deviations documented on each class.

Large output spaces: sampled negative proxies
---------------------------------------------
With many classes, the ``(batch, num_classes)`` similarity matrix and its backward pass dominate
the cost. Following Reddi et al. (AISTATS 2019, "Stochastic Negative Mining for Learning with Large
Output Spaces"), the losses accept ``negative_sampling`` and ``num_negatives``: at each call only
the proxies of the classes present in the batch (the positives) plus ``num_negatives`` proxies of
absent classes take part; all rows of the batch share that subset, so the cost falls from
``B x C`` to ``B x (P + k)`` for ``P`` classes in the batch.

- ``"random"``: ``k`` absent classes drawn uniformly without replacement (torch's global RNG;
  seed it with :func:`dmlkit.utils.seed_everything`), importance-weighted by ``M / k`` for ``M``
  absent classes. For the softmax losses (ProxyNCA, NormalizedSoftmax, SoftTriple) this is the
  *sampled softmax* estimator (Bengio & Senecal, 2008; Jean et al., ACL 2015): ``log(M / k)`` is
  added to each sampled logit, so the sum over sampled negatives in the denominator is an
  unbiased estimate of the sum over all negatives. The loss itself is then a slightly optimistic
  (lower) estimate of the full loss (Jensen), the gap closing as ``k`` grows. For Proxy-Anchor,
  whose negative part is a *sum over proxies*, the sampled proxies' terms are multiplied by
  ``M / k``: the loss and its gradient are unbiased estimates of the full ones.
- ``"hardest"`` (Reddi et al.'s stochastic negative mining, softmax losses only): the ``k``
  absent classes whose proxies are most similar to some embedding of the batch (``max`` over the
  batch and, for SoftTriple, over the class's centres), found among all absent classes or, with
  ``negative_pool_size=m``, among ``m`` drawn uniformly (the paper's two-stage scheme: sample,
  then keep the top ``k``). No weight is applied. The classes left out are the ones least similar
  to the batch, whose terms in the softmax denominators are small when the softmax is peaked (the
  large scales these losses use), so the value is a lower bound of the full loss that is tight
  in that regime. Reddi et al. frame losses on the hardest negatives as surrogates for top-k
  retrieval (is the true class among the highest scores?) rather than as estimates of the full
  softmax. Finding the hardest costs one forward-only product with the candidates (all absent
  proxies, or the ``m`` drawn); the backward pass is restricted to the subset. Deviation from the
  paper: it mines per example; here one subset is shared by the whole batch, so a single matrix
  product serves all rows. ``"hardest"`` is refused for Proxy-Anchor: there every absent proxy
  adds a non-negligible ``log(1 + sum exp)`` term, so keeping only the hardest would throw away
  most of the loss.

When ``num_negatives`` is at least the number of absent classes every class takes part and the
loss equals the full loss (the tests check this). Centres of SoftTriple's regulariser are always
all of them (it does not depend on the batch).
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from dmlkit.utils import check_embeddings_and_labels, check_non_negative, check_positive

__all__ = [
    "ProxyNCALoss",
    "ProxyAnchorLoss",
    "SoftTripleLoss",
    "NormalizedSoftmaxLoss",
    "SparseCentersRegularizer",
    "PROXYNCA_PLUS_PLUS_SOFTMAX_SCALE",
    "PROXYNCA_PLUS_PLUS_LR",
    "PROXYNCA_PLUS_PLUS_PROXY_LR",
]

NegativeSampling = Literal["random", "hardest"]

#: ProxyNCA++ (Teh et al., ECCV 2020): temperature T = 1/9 on the squared distance of unit
#: vectors, i.e. both vectors scaled by 3 (``scale: 3`` in the official configuration).
PROXYNCA_PLUS_PLUS_SOFTMAX_SCALE = 9.0
#: Learning rate of the network in the official ProxyNCA++ CUB configuration (Adam, ``eps=1.0``).
PROXYNCA_PLUS_PLUS_LR = 4e-3
#: Learning rate of the proxies in the same configuration ("fast-moving proxies"): 1e5 times the
#: network's. With Adam's ``eps=1.0`` the small proxy gradients make this closer to plain SGD.
PROXYNCA_PLUS_PLUS_PROXY_LR = 4e2


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def _check_real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    return float(value)


def _positive(name: str, value: object) -> float:
    value = _check_real(name, value)
    check_positive(name, value)
    return value


def _non_negative(name: str, value: object) -> float:
    value = _check_real(name, value)
    check_non_negative(name, value)
    return value


class _Subset(NamedTuple):
    """Classes taking part in one call: the batch's classes first, then the sampled negatives."""

    classes: torch.Tensor  # (S,) class indices: [present..., sampled...]
    targets: torch.Tensor  # (B,) position of each label in ``classes``
    num_present: int  # P: classes[:P] are the batch's classes
    weight: float  # M / k, the importance weight of each sampled negative


# --------------------------------------------------------------------------------------------
# base class
# --------------------------------------------------------------------------------------------


class _ProxyLoss(nn.Module):
    """Shared parts: the ``proxies`` parameter, input checks and negative sampling."""

    _supports_hardest: bool = True

    def __init__(
        self,
        num_classes: int,
        embedding_size: int,
        proxies_per_class: int = 1,
        negative_sampling: NegativeSampling | None = None,
        num_negatives: int | None = None,
        negative_pool_size: int | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = _check_int("num_classes", num_classes, 2)
        self.embedding_size = _check_int("embedding_size", embedding_size, 1)
        self._proxies_per_class = proxies_per_class
        if negative_sampling not in (None, "random", "hardest"):
            raise ValueError(f"negative_sampling must be None, 'random' or 'hardest', got {negative_sampling!r}")
        if negative_sampling == "hardest" and not self._supports_hardest:
            raise ValueError(
                f"{type(self).__name__} supports negative_sampling='random' only: its negative "
                "part is a sum of one term per proxy, and keeping only the hardest proxies would "
                "drop most of it (see the module docstring)"
            )
        if negative_sampling is None:
            if num_negatives is not None or negative_pool_size is not None:
                raise ValueError(
                    "num_negatives and negative_pool_size need negative_sampling='random' or "
                    f"'hardest'; got negative_sampling=None with num_negatives={num_negatives!r}, "
                    f"negative_pool_size={negative_pool_size!r}"
                )
        else:
            if num_negatives is None:
                raise ValueError(f"negative_sampling={negative_sampling!r} needs num_negatives")
            num_negatives = _check_int("num_negatives", num_negatives, 1)
            if negative_pool_size is not None:
                if negative_sampling != "hardest":
                    raise ValueError("negative_pool_size is used with negative_sampling='hardest' only")
                negative_pool_size = _check_int("negative_pool_size", negative_pool_size, num_negatives)
        self.negative_sampling = negative_sampling
        self.num_negatives = num_negatives
        self.negative_pool_size = negative_pool_size
        self.proxies = nn.Parameter(torch.empty(self.num_classes * proxies_per_class, self.embedding_size))

    # -- inputs --------------------------------------------------------------------------------

    def _check_inputs(self, embeddings: torch.Tensor, labels: torch.Tensor) -> None:
        check_embeddings_and_labels(embeddings, labels)
        if embeddings.shape[1] != self.embedding_size:
            raise ValueError(
                f"{type(self).__name__} was built for embeddings of size {self.embedding_size}, "
                f"got embeddings of size {embeddings.shape[1]}"
            )
        if embeddings.device != self.proxies.device:
            raise ValueError(
                f"embeddings are on {embeddings.device} but the proxies are on "
                f"{self.proxies.device}; move the loss with .to(device)"
            )
        if ((labels < 0) | (labels >= self.num_classes)).any():
            raise ValueError(
                f"labels must lie in [0, {self.num_classes}) (num_classes={self.num_classes}), "
                f"got range [{int(labels.min())}, {int(labels.max())}]"
            )

    def _prepare(
        self, embeddings: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        """Validate, L2-normalise and, with negative sampling, draw the classes of this step:
        ``(normalized, rows, targets, correction)`` where ``rows`` are the proxies' classes taken
        (``None``: all), ``targets`` the labels' positions among them and ``correction`` the
        log-probability correction of the sampled logits (``None`` without sampling)."""
        self._check_inputs(embeddings, labels)
        normalized = F.normalize(embeddings, dim=1)
        if self.negative_sampling is None:
            return normalized, None, labels, None
        subset = self._sample(normalized, labels)
        return normalized, subset.classes, subset.targets, self._log_correction(subset, embeddings.dtype)

    def _normalized_proxies(self, dtype: torch.dtype, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Unit-norm proxies (all of them, or the given rows) in ``dtype``; differentiable."""
        proxies = self.proxies if rows is None else self.proxies[rows]
        return F.normalize(proxies.to(dtype), dim=1)

    # -- negative sampling ---------------------------------------------------------------------

    def _class_rows(self, classes: torch.Tensor) -> torch.Tensor:
        """Rows of :attr:`proxies` that belong to ``classes`` (class-major order)."""
        k = self._proxies_per_class
        if k == 1:
            return classes
        offsets = torch.arange(k, device=classes.device)
        return (classes.unsqueeze(1) * k + offsets).reshape(-1)

    @torch.no_grad()
    def _hardness(self, normalized: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """Largest cosine between any embedding of the batch and any proxy of each candidate."""
        proxies = self._normalized_proxies(normalized.dtype, self._class_rows(candidates))
        cos = normalized @ proxies.T  # (B, M*K), class-major columns
        return cos.amax(dim=0).view(candidates.numel(), self._proxies_per_class).amax(dim=1)

    def _sample(self, normalized: torch.Tensor, labels: torch.Tensor) -> _Subset:
        device = labels.device
        present = torch.zeros(self.num_classes, dtype=torch.bool, device=device)
        present[labels] = True
        present_classes = present.nonzero().squeeze(1)
        absent_classes = (~present).nonzero().squeeze(1)
        num_absent = absent_classes.numel()
        k = min(self.num_negatives, num_absent)
        if k == 0:
            sampled = absent_classes
        elif self.negative_sampling == "random":
            sampled = absent_classes[torch.randperm(num_absent, device=device)[:k]]
        else:
            pool = absent_classes
            if self.negative_pool_size is not None and self.negative_pool_size < num_absent:
                drawn = torch.randperm(num_absent, device=device)[: self.negative_pool_size]
                pool = absent_classes[drawn]
            sampled = pool[self._hardness(normalized, pool).topk(k).indices]
        classes = torch.cat([present_classes, sampled])
        position = torch.empty(self.num_classes, dtype=torch.long, device=device)
        position[present_classes] = torch.arange(present_classes.numel(), device=device)
        weight = num_absent / k if k > 0 else 1.0
        return _Subset(classes, position[labels], present_classes.numel(), weight)

    def _log_correction(self, subset: _Subset, dtype: torch.dtype) -> torch.Tensor | None:
        """``log(M / k)`` on the sampled columns (sampled softmax), ``None`` when it is zero."""
        if self.negative_sampling != "random" or subset.weight == 1.0:
            return None
        correction = torch.zeros(subset.classes.numel(), dtype=dtype, device=subset.classes.device)
        correction[subset.num_present :] = math.log(subset.weight)
        return correction

    def _sampling_repr(self) -> str:
        if self.negative_sampling is None:
            return ""
        text = f", negative_sampling={self.negative_sampling!r}, num_negatives={self.num_negatives}"
        if self.negative_pool_size is not None:
            text += f", negative_pool_size={self.negative_pool_size}"
        return text


# --------------------------------------------------------------------------------------------
# ProxyNCA / ProxyNCA++
# --------------------------------------------------------------------------------------------


class ProxyNCALoss(_ProxyLoss):
    r"""ProxyNCA: NCA with one learnable proxy per class.

    Movshovitz-Attias, Toshev, Leung, Ioffe & Singh, "No Fuss Distance Metric Learning using
    Proxies", ICCV 2017 (the NCA loss with the data points replaced by proxies, on unit vectors),
    as restated by Teh et al. (ECCV 2020), Eq. (1). For an embedding ``x`` of class ``y`` with
    unit vectors ``x̂ = x/||x||``, ``p̂_c = p_c/||p_c||`` and ``s = softmax_scale``:

    .. math::
        \ell(x) = -\log \frac{\exp(-s\,\lVert \hat x - \hat p_y \rVert^2)}
                             {\sum_{c \in Z} \exp(-s\,\lVert \hat x - \hat p_c \rVert^2)}

    averaged over the batch. PML's ``ProxyNCALoss`` (the default here) sums over all classes,
    ``Z = {1..C}``, which is a cross-entropy; the original excludes the positive proxy,
    ``Z = {c != y}`` (``exclude_positive_from_denominator=True``): the ratio is then not a
    probability and the loss can be negative. Teh et al. (section "proxy assignment probability")
    put the positive back in so that the loss is a proper negative log-probability. As ``||x̂ - p̂||² = 2 - 2 cos``, the logits are computed from cosines (the
    constant cancels); gradients are those of the squared-distance form.

    ProxyNCA++ (Teh, DeVries & Taylor, "ProxyNCA++: Revisiting and Revitalizing Proxy Neighborhood
    Component Analysis", ECCV 2020): low-temperature scaling, ``T = 1/9`` (``softmax_scale=9``,
    i.e. both unit vectors scaled by 3), and fast-moving proxies (a proxy learning rate 1e5 times
    the network's in the official CUB setting, :data:`PROXYNCA_PLUS_PLUS_PROXY_LR`). Use
    :meth:`proxynca_plus_plus`; its other ingredients (global max pooling, layer norm, class
    balanced sampling) belong to the model and the sampler, not to the loss.

    Deviation from PML: PML drops rows whose softmax probability underflows to exactly 0 from the
    mean; this loss uses a log-softmax and never underflows, so it keeps every row (the two agree
    whenever PML drops nothing).

    Args:
        num_classes: number of training classes; labels must lie in ``[0, num_classes)``.
        embedding_size: size of the embeddings (and of each proxy).
        softmax_scale: ``s`` above, the inverse temperature (PML's default 1).
        exclude_positive_from_denominator: use the original denominator over negatives only.
        negative_sampling: ``None`` (all classes), ``"random"`` or ``"hardest"`` (module docstring).
        num_negatives: ``k``, the number of absent classes sampled per call (with sampling only).
        negative_pool_size: with ``"hardest"``, pick among this many uniformly drawn absent classes.

    Proxies are initialised from a standard normal, as PML does.
    """

    #: Recommended learning rate for :attr:`proxies`, set by :meth:`proxynca_plus_plus`.
    recommended_proxy_lr: float | None = None

    def __init__(
        self,
        num_classes: int,
        embedding_size: int,
        softmax_scale: float = 1.0,
        exclude_positive_from_denominator: bool = False,
        negative_sampling: NegativeSampling | None = None,
        num_negatives: int | None = None,
        negative_pool_size: int | None = None,
    ) -> None:
        super().__init__(num_classes, embedding_size, 1, negative_sampling, num_negatives, negative_pool_size)
        self.softmax_scale = _positive("softmax_scale", softmax_scale)
        self.exclude_positive_from_denominator = bool(exclude_positive_from_denominator)
        nn.init.normal_(self.proxies)

    @classmethod
    def proxynca_plus_plus(cls, num_classes: int, embedding_size: int, **kwargs: object) -> ProxyNCALoss:
        """The loss with ProxyNCA++'s settings (Teh et al., ECCV 2020).

        ``softmax_scale=9`` (temperature 1/9), the positive kept in the denominator, proxies
        initialised as in the official code (standard normal divided by 8) and
        :attr:`recommended_proxy_lr` set to :data:`PROXYNCA_PLUS_PLUS_PROXY_LR` (400, with the
        network at :data:`PROXYNCA_PLUS_PLUS_LR` = 4e-3, Adam with ``eps=1.0``)::

            loss_fn = ProxyNCALoss.proxynca_plus_plus(num_classes, embedding_size)
            optimizer = torch.optim.Adam(
                [{"params": model.parameters()},
                 {"params": loss_fn.parameters(), "lr": loss_fn.recommended_proxy_lr}],
                lr=PROXYNCA_PLUS_PLUS_LR, eps=1.0)

        Keyword arguments (e.g. ``negative_sampling``) are passed on to the constructor.
        """
        kwargs.setdefault("softmax_scale", PROXYNCA_PLUS_PLUS_SOFTMAX_SCALE)
        loss = cls(num_classes, embedding_size, **kwargs)  # type: ignore[arg-type]
        with torch.no_grad():
            loss.proxies.normal_().div_(8.0)
        loss.recommended_proxy_lr = PROXYNCA_PLUS_PLUS_PROXY_LR
        return loss

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        normalized, rows, targets, correction = self._prepare(embeddings, labels)
        proxies = self._normalized_proxies(embeddings.dtype, rows)
        # -s ||x - p||^2 = 2 s cos - 2 s; the constant cancels in the softmax.
        logits = (normalized * (2.0 * self.softmax_scale)) @ proxies.T
        if correction is not None:
            logits = logits + correction
        if not self.exclude_positive_from_denominator:
            return F.cross_entropy(logits, targets)
        column = targets.unsqueeze(1)
        negatives = logits.scatter(1, column, float("-inf"))
        return (torch.logsumexp(negatives, dim=1) - logits.gather(1, column).squeeze(1)).mean()

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, embedding_size={self.embedding_size}, "
            f"softmax_scale={self.softmax_scale}, "
            f"exclude_positive_from_denominator={self.exclude_positive_from_denominator}" + self._sampling_repr()
        )


# --------------------------------------------------------------------------------------------
# Proxy-Anchor
# --------------------------------------------------------------------------------------------


class ProxyAnchorLoss(_ProxyLoss):
    r"""Proxy-Anchor: each proxy is an anchor pulling its class's embeddings and pushing the rest.

    Kim, Kim, Cho & Kwak, "Proxy Anchor Loss for Deep Metric Learning", CVPR 2020, Eq. (3):

    .. math::
        \ell = \frac{1}{|P^+|} \sum_{p \in P^+} \log\Big(1 + \sum_{x \in X_p^+}
                   e^{-\alpha (s(x, p) - \delta)}\Big)
             + \frac{1}{|P|} \sum_{p \in P} \log\Big(1 + \sum_{x \in X_p^-}
                   e^{\alpha (s(x, p) + \delta)}\Big)

    with ``s`` the cosine similarity, ``P`` all proxies, ``P+`` the proxies of the classes in the
    batch, ``X_p^+`` / ``X_p^-`` the batch's embeddings of / not of ``p``'s class. Each term is a
    smooth maximum, so an embedding's gradient is weighted by how hard it is relative to the
    other embeddings (Eq. (4)). Equal to PML's ``ProxyAnchorLoss`` (its ``DivisorReducer``
    divides the two sums by ``|P+|`` and ``C``).

    Proxies are initialised kaiming-normal with ``mode="fan_out"`` as in the official code
    (std ``sqrt(2 / num_classes)``); the official trainer gives them 100 times the network's
    learning rate (AdamW, lr 1e-4).

    With ``negative_sampling="random"`` only the batch's classes plus ``num_negatives`` absent
    classes enter the second sum, the sampled terms weighted by ``M / k`` (``M`` absent
    classes): an unbiased estimate of the full loss. ``"hardest"`` is refused (module docstring).

    Args:
        num_classes: number of training classes; labels must lie in ``[0, num_classes)``.
        embedding_size: size of the embeddings (and of each proxy).
        margin: ``δ`` (paper: 0.1); must be non-negative.
        alpha: ``α``, the scaling factor (paper: 32).
        negative_sampling: ``None`` or ``"random"``.
        num_negatives: ``k``, the number of absent classes sampled per call.
    """

    _supports_hardest = False

    def __init__(
        self,
        num_classes: int,
        embedding_size: int,
        margin: float = 0.1,
        alpha: float = 32.0,
        negative_sampling: Literal["random"] | None = None,
        num_negatives: int | None = None,
    ) -> None:
        super().__init__(num_classes, embedding_size, 1, negative_sampling, num_negatives, None)
        self.margin = _non_negative("margin", margin)
        self.alpha = _positive("alpha", alpha)
        nn.init.kaiming_normal_(self.proxies, mode="fan_out")

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self._check_inputs(embeddings, labels)
        normalized = F.normalize(embeddings, dim=1)
        subset, rows, targets = None, None, labels
        if self.negative_sampling is not None:
            subset = self._sample(normalized, labels)
            rows, targets = subset.classes, subset.targets
        proxies = self._normalized_proxies(embeddings.dtype, rows)
        num_columns = proxies.shape[0]
        scaled = (normalized * self.alpha) @ proxies.T  # alpha * cos, (B, S)
        shift = self.alpha * self.margin
        column = targets.unsqueeze(1)

        # Positive part: one positive per row, so gather it and reduce per class with a
        # stabilised scatter: log(1 + sum e^z) = m + log(e^-m + sum e^(z - m)), m = max(0, max z)
        # per class (m is detached: any m gives the same value and gradient).
        z = shift - scaled.gather(1, column).squeeze(1)  # -alpha (cos - delta), (B,)
        top = torch.zeros(num_columns, dtype=z.dtype, device=z.device)
        top = top.scatter_reduce(0, targets, z.detach(), reduce="amax", include_self=True)
        sums = torch.zeros_like(top).index_add(0, targets, torch.exp(z - top[targets]))
        positive = (top + torch.log(torch.exp(-top) + sums)).sum()  # absent classes add log 1 = 0
        present = torch.zeros(num_columns, dtype=torch.bool, device=z.device)
        present = present.index_fill_(0, targets, True)
        num_with_positives = present.sum()  # |P+|, kept as a tensor (no device sync)

        # Negative part: log(1 + sum e^(alpha cos + alpha delta)) over the non-class rows. A column
        # with no negatives (the whole batch in one class) gets a very negative logsumexp and
        # contributes log(1 + e^-huge) = 0 with a zero, finite gradient.
        fill = torch.finfo(scaled.dtype).min / 2
        lse = torch.logsumexp(scaled.scatter(1, column, fill), dim=0)  # (S,)
        per_proxy = torch.logaddexp(lse + shift, lse.new_zeros(()))  # log(1 + e^x), exact for all x
        if subset is not None and subset.weight != 1.0:
            weights = torch.ones_like(per_proxy)
            weights[subset.num_present :] = subset.weight
            per_proxy = per_proxy * weights
        return positive / num_with_positives + per_proxy.sum() / self.num_classes

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, embedding_size={self.embedding_size}, "
            f"margin={self.margin}, alpha={self.alpha}" + self._sampling_repr()
        )


# --------------------------------------------------------------------------------------------
# SoftTriple
# --------------------------------------------------------------------------------------------


class _SoftAssignmentSimilarity(torch.autograd.Function):
    """``f = sum_k softmax_k(z) z_k`` over axis 1 of a ``(B, K, C)`` tensor, with a fused backward.

    ``df/dz_k = p_k (1 + z_k - f)``: one saved softmax instead of autograd's chain of a softmax,
    a product and a sum. SoftTriple's cost is dominated by this ``B x K x C`` tensor; centres are
    laid out k-major (``K`` before ``C``) because reductions over a short innermost axis are
    an order of magnitude slower on the CPU than over a middle one.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        p = torch.softmax(z, dim=1)
        f = (p * z).sum(dim=1)
        ctx.save_for_backward(z, p, f)
        return f

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        z, p, f = ctx.saved_tensors
        out = z - (f - 1.0).unsqueeze(1)
        out.mul_(p).mul_(grad.unsqueeze(1))
        return out


def _center_regularization(proxies: torch.Tensor, num_classes: int, centers_per_class: int, eps: float) -> torch.Tensor:
    """Qian et al.'s centre regulariser (see :class:`SparseCentersRegularizer`)."""
    k = centers_per_class
    if k < 2:
        return proxies.new_zeros(())
    centers = F.normalize(proxies, dim=1).view(num_classes, k, -1)
    similarity = torch.bmm(centers, centers.transpose(1, 2))  # (C, K, K)
    rows, cols = torch.triu_indices(k, k, offset=1, device=proxies.device)
    pairs = similarity[:, rows, cols]  # (C, K(K-1)/2)
    distances = torch.sqrt((2.0 - 2.0 * pairs).clamp_min(0.0) + eps)
    return distances.sum() / (num_classes * k * (k - 1))


class SparseCentersRegularizer(nn.Module):
    r"""SoftTriple's regulariser that lets similar centres of a class merge.

    Qian et al., ICCV 2019, section "adaptive number of centers", Eqs. (10)–(11): for the
    unit centres ``w_c^1..w_c^K`` of class ``c``,

    .. math::
        R = \frac{1}{C K (K - 1)} \sum_{c} \sum_{t=1}^{K} \sum_{s=t+1}^{K}
            \sqrt{2 + \epsilon - 2\, {w_c^s}^\top w_c^t}

    an L2,1-type penalty on the distances between centres of the same class: distances are
    pushed to exactly zero, so redundant centres collapse into one. It is weighted by ``τ`` (paper:
    0.2) and added to the loss; :class:`SoftTripleLoss` does that with its ``tau`` argument.

    Called on the ``(num_classes * centers_per_class, embedding_size)`` centres (row ``c*K + k``),
    e.g. ``SoftTripleLoss.proxies``. PML keeps this out of its ``SoftTripleLoss`` and provides it
    as ``regularizers.SparseCentersRegularizer(num_classes, centers_per_class)``, passed as the
    loss's ``weight_regularizer`` with ``weight_reg_weight=tau``; it uses ``ε`` = the smallest
    normal float, the official code ``ε = 1e-5`` (the default here).

    Args:
        num_classes: number of classes ``C``.
        centers_per_class: ``K``; with ``K = 1`` the regulariser is 0.
        eps: ``ε`` inside the square root (keeps its gradient finite for merged centres).
    """

    def __init__(self, num_classes: int, centers_per_class: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_classes = _check_int("num_classes", num_classes, 1)
        self.centers_per_class = _check_int("centers_per_class", centers_per_class, 1)
        self.eps = _positive("eps", eps)

    def forward(self, centers: torch.Tensor) -> torch.Tensor:
        expected = (self.num_classes * self.centers_per_class,)
        if centers.dim() != 2 or centers.shape[:1] != expected:
            raise ValueError(
                f"centers must have shape ({expected[0]}, embedding_size) for {self.num_classes} "
                f"classes x {self.centers_per_class} centres, got {tuple(centers.shape)}"
            )
        return _center_regularization(centers, self.num_classes, self.centers_per_class, self.eps)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, centers_per_class={self.centers_per_class}, eps={self.eps}"


class SoftTripleLoss(_ProxyLoss):
    r"""SoftTriple: a softmax over classes, each class a soft mixture of ``K`` centres.

    Qian, Shang, Sun, Hu, Li & Jin, "SoftTriple Loss: Deep Metric Learning Without Triplet
    Sampling", ICCV 2019. With unit embedding ``x̂`` and unit centres ``ŵ_c^k``, the relaxed
    similarity to class ``c`` (Eq. (7)) is a softmax-weighted average of the centre similarities,

    .. math::
        S'_{c} = \sum_k \frac{\exp(\tfrac{1}{\gamma} \hat x^\top \hat w_c^k)}
                              {\sum_{k'} \exp(\tfrac{1}{\gamma} \hat x^\top \hat w_c^{k'})}\,
                 \hat x^\top \hat w_c^k

    and the loss (Eq. (8)) is the cross-entropy of the logits ``λ (S'_c − δ [c = y])``, averaged
    over the batch, plus ``τ`` times the centre regulariser (Eq. (11),
    :class:`SparseCentersRegularizer`). With ``K = 1`` and ``δ = 0`` it is the normalised softmax.

    Paper defaults: ``K = 10`` centres, ``λ = 20`` (``la``), ``γ = 0.1``, ``δ = 0.01``
    (``margin``), ``τ = 0.2``. PML's ``SoftTripleLoss`` has no ``τ`` (it is a separate
    ``SparseCentersRegularizer``): ``tau=0`` gives PML's value. Centres are initialised
    kaiming-uniform (``a = sqrt(5)``) on the ``(embedding_size, C*K)`` layout, as in the official
    code and PML.

    Args:
        num_classes: number of training classes; labels must lie in ``[0, num_classes)``.
        embedding_size: size of the embeddings (and of each centre).
        centers_per_class: ``K``.
        la: ``λ``, the scale of the logits.
        gamma: ``γ``, the temperature of the soft assignment to centres.
        margin: ``δ``, subtracted from the true class's similarity; non-negative.
        tau: ``τ``, weight of the centre regulariser (0 switches it off).
        regularizer_eps: ``ε`` of the regulariser (official code: 1e-5).
        negative_sampling, num_negatives, negative_pool_size: see the module docstring; a class
            is sampled with all its centres.
    """

    def __init__(
        self,
        num_classes: int,
        embedding_size: int,
        centers_per_class: int = 10,
        la: float = 20.0,
        gamma: float = 0.1,
        margin: float = 0.01,
        tau: float = 0.2,
        regularizer_eps: float = 1e-5,
        negative_sampling: NegativeSampling | None = None,
        num_negatives: int | None = None,
        negative_pool_size: int | None = None,
    ) -> None:
        centers_per_class = _check_int("centers_per_class", centers_per_class, 1)
        super().__init__(
            num_classes,
            embedding_size,
            centers_per_class,
            negative_sampling,
            num_negatives,
            negative_pool_size,
        )
        self.centers_per_class = centers_per_class
        self.la = _positive("la", la)
        self.gamma = _positive("gamma", gamma)
        self.margin = _non_negative("margin", margin)
        self.tau = _non_negative("tau", tau)
        self.regularizer_eps = _positive("regularizer_eps", regularizer_eps)
        nn.init.kaiming_uniform_(self.proxies.data.T, a=math.sqrt(5))

    def center_regularization(self) -> torch.Tensor:
        """The regulariser ``R`` (without ``τ``) of the current centres."""
        return _center_regularization(self.proxies, self.num_classes, self.centers_per_class, self.regularizer_eps)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        normalized, classes, targets, correction = self._prepare(embeddings, labels)
        k = self.centers_per_class
        # Centres in k-major order: column k * S + j of z is centre k of the j-th class taken.
        if classes is None:
            centers = self._normalized_proxies(embeddings.dtype)
            centers = centers.view(self.num_classes, k, -1).transpose(0, 1)
            centers = centers.reshape(-1, self.embedding_size)
        else:
            offsets = torch.arange(k, device=labels.device).unsqueeze(1)
            rows = (classes.unsqueeze(0) * k + offsets).reshape(-1)
            centers = self._normalized_proxies(embeddings.dtype, rows)
        batch = normalized.shape[0]
        z = ((normalized / self.gamma) @ centers.T).view(batch, k, -1)  # cos / gamma, (B, K, S)
        # S' = gamma * sum_k softmax(z)_k z_k; logits = la * (S' - margin [c = y]).
        logits = _SoftAssignmentSimilarity.apply(z) * (self.la * self.gamma)
        column = targets.unsqueeze(1)
        if self.margin:
            offset = logits.new_full((batch, 1), -self.la * self.margin)
            logits = logits.scatter_add(1, column, offset)
        if correction is not None:
            logits = logits + correction
        loss = F.cross_entropy(logits, targets)
        if self.tau:
            loss = loss + self.tau * _center_regularization(
                self.proxies.to(embeddings.dtype),
                self.num_classes,
                self.centers_per_class,
                self.regularizer_eps,
            )
        return loss

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, embedding_size={self.embedding_size}, "
            f"centers_per_class={self.centers_per_class}, la={self.la}, gamma={self.gamma}, "
            f"margin={self.margin}, tau={self.tau}" + self._sampling_repr()
        )


# --------------------------------------------------------------------------------------------
# Normalised softmax
# --------------------------------------------------------------------------------------------


class NormalizedSoftmaxLoss(_ProxyLoss):
    r"""Normalised softmax: cross-entropy of cosine logits divided by a temperature.

    Zhai & Wu, "Classification is a Strong Baseline for Deep Metric Learning", BMVC 2019, Eq. (2):
    with unit embedding ``x̂`` and unit class weights (proxies) ``p̂_c``,

    .. math::
        \ell(x) = -\log \frac{\exp(\hat x^\top \hat p_y / \sigma)}
                             {\sum_c \exp(\hat x^\top \hat p_c / \sigma)}

    averaged over the batch, ``σ = temperature`` (paper: 0.05). It is ProxyNCA with the
    positive in the denominator and ``softmax_scale = 1 / (2σ)``; the low temperature is what
    makes it work. Equal to PML's ``NormalizedSoftmaxLoss`` (PML's ``W`` is our
    ``proxies.T``). Proxies are initialised from a standard normal, as PML does.

    Args:
        num_classes: number of training classes; labels must lie in ``[0, num_classes)``.
        embedding_size: size of the embeddings (and of each proxy).
        temperature: ``σ``; must be positive.
        negative_sampling, num_negatives, negative_pool_size: see the module docstring.
    """

    def __init__(
        self,
        num_classes: int,
        embedding_size: int,
        temperature: float = 0.05,
        negative_sampling: NegativeSampling | None = None,
        num_negatives: int | None = None,
        negative_pool_size: int | None = None,
    ) -> None:
        super().__init__(num_classes, embedding_size, 1, negative_sampling, num_negatives, negative_pool_size)
        self.temperature = _positive("temperature", temperature)
        nn.init.normal_(self.proxies)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        normalized, rows, targets, correction = self._prepare(embeddings, labels)
        proxies = self._normalized_proxies(embeddings.dtype, rows)
        logits = (normalized / self.temperature) @ proxies.T
        if correction is not None:
            logits = logits + correction
        return F.cross_entropy(logits, targets)

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, embedding_size={self.embedding_size}, "
            f"temperature={self.temperature}" + self._sampling_repr()
        )
