"""Gathering a batch from every process, so that a loss sees the global batch.

A pair, proxy, AP or XBM loss on one process's batch would see only that process's negatives.
:class:`GatheredLoss` gathers the embeddings and labels of every process (in rank order, which is
the order of the single-process batch that :class:`~dmlkit.distributed.DistributedPKSampler`
splits) and evaluates the wrapped loss on the whole of it, on every process.

The gradient. Each process's loss is the same function ``L`` of the global batch, but only its
own slot of the gathered embeddings carries a gradient, so process ``r`` computes ``∂L/∂e_r``
exactly — the single-process gradient of its own images. The full gradient of the model is the
sum of these over the processes; DistributedDataParallel *averages* gradients, so the local slot's
gradient is multiplied by the world size on its way back (:func:`all_gather_with_grad`), and the
averaged result is the single-process gradient of the global batch. The loss's own parameters
(proxies) see every embedding and so get the whole ``∂L/∂φ`` on each process; they are not scaled,
and :func:`average_gradients` keeps their copies identical. (pytorch-metric-learning's
``DistributedLossWrapper`` instead multiplies the loss by the world size, which scales the
proxies' gradient too.)

Cost: each process holds the global batch of ``B × world_size`` embeddings and the loss's
``(B·w) × (B·w)`` similarity matrix — ``w²`` times the single-process matrix of its own batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn

from dmlkit.distributed.process_group import current

__all__ = ["all_gather_with_grad", "all_gather", "GatheredLoss", "average_gradients"]


def _world() -> tuple[int, int]:
    if not (dist.is_available() and dist.is_initialized()):
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def all_gather(tensor: Tensor) -> Tensor:
    """The ``tensor`` of every process concatenated along dim 0 in rank order, without gradient.
    Every process must give the same shape (checked: a clear error, not a hang or garbage)."""
    _, world = _world()
    if world == 1:
        return tensor.detach()
    _check_same_shape(tensor)
    parts = [torch.empty_like(tensor) for _ in range(world)]
    dist.all_gather(parts, tensor.detach().contiguous())
    return torch.cat(parts)


def _check_same_shape(tensor: Tensor) -> None:
    _, world = _world()
    shape = torch.tensor(list(tensor.shape) + [tensor.dim()], dtype=torch.long, device=current().device)
    shapes = [torch.empty_like(shape) for _ in range(world)]
    dist.all_gather(shapes, shape)
    found = [tuple(s[:-1].tolist()) for s in shapes]
    if len(set(found)) > 1:
        raise ValueError(f"every process must gather the same shape, got {found} (rank order)")


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, local: Tensor) -> Tensor:  # type: ignore[override]
        rank, world = _world()
        ctx.rank, ctx.world, ctx.rows = rank, world, local.shape[0]
        parts = [torch.empty_like(local) for _ in range(world)]
        dist.all_gather(parts, local.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        start = ctx.rank * ctx.rows
        return grad[start : start + ctx.rows] * ctx.world


def all_gather_with_grad(local: Tensor) -> Tensor:
    """Like :func:`all_gather`, but the local slot keeps its gradient, multiplied by the world size
    (see the module docstring: DistributedDataParallel then averages it back to the sum)."""
    _, world = _world()
    if world == 1:
        return local
    _check_same_shape(local)
    return _GatherWithGrad.apply(local)


class GatheredLoss(nn.Module):
    """``loss`` on the embeddings and labels of every process (the global batch).

    The wrapped loss is kept as ``.loss`` (its parameters — proxies — are this module's); in a
    single process this is the loss itself. A :class:`~dmlkit.losses.CrossBatchMemory` inside
    enqueues the global batch, so its queue is the same on every process and equal to the queue
    of one process trained on the global batch.
    """

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        if not isinstance(loss, nn.Module):
            raise TypeError(f"loss must be a torch.nn.Module, got {type(loss).__name__}")
        self.loss = loss

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        if embeddings.dim() != 2 or labels.shape != embeddings.shape[:1]:
            raise ValueError(
                f"expected embeddings (B, D) and labels (B,), got {tuple(embeddings.shape)} and {tuple(labels.shape)}"
            )
        return self.loss(all_gather_with_grad(embeddings), all_gather(labels))


def average_gradients(parameters) -> None:
    """Average the gradients of ``parameters`` over the processes (for the loss's parameters,
    which DistributedDataParallel does not wrap); a no-op in a single process."""
    _, world = _world()
    if world == 1:
        return
    for p in parameters:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world
