"""Normalised softmax (Zhai & Wu, BMVC 2019)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch.nn.functional as F
from torch import Tensor, nn

from dmlkit.checks import check_positive
from dmlkit.losses.proxy_based.base import NegativeSamplingOptions, _ProxyLoss

if TYPE_CHECKING:  # Python 3.10 has no typing.Unpack
    from typing_extensions import Unpack

__all__ = ["NormalizedSoftmaxLoss"]


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
        **sampling: ``negative_sampling``, ``num_negatives``, ``negative_pool_size``
            (:class:`~dmlkit.losses.proxy_based.base.NegativeSamplingOptions`).
    """

    def __init__(
        self,
        num_classes: int,
        embedding_size: int,
        temperature: float = 0.05,
        **sampling: Unpack[NegativeSamplingOptions],
    ) -> None:
        super().__init__(num_classes, embedding_size, 1, **sampling)
        self.temperature = check_positive("temperature", temperature)
        nn.init.normal_(self.proxies)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
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
