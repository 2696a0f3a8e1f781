"""Forward + backward time of the AP-ranking losses against pytorch-metric-learning (PML).

Run from the repository root::

    python bench/losses_ap_ranking.py [--repeats 20] [--device cpu|cuda] [--threads N]

Both libraries run in the same process on the same float32 inputs (batch 256, 128-d); each case
times ``loss(embeddings, labels).backward()`` and the table gives the median times and the ratio
dmlkit / PML (below 1: dmlkit is faster). Each side's median of ``--repeats`` runs is measured in
``--rounds`` alternating rounds and the best round is kept. On a shared, loaded machine
``--threads 1`` gives steadier ratios (multi-threaded small ops then mostly time the scheduling).

- FastAP: P=32 classes x K=8 images, the usual (non-square) P×K batch.
- Smooth-AP: P=16 x K=16, a *square* batch, because PML 2.9's ``SmoothAPLoss`` is only correct
  when classes per batch equals images per class; dmlkit runs with ``include_query=True`` so
  both compute the same quantity (the authors' variant, the query in its own lists).

:func:`cases` returns ``(name, ours, pml)`` triples of zero-argument callables, so a top-level
benchmark can gather them with the other families.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
for _path in (_BENCH.parent, _BENCH):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import torch  # noqa: E402
from _timing import format_ratio_table, median_time  # noqa: E402
from pytorch_metric_learning import losses as pml_losses  # noqa: E402

from dmlkit.losses.ap_ranking import FastAPLoss, SmoothAPLoss  # noqa: E402

__all__ = ["cases", "main"]

EMBEDDING_SIZE = 128


Case = tuple[str, Callable[[], None], Callable[[], None]]


def _batch(P: int, K: int, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(P * K, EMBEDDING_SIZE, generator=generator).to(device)
    labels = torch.arange(P).repeat_interleave(K).to(device)
    return embeddings.requires_grad_(True), labels


def _step(loss_fn: torch.nn.Module, embeddings: torch.Tensor, labels: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        embeddings.grad = None
        loss_fn(embeddings, labels).backward()

    return run


def cases(device: torch.device | str = "cpu") -> list[Case]:
    """``(name, ours, pml)`` triples; each callable runs one forward and backward pass."""
    device = torch.device(device)
    fast_x, fast_y = _batch(32, 8, device)
    smooth_x, smooth_y = _batch(16, 16, device, seed=1)
    return [
        (
            "FastAP, B=256 (P=32, K=8), 10 bins",
            _step(FastAPLoss(num_bins=10), fast_x, fast_y),
            _step(pml_losses.FastAPLoss(num_bins=10), fast_x, fast_y),
        ),
        (
            "Smooth-AP, B=256 (P=16, K=16), tau=0.01",
            _step(SmoothAPLoss(temperature=0.01, include_query=True), smooth_x, smooth_y),
            _step(pml_losses.SmoothAPLoss(temperature=0.01), smooth_x, smooth_y),
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per case (median)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best median is kept")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    rows = []
    for name, ours, pml in cases(device):
        # Alternate the two sides over a few rounds and keep each side's best median, so that a
        # burst of load from other processes does not land on one side only.
        ours_times, pml_times = [], []
        for _ in range(args.rounds):
            ours_times.append(median_time(ours, repeats=args.repeats))
            pml_times.append(median_time(pml, repeats=args.repeats))
        rows.append((name, min(ours_times), min(pml_times)))
    print(
        f"AP-ranking losses, forward + backward: batch 256, {EMBEDDING_SIZE}-d, float32, {device}, "
        f"{torch.get_num_threads()} threads, best of {args.rounds} medians of {args.repeats}\n"
    )
    print(format_ratio_table(rows))


if __name__ == "__main__":
    main()
