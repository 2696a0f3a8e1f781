"""The dataset type every loader returns: images, integer labels and the class names.

All of dmlkit's datasets are ``torch.utils.data.Dataset`` objects with two extra attributes:

``labels``
    a 1-D ``LongTensor`` with the class index of every item, contiguous ``0 .. len(classes)-1``
    within the split (so a proxy loss can use ``num_classes=len(dataset.classes)``);
``classes``
    the class names, ``classes[label]`` naming the class of an item.

Datasets that live in memory (glyphs, Fashion-MNIST, digits) are :class:`TensorImageDataset` and
also serve a whole batch at once through :meth:`TensorImageDataset.get_batch`, which the training
loop uses to skip per-item Python overhead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["LabelledDataset", "TensorImageDataset", "check_labels"]


def check_labels(labels: Tensor, num_classes: int, what: str) -> None:
    """Raise ``ValueError`` unless ``labels`` are contiguous class indices with no empty class."""
    if labels.dim() != 1:
        raise ValueError(f"{what}: labels must be 1-D, got shape {tuple(labels.shape)}")
    if labels.numel() == 0:
        raise ValueError(f"{what}: the dataset is empty")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"{what}: labels must lie in [0, {num_classes}), got range [{int(labels.min())}, {int(labels.max())}]"
        )
    counts = torch.bincount(labels, minlength=num_classes)
    empty = (counts == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"{what}: {len(empty)} classes have no item (first: {empty[:5]})")


class LabelledDataset(Dataset):
    """Base class: a dataset with ``labels`` (LongTensor) and ``classes`` (list of names)."""

    labels: torch.Tensor
    classes: list[str]
    name: str = "dataset"

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        """Number of classes in this split."""
        return len(self.classes)

    def class_counts(self) -> Tensor:
        """Number of items of each class, indexed by label."""
        return torch.bincount(self.labels, minlength=self.num_classes)

    def _subset_parts(
        self, indices: Sequence[int] | Tensor
    ) -> tuple[Tensor, Tensor, list[Any], list[dict[str, Any]] | None]:
        """For :meth:`subset`: ``(index, labels, classes, class_info)`` of the chosen items, the
        labels re-indexed to the classes that remain (in their old order)."""
        index = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        labels = self.labels[index]
        kept = torch.unique(labels)
        remap = torch.full((self.num_classes,), -1, dtype=torch.long)
        remap[kept] = torch.arange(kept.numel())
        class_info = getattr(self, "class_info", None)
        info = [class_info[c] for c in kept.tolist()] if class_info else None
        return index, remap[labels], [self.classes[c] for c in kept.tolist()], info

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, items={len(self)}, classes={self.num_classes})"


class TensorImageDataset(LabelledDataset):
    """Images held in memory as a ``uint8`` tensor of shape ``(N, C, H, W)``.

    Items are ``(image, label)`` with the image as ``float32`` in ``[0, 1]``; ``transform``, if
    given, is applied to that float image.

    Args:
        images: ``uint8`` tensor ``(N, C, H, W)``.
        labels: class index of each image, contiguous from 0.
        classes: class names, one per label value.
        name: dataset name, for messages and plots.
        class_info: optional per-class metadata (one dict per class), e.g. the Unicode script of
            a glyph class.
        transform: optional callable applied to each float image.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        classes: Sequence[str],
        name: str = "dataset",
        class_info: Sequence[dict[str, Any]] | None = None,
        transform: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"{name}: images must be a uint8 tensor (N, C, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        labels = torch.as_tensor(labels, dtype=torch.long)
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"{name}: {images.shape[0]} images but {labels.shape[0]} labels")
        check_labels(labels, len(classes), name)
        if class_info is not None and len(class_info) != len(classes):
            raise ValueError(f"{name}: class_info has {len(class_info)} entries for {len(classes)} classes")
        self.images = images
        self.labels = labels
        self.classes = list(classes)
        self.class_info = list(class_info) if class_info is not None else None
        self.name = name
        self.transform = transform

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image = self.images[index].float().div_(255.0)
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])

    def get_batch(self, indices: Sequence[int] | Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(images, labels)`` for many indices at once (float images in ``[0, 1]``)."""
        index = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        images = self.images[index].float().div_(255.0)
        if self.transform is not None:
            images = torch.stack([self.transform(image) for image in images])
        return images, self.labels[index]

    def subset(self, indices: Sequence[int] | Tensor, name: str | None = None) -> TensorImageDataset:
        """A new dataset of the chosen items, labels re-indexed to the classes that remain."""
        index, labels, classes, info = self._subset_parts(indices)
        return TensorImageDataset(
            self.images[index],
            labels,
            classes,
            name=name or self.name,
            class_info=info,
            transform=self.transform,
        )
