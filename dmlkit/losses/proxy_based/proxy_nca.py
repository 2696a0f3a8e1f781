"""ProxyNCA (Movshovitz-Attias et al., ICCV 2017) and ProxyNCA++ (Teh, DeVries & Taylor, ECCV 2020)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dmlkit.checks import check_positive
from dmlkit.losses.proxy_based.base import NegativeSamplingOptions, _ProxyLoss

if TYPE_CHECKING:  # Python 3.10 has no typing.Unpack
    from typing_extensions import Unpack

__all__ = ["PROXYNCA_PLUS_PLUS_SOFTMAX_SCALE", "PROXYNCA_PLUS_PLUS_LR", "PROXYNCA_PLUS_PLUS_PROXY_LR", "ProxyNCALoss"]


#: ProxyNCA++ (Teh et al., ECCV 2020): temperature T = 1/9 on the squared distance of unit
#: vectors, i.e. both vectors scaled by 3 (``scale: 3`` in the official configuration).
PROXYNCA_PLUS_PLUS_SOFTMAX_SCALE = 9.0


#: Learning rate of the network in the official ProxyNCA++ CUB configuration (Adam, ``eps=1.0``).
PROXYNCA_PLUS_PLUS_LR = 4e-3


#: Learning rate of the proxies in the same configuration ("fast-moving proxies"): 1e5 times the
#: network's. With Adam's ``eps=1.0`` the small proxy gradients make this closer to plain SGD.
PROXYNCA_PLUS_PLUS_PROXY_LR = 4e2


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
        **sampling: ``negative_sampling`` (``None``: all classes; ``"random"`` or ``"hardest"``),
            ``num_negatives`` and ``negative_pool_size``
            (:class:`~dmlkit.losses.proxy_based.base.NegativeSamplingOptions`).

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
        **sampling: Unpack[NegativeSamplingOptions],
    ) -> None:
        super().__init__(num_classes, embedding_size, 1, **sampling)
        self.softmax_scale = check_positive("softmax_scale", softmax_scale)
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

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
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
