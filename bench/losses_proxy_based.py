"""Forward + backward time of the proxy-based losses against pytorch-metric-learning (PML).

Run from the repository root::

    python bench/losses_proxy_based.py [--repeats 25] [--device cpu|cuda] [--threads N]

Batch 256, 128-d embeddings, 1,000 classes, float32, the same proxies in both libraries; each case
times ``loss(embeddings, labels).backward()`` (gradients for the embeddings and the proxies) and
prints the median times (the two libraries timed alternately, one run at a time, after 3 warm-up
runs each) and the ratio dmlkit / PML as a Markdown table. The rows marked
``k=...`` time dmlkit's sampled-negatives option against PML's full loss: they show what sampling
buys, not a like-for-like comparison. On a machine whose cores are shared with other jobs, pass
``--threads 1``: oversubscribed OpenMP threads make both sides' times erratic.

:func:`cases` returns ``(name, ours, pml)`` triples of zero-argument callables, so a top-level
benchmark can gather them with the other families.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
for _path in (_BENCH.parent, _BENCH):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import torch  # noqa: E402
from _timing import format_ratio_table, interleaved_medians  # noqa: E402
from pytorch_metric_learning import losses as pml_losses  # noqa: E402
from pytorch_metric_learning import regularizers as pml_regularizers  # noqa: E402

from dmlkit.losses.proxy_based import (  # noqa: E402
    NormalizedSoftmaxLoss,
    ProxyAnchorLoss,
    ProxyNCALoss,
    SoftTripleLoss,
)

__all__ = ["cases", "main"]

BATCH_SIZE = 256
EMBEDDING_SIZE = 128
NUM_CLASSES = 1000
CENTERS_PER_CLASS = 10
NUM_NEGATIVES = 100


def _step(loss_fn: torch.nn.Module, embeddings: torch.Tensor, labels: torch.Tensor) -> Callable[[], None]:
    """One forward + backward; gradients are cleared first so neither side pays for accumulation."""

    def run() -> None:
        embeddings.grad = None
        for parameter in loss_fn.parameters():
            parameter.grad = None
        loss_fn(embeddings, labels).backward()

    return run


def _copy(source: torch.Tensor, target: torch.Tensor) -> None:
    with torch.no_grad():
        target.copy_(source)


def cases(
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> list[tuple[str, Callable[[], None], Callable[[], None]]]:
    """``(name, ours, pml)`` for each loss: zero-argument callables running forward + backward."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(BATCH_SIZE, EMBEDDING_SIZE, generator=generator, dtype=dtype)
    # 64 classes x 4 samples: most of the 1,000 classes are absent from the batch, as in training.
    labels = torch.randint(0, NUM_CLASSES, (BATCH_SIZE // 4,), generator=generator).repeat_interleave(4)
    embeddings = embeddings.to(device)
    labels = labels.to(device)
    ours_input = embeddings.clone().requires_grad_()
    pml_input = embeddings.clone().requires_grad_()

    def pair(
        name: str,
        ours: torch.nn.Module,
        pml: torch.nn.Module,
        pml_weights: Callable[[torch.nn.Module], torch.Tensor],
        transpose: bool,
    ) -> tuple[str, Callable[[], None], Callable[[], None]]:
        ours = ours.to(device=device, dtype=dtype)
        pml = pml.to(device=device, dtype=dtype)
        _copy(ours.proxies.T if transpose else ours.proxies, pml_weights(pml))
        return name, _step(ours, ours_input, labels), _step(pml, pml_input, labels)

    c, d, k = NUM_CLASSES, EMBEDDING_SIZE, CENTERS_PER_CLASS
    sparse_centers = pml_regularizers.SparseCentersRegularizer(c, k)
    rows = [
        pair("ProxyNCA", ProxyNCALoss(c, d), pml_losses.ProxyNCALoss(c, d), lambda m: m.proxies, False),
        pair(
            "ProxyNCA++ (scale 9)",
            ProxyNCALoss.proxynca_plus_plus(c, d),
            pml_losses.ProxyNCALoss(c, d, softmax_scale=9),
            lambda m: m.proxies,
            False,
        ),
        pair(
            "ProxyAnchor",
            ProxyAnchorLoss(c, d),
            pml_losses.ProxyAnchorLoss(c, d),
            lambda m: m.proxies,
            False,
        ),
        pair(
            "SoftTriple (K=10, tau=0)",
            SoftTripleLoss(c, d, tau=0.0),
            pml_losses.SoftTripleLoss(c, d),
            lambda m: m.fc,
            True,
        ),
        pair(
            "SoftTriple (K=10, tau=0.2)",
            SoftTripleLoss(c, d, tau=0.2),
            pml_losses.SoftTripleLoss(c, d, weight_regularizer=sparse_centers, weight_reg_weight=0.2),
            lambda m: m.fc,
            True,
        ),
        pair(
            "NormalizedSoftmax",
            NormalizedSoftmaxLoss(c, d),
            pml_losses.NormalizedSoftmaxLoss(c, d),
            lambda m: m.W,
            True,
        ),
        # What sampling buys: dmlkit with k sampled negatives against PML's full loss.
        pair(
            f"ProxyNCA, random k={NUM_NEGATIVES} (vs full)",
            ProxyNCALoss(c, d, negative_sampling="random", num_negatives=NUM_NEGATIVES),
            pml_losses.ProxyNCALoss(c, d),
            lambda m: m.proxies,
            False,
        ),
        pair(
            f"ProxyAnchor, random k={NUM_NEGATIVES} (vs full)",
            ProxyAnchorLoss(c, d, negative_sampling="random", num_negatives=NUM_NEGATIVES),
            pml_losses.ProxyAnchorLoss(c, d),
            lambda m: m.proxies,
            False,
        ),
        pair(
            f"SoftTriple tau=0, hardest k={NUM_NEGATIVES} (vs full)",
            SoftTripleLoss(c, d, tau=0.0, negative_sampling="hardest", num_negatives=NUM_NEGATIVES),
            pml_losses.SoftTripleLoss(c, d),
            lambda m: m.fc,
            True,
        ),
    ]
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=25, help="timed runs per case (median)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = [(name, *interleaved_medians(ours, pml, args.repeats)) for name, ours, pml in cases(args.device)]
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    print(
        f"Proxy-based losses, forward + backward: batch {BATCH_SIZE}, {EMBEDDING_SIZE}-d, "
        f"{NUM_CLASSES} classes, float32, {device}, {torch.get_num_threads()} threads, "
        f"median of {args.repeats}\n"
    )
    print(format_ratio_table(results))


if __name__ == "__main__":
    main()
