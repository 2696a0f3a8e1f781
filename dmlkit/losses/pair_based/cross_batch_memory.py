"""Cross-batch memory, XBM (Wang, Zhang, Huang & Scott, CVPR 2020)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dmlkit.checks import check_embeddings_and_labels, check_non_negative
from dmlkit.losses.pair_based.base import PairBasedLoss

__all__ = ["CrossBatchMemory"]


class CrossBatchMemory(nn.Module):
    """Cross-batch memory, "XBM" (Wang, Zhang, Huang & Scott, CVPR 2020, "Cross-Batch Memory for
    Embedding Learning").

    A FIFO queue of the last ``memory_size`` (detached) embeddings and their labels. Each call
    counts one iteration. For the first ``start_iteration`` calls (the warm-up) the loss is the
    wrapped loss on the batch and nothing is stored. Afterwards the batch is enqueued (replacing the
    oldest entries) and the loss becomes::

        loss(batch) + memory_weight * loss(batch as anchors, memory as references)

    where a batch sample and its own copy in the memory are not a positive pair. This is the
    training step of the authors' released code (enqueue, then batch loss plus weighted memory
    loss); its defaults are ``memory_weight=1`` and a warm-up of 1000 iterations in the sample
    configuration. The memory is detached: gradients flow only through the batch's side.

    Differences from PML's ``CrossBatchMemory``: PML has no warm-up and returns only the memory
    term (``loss(batch vs memory)``, which contains the batch itself); ``include_batch_loss=False,
    start_iteration=0, memory_weight=1`` gives exactly PML's value. PML accepts a separate miner;
    here mining is the wrapped loss's own (``TripletMarginLoss(mining=...)``,
    ``MultiSimilarityLoss(epsilon=...)``), applied to the batch-versus-memory pairs as PML's
    miners are. PML also supports ``enqueue_mask``; this class does not.

    Wrappable: Contrastive, Triplet, LiftedStructure (anchor-side negatives only, see there),
    MultiSimilarity, RankedList (not in PML), Circle. Not N-pairs (nor in PML).

    The queue and its labels are buffers (saved in ``state_dict``); the write position, the fill
    level and the iteration count are plain attributes, reset by :meth:`reset_queue`. With mining,
    PML's miners see a sample's own copy in the memory as a positive before PML removes the pair;
    that can change which negatives PML keeps for an anchor whose only positive is itself (rare;
    here such an anchor has no positive and keeps no mined negative).

    Args:
        loss: a :class:`PairBasedLoss` with a reference form.
        embedding_size: size of the stored embeddings.
        memory_size: number of stored embeddings (PML: 1024; the paper sizes it to the dataset,
            e.g. the whole training set of a small one).
        start_iteration: warm-up iterations without memory (released code: 1000; PML: 0).
        memory_weight: weight of the memory term (1).
        include_batch_loss: add the plain batch loss after warm-up (released code: yes; PML: no).
    """

    embedding_memory: torch.Tensor
    label_memory: torch.Tensor

    def __init__(
        self,
        loss: PairBasedLoss,
        embedding_size: int,
        memory_size: int = 1024,
        *,
        start_iteration: int = 1000,
        memory_weight: float = 1.0,
        include_batch_loss: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(loss, PairBasedLoss):
            raise ValueError(f"loss must be a dmlkit pair-based loss (PairBasedLoss), got {type(loss).__name__}")
        if not loss.supports_reference:
            raise ValueError(f"{type(loss).__name__} cannot be used with a cross-batch memory")
        for name, value, minimum in (
            ("embedding_size", embedding_size, 1),
            ("memory_size", memory_size, 1),
            ("start_iteration", start_iteration, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        check_non_negative("memory_weight", memory_weight)
        self.loss = loss
        self.embedding_size = embedding_size
        self.memory_size = memory_size
        self.start_iteration = start_iteration
        self.memory_weight = float(memory_weight)
        self.include_batch_loss = bool(include_batch_loss)
        self.register_buffer("embedding_memory", torch.zeros(memory_size, embedding_size))
        self.register_buffer("label_memory", torch.zeros(memory_size, dtype=torch.long))
        self.reset_queue()

    def reset_queue(self) -> None:
        """Empty the memory and restart the iteration count (and so the warm-up)."""
        self.embedding_memory.zero_()
        self.label_memory.zero_()
        self.queue_idx = 0
        self.num_filled = 0
        self.iteration = 0

    def _enqueue(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Store the batch (detached) and return the memory slot of each of its rows."""
        memory = self.embedding_memory
        if memory.dtype != embeddings.dtype or memory.device != embeddings.device:
            self.embedding_memory = self.embedding_memory.to(embeddings.device, embeddings.dtype)
            self.label_memory = self.label_memory.to(embeddings.device)
        batch = embeddings.shape[0]
        slots = (self.queue_idx + torch.arange(batch, device=embeddings.device)) % self.memory_size
        self.embedding_memory[slots] = embeddings.detach()
        self.label_memory[slots] = labels.detach().to(self.label_memory.dtype)
        self.queue_idx = (self.queue_idx + batch) % self.memory_size
        self.num_filled = min(self.num_filled + batch, self.memory_size)
        return slots

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        check_embeddings_and_labels(embeddings, labels)
        if embeddings.shape[1] != self.embedding_size:
            raise ValueError(f"expected embeddings of size {self.embedding_size}, got {embeddings.shape[1]}")
        if embeddings.shape[0] > self.memory_size:
            raise ValueError(f"the batch ({embeddings.shape[0]}) is larger than the memory ({self.memory_size})")
        self.iteration += 1
        if self.iteration <= self.start_iteration:
            return self.loss.compute_loss(embeddings, labels)
        slots = self._enqueue(embeddings, labels)
        memory = self.embedding_memory[: self.num_filled]
        memory_labels = self.label_memory[: self.num_filled]
        self_mask = torch.zeros(embeddings.shape[0], self.num_filled, dtype=torch.bool, device=embeddings.device)
        self_mask[torch.arange(embeddings.shape[0], device=embeddings.device), slots] = True
        loss = self.memory_weight * self.loss.compute_loss(embeddings, labels, memory, memory_labels, self_mask)
        if self.include_batch_loss:
            loss = loss + self.loss.compute_loss(embeddings, labels)
        return loss

    def extra_repr(self) -> str:
        return (
            f"embedding_size={self.embedding_size}, memory_size={self.memory_size}, "
            f"start_iteration={self.start_iteration}, memory_weight={self.memory_weight}, "
            f"include_batch_loss={self.include_batch_loss}"
        )
