"""The distributed P×K sampler: each process's share of one global P×K batch per step."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from torch import Tensor
from torch.utils.data import Sampler

from dmlkit.data.samplers import PKSampler

__all__ = ["DistributedPKSampler"]


class DistributedPKSampler(Sampler[list[int]]):
    """Whole, disjoint parts of the batches of one :class:`~dmlkit.data.PKSampler`.

    Every process draws the same stream of global batches of ``P`` classes × ``K`` images (the
    sampler's ``seed`` must be the same on every process) and keeps its own ``P / world_size``
    classes of each: process ``r`` gets the images of classes ``r·P/w … (r+1)·P/w − 1`` of the
    batch, all ``K`` of each. The parts of one step are disjoint, each class lies whole in one
    part (so every process has its positives), and their concatenation in rank order is exactly
    the single-process batch — which is what makes training on ``w`` processes equal to training
    on one.

    Args:
        labels: the class of every item.
        P, K: classes and images per class of the *global* batch; ``P`` must be a multiple of
            ``world_size``.
        rank, world_size: this process's place in the group.
        num_batches, seed: as for :class:`~dmlkit.data.PKSampler`.
    """

    def __init__(
        self,
        labels: Tensor | Sequence[int],
        P: int,
        K: int,
        rank: int,
        world_size: int,
        num_batches: int | None = None,
        seed: int = 0,
    ) -> None:
        if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
            raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
            raise ValueError(f"rank must lie in [0, {world_size}), got {rank!r}")
        if P % world_size:
            raise ValueError(
                f"P={P} classes per batch cannot be split over {world_size} processes: P must be a multiple "
                f"of the world size (e.g. P={max(world_size, P - P % world_size)} or P={P - P % world_size + world_size})"
            )
        self.global_sampler = PKSampler(labels, P, K, num_batches=num_batches, seed=seed)
        self.rank, self.world_size = rank, world_size
        self.batch_size = (P // world_size) * K

    def __len__(self) -> int:
        return len(self.global_sampler)

    def __iter__(self) -> Iterator[list[int]]:
        start = self.rank * self.batch_size
        for batch in self.global_sampler:
            yield batch[start : start + self.batch_size]
