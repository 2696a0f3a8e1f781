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

import torch
from _cases import Case, backward_step, run_cases
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import regularizers as pml_regularizers

from dmlkit.losses.proxy_based import (
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


def _copy(source: torch.Tensor, target: torch.Tensor) -> None:
    with torch.no_grad():
        target.copy_(source)


def cases(device: str | torch.device | None = None, dtype: torch.dtype = torch.float32, seed: int = 0) -> list[Case]:
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

    def pair(name: str, ours: torch.nn.Module, pml: torch.nn.Module) -> Case:
        """Both losses on the device, PML's proxies set to ours: PML keeps them in ``proxies``
        (``(C, D)``, like ours) or, for SoftTriple and NormalizedSoftmax, in ``fc``/``W`` (``(D, C)``)."""
        ours = ours.to(device=device, dtype=dtype)
        pml = pml.to(device=device, dtype=dtype)
        if hasattr(pml, "proxies"):
            _copy(ours.proxies, pml.proxies)
        else:
            _copy(ours.proxies.T, pml.fc if hasattr(pml, "fc") else pml.W)
        return name, backward_step(ours, ours_input, labels), backward_step(pml, pml_input, labels)

    c, d, k = NUM_CLASSES, EMBEDDING_SIZE, CENTERS_PER_CLASS
    sparse_centers = pml_regularizers.SparseCentersRegularizer(c, k)
    rows = [
        pair("ProxyNCA", ProxyNCALoss(c, d), pml_losses.ProxyNCALoss(c, d)),
        pair(
            "ProxyNCA++ (scale 9)",
            ProxyNCALoss.proxynca_plus_plus(c, d),
            pml_losses.ProxyNCALoss(c, d, softmax_scale=9),
        ),
        pair(
            "ProxyAnchor",
            ProxyAnchorLoss(c, d),
            pml_losses.ProxyAnchorLoss(c, d),
        ),
        pair(
            "SoftTriple (K=10, tau=0)",
            SoftTripleLoss(c, d, tau=0.0),
            pml_losses.SoftTripleLoss(c, d),
        ),
        pair(
            "SoftTriple (K=10, tau=0.2)",
            SoftTripleLoss(c, d, tau=0.2),
            pml_losses.SoftTripleLoss(c, d, weight_regularizer=sparse_centers, weight_reg_weight=0.2),
        ),
        pair(
            "NormalizedSoftmax",
            NormalizedSoftmaxLoss(c, d),
            pml_losses.NormalizedSoftmaxLoss(c, d),
        ),
        # What sampling buys: dmlkit with k sampled negatives against PML's full loss.
        pair(
            f"ProxyNCA, random k={NUM_NEGATIVES} (vs full)",
            ProxyNCALoss(c, d, negative_sampling="random", num_negatives=NUM_NEGATIVES),
            pml_losses.ProxyNCALoss(c, d),
        ),
        pair(
            f"ProxyAnchor, random k={NUM_NEGATIVES} (vs full)",
            ProxyAnchorLoss(c, d, negative_sampling="random", num_negatives=NUM_NEGATIVES),
            pml_losses.ProxyAnchorLoss(c, d),
        ),
        pair(
            f"SoftTriple tau=0, hardest k={NUM_NEGATIVES} (vs full)",
            SoftTripleLoss(c, d, tau=0.0, negative_sampling="hardest", num_negatives=NUM_NEGATIVES),
            pml_losses.SoftTripleLoss(c, d),
        ),
    ]
    return rows


def main(argv: list[str] | None = None) -> None:
    title = (
        f"Proxy-based losses, forward + backward: batch {BATCH_SIZE}, {EMBEDDING_SIZE}-d float32, {NUM_CLASSES} classes"
    )
    run_cases(__doc__.splitlines()[0], cases, title, argv, default_repeats=25)


if __name__ == "__main__":
    main()
