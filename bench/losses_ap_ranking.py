"""Forward+backward time of dmlkit's AP-ranking losses against pytorch-metric-learning's.

Run from the repository root: ``python bench/losses_ap_ranking.py``. Both implementations run in
the same process on the same float32 inputs (128-d, batch 256); the table gives the median of
``--repeats`` runs and the ratio dmlkit / PML (below 1 means dmlkit is faster).

- FastAP: P=32 classes x K=8 images (the usual non-square P×K batch).
- Smooth-AP: P=16 x K=16, a square batch, because PML 2.9's SmoothAPLoss is only correct when
  classes per batch equals images per class; dmlkit runs with ``include_query=True`` there so
  both compute the same quantity (the authors' variant).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/_timing.py
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # dmlkit from a checkout

from _timing import format_ratio_table, median_time  # noqa: E402
from pytorch_metric_learning import losses as pml_losses  # noqa: E402

from dmlkit.losses.ap_ranking import FastAPLoss, SmoothAPLoss  # noqa: E402

EMBEDDING_SIZE = 128


Case = tuple[str, Callable[[], None], Callable[[], None]]


def _batch(
    P: int, K: int, device: torch.device, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(P * K, EMBEDDING_SIZE, generator=generator).to(device)
    labels = torch.arange(P).repeat_interleave(K).to(device)
    return embeddings.requires_grad_(True), labels


def _step(
    loss_fn: torch.nn.Module, embeddings: torch.Tensor, labels: torch.Tensor
) -> Callable[[], None]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per case (>= 20)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="CPU threads (default 1: on a shared machine, multi-threaded small ops mostly time "
        "the thread scheduling; 0 keeps torch's default)",
    )
    args = parser.parse_args()
    if args.repeats < 20:
        parser.error("--repeats must be at least 20")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    rows = []
    for name, ours, pml in cases(args.device):
        ours_time = median_time(ours, repeats=args.repeats)
        pml_time = median_time(pml, repeats=args.repeats)
        rows.append((name, ours_time, pml_time))
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}")
    print(format_ratio_table(rows))


if __name__ == "__main__":
    main()
