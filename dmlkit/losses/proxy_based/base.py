"""What every proxy loss shares: the proxies, input checks and sampled negative proxies."""

from __future__ import annotations

import math
from typing import Literal, NamedTuple, TypedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dmlkit.checks import check_class_batch, check_int, check_positive

__all__ = []


NegativeSampling = Literal["random", "hardest"]


class NegativeSamplingOptions(TypedDict, total=False):
    """The keywords of sampled negative proxies that every proxy loss takes (module docstring).

    ``negative_sampling``: ``None`` (every class, the default), ``"random"`` or ``"hardest"``;
    ``num_negatives``: ``k``, the absent classes sampled per call (with sampling only);
    ``negative_pool_size``: with ``"hardest"``, pick among this many uniformly drawn absent classes.
    """

    negative_sampling: NegativeSampling | None
    num_negatives: int | None
    negative_pool_size: int | None


class _Subset(NamedTuple):
    """Classes taking part in one call: the batch's classes first, then the sampled negatives."""

    classes: torch.Tensor  # (S,) class indices: [present..., sampled...]
    targets: torch.Tensor  # (B,) position of each label in ``classes``
    num_present: int  # P: classes[:P] are the batch's classes
    weight: float  # M / k, the importance weight of each sampled negative


class _ProxyLoss(nn.Module):
    """Shared parts: the ``proxies`` parameter, input checks and negative sampling."""

    _supports_hardest: bool = True

    def __init__(
        self,
        num_classes: int,
        embedding_size: int,
        proxies_per_class: int = 1,
        *,
        negative_sampling: NegativeSampling | None = None,
        num_negatives: int | None = None,
        negative_pool_size: int | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = check_int("num_classes", num_classes, 2)
        self.embedding_size = check_int("embedding_size", embedding_size, 1)
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
            num_negatives = check_int("num_negatives", num_negatives, 1)
            if negative_pool_size is not None:
                if negative_sampling != "hardest":
                    raise ValueError("negative_pool_size is used with negative_sampling='hardest' only")
                negative_pool_size = check_int("negative_pool_size", negative_pool_size, num_negatives)
        self.negative_sampling = negative_sampling
        self.num_negatives = num_negatives
        self.negative_pool_size = negative_pool_size
        self.proxies = nn.Parameter(torch.empty(self.num_classes * proxies_per_class, self.embedding_size))

    # -- inputs --------------------------------------------------------------------------------

    def _check_inputs(self, embeddings: Tensor, labels: Tensor) -> None:
        check_class_batch(embeddings, labels, self.num_classes, self.embedding_size, type(self).__name__)
        if embeddings.device != self.proxies.device:
            raise ValueError(
                f"embeddings are on {embeddings.device} but the proxies are on "
                f"{self.proxies.device}; move the loss with .to(device)"
            )

    def _prepare(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor | None, Tensor, Tensor | None]:
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

    def _normalized_proxies(self, dtype: torch.dtype, rows: Tensor | None = None) -> Tensor:
        """Unit-norm proxies (all of them, or the given rows) in ``dtype``; differentiable."""
        proxies = self.proxies if rows is None else self.proxies[rows]
        return F.normalize(proxies.to(dtype), dim=1)

    # -- initial scale ---------------------------------------------------------------------------

    def proxy_norm(self) -> float:
        """Mean Euclidean norm of the proxies. Every proxy loss compares directions only, but with
        Adam each coordinate moves by about the learning rate per step, so the angle a proxy turns
        per step scales like ``lr / norm``: proxies initialised at different norms train at
        different effective rates under one learning rate."""
        return float(self.proxies.detach().norm(dim=1).mean())

    @torch.no_grad()
    def rescale_proxies_(self, norm: float = 1.0) -> _ProxyLoss:
        """Scale every proxy to Euclidean norm ``norm`` in place, keeping its direction (a fair
        start for comparing proxy losses under one learning rate); returns the loss."""
        norm = check_positive("norm", norm)
        self.proxies.mul_(norm / self.proxies.norm(dim=1, keepdim=True).clamp_min(torch.finfo(self.proxies.dtype).tiny))
        return self

    # -- negative sampling ---------------------------------------------------------------------

    def _class_rows(self, classes: Tensor) -> Tensor:
        """Rows of :attr:`proxies` that belong to ``classes`` (class-major order)."""
        k = self._proxies_per_class
        if k == 1:
            return classes
        offsets = torch.arange(k, device=classes.device)
        return (classes.unsqueeze(1) * k + offsets).reshape(-1)

    @torch.no_grad()
    def _hardness(self, normalized: Tensor, candidates: Tensor) -> Tensor:
        """Largest cosine between any embedding of the batch and any proxy of each candidate."""
        proxies = self._normalized_proxies(normalized.dtype, self._class_rows(candidates))
        cos = normalized @ proxies.T  # (B, M*K), class-major columns
        return cos.amax(dim=0).view(candidates.numel(), self._proxies_per_class).amax(dim=1)

    def _sample(self, normalized: Tensor, labels: Tensor) -> _Subset:
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

    def _log_correction(self, subset: _Subset, dtype: torch.dtype) -> Tensor | None:
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
