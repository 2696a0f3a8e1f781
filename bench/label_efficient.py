"""Cost of notebook 08's runs: training time per step of each self- and semi-supervised method,
the time of one label propagation, and of one run's evaluation, on the glyph data.

    python bench/label_efficient.py [--steps 40] [--batch 64]

Each method trains ``--steps`` steps of ``--batch`` images (after 5 warm-up steps, which are not
counted); a label propagation embeds the 6,000 training glyphs, builds the 50-NN graph and runs
20 conjugate-gradient iterations over 200 classes; an evaluation is
:func:`dmlkit.experiment.evaluate_run` on the training and held-out glyphs (6,000 images each).
From these the default budget of the notebook is estimated.
"""

from __future__ import annotations

import argparse
import time

import torch

from dmlkit.data.views import ViewAugmentation
from dmlkit.evaluate import embed
from dmlkit.experiment import Budget, evaluate_run, load_data
from dmlkit.losses.self_supervised import InstanceSpreadingLoss, MemoryBankInstanceLoss, NTXentLoss
from dmlkit.models import ConvNet
from dmlkit.self_supervised import fit_self_supervised
from dmlkit.semi_supervised import fit_semi_supervised, labelled_mask, propagate_labels
from dmlkit.train import History


def seconds_per_step(train_once, steps: int) -> float:
    train_once(5)  # warm-up
    tick = time.perf_counter()
    train_once(steps)
    return (time.perf_counter() - tick) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    train, test = load_data("glyphs")
    views = ViewAugmentation()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.batch} images per step")

    self_losses = {
        "memory bank": lambda: MemoryBankInstanceLoss(len(train), 64),
        "invariant spreading": lambda: InstanceSpreadingLoss(0.1),
        "NT-Xent": lambda: NTXentLoss(0.1),
    }
    times = {}
    for name, make in self_losses.items():
        times[name] = seconds_per_step(
            lambda steps, make=make: fit_self_supervised(
                ConvNet(64), make(), train, steps=steps, batch_size=args.batch, views=views, progress=False
            ),
            args.steps,
        )
    mask = labelled_mask(train.labels, 0.1)
    for method in ("supervised", "mean_teacher"):
        times[method] = seconds_per_step(
            lambda steps, method=method: fit_semi_supervised(
                ConvNet(64),
                train,
                mask,
                method,
                steps=steps,
                batch_size=args.batch,
                labelled_batch=args.batch // 4,
                views=views,
                progress=False,
            ),
            args.steps,
        )
    for name, seconds in times.items():
        print(f"{name:<20} {1e3 * seconds:6.1f} ms per step")

    model = ConvNet(64).eval()
    tick = time.perf_counter()
    embeddings, labels = embed(model, train)
    propagate_labels(embeddings, labels, mask, train.num_classes)
    propagation = time.perf_counter() - tick
    print(f"one label propagation (embed 6,000 images, 50-NN graph, 20 CG iterations): {propagation:.2f} s")
    tick = time.perf_counter()
    evaluate_run("bench", model, torch.nn.Identity(), History(), train, test, Budget(), 0)
    evaluation = time.perf_counter() - tick
    print(f"one run's evaluation (training and held-out classes): {evaluation:.2f} s")


if __name__ == "__main__":
    main()
