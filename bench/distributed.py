"""Throughput of training on 1 and on 2 processes on this CPU (gloo), and the cost of the gather.

    python bench/distributed.py [--steps 60] [--P 32] [--K 4]

Trains the kit's ConvNet with the contrastive loss on the glyphs for ``--steps`` steps of one
global P×K batch: once in one process with all the CPU's threads, once in two processes
(:func:`dmlkit.distributed.launch`, each with half the threads and half the batch, the loss on the
gathered global batch). Then times one gather of a process's embeddings and labels
(:class:`dmlkit.distributed.GatheredLoss`'s collective) per step, and prints the memory of the
gathered similarity matrix against the world size. On a 2-core CPU two processes share the same two
cores, so expect no speed-up there: the point of the engine is one process per GPU.
"""

from __future__ import annotations

import argparse
import time

import torch

from dmlkit.distributed import all_gather, all_gather_with_grad, launch
from dmlkit.experiment import load_data
from dmlkit.losses import ContrastiveLoss
from dmlkit.models import ConvNet
from dmlkit.train import fit


def train(context, steps: int, P: int, K: int) -> dict[str, float]:
    train_data, _ = load_data("glyphs")
    torch.manual_seed(0)
    history = fit(
        ConvNet(64),
        ContrastiveLoss(),
        train_data,
        steps=steps,
        P=P,
        K=K,
        progress=False,
        distributed=context is not None,
        device="cpu",
    )
    return {"seconds": history.train_seconds, "images": history.images_seen, "loss": history.losses[-1]}


def gather_cost(context, rows: int, dim: int, repeats: int) -> float:
    """Milliseconds of one gather of ``rows × dim`` embeddings (with gradient slot) and their labels."""
    embeddings = torch.randn(rows, dim, requires_grad=True)
    labels = torch.arange(rows)
    for _ in range(5):
        all_gather_with_grad(embeddings), all_gather(labels)
    tick = time.perf_counter()
    for _ in range(repeats):
        all_gather_with_grad(embeddings), all_gather(labels)
    return 1000 * (time.perf_counter() - tick) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--P", type=int, default=32)
    parser.add_argument("--K", type=int, default=4)
    args = parser.parse_args()
    batch = args.P * args.K
    print(f"torch {torch.__version__}; {torch.get_num_threads()} threads; global batch {batch}; {args.steps} steps")
    train(None, 5, args.P, args.K)  # warm-up: data generation and caches
    one = train(None, args.steps, args.P, args.K)
    two = launch(train, 2, args.steps, args.P, args.K, backend="gloo", timeout_s=600)[0]
    for name, run in (("1 process ", one), ("2 processes", two)):
        print(
            f"{name}: {run['seconds']:6.1f} s, {run['images'] / run['seconds']:7.0f} images/s, "
            f"{1000 * run['seconds'] / args.steps:6.1f} ms/step, last loss {run['loss']:.4f}"
        )
    cost = launch(gather_cost, 2, batch // 2, 64, 200, backend="gloo", timeout_s=300)[0]
    print(f"gather of {batch // 2} × 64 embeddings and labels from each of 2 processes: {cost:.2f} ms per step")
    print("gathered similarity matrix per process, float32, for a per-process batch of", batch // 2)
    for world in (1, 2, 4, 8, 16):
        side = world * batch // 2
        print(f"  world size {world:2d}: {side:5d} × {side:5d} = {side * side * 4 / 2**20:8.2f} MiB")


if __name__ == "__main__":
    main()
