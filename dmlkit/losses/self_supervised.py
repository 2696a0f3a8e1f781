"""Losses that learn an embedding without class labels: each image is its own class.

Three forms of instance discrimination, from the oldest to the now-standard one:

- :class:`MemoryBankInstanceLoss` — Wu et al., "Unsupervised Feature Learning via Non-Parametric
  Instance Discrimination" (CVPR 2018): a softmax over a memory bank holding one slowly updated
  feature per training image (Eq. 2 with the bank of Sec. 3.1, temperature 0.07; the bank entry
  of an image becomes ``normalise(m v + (1 - m) f)`` after each step, ``m = 0.5``).
- :class:`InstanceSpreadingLoss` — Ye et al., "Unsupervised Embedding Learning via Invariant and
  Spreading Instance Feature" (CVPR 2019): no bank; within a batch, the augmented copy of an image
  must be classified as that image, and every other image must not be (Eq. 3–5, τ = 0.1).
- :class:`NTXentLoss` — Chen et al., SimCLR (ICML 2020): the normalised temperature-scaled cross
  entropy over the 2N views of a batch (Eq. 1), each view's positive its twin, the 2N − 2 other
  views its negatives. With labels it is pytorch-metric-learning's ``NTXentLoss``: positives are
  the pairs of equal label, and :func:`two_view_labels` gives the labels that make it SimCLR's.

The embeddings are L2-normalised inside every loss (cosine similarities), as in all three papers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dmlkit.checks import check_embeddings, check_embeddings_and_labels, check_int, check_positive, check_probability

__all__ = ["NTXentLoss", "InstanceSpreadingLoss", "MemoryBankInstanceLoss", "two_view_labels"]


def _check_views(first: Tensor, second: Tensor) -> None:
    check_embeddings(first, "first view's embeddings")
    check_embeddings(second, "second view's embeddings")
    if first.shape != second.shape:
        raise ValueError(
            f"the two views must embed the same images: got shapes {tuple(first.shape)} and {tuple(second.shape)}"
        )
    if first.shape[0] < 2:
        raise ValueError(f"instance discrimination needs at least 2 images per batch, got {first.shape[0]}")


def two_view_labels(batch_size: int, device: torch.device | str | None = None) -> Tensor:
    """The labels that turn a label-based loss into a self-supervised one: ``[0..N-1, 0..N-1]``
    for ``torch.cat([first_view, second_view])`` — image ``i``'s two views share label ``i``,
    and every other image is a negative (what pytorch-metric-learning's ``SelfSupervisedLoss``
    builds)."""
    check_int("batch_size", batch_size, minimum=1)
    labels = torch.arange(batch_size, device=device)
    return torch.cat([labels, labels])


class NTXentLoss(nn.Module):
    """NT-Xent (Chen et al., ICML 2020, Eq. 1), with labels as in pytorch-metric-learning.

    For every positive pair ``(a, p)`` (two different rows of equal label),
    ``ℓ(a, p) = −log( exp(s_ap/τ) / (exp(s_ap/τ) + Σ_n exp(s_an/τ)) )`` where ``n`` runs over the
    rows whose label differs from ``a``'s and ``s`` is the cosine similarity; the loss is the mean
    over all positive pairs. With :func:`two_view_labels` each row has one positive, its other
    view, and 2N − 2 negatives: SimCLR's loss, averaged over its 2N terms.

    Call it as ``loss(embeddings, labels)`` (any labels, e.g. supervised NT-Xent), or as
    ``loss.two_views(first, second)`` for the self-supervised form.

    Args:
        temperature: τ; SimCLR's experiments use 0.1 to 0.5, pytorch-metric-learning defaults
            to 0.07.
        symmetric: for :meth:`two_views`: every one of the 2N views is an anchor and the other
            views of the batch (of both augmentations) are its negatives (SimCLR). ``False``:
            only the first view's rows are anchors and only the second view's rows are
            candidates (pytorch-metric-learning's ``SelfSupervisedLoss(..., symmetric=False)``).
    """

    def __init__(self, temperature: float = 0.1, symmetric: bool = True) -> None:
        super().__init__()
        self.temperature = check_positive("temperature", temperature)
        self.symmetric = bool(symmetric)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        check_embeddings_and_labels(embeddings, labels)
        z = F.normalize(embeddings, dim=1)
        return self._loss(z, labels, z, labels, exclude_self=True)

    def two_views(self, first: Tensor, second: Tensor) -> Tensor:
        """The self-supervised loss of two views ``(N, D)`` of the same N images."""
        _check_views(first, second)
        labels = torch.arange(first.shape[0], device=first.device)
        if self.symmetric:
            return self.forward(torch.cat([first, second]), torch.cat([labels, labels]))
        return self._loss(F.normalize(first, dim=1), labels, F.normalize(second, dim=1), labels, exclude_self=False)

    def _loss(
        self, anchors: Tensor, labels: Tensor, candidates: Tensor, ref_labels: Tensor, exclude_self: bool
    ) -> Tensor:
        logits = anchors @ candidates.T / self.temperature
        same = labels[:, None] == ref_labels[None, :]
        if exclude_self:
            same = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        different = labels[:, None] != ref_labels[None, :]
        if not same.any():
            # no positive pair: nothing to pull together (pytorch-metric-learning returns 0 too)
            return _zero_loss(anchors)
        negatives = logits.masked_fill(~different, float("-inf"))
        anchor, positive = same.nonzero(as_tuple=True)
        pos = logits[anchor, positive]
        # log(exp(pos) + Σ exp(neg)) for each positive pair, computed stably
        denominator = torch.logsumexp(torch.cat([pos[:, None], negatives[anchor]], dim=1), dim=1)
        return (denominator - pos).mean()

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, symmetric={self.symmetric}"


def _zero_loss(embeddings: Tensor) -> Tensor:
    """A zero loss that stays attached to the graph (its gradient is 0, not missing)."""
    return embeddings.sum() * 0.0


class InstanceSpreadingLoss(nn.Module):
    """Invariant and spreading instance feature (Ye et al., CVPR 2019, Eq. 3–5).

    For a batch of m images with features ``f_i`` and features ``f̂_i`` of their augmented copies
    (all L2-normalised), the probability that ``x̂_i`` is recognised as instance ``i`` and that
    ``x_j`` (``j ≠ i``) is recognised as instance ``i`` are

    ``P(i | x̂_i) = exp(f_iᵀ f̂_i / τ) / Σ_k exp(f_kᵀ f̂_i / τ)``  (Eq. 3)

    ``P(i | x_j) = exp(f_iᵀ f_j / τ) / Σ_k exp(f_kᵀ f_j / τ)``  (Eq. 4)

    with ``k`` over the m original images of the batch, and the loss is the negative log
    likelihood of the batch's m instances being told apart (Eq. 5),
    ``J = −Σ_i log P(i | x̂_i) − Σ_i Σ_{j≠i} log(1 − P(i | x_j))``, divided by m here (the
    authors' code averages over the batch). Gradients flow through both ``f`` and ``f̂``.

    Call it as ``loss.two_views(originals, augmented)``.

    Args:
        temperature: τ, 0.1 in the paper.
    """

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        self.temperature = check_positive("temperature", temperature)

    def two_views(self, first: Tensor, second: Tensor) -> Tensor:
        _check_views(first, second)
        f = F.normalize(first, dim=1)
        f_hat = F.normalize(second, dim=1)
        m = f.shape[0]
        # column c of each matrix holds the logits f_kᵀ (·)_c / τ over k
        augmented = f @ f_hat.T / self.temperature  # [k, i]: f_kᵀ f̂_i / τ
        log_p_augmented = augmented.diagonal() - torch.logsumexp(augmented, dim=0)
        originals = f @ f.T / self.temperature  # [k, j]: f_kᵀ f_j / τ
        log_p = originals - torch.logsumexp(originals, dim=0, keepdim=True)  # [i, j]: log P(i | x_j)
        off_diagonal = ~torch.eye(m, dtype=torch.bool, device=f.device)
        # log(1 − P) = log(−expm1(log P)), accurate when P is close to 0 or 1
        log_not = torch.log((-torch.expm1(log_p[off_diagonal])).clamp_min(1e-30))
        return -(log_p_augmented.sum() + log_not.sum()) / m

    def forward(self, first: Tensor, second: Tensor) -> Tensor:
        return self.two_views(first, second)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


class MemoryBankInstanceLoss(nn.Module):
    """Non-parametric instance discrimination with a memory bank (Wu et al., CVPR 2018).

    The bank ``V`` holds one L2-normalised feature per training image, initialised at random on
    the unit sphere. For the feature ``f_i`` of image ``i`` (normalised),

    ``P(i | f_i) = exp(v_iᵀ f_i / τ) / Σ_{j=1..n} exp(v_jᵀ f_i / τ)``  (Eq. 2, with V for W)

    and the loss is ``−log P(i | f_i)`` averaged over the batch — the full softmax over all n
    entries (the paper's NCE approximation is for n in the millions; for the kit's data sets the
    exact softmax is affordable and has no extra hyper-parameter). After the step, the bank entry
    of each image is updated as ``v_i ← normalise(m v_i + (1 − m) f_i)`` (Sec. 3.1 and 3.3).

    With ``proximal > 0`` the proximal regulariser of Sec. 3.4, ``λ ‖f_i − v_i‖²``, is added
    (the paper uses λ = 30 with its NCE training; off by default here).

    Call it as ``loss(embeddings, indices)`` where ``indices`` are the images' positions in the
    training set; :meth:`update_memory` runs inside ``forward`` (on the detached features).

    Args:
        num_items: n, the number of training images.
        embedding_size: size of the features.
        temperature: τ, 0.07 in the paper.
        momentum: m of the bank update, 0.5 in the paper.
        proximal: λ of the proximal term (0: off).
        seed: seeds the random initial bank.
    """

    def __init__(
        self,
        num_items: int,
        embedding_size: int,
        temperature: float = 0.07,
        momentum: float = 0.5,
        proximal: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.num_items = check_int("num_items", num_items, minimum=2)
        self.embedding_size = check_int("embedding_size", embedding_size, minimum=1)
        self.temperature = check_positive("temperature", temperature)
        self.momentum = check_probability("momentum", momentum)
        if self.momentum == 1.0:
            raise ValueError("momentum=1 would never update the memory bank; use a value in [0, 1)")
        self.proximal = float(proximal)
        if self.proximal < 0:
            raise ValueError(f"proximal must be >= 0, got {proximal!r}")
        generator = torch.Generator().manual_seed(seed)
        bank = torch.randn(num_items, embedding_size, generator=generator)
        self.register_buffer("memory", F.normalize(bank, dim=1))

    def forward(self, embeddings: Tensor, indices: Tensor) -> Tensor:
        check_embeddings_and_labels(embeddings, indices)
        if embeddings.shape[1] != self.embedding_size:
            raise ValueError(
                f"MemoryBankInstanceLoss was built for embeddings of size {self.embedding_size}, "
                f"got {embeddings.shape[1]}"
            )
        if ((indices < 0) | (indices >= self.num_items)).any():
            raise ValueError(
                f"indices must be positions in the training set, in [0, {self.num_items}); got range "
                f"[{int(indices.min())}, {int(indices.max())}]"
            )
        if indices.unique().numel() != indices.numel():
            raise ValueError("each image may appear once per batch (the memory bank keeps one entry per image)")
        f = F.normalize(embeddings, dim=1)
        memory = self.memory.to(f.dtype, copy=True)  # the update below must not change what backward reads
        logits = f @ memory.T / self.temperature
        value = F.cross_entropy(logits, indices)
        if self.proximal > 0:
            value = value + self.proximal * (f - memory[indices]).pow(2).sum(1).mean()
        if self.training:
            self.update_memory(f.detach(), indices)
        return value

    @torch.no_grad()
    def update_memory(self, features: Tensor, indices: Tensor) -> None:
        """``v_i ← normalise(m v_i + (1 − m) f_i)`` for the given (normalised) features."""
        mixed = self.momentum * self.memory[indices] + (1.0 - self.momentum) * features.to(self.memory.dtype)
        self.memory[indices] = F.normalize(mixed, dim=1)

    def extra_repr(self) -> str:
        return (
            f"num_items={self.num_items}, embedding_size={self.embedding_size}, temperature={self.temperature}, "
            f"momentum={self.momentum}, proximal={self.proximal}"
        )
