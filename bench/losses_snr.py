"""Forward + backward time of the SNR losses against pytorch-metric-learning (PML).

One batch of 256 embeddings (P=32 classes x K=8 samples), 128 dimensions, float32, CPU with
torch's default number of threads. Each case runs the loss and its backward pass on the same
batch; the table gives the median of the repetitions (measured turn about with PML's) and the
ratio dmlkit / PML (below 1: dmlkit is faster).

    python bench/losses_snr.py               # every case, 20 repetitions
    python bench/losses_snr.py --repeats 30 --only contrastive

- ``snr_contrastive``: ``SignalToNoiseRatioContrastiveLoss()`` against PML's, defaults.
- ``snr_contrastive_zero_mean``: both with the zero-mean regulariser (weight 0.1).
- ``snr_triplet_roth``: ``SignalToNoiseRatioTripletLoss()`` (margin 0.2, all triplets, regulariser
  0.005 on the unit vectors) against PML's ``TripletMarginLoss(distance=SNRDistance())`` after
  ``TripletMarginMiner(0.2, "all")`` with the ``ZeroMeanRegularizer``, fed the normalised batch.

PML's ``SNRDistance`` builds the ``(M, N, D)`` tensor of differences and takes its variance;
dmlkit's computes the same matrix from centred vectors with one matrix product.

:func:`cases` returns ``(name, ours, pml)`` callables so that a top-level ``bench/losses.py`` can
gather every family's cases.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

_ROOT = Path(__file__).resolve().parent.parent
for _path in (str(_ROOT), str(_ROOT / "bench")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from _timing import format_ratio_table, interleaved_medians  # noqa: E402

from dmlkit.losses.snr import (  # noqa: E402
    SignalToNoiseRatioContrastiveLoss,
    SignalToNoiseRatioTripletLoss,
)

__all__ = ["cases", "main"]

NUM_CLASSES, PER_CLASS, EMBEDDING_SIZE = 32, 8, 128

Case = tuple[str, Callable[[], None], Callable[[], None]]


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(NUM_CLASSES * PER_CLASS, EMBEDDING_SIZE, generator=generator)
    labels = torch.arange(NUM_CLASSES).repeat_interleave(PER_CLASS)
    return embeddings, labels


def _step(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], embeddings, labels):
    """A callable running forward + backward on a fresh leaf copy of the batch."""

    def run() -> None:
        leaf = embeddings.detach().clone().requires_grad_(True)
        loss_fn(leaf, labels).backward()

    return run


def cases() -> list[Case]:
    """``(name, dmlkit_callable, pml_callable)`` for the SNR losses."""
    from pytorch_metric_learning import distances as pml_distances
    from pytorch_metric_learning import losses as pml_losses
    from pytorch_metric_learning import miners as pml_miners
    from pytorch_metric_learning import regularizers as pml_regularizers

    embeddings, labels = _batch()
    pml_triplet = pml_losses.TripletMarginLoss(
        margin=0.2,
        distance=pml_distances.SNRDistance(),
        embedding_regularizer=pml_regularizers.ZeroMeanRegularizer(),
        embedding_reg_weight=0.005,
    )
    pml_miner = pml_miners.TripletMarginMiner(0.2, "all", distance=pml_distances.SNRDistance())

    def pml_roth(e: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        unit = F.normalize(e, dim=1)
        return pml_triplet(unit, y, pml_miner(unit, y))

    pairs = [
        (
            "snr_contrastive",
            SignalToNoiseRatioContrastiveLoss(),
            pml_losses.SignalToNoiseRatioContrastiveLoss(),
        ),
        (
            "snr_contrastive_zero_mean",
            SignalToNoiseRatioContrastiveLoss(regularizer_weight=0.1),
            pml_losses.SignalToNoiseRatioContrastiveLoss(
                embedding_regularizer=pml_regularizers.ZeroMeanRegularizer(),
                embedding_reg_weight=0.1,
            ),
        ),
        ("snr_triplet_roth", SignalToNoiseRatioTripletLoss(), pml_roth),
    ]
    return [(name, _step(a, embeddings, labels), _step(b, embeddings, labels)) for name, a, b in pairs]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed repetitions (>= 20)")
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    args = parser.parse_args(argv)
    rows = []
    for name, ours_fn, pml_fn in cases():
        if args.only not in name:
            continue
        ours_time, pml_time = interleaved_medians(ours_fn, pml_fn, args.repeats)
        rows.append((name, ours_time, pml_time))
        print(f"{name}: {ours_time * 1e3:.3f} ms vs {pml_time * 1e3:.3f} ms", file=sys.stderr)
    print(
        f"SNR losses, forward + backward, batch {NUM_CLASSES * PER_CLASS} "
        f"({NUM_CLASSES} classes x {PER_CLASS}), {EMBEDDING_SIZE}-d float32, "
        f"{torch.get_num_threads()} threads, median of {args.repeats} (interleaved)\n"
    )
    print(format_ratio_table(rows))


if __name__ == "__main__":
    main()
