"""Training and evaluation on several processes with ``torch.distributed``.

- :mod:`~dmlkit.distributed.process_group` — the backend (``gloo`` on CPU, ``nccl`` on GPU), the
  process's :class:`Context`, :func:`launch` for N local processes with a timeout, and
  :func:`from_environment` for ``torchrun``;
- :class:`DistributedPKSampler` — each process's whole classes of one global P×K batch;
- :class:`GatheredLoss` — any loss on the global batch, gradients equal to one process's;
- :func:`embed_sharded` — evaluation embeddings computed in shards, gathered in dataset order.

:func:`dmlkit.train.fit` with ``distributed=True`` puts them together (DistributedDataParallel
over the model). See the README's "Training on several processes".
"""

from dmlkit.distributed.evaluation import embed_sharded, shard_range
from dmlkit.distributed.gather import GatheredLoss, all_gather, all_gather_with_grad, average_gradients
from dmlkit.distributed.process_group import (
    DEFAULT_TIMEOUT_S,
    Context,
    agree,
    check_backend,
    current,
    default_backend,
    from_environment,
    init,
    launch,
)
from dmlkit.distributed.sampler import DistributedPKSampler

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "Context",
    "DistributedPKSampler",
    "GatheredLoss",
    "agree",
    "all_gather",
    "all_gather_with_grad",
    "average_gradients",
    "check_backend",
    "current",
    "default_backend",
    "embed_sharded",
    "from_environment",
    "init",
    "launch",
    "shard_range",
]
