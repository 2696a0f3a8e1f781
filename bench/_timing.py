"""Shared timing helpers for the benchmarks under ``bench/``."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

__all__ = ["median_time", "interleaved_medians", "format_ratio_table"]


def median_time(fn: Callable[[], object], repeats: int = 20, warmup: int = 3) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(
    ours: Callable[[], object], reference: Callable[[], object], repeats: int = 20, warmup: int = 3
) -> tuple[float, float]:
    """Median times of ``ours`` and ``reference`` timed alternately, one run at a time (the order
    flipping every repetition), so a change in machine load favours neither side."""
    for _ in range(warmup):
        ours()
        reference()
    ours_times, reference_times = [], []
    for i in range(repeats):
        pair = [(ours, ours_times), (reference, reference_times)]
        for fn, times in pair if i % 2 == 0 else pair[::-1]:
            times.append(median_time(fn, repeats=1, warmup=0))
    return statistics.median(ours_times), statistics.median(reference_times)


def format_ratio_table(rows: list[tuple[str, float, float]]) -> str:
    """A Markdown table of ``(name, ours_seconds, reference_seconds)`` with the ratio ours/ref."""
    lines = ["| case | dmlkit (ms) | reference (ms) | ratio |", "| --- | ---: | ---: | ---: |"]
    for name, ours, ref in rows:
        lines.append(f"| {name} | {ours * 1e3:.3f} | {ref * 1e3:.3f} | {ours / ref:.2f} |")
    return "\n".join(lines)
