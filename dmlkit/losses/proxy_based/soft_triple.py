"""SoftTriple (Qian, Shang, Sun, Hu, Li & Jin, ICCV 2019) and its sparse-centres regulariser."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dmlkit.checks import check_int, check_non_negative, check_positive
from dmlkit.losses.proxy_based.base import NegativeSamplingOptions, _ProxyLoss

if TYPE_CHECKING:  # Python 3.10 has no typing.Unpack
    from typing_extensions import Unpack

__all__ = ["SparseCentersRegularizer", "SoftTripleLoss"]


class _SoftAssignmentSimilarity(torch.autograd.Function):
    """``f = sum_k softmax_k(z) z_k`` over axis 1 of a ``(B, K, C)`` tensor, with a fused backward.

    ``df/dz_k = p_k (1 + z_k - f)``: one saved softmax instead of autograd's chain of a softmax,
    a product and a sum. SoftTriple's cost is dominated by this ``B x K x C`` tensor; centres are
    laid out k-major (``K`` before ``C``) because reductions over a short innermost axis are
    an order of magnitude slower on the CPU than over a middle one.
    """

    @staticmethod
    def forward(ctx, z: Tensor) -> Tensor:  # type: ignore[override]
        p = torch.softmax(z, dim=1)
        f = (p * z).sum(dim=1)
        ctx.save_for_backward(z, p, f)
        return f

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        z, p, f = ctx.saved_tensors
        out = z - (f - 1.0).unsqueeze(1)
        out.mul_(p).mul_(grad.unsqueeze(1))
        return out


def _center_regularization(proxies: Tensor, num_classes: int, centers_per_class: int, eps: float) -> Tensor:
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
        self.num_classes = check_int("num_classes", num_classes, 1)
        self.centers_per_class = check_int("centers_per_class", centers_per_class, 1)
        self.eps = check_positive("eps", eps)

    def forward(self, centers: Tensor) -> Tensor:
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
        **sampling: ``negative_sampling``, ``num_negatives``, ``negative_pool_size``
            (:class:`~dmlkit.losses.proxy_based.base.NegativeSamplingOptions`); a class
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
        **sampling: Unpack[NegativeSamplingOptions],
    ) -> None:
        centers_per_class = check_int("centers_per_class", centers_per_class, 1)
        super().__init__(num_classes, embedding_size, centers_per_class, **sampling)
        self.centers_per_class = centers_per_class
        self.la = check_positive("la", la)
        self.gamma = check_positive("gamma", gamma)
        self.margin = check_non_negative("margin", margin)
        self.tau = check_non_negative("tau", tau)
        self.regularizer_eps = check_positive("regularizer_eps", regularizer_eps)
        nn.init.kaiming_uniform_(self.proxies.data.T, a=math.sqrt(5))

    def center_regularization(self) -> Tensor:
        """The regulariser ``R`` (without ``τ``) of the current centres."""
        return _center_regularization(self.proxies, self.num_classes, self.centers_per_class, self.regularizer_eps)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
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
