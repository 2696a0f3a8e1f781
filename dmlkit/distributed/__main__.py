"""Train and evaluate one method on several processes: the script ``torchrun`` starts.

    torchrun --nproc_per_node 2 -m dmlkit.distributed --dataset glyphs --steps 200
    python -m dmlkit.distributed --dataset glyphs --steps 200        # one process, the same run

Each process joins the group ``torchrun`` describes (:func:`dmlkit.distributed.from_environment`:
``nccl`` on GPUs, ``gloo`` on CPUs), trains with :func:`dmlkit.train.fit` and ``distributed=True``
(each process its whole classes of one global P×K batch, the loss on the gathered batch), embeds
the held-out classes in shards (:func:`dmlkit.distributed.embed_sharded`) and rank 0 prints the
metrics.
"""

from __future__ import annotations

import argparse
import time

from dmlkit.data import load
from dmlkit.distributed import embed_sharded, from_environment
from dmlkit.evaluate import retrieval_metrics
from dmlkit.losses import ContrastiveLoss, MultiSimilarityLoss, ProxyAnchorLoss
from dmlkit.models import default_model
from dmlkit.train import fit
from dmlkit.utils import seed_everything

LOSSES = ("contrastive", "multi_similarity", "proxy_anchor")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="glyphs", help="a name of dmlkit.data.load (default glyphs)")
    parser.add_argument("--loss", choices=LOSSES, default="multi_similarity")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--P", type=int, default=32, help="classes of the global batch (a multiple of the processes)")
    parser.add_argument("--K", type=int, default=4)
    parser.add_argument("--embedding-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--faiss", action="store_true", help="k-NN search of the evaluation with faiss")
    args = parser.parse_args(argv)
    context = from_environment()
    train, test = load(args.dataset, "train"), load(args.dataset, "test")
    seed_everything(args.seed)
    model = default_model(train, args.embedding_size)
    loss = {
        "contrastive": lambda: ContrastiveLoss(),
        "multi_similarity": lambda: MultiSimilarityLoss(epsilon=0.1),
        "proxy_anchor": lambda: ProxyAnchorLoss(train.num_classes, args.embedding_size),
    }[args.loss]()
    started = time.perf_counter()
    history = fit(
        model,
        loss,
        train,
        steps=args.steps,
        P=args.P,
        K=args.K,
        seed=args.seed,
        distributed=True,
        progress=context.is_main,
    )
    embeddings, labels = embed_sharded(model, test)
    if context.is_main:
        metrics = retrieval_metrics(embeddings, labels, use_faiss=args.faiss)
        print(
            f"{context.world_size} process(es), backend {context.backend or 'none'}, device {context.device}: "
            f"{args.loss} on {args.dataset}, {history.images_seen} images in {history.train_seconds:.1f} s "
            f"of training ({time.perf_counter() - started:.1f} s in all); held-out "
            + ", ".join(f"{k} {100 * v:.1f}%" for k, v in metrics.items())
        )


if __name__ == "__main__":
    main()
