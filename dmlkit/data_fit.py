"""Fit the kit's protocol to the data set a notebook is pointed at.

The protocol (:func:`dmlkit.experiment.protocol`) is sized for the embedded glyph set: 200
training classes, P×K = 32×4 batches, 6,000 held-out images. Other data sets differ by orders
of magnitude — Fashion-MNIST and scikit-learn's digits have 5 training classes, SOP has 11,318 —
so what a notebook does not set itself is derived from the data here, and every adaptation is
said once, in one sentence:

* **P×K** — a batch cannot hold more classes than there are: P becomes the number of training
  classes and K grows so that the batch keeps (at least) its size (Fashion-MNIST: 5×26 for 32×4).
* **evaluation size** — retrieval metrics compare every item with every other one, and MAP@R
  looks at R = (class size − 1) neighbours, so 35,000 held-out Fashion-MNIST images would need a
  35,000 × 7,000 top-k; each evaluation set (held-out classes, and the training classes' copy
  used for the generalisation gap and ρ) is a sample of at most :data:`EVAL_IMAGES` images
  (class-stratified, or whole classes where there are thousands, as in SOP), drawn with a fixed
  seed, so every method and seed is judged on the same images.
* **ways** — few-shot episodes use at most the classes there are (:func:`fit_ways`,
  :func:`fit_distractors`).

A request that the data cannot meet — one the notebook or the user *set*, such as 20-way
episodes on 5 held-out classes, or a data set with a single class — is a ``ValueError`` before
anything trains.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from dmlkit.checks import check_int

__all__ = ["EVAL_IMAGES", "evaluation_sample", "fit_batch", "fit_distractors", "fit_to_data", "fit_ways"]

#: The most images of one evaluation set: the size of the glyph set's held-out classes (200 × 30).
EVAL_IMAGES = 6000


def _describe(data: Any) -> str:
    return str(getattr(data, "name", type(data).__name__))


def evaluation_sample(data: Any, max_images: int | None, seed: int = 0) -> Any:
    """``data`` itself when it has at most ``max_images`` items (or ``max_images`` is ``None``),
    else a seeded random subset of at most ``max_images`` items, so that every query keeps its
    positives:

    * with at least 2 items per class to spare (``max_images // classes >= 2``), every class keeps
      that many items (all of a smaller class) — Fashion-MNIST's 5 classes of 7,000;
    * with more classes than that (SOP: 11,316 held-out products of about 5 images), whole classes
      are drawn at random for as long as they fit, as if the gallery had fewer products.

    Fewer than 2 whole classes fitting is an error."""
    if max_images is None or len(data) <= max_images:
        return data
    labels = np.asarray(torch.as_tensor(data.labels).cpu())
    classes = np.unique(labels)
    members = [np.flatnonzero(labels == c) for c in classes]
    rng = np.random.default_rng(seed)
    per_class = max_images // len(classes)
    if per_class >= 2:
        chosen = [m if len(m) <= per_class else rng.choice(m, per_class, replace=False) for m in members]
    else:
        chosen, total = [], 0
        for c in rng.permutation(len(classes)):
            if total + len(members[c]) <= max_images:
                chosen.append(members[c])
                total += len(members[c])
        if len(chosen) < 2:
            raise ValueError(
                f"an evaluation sample of {max_images} images of {_describe(data)} holds fewer than 2 whole classes: "
                "raise max_images"
            )
    return data.subset(np.sort(np.concatenate(chosen)))


def fit_batch(P: int, K: int, num_classes: int) -> tuple[int, int]:
    """P×K for ``num_classes`` training classes: unchanged when they suffice, else P = the
    number of classes and K = ⌈P·K / classes⌉, so the batch is at least as large as asked."""
    if num_classes < 2:
        raise ValueError(f"metric learning needs at least 2 training classes, the data has {num_classes}")
    if num_classes >= P:
        return P, K
    return num_classes, math.ceil(P * K / num_classes)


def _fit_count(requested: int | None, default: int, most: int, minimum: int, what: str, short: str) -> tuple[int, bool]:
    """``(count, fitted)``: ``requested`` when set (an integer >= ``minimum``, at most ``most``, else
    a ``ValueError`` that starts ``"{what}={requested}: {short}"``), else ``default`` or, when
    that is more than ``most``, ``most`` with ``fitted`` true (the caller says why)."""
    if requested is not None:
        requested = check_int(what, requested, minimum)
        if requested > most:
            raise ValueError(f"{what}={requested}: {short}; set {what} to at most {max(most, minimum)} (or None)")
        return requested, False
    if default > most:
        return most, True
    return default, False


def fit_ways(requested: int | None, default: int, available: int, what: str, log: Callable[[str], None] = print) -> int:
    """Classes per episode: ``requested`` when set (an error if ``available`` classes cannot
    give it), else ``default`` or all ``available`` classes when there are fewer (said once)."""
    if available < 2:
        raise ValueError(f"{what}: episodes need at least 2 classes, the held-out data has {available}")
    short = f"the held-out data has only {available} classes"
    ways, fitted = _fit_count(requested, default, available, 2, what, short)
    if fitted:
        log(f"{what}: the data has {available} held-out classes, so episodes are {available}-way (not {default}-way)")
    return ways


def fit_to_data(
    budget: Any,
    train_data: Any,
    test_data: Any,
    max_eval_images: int = EVAL_IMAGES,
    log: Callable[[str], None] = print,
) -> tuple[Any, Any]:
    """``(budget, test_data)`` fitted to the data (module docstring): P×K by :func:`fit_batch`,
    ``budget.eval_images`` set to ``max_eval_images`` when an evaluation set is larger, and the
    held-out set replaced by its :func:`evaluation_sample`. Each change is passed to ``log`` in
    one sentence; data that need none are returned as they are, silently."""
    name = _describe(train_data).removesuffix("-train")
    changes: dict[str, Any] = {}
    P, K = fit_batch(budget.P, budget.K, train_data.num_classes)
    if (P, K) != (budget.P, budget.K):
        changes.update(P=P, K=K)
        log(
            f"{name} has {train_data.num_classes} training classes: P×K = {P}×{K} "
            f"(the protocol's {budget.P}×{budget.K} keeps its batch of {budget.P * budget.K} images or more)"
        )
    if max(len(train_data), len(test_data)) > max_eval_images:
        changes["eval_images"] = max_eval_images
        sample = evaluation_sample(test_data, max_eval_images)
        log(
            f"{name} has {len(train_data):,} training and {len(test_data):,} held-out images: each evaluation uses a "
            f"sample of at most {max_eval_images:,} (held-out: {len(sample):,} images of {sample.num_classes:,} classes; "
            "the same images for every method and seed)"
        )
        test_data = sample
    return (budget.with_(**changes) if changes else budget), test_data


def fit_distractors(
    requested: int | None, default: int, available: int, n_way: int, log: Callable[[str], None] = print
) -> int:
    """Distractor classes of a semi-supervised episode (Ren et al., ICLR 2018): they come on top of
    the ``n_way`` episode classes, so at most ``available - n_way`` fit. ``requested`` when set (an
    error if it does not fit), else ``default`` or as many as fit (said once; 0 leaves the
    distractor setting out)."""
    room = max(available - n_way, 0)
    short = (
        f"{n_way}-way episodes with {requested} distractor classes need {n_way + (requested or 0)} classes, "
        f"the data has {available} on one side"
    )
    count, fitted = _fit_count(requested, default, room, 0, "N_DISTRACTORS", short)
    if fitted:
        log(
            f"N_DISTRACTORS: {n_way}-way episodes leave room for {room} distractor classes among {available}, "
            + ("so the setting with distractors is left out" if room == 0 else f"so {room} (not {default})")
        )
    return count
