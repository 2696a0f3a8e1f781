"""Validation classes carved out of the training classes (the Reality Check protocol).

Musgrave, Belongie & Lim (*A Metric Learning Reality Check*, ECCV 2020, Sec. 4.1) choose every
hyperparameter on classes that are neither trained on nor used for the final test: the
training classes are split, class-disjointly, into the classes a run trains on and the
*validation* classes it is scored on while tuning. The held-out test classes are never used
for choosing anything. :func:`split_validation_classes` does that split; it leaves the test
split alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

from dmlkit.checks import check_int
from dmlkit.data.base import LabelledDataset

__all__ = ["EVALUATE_ON", "ClassSplit", "evaluation_split", "split_validation_classes"]


class ClassSplit(NamedTuple):
    """A class-disjoint ``(train, validation)`` pair and the original labels of each part."""

    train: LabelledDataset
    validation: LabelledDataset
    train_classes: tuple[int, ...]
    validation_classes: tuple[int, ...]


def split_validation_classes(
    dataset: LabelledDataset,
    validation: int | float = 0.2,
    seed: int = 0,
    min_train_classes: int = 2,
) -> ClassSplit:
    """Split ``dataset`` by class into training and validation classes.

    Args:
        dataset: the training split (any dataset with ``labels``, ``classes`` and ``subset``).
        validation: the number of validation classes (an ``int`` ≥ 2), or their share of the
            classes (a ``float`` in ``(0, 1)``, rounded to the nearest count, at least 2).
        seed: which classes become validation classes: a random permutation of the classes
            drawn from a generator seeded with ``seed`` (the same seed, the same split).
        min_train_classes: the fewest classes that must remain for training.

    Returns:
        :class:`ClassSplit`: both parts with labels re-indexed from 0 (in the classes' original
        order) and the original labels of the classes each part holds, sorted.

    Raises:
        ValueError: a share outside ``(0, 1)``, fewer than 2 validation classes, or fewer than
            ``min_train_classes`` left for training.
    """
    num_classes = dataset.num_classes
    if isinstance(validation, bool) or not isinstance(validation, (int, float)):
        raise ValueError(f"validation must be a class count or a share in (0, 1), got {validation!r}")
    if isinstance(validation, float):
        if not (math.isfinite(validation) and 0.0 < validation < 1.0):
            raise ValueError(f"validation as a share must lie in (0, 1), got {validation}")
        count = max(2, round(validation * num_classes))
    else:
        count = validation
    check_int("validation", count, minimum=2)
    check_int("min_train_classes", min_train_classes, minimum=1)
    if num_classes - count < min_train_classes:
        raise ValueError(
            f"{dataset.name}: {count} validation classes of {num_classes} leave {num_classes - count} for "
            f"training; at least {min_train_classes} must remain"
        )
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(num_classes, generator=generator)
    validation_classes = torch.sort(order[:count]).values
    is_validation = torch.zeros(num_classes, dtype=torch.bool)
    is_validation[validation_classes] = True
    item_is_validation = is_validation[dataset.labels]
    train_items = (~item_is_validation).nonzero().flatten()
    validation_items = item_is_validation.nonzero().flatten()
    return ClassSplit(
        dataset.subset(train_items, name=f"{dataset.name} (training classes)"),
        dataset.subset(validation_items, name=f"{dataset.name} (validation classes)"),
        tuple((~is_validation).nonzero().flatten().tolist()),
        tuple(validation_classes.tolist()),
    )


#: Where a notebook evaluates: the held-out test classes, or validation classes carved out of the
#: training classes (for choosing a setting without looking at the test classes).
EVALUATE_ON = ("test", "validation")


def evaluation_split(
    train_data: LabelledDataset,
    test_data: LabelledDataset,
    evaluate_on: str = "test",
    validation: int | float = 0.2,
    seed: int = 0,
    log: Callable[[str], None] | None = print,
) -> tuple[LabelledDataset, LabelledDataset]:
    """``(train, evaluation)`` data for a notebook's ``EVALUATE_ON`` parameter.

    ``"test"`` returns the pair unchanged. ``"validation"`` is for tuning: the training classes
    are split by :func:`split_validation_classes` (``validation`` classes or share, ``seed``),
    the model trains on the rest and is evaluated on the validation classes, so a setting is
    chosen without the held-out classes (Musgrave et al., ECCV 2020, §3.2); one sentence says so.
    """
    if evaluate_on not in EVALUATE_ON:
        raise ValueError(f"EVALUATE_ON must be one of {EVALUATE_ON}, got {evaluate_on!r}")
    if evaluate_on == "test":
        return train_data, test_data
    split = split_validation_classes(train_data, validation=validation, seed=seed)
    if log is not None:
        log(
            f"EVALUATE_ON='validation': training on {split.train.num_classes} of the {train_data.num_classes} "
            f"training classes and evaluating on the other {split.validation.num_classes} (validation classes); "
            "the held-out test classes are not used"
        )
    return split.train, split.validation
