"""Forward + backward time of the AP-ranking losses against pytorch-metric-learning (PML).

Run from the repository root::

    python bench/losses_ap_ranking.py [--repeats 20] [--device cpu|cuda] [--threads N]

Both libraries run in the same process on the same float32 inputs (batch 256, 128-d); each case
times ``loss(embeddings, labels).backward()`` and the table gives the median times and the ratio
dmlkit / PML (below 1: dmlkit is faster); the two sides are timed alternately, one run at a time,
so a burst of load from other processes lands on neither side only. On a shared, loaded machine
``--threads 1`` gives steadier ratios (multi-threaded small ops then mostly time the scheduling).

- FastAP: P=32 classes x K=8 images, the usual (non-square) P×K batch.
- Smooth-AP: P=16 x K=16, a *square* batch, because PML 2.9's ``SmoothAPLoss`` is only correct
  when classes per batch equals images per class; dmlkit runs with ``include_query=True`` so
  both compute the same quantity (the authors' variant, the query in its own lists).

:func:`cases` returns ``(name, ours, pml)`` triples of zero-argument callables, so a top-level
benchmark can gather them with the other families.
"""

from __future__ import annotations

import torch
from _cases import Case, backward_step, labelled_batch, run_cases
from pytorch_metric_learning import losses as pml_losses

from dmlkit.losses.ap_ranking import FastAPLoss, SmoothAPLoss

__all__ = ["cases", "main"]

EMBEDDING_SIZE = 128


def cases(device: torch.device | str = "cpu") -> list[Case]:
    """``(name, ours, pml)`` triples; each callable runs one forward and backward pass."""
    device = torch.device(device)
    fast_x, fast_y = labelled_batch(32, 8, EMBEDDING_SIZE, device=device)
    smooth_x, smooth_y = labelled_batch(16, 16, EMBEDDING_SIZE, seed=1, device=device)
    return [
        (
            "FastAP, B=256 (P=32, K=8), 10 bins",
            backward_step(FastAPLoss(num_bins=10), fast_x, fast_y),
            backward_step(pml_losses.FastAPLoss(num_bins=10), fast_x, fast_y),
        ),
        (
            "Smooth-AP, B=256 (P=16, K=16), tau=0.01",
            backward_step(SmoothAPLoss(temperature=0.01, include_query=True), smooth_x, smooth_y),
            backward_step(pml_losses.SmoothAPLoss(temperature=0.01), smooth_x, smooth_y),
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    title = f"AP-ranking losses, forward + backward: batch 256, {EMBEDDING_SIZE}-d float32"
    run_cases(__doc__.splitlines()[0], cases, title, argv)


if __name__ == "__main__":
    main()
