"""Throughput of dmlkit.train.fit: images per second with the ConvNet on the glyph data.

    python bench/train.py [--steps 200] [--P 32] [--K 4] [--augment]

Reports images/s of the whole training step (batch gathering, augmentation if asked, forward,
loss, backward, optimiser step), measured by fit itself (evaluation excluded), after a warm-up;
then the time :func:`dmlkit.evaluate.embed` takes for the 6,000 held-out glyphs at several batch
sizes (the best of three runs; the default is ``CPU_BATCH_SIZE`` on a CPU).
"""

from __future__ import annotations

import argparse
import time

import torch

from dmlkit.data import load
from dmlkit.evaluate import embed
from dmlkit.losses import SoftmaxCrossEntropyLoss
from dmlkit.models import ConvNet
from dmlkit.train import fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--P", type=int, default=32)
    parser.add_argument("--K", type=int, default=4)
    parser.add_argument("--augment", action="store_true")
    args = parser.parse_args()

    train = load("glyphs", split="train")
    losses = {"softmax CE": lambda: SoftmaxCrossEntropyLoss(train.num_classes, 64)}
    try:
        from dmlkit.losses.pair_based import ContrastiveLoss

        losses["contrastive"] = ContrastiveLoss
    except ImportError:
        pass
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.P}x{args.K}, augment={args.augment}"
    )
    print("| loss | steps | images/s | ms/step |\n| --- | ---: | ---: | ---: |")
    for name, make_loss in losses.items():
        fit(ConvNet(64), make_loss(), train, steps=10, P=args.P, K=args.K, progress=False)  # warm-up
        history = fit(
            ConvNet(64), make_loss(), train, steps=args.steps, P=args.P, K=args.K, augment=args.augment, progress=False
        )
        print(f"| {name} | {args.steps} | {history.images_per_second:.0f} | {1e3 * history.seconds_per_step:.1f} |")

    test = load("glyphs", split="test")
    model = ConvNet(64).eval()
    embed(model, test)  # warm-up
    print(f"\n| embed {len(test)} held-out glyphs | seconds | images/s |\n| --- | ---: | ---: |")
    for batch_size in (None, 128, 256, 512):
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            embed(model, test, batch_size=batch_size)
            best = min(best, time.perf_counter() - started)
        label = "default" if batch_size is None else f"batch {batch_size}"
        print(f"| {label} | {best:.2f} | {len(test) / best:.0f} |")


if __name__ == "__main__":
    main()
