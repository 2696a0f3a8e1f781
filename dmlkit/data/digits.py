"""scikit-learn's 8x8 handwritten digits: a tiny real dataset that is always on disk.

The set is the test part of the UCI "Optical Recognition of Handwritten Digits" data (Alpaydin and
Kaynak, 1998), 1,797 images of 8x8 pixels whose values count the "on" pixels of a 4x4 block of the
original 32x32 bitmap (0-16). It ships inside scikit-learn (``sklearn.datasets.load_digits``),
so loading it needs no network and no system package: a real-data check that runs anywhere in
a second.

Images are scaled to ``uint8`` ``0-255`` (``value * 255 / 16``, rounded) and shaped
``(N, 1, 8, 8)``. The default split is class-disjoint, digits 0-4 for ``train`` and 5-9 for
``test``; ``split_by="images"`` keeps all ten digits on both sides and divides each digit's images.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np
import torch

from dmlkit.checks import check_split_arguments
from dmlkit.data.base import TensorImageDataset

__all__ = ["DIGIT_CLASSES", "load_digits"]

#: Class names, indexed by label: the digits as strings.
DIGIT_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
DEFAULT_TRAIN_CLASSES: tuple[int, ...] = (0, 1, 2, 3, 4)
_MAX_VALUE = 16


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The bundled images as ``uint8`` ``(N, 8, 8)`` in ``0-255`` and their labels (read-only)."""
    from sklearn.datasets import load_digits as sklearn_load_digits

    bunch = sklearn_load_digits()
    values = np.asarray(bunch.images, dtype=np.float64)
    if values.min() < 0 or values.max() > _MAX_VALUE:
        raise ValueError(f"scikit-learn's digits should lie in [0, {_MAX_VALUE}], got [{values.min()}, {values.max()}]")
    images = np.rint(values * (255.0 / _MAX_VALUE)).astype(np.uint8)
    labels = np.asarray(bunch.target, dtype=np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def load_digits(
    split: str = "train",
    split_by: str = "classes",
    seed: int = 0,
    train_classes: Iterable[int] | None = None,
    train_fraction: float = 0.5,
) -> TensorImageDataset:
    """Load a split of scikit-learn's 8x8 digits (1,797 images, 10 classes).

    Args:
        split: ``"train"``, ``"test"`` or ``"all"``.
        split_by: ``"classes"`` (default: ``train_classes`` on one side, the other digits on the
            other) or ``"images"`` (all ten digits on both sides; each digit's images shuffled
            with ``seed`` and divided by ``train_fraction``).
        seed: seed of the shuffle for ``split_by="images"`` (the class split is not random).
        train_classes: with ``split_by="classes"``, the digits of the ``train`` side (default
            0-4).
        train_fraction: with ``split_by="images"``, the share of each digit's images in
            ``train``.

    Returns:
        A :class:`~dmlkit.data.base.TensorImageDataset` with ``uint8`` images ``(N, 1, 8, 8)``,
        labels contiguous within the split (digits in increasing order) and class names
        ``"0"``-``"9"``.
    """
    check_split_arguments(split, split_by, train_fraction)
    if split_by == "images" and train_classes is not None:
        raise ValueError("train_classes only applies to split_by='classes'")
    if train_classes is None:
        chosen = DEFAULT_TRAIN_CLASSES
    else:
        chosen = tuple(sorted(int(c) for c in train_classes))
        if any(not 0 <= c < 10 for c in chosen) or len(set(chosen)) != len(chosen):
            raise ValueError(f"train_classes must be distinct digits in [0, 10), got {list(chosen)}")
        if not 0 < len(chosen) < 10:
            raise ValueError(f"train_classes must hold between 1 and 9 digits, got {len(chosen)}")

    images, labels = _digits_arrays()
    name = f"digits-{split}"
    dataset = TensorImageDataset(
        torch.from_numpy(images.copy()).unsqueeze(1),
        torch.from_numpy(labels.copy()),
        DIGIT_CLASSES,
        name=name,
    )
    if split == "all":
        return dataset
    if split_by == "classes":
        in_train = np.isin(labels, chosen)
    else:
        rng = np.random.default_rng(seed)
        in_train = np.zeros(len(labels), dtype=bool)
        for digit in range(len(DIGIT_CLASSES)):
            members = rng.permutation(np.flatnonzero(labels == digit))
            num_train = min(max(round(train_fraction * members.size), 1), members.size - 1)
            in_train[members[:num_train]] = True
    mask = in_train if split == "train" else ~in_train
    return dataset.subset(np.flatnonzero(mask), name=name)
