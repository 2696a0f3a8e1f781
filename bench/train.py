"""Throughput of dmlkit.train.fit: images per second with the ConvNet on the glyph data.

    python bench/train.py [--steps 200] [--P 32] [--K 4] [--augment]

Reports images/s of the whole training step (batch gathering, augmentation if asked, forward,
loss, backward, optimiser step), measured by fit itself (evaluation excluded), after a warm-up.
"""

from __future__ import annotations

import argparse

import torch

from dmlkit.data import load
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


if __name__ == "__main__":
    main()
