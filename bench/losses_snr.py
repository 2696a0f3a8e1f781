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

import torch
import torch.nn.functional as F
from _cases import Case, backward_step, labelled_batch, run_cases

from dmlkit.losses.snr import (
    SignalToNoiseRatioContrastiveLoss,
    SignalToNoiseRatioTripletLoss,
)

__all__ = ["cases", "main"]

NUM_CLASSES, PER_CLASS, EMBEDDING_SIZE = 32, 8, 128


def cases(device: torch.device | str = "cpu") -> list[Case]:
    """``(name, dmlkit_callable, pml_callable)`` for the SNR losses."""
    from pytorch_metric_learning import distances as pml_distances
    from pytorch_metric_learning import losses as pml_losses
    from pytorch_metric_learning import miners as pml_miners
    from pytorch_metric_learning import regularizers as pml_regularizers

    embeddings, labels = labelled_batch(NUM_CLASSES, PER_CLASS, EMBEDDING_SIZE, device=device)
    snr, zero_mean = pml_distances.SNRDistance(), pml_regularizers.ZeroMeanRegularizer()
    pml_triplet = pml_losses.TripletMarginLoss(
        0.2, distance=snr, embedding_regularizer=zero_mean, embedding_reg_weight=0.005
    )
    pml_miner = pml_miners.TripletMarginMiner(0.2, "all", distance=snr)

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
    return [(name, backward_step(a, embeddings, labels), backward_step(b, embeddings, labels)) for name, a, b in pairs]


def main(argv: list[str] | None = None) -> None:
    title = f"SNR losses, forward + backward, batch {NUM_CLASSES * PER_CLASS} ({NUM_CLASSES} x {PER_CLASS}), {EMBEDDING_SIZE}-d float32"
    run_cases(__doc__.split("\n\n")[0], cases, title, argv)


if __name__ == "__main__":
    main()
