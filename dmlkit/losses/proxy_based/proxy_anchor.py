"""Proxy-Anchor (Kim, Kim, Cho & Kwak, CVPR 2020)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dmlkit.checks import check_non_negative, check_positive
from dmlkit.losses.proxy_based.base import NegativeSamplingOptions, _ProxyLoss

if TYPE_CHECKING:  # Python 3.10 has no typing.Unpack
    from typing_extensions import Unpack

__all__ = ["ProxyAnchorLoss"]


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
        **sampling: ``negative_sampling`` (``None`` or ``"random"``) and ``num_negatives``, ``k``,
            the absent classes sampled per call
            (:class:`~dmlkit.losses.proxy_based.base.NegativeSamplingOptions`).
    """

    _supports_hardest = False

    def __init__(
        self,
        num_classes: int,
        embedding_size: int,
        margin: float = 0.1,
        alpha: float = 32.0,
        **sampling: Unpack[NegativeSamplingOptions],
    ) -> None:
        super().__init__(num_classes, embedding_size, 1, **sampling)
        self.margin = check_non_negative("margin", margin)
        self.alpha = check_positive("alpha", alpha)
        nn.init.kaiming_normal_(self.proxies, mode="fan_out")

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
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
