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

import argparse
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

_ROOT = Path(__file__).resolve().parent.parent
for _path in (str(_ROOT), str(_ROOT / "bench")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from _timing import format_ratio_table, interleaved_medians  # noqa: E402

from dmlkit.losses import pair_based as ours  # noqa: E402

NUM_CLASSES, PER_CLASS, EMBEDDING_SIZE = 32, 8, 128
SLOW_CASES = ("lifted_structure",)

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
    """``(name, dmlkit_callable, pml_callable)`` for every pair-based loss and mining mode."""
    from pytorch_metric_learning import losses as pml_losses
    from pytorch_metric_learning import miners as pml_miners

    embeddings, labels = _batch()

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
        ours_xbm = ours.CrossBatchMemory(ours_inner, EMBEDDING_SIZE, 1024, start_iteration=0, include_batch_loss=False)
        pml_xbm = pml_losses.CrossBatchMemory(pml_inner, EMBEDDING_SIZE, memory_size=1024)
        for seed in range(1, 5):
            past, _ = _batch(seed)
            ours_xbm(past, labels)
            pml_xbm(past, labels)
        pairs.append((name, ours_xbm, pml_xbm))

    # Last: PML's lifted structure allocates gigabytes, which slows whatever is timed after it.
    pairs.append(("lifted_structure", ours.LiftedStructureLoss(), pml_losses.LiftedStructureLoss()))
    return [(name, _step(a, embeddings, labels), _step(b, embeddings, labels)) for name, a, b in pairs]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed repetitions (>= 20)")
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    parser.add_argument("--skip-slow", action="store_true", help=f"leave out {SLOW_CASES}")
    args = parser.parse_args(argv)
    rows = []
    for name, ours_fn, pml_fn in cases():
        if args.only not in name or (args.skip_slow and name in SLOW_CASES):
            continue
        warmup = 1 if name in SLOW_CASES else 3
        ours_time, pml_time = interleaved_medians(ours_fn, pml_fn, args.repeats, warmup)
        rows.append((name, ours_time, pml_time))
        print(f"{name}: {ours_time * 1e3:.3f} ms vs {pml_time * 1e3:.3f} ms", file=sys.stderr)
    print(
        f"Pair-based losses, forward + backward, batch {NUM_CLASSES * PER_CLASS} "
        f"({NUM_CLASSES} classes x {PER_CLASS}), {EMBEDDING_SIZE}-d float32, "
        f"{torch.get_num_threads()} threads, median of {args.repeats} (interleaved)\n"
    )
    print(format_ratio_table(rows))


if __name__ == "__main__":
    main()
