"""Shared timing helpers for the benchmarks under ``bench/``."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

__all__ = ["median_time", "format_ratio_table"]


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


def format_ratio_table(rows: list[tuple[str, float, float]]) -> str:
    """A Markdown table of ``(name, ours_seconds, reference_seconds)`` with the ratio ours/ref."""
    lines = ["| case | dmlkit (ms) | reference (ms) | ratio |", "| --- | ---: | ---: | ---: |"]
    for name, ours, ref in rows:
        lines.append(f"| {name} | {ours * 1e3:.3f} | {ref * 1e3:.3f} | {ours / ref:.2f} |")
    return "\n".join(lines)
