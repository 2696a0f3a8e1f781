"""What the loss benchmarks under ``bench/`` share: a case, a labelled batch, a timed step and a runner.

A *case* is ``(name, ours, reference)``: two zero-argument callables, each running one forward and
one backward pass of a loss (dmlkit's and pytorch-metric-learning's) on the same inputs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import torch

from dmlkit.profiling import interleaved_medians

__all__ = ["Case", "backward_step", "format_ratio_table", "labelled_batch", "run_cases"]

Case = tuple[str, Callable[[], None], Callable[[], None]]


def format_ratio_table(rows: list[tuple[str, float, float]]) -> str:
    """A Markdown table of ``(name, ours_seconds, reference_seconds)`` with the ratio ours/ref."""
    lines = ["| case | dmlkit (ms) | reference (ms) | ratio |", "| --- | ---: | ---: | ---: |"]
    for name, ours, ref in rows:
        lines.append(f"| {name} | {ours * 1e3:.3f} | {ref * 1e3:.3f} | {ours / ref:.2f} |")
    return "\n".join(lines)


def labelled_batch(
    num_classes: int, per_class: int, embedding_size: int = 128, seed: int = 0, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """A P x K batch: ``num_classes * per_class`` standard-normal embeddings (a leaf that requires
    grad, drawn on the CPU so every device sees the same numbers) and labels ``0..P-1``, K each."""
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(num_classes * per_class, embedding_size, generator=generator).to(device)
    labels = torch.arange(num_classes).repeat_interleave(per_class).to(device)
    return embeddings.requires_grad_(True), labels


def backward_step(
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], embeddings: torch.Tensor, labels: torch.Tensor
) -> Callable[[], None]:
    """One forward + backward of ``loss_fn(embeddings, labels)``; the gradients of the embeddings
    and of the loss's parameters (proxies) are cleared first, so neither side pays for accumulation."""
    parameters = list(loss_fn.parameters()) if isinstance(loss_fn, torch.nn.Module) else []

    def run() -> None:
        embeddings.grad = None
        for parameter in parameters:
            parameter.grad = None
        loss_fn(embeddings, labels).backward()

    return run


def run_cases(
    description: str,
    cases: Callable[[torch.device], Sequence[Case]],
    title: str,
    argv: list[str] | None = None,
    default_repeats: int = 20,
    slow: Sequence[str] = (),
) -> None:
    """The command line of a family's benchmark: time every case of ``cases(device)`` (ours and the
    reference alternately, see :func:`dmlkit.profiling.interleaved_medians`) and print ``title`` (what is
    timed), the threads, repeats and device, then the Markdown table. ``--only`` keeps the cases whose name contains a string, ``--threads``
    sets torch's CPU threads, ``--device`` the device (default: CUDA when present), ``--skip-slow`` leaves out the cases named in ``slow``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeats", type=int, default=default_repeats, help="timed runs per case (median)")
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    if slow:
        parser.add_argument("--skip-slow", action="store_true", help=f"leave out {tuple(slow)}")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(0)
    rows = []
    for name, ours, reference in cases(device):
        if args.only not in name or (slow and args.skip_slow and name in slow):
            continue
        warmup = 1 if name in slow else 3
        ours_time, reference_time = interleaved_medians(ours, reference, args.repeats, warmup)
        rows.append((name, ours_time, reference_time))
        print(f"{name}: {ours_time * 1e3:.3f} ms vs {reference_time * 1e3:.3f} ms", file=sys.stderr)
    print(f"{title}, {torch.get_num_threads()} threads, median of {args.repeats} (interleaved), {device}\n")
    print(format_ratio_table(rows))
