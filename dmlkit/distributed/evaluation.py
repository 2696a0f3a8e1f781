"""Embedding a dataset in shards across processes, gathered once in dataset order."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, Subset

from dmlkit.distributed.gather import _world, all_gather
from dmlkit.distributed.process_group import current
from dmlkit.evaluate import embed
from dmlkit.evaluate.embedding import CPU_BATCH_SIZE

__all__ = ["embed_sharded", "shard_range"]


def shard_range(n: int, rank: int, world_size: int, batch_size: int) -> range:
    """The items of process ``rank``: a contiguous range whose length is a multiple of
    ``batch_size`` (the last shard takes the rest), so the forward passes are the very batches a
    single process runs and the gathered embeddings equal its embeddings bit for bit."""
    per = math.ceil(math.ceil(n / world_size) / batch_size) * batch_size
    return range(min(n, rank * per), min(n, (rank + 1) * per))


class _Shard(Dataset):
    """Items ``indices`` of an in-memory dataset, served a batch at a time."""

    def __init__(self, data: Any, indices: range) -> None:
        self.data, self.indices = data, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.data[self.indices[i]]

    def get_batch(self, positions):
        return self.data.get_batch(torch.as_tensor(positions) + self.indices.start)


def embed_sharded(
    model: nn.Module, data: Any, batch_size: int | None = None, device: torch.device | str | None = None
) -> tuple[Tensor, Tensor]:
    """:func:`dmlkit.evaluate.embed` with each process embedding its shard (:func:`shard_range`);
    every process gets all ``(embeddings, labels)``, on the CPU, in dataset order — equal to one
    process's :func:`~dmlkit.evaluate.embed`. Call it on every process (it gathers)."""
    rank, world = _world()
    if world == 1:
        return embed(model, data, batch_size, device)
    n = len(data)
    if n == 0:
        raise ValueError("data is empty: there is nothing to embed")
    if batch_size is None:
        on = torch.device(device) if device is not None else next(model.parameters()).device
        batch_size = CPU_BATCH_SIZE if on.type == "cpu" else 512
    shards = [shard_range(n, r, world, batch_size) for r in range(world)]
    mine = shards[rank]
    part = _Shard(data, mine) if hasattr(data, "get_batch") else Subset(data, list(mine))
    collective = current().device  # where the group's collectives run
    if len(mine):
        embeddings, labels = embed(model, part, batch_size, device)
    else:  # more processes than shards: this one embeds nothing but still takes part in the gather
        probe, _ = embed(
            model, _Shard(data, range(0, 1)) if hasattr(data, "get_batch") else Subset(data, [0]), 1, device
        )
        embeddings, labels = probe[:0], torch.zeros(0, dtype=torch.long)
    rows = max(len(s) for s in shards)
    padded = torch.zeros(rows, embeddings.shape[1], dtype=embeddings.dtype)
    padded[: len(mine)] = embeddings
    padded_labels = torch.full((rows,), -1, dtype=torch.long)
    padded_labels[: len(mine)] = labels
    gathered = all_gather(padded.to(collective)).cpu().view(world, rows, -1)
    gathered_labels = all_gather(padded_labels.to(collective)).cpu().view(world, rows)
    keep = [gathered[r, : len(s)] for r, s in enumerate(shards)]
    keep_labels = [gathered_labels[r, : len(s)] for r, s in enumerate(shards)]
    return torch.cat(keep), torch.cat(keep_labels)
