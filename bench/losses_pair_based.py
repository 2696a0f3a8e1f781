"""Forward + backward time of the pair-based losses against pytorch-metric-learning (PML).

One batch of 256 embeddings (P=32 classes x K=8 samples), 128 dimensions, float32, CPU with
torch's default number of threads. Each case runs the loss and its backward pass on the same
batch; the table gives the median of the repetitions and the ratio dmlkit / PML (below 1: dmlkit
is faster).

    python bench/losses_pair_based.py               # every case, 20 repetitions
    python bench/losses_pair_based.py --repeats 30 --only triplet

PML's LiftedStructureLoss builds a (positive pairs x negative pairs) matrix and takes several
seconds per call at this batch size, so that case dominates the run time (it comes last, as its
gigabytes of allocations slow down whatever is timed next); ``--skip-slow`` leaves it out.

:func:`cases` returns ``(name, ours, pml)`` callables so that a top-level ``bench/losses.py`` can
gather every family's cases.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from _cases import Case, backward_step, labelled_batch, run_cases

from dmlkit.losses import pair_based as ours

NUM_CLASSES, PER_CLASS, EMBEDDING_SIZE = 32, 8, 128
SLOW_CASES = ("lifted_structure",)


def cases(device: torch.device | str = "cpu") -> list[Case]:
    """``(name, dmlkit_callable, pml_callable)`` for every pair-based loss and mining mode."""
    from pytorch_metric_learning import losses as pml_losses
    from pytorch_metric_learning import miners as pml_miners

    embeddings, labels = labelled_batch(NUM_CLASSES, PER_CLASS, EMBEDDING_SIZE, device=device)

    def with_miner(loss, miner):
        return lambda e, y: loss(e, y, miner(e, y))

    pml_triplet = pml_losses.TripletMarginLoss(margin=0.2)
    pairs: list[tuple[str, Callable, Callable]] = [
        ("contrastive", ours.ContrastiveLoss(), pml_losses.ContrastiveLoss()),
    ]
    for mining in ("all", "semihard", "hard"):
        pairs.append(
            (
                f"triplet_{mining}",
                ours.TripletMarginLoss(0.2, mining),
                with_miner(pml_triplet, pml_miners.TripletMarginMiner(0.2, mining)),
            )
        )
    pairs += [
        (
            "triplet_batch_hard",
            ours.TripletMarginLoss(0.2, "batch_hard"),
            with_miner(pml_triplet, pml_miners.BatchHardMiner()),
        ),
        ("npairs", ours.NPairsLoss(), pml_losses.NPairsLoss()),
        (
            "multi_similarity",
            ours.MultiSimilarityLoss(2, 40, 0.5),
            pml_losses.MultiSimilarityLoss(2, 40, 0.5),
        ),
        (
            "multi_similarity_mined",
            ours.MultiSimilarityLoss(2, 40, 0.5, epsilon=0.1),
            with_miner(pml_losses.MultiSimilarityLoss(2, 40, 0.5), pml_miners.MultiSimilarityMiner(0.1)),
        ),
    ]
    with warnings.catch_warnings():  # PML warns about Tn > 5
        warnings.simplefilter("ignore")
        pml_rll = pml_losses.RankedListLoss(margin=0.2, Tn=10, imbalance=0.5, alpha=1.4, Tp=0)
    pairs += [
        ("ranked_list", ours.RankedListLoss(0.2, 10, 0.5, 1.4, 0), pml_rll),
        ("circle", ours.CircleLoss(), pml_losses.CircleLoss()),
    ]

    # Cross-batch memory in PML's configuration, with the memory already full.
    for name, ours_inner, pml_inner in (
        ("xbm_contrastive", ours.ContrastiveLoss(), pml_losses.ContrastiveLoss()),
        ("xbm_multi_similarity", ours.MultiSimilarityLoss(2, 40, 0.5), pml_losses.MultiSimilarityLoss(2, 40, 0.5)),
    ):
        ours_xbm = ours.CrossBatchMemory(
            ours_inner, EMBEDDING_SIZE, 1024, start_iteration=0, include_batch_loss=False
        ).to(device)
        pml_xbm = pml_losses.CrossBatchMemory(pml_inner, EMBEDDING_SIZE, memory_size=1024)
        for seed in range(1, 5):
            past, _ = labelled_batch(NUM_CLASSES, PER_CLASS, EMBEDDING_SIZE, seed, device)
            past = past.detach()
            ours_xbm(past, labels)
            pml_xbm(past, labels)
        pairs.append((name, ours_xbm, pml_xbm))

    # Last: PML's lifted structure allocates gigabytes, which slows whatever is timed after it.
    pairs.append(("lifted_structure", ours.LiftedStructureLoss(), pml_losses.LiftedStructureLoss()))
    return [(name, backward_step(a, embeddings, labels), backward_step(b, embeddings, labels)) for name, a, b in pairs]


def main(argv: list[str] | None = None) -> None:
    title = f"Pair-based losses, forward + backward, batch {NUM_CLASSES * PER_CLASS} ({NUM_CLASSES} x {PER_CLASS}), {EMBEDDING_SIZE}-d float32"
    run_cases(__doc__.split("\n\n")[0], cases, title, argv, slow=SLOW_CASES)


if __name__ == "__main__":
    main()
