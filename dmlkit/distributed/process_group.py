"""Process groups for training on several processes: the backend, the current process's place in
the group, and a local launcher that turns a bad set-up into a clear error instead of a hang.

One process per device (``torch.distributed``'s model): on a machine with N GPUs, N processes,
process ``r`` on ``cuda:r`` with the ``nccl`` backend; on a CPU, ``gloo``. :func:`launch` starts
``world_size`` local processes with :mod:`torch.multiprocessing` (the ``spawn`` start method);
``torchrun`` does the same from a shell and across machines, and :func:`from_environment` joins
the group it sets up (README, "Training on several processes").
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

__all__ = [
    "Context",
    "default_backend",
    "check_backend",
    "current",
    "init",
    "from_environment",
    "launch",
    "agree",
    "DEFAULT_TIMEOUT_S",
]

#: Seconds a collective (or the set-up) may wait for the other processes before it fails.
DEFAULT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Context:
    """Where this process stands: its ``rank`` among ``world_size`` processes, the ``backend``
    (``None`` in a single process without a group) and its ``device``."""

    rank: int
    world_size: int
    backend: str | None
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and prints."""
        return self.rank == 0


def default_backend(device: torch.device | str) -> str:
    """``nccl`` for CUDA devices, ``gloo`` otherwise (the backends torch recommends)."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def check_backend(backend: str, device: torch.device | str) -> str:
    """Raise a clear error when ``backend`` cannot run here (instead of a failure, or a hang,
    inside ``init_process_group``)."""
    device = torch.device(device)
    if not dist.is_available():
        raise RuntimeError("this torch build has no torch.distributed: training on several processes needs it")
    if backend not in ("gloo", "nccl", "mpi"):
        raise ValueError(f"backend must be 'gloo', 'nccl' or 'mpi', got {backend!r}")
    if not dist.is_backend_available(backend):
        available = [b for b in ("gloo", "nccl", "mpi") if dist.is_backend_available(b)]
        raise RuntimeError(
            f"the {backend!r} backend is not available in this torch build (available: {available}); "
            "on a CPU use 'gloo'"
        )
    if backend == "nccl" and device.type != "cuda":
        raise ValueError(f"the 'nccl' backend needs CUDA devices, got {device}; on a CPU use 'gloo'")
    return backend


def current() -> Context:
    """The context of this process: the initialised group's rank and size, or a single process."""
    if dist.is_available() and dist.is_initialized():
        backend = dist.get_backend()
        rank = dist.get_rank()
        device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
        return Context(rank, dist.get_world_size(), backend, device)
    from dmlkit.utils import default_device

    return Context(0, 1, None, default_device())


