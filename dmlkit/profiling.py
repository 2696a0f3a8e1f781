"""Timing and operation counts, for the notebooks' cost comparisons and the benchmarks under ``bench/``.

- :func:`median_seconds` — the median wall time of a callable (CUDA synchronised when present);
- :func:`interleaved_medians` — two callables timed in alternation, so a change in machine load
  favours neither;
- :func:`multiply_adds` — the multiply-adds of one forward pass of the convolutions and linear
  layers of a model.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from dmlkit.checks import check_int

__all__ = ["median_seconds", "interleaved_medians", "multiply_adds"]


def _synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def median_seconds(fn: Callable[[], object], repeats: int = 20, warmup: int = 3) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` runs after ``warmup`` untimed runs."""
    repeats = check_int("repeats", repeats, 1)
    for _ in range(check_int("warmup", warmup, 0)):
        fn()
    times = []
    for _ in range(repeats):
        _synchronize()
        start = time.perf_counter()
        fn()
        _synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(
    ours: Callable[[], object], reference: Callable[[], object], repeats: int = 20, warmup: int = 3
) -> tuple[float, float]:
    """Median times of ``ours`` and ``reference`` timed alternately, one run at a time (the order
    flipping every repetition), so a change in machine load favours neither side."""
    for _ in range(check_int("warmup", warmup, 0)):
        ours()
        reference()
    ours_times: list[float] = []
    reference_times: list[float] = []
    for i in range(check_int("repeats", repeats, 1)):
        pair = [(ours, ours_times), (reference, reference_times)]
        for fn, times in pair if i % 2 == 0 else pair[::-1]:
            times.append(median_seconds(fn, repeats=1, warmup=0))
    return statistics.median(ours_times), statistics.median(reference_times)


def multiply_adds(model: nn.Module, example: Tensor) -> int:
    """Multiply-adds of one forward pass of ``model`` on one ``example`` (no batch dimension),
    counted over its ``Conv2d`` (output elements × kernel area × input channels per group) and
    ``Linear`` layers (in × out features); other layers (norms, activations, pooling) are free.
    The model is run once in eval mode without gradients; its mode is restored."""
    counts: list[int] = []

    def count(module: nn.Module, inputs: object, output: Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            kernel = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            counts.append(output[0].numel() * kernel)
        elif isinstance(module, nn.Linear):
            counts.append(module.in_features * module.out_features)

    handles = [m.register_forward_hook(count) for m in model.modules()]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(example[None])
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return sum(counts)