def agree(name: str, value: int) -> int:
    """Check that every process has the same integer ``value`` (a seed, a step count) and return
    it; a :class:`ValueError` on every process otherwise, naming each rank's value — not a hang
    or silently different runs later."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    mine = torch.tensor([int(value)], dtype=torch.long, device=current().device)
    every = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(every, mine)
    found = [int(v) for v in every]
    if len(set(found)) > 1:
        raise ValueError(f"{name} must be the same on every process, got {found} (rank order)")
    return value


def _device_for(rank: int, backend: str) -> torch.device:
    if backend == "nccl":
        local = int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count()
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def init(
    rank: int,
    world_size: int,
    init_method: str,
    backend: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Context:
    """Join a group of ``world_size`` processes as ``rank`` (``init_method``: e.g.
    ``tcp://127.0.0.1:29500`` or ``env://``); every collective then fails after ``timeout_s``
    seconds without the others. ``backend``: default ``nccl`` with CUDA, ``gloo`` without."""
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ValueError(f"rank must lie in [0, {world_size}), got {rank!r}")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    check_backend(backend, "cuda" if backend == "nccl" else "cpu")
    device = _device_for(rank, backend)
    dist.init_process_group(
        backend, init_method=init_method, rank=rank, world_size=world_size, timeout=timedelta(seconds=timeout_s)
    )
    return Context(rank, world_size, backend, device)


def from_environment(backend: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> Context:
    """Join the group that ``torchrun`` describes in ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
    ``MASTER_PORT``; a single process when ``WORLD_SIZE`` is unset."""
    if "WORLD_SIZE" not in os.environ:
        return current()
    missing = [name for name in ("RANK", "MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
    if missing:
        raise RuntimeError(f"WORLD_SIZE is set but {missing} are not: launch with torchrun, which sets them all")
    return init(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), "env://", backend, timeout_s)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(
    rank: int,
    world_size: int,
    init_method: str,
    backend: str | None,
    timeout_s: float,
    fn: Callable[..., Any],
    args: tuple,
    results: str,
) -> None:
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    context = init(rank, world_size, init_method, backend, timeout_s)
    try:
        value = fn(context, *args)
    finally:
        dist.destroy_process_group()
    torch.save(value, os.path.join(results, f"rank{rank}.pt"))


def launch(
    fn: Callable[..., Any],
    world_size: int,
    *args: Any,
    backend: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[Any]:
    """Run ``fn(context, *args)`` in ``world_size`` new local processes of one group and return
    their results in rank order.

    ``fn`` must be importable by name (a module-level function: the processes are spawned, not
    forked) and its result picklable. Each process gets ``cpu_count / world_size`` torch threads.
    A process that raises makes ``launch`` raise with its traceback; processes still running after
    ``timeout_s`` seconds are killed and ``launch`` raises :class:`TimeoutError` naming them — a
    broken set-up never hangs the caller.
    """
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
    if backend is not None:
        check_backend(backend, "cuda" if backend == "nccl" else "cpu")
        if backend == "nccl" and torch.cuda.device_count() < world_size:
            raise ValueError(
                f"{world_size} processes on nccl need {world_size} GPUs, found {torch.cuda.device_count()}"
            )
    init_method = f"tcp://127.0.0.1:{_free_port()}"
    with tempfile.TemporaryDirectory(prefix="dmlkit-launch-") as results:
        processes = mp.start_processes(
            _worker,
            args=(world_size, init_method, backend, timeout_s, fn, args, results),
            nprocs=world_size,
            join=False,
            start_method="spawn",
        )
        _wait(processes, world_size, timeout_s)
        found = {
            rank: torch.load(os.path.join(results, f"rank{rank}.pt"), weights_only=False)
            for rank in range(world_size)
            if os.path.exists(os.path.join(results, f"rank{rank}.pt"))
        }
    if sorted(found) != list(range(world_size)):
        raise RuntimeError(f"only ranks {sorted(found)} of {world_size} returned a result")
    return [found[rank] for rank in range(world_size)]


def _joined(processes: Any, world_size: int, deadline: float) -> bool:
    """Wait up to a second for the processes; a process's error becomes this process's, its
    message first (the full traceback follows in the chained exception)."""
    try:
        return processes.join(timeout=max(0.0, min(1.0, deadline - time.monotonic())))
    except mp.ProcessRaisedException as error:
        lines = [line for line in str(error).splitlines() if line.strip()]
        raise RuntimeError(f"process {error.error_index} of {world_size} failed: {lines[-1]}") from error


def _wait(processes: Any, world_size: int, timeout_s: float) -> None:
    """Join the spawned processes; kill them all after ``timeout_s`` (or when one fails)."""
    deadline = time.monotonic() + timeout_s
    try:
        while not _joined(processes, world_size, deadline):
            if time.monotonic() >= deadline:
                alive = [rank for rank, p in enumerate(processes.processes) if p.is_alive()]
                raise TimeoutError(
                    f"{len(alive)} of {world_size} processes (ranks {alive}) were still running after "
                    f"{timeout_s:g} s; they were stopped"
                )
    finally:
        for p in processes.processes:
            if p.is_alive():
                p.kill()
                p.join()
