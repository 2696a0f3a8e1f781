"""What the three benchmarks share: ImageNet transforms, an image-file dataset, the search for a
local copy and the error that says where it looked."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from dmlkit.data.base import LabelledDataset, check_labels
from dmlkit.data.paths import DatasetNotFoundError, data_dir

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "imagenet_transforms", "ImageFileDataset"]


#: Per-channel mean and standard deviation of ImageNet, the statistics pretrained backbones expect.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)


IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


ImageTransform = Callable[[Image.Image], Any]


TransformArg = ImageTransform | Literal["imagenet"] | None


def imagenet_transforms(train: bool, size: int = 224) -> ImageTransform:
    """The ImageNet-style preprocessing used by the metric-learning benchmarks.

    Args:
        train: ``True`` for the augmenting training pipeline (``RandomResizedCrop(size)``,
            ``RandomHorizontalFlip()``), ``False`` for the deterministic evaluation pipeline
            (``Resize(size * 256 / 224)``, ``CenterCrop(size)``; 256 and 224 at the default size).
        size: side of the square output.

    Returns:
        A ``torchvision.transforms.Compose`` that ends with ``ToTensor()`` and
        ``Normalize(IMAGENET_MEAN, IMAGENET_STD)``: a PIL image in, a float tensor
        ``(3, size, size)`` out.
    """
    from torchvision import transforms

    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    if train:
        geometry = [transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip()]
    else:
        geometry = [transforms.Resize(round(size * 256 / 224)), transforms.CenterCrop(size)]
    return transforms.Compose([*geometry, transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


class ImageFileDataset(LabelledDataset):
    """Images kept on disk as files, opened with PIL on each access.

    Items are ``(transform(image), label)`` with ``image`` a PIL image converted to RGB; with
    ``transform=None`` the PIL image itself is returned.

    Args:
        paths: the image files, one per item.
        labels: class index of each item, contiguous from 0.
        classes: class names, one per label value.
        name: dataset name, for messages and plots.
        transform: optional callable applied to each RGB PIL image.
        class_info: optional per-class metadata (one dict per class), e.g. the official class id
            or the super-class of a Stanford Online Products item.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        labels: Tensor | Sequence[int],
        classes: Sequence[str],
        name: str = "dataset",
        transform: ImageTransform | None = None,
        class_info: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        labels = torch.as_tensor(labels, dtype=torch.long)
        if len(paths) != labels.shape[0]:
            raise ValueError(f"{name}: {len(paths)} paths but {labels.shape[0]} labels")
        check_labels(labels, len(classes), name)
        if class_info is not None and len(class_info) != len(classes):
            raise ValueError(f"{name}: class_info has {len(class_info)} entries for {len(classes)} classes")
        self.paths = [Path(p) for p in paths]
        self.labels = labels
        self.classes = list(classes)
        self.class_info = list(class_info) if class_info is not None else None
        self.name = name
        self.transform = transform

    def load_image(self, index: int) -> Image.Image:
        """The RGB PIL image of item ``index``, before the transform."""
        with Image.open(self.paths[index]) as image:
            return image.convert("RGB")

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = self.load_image(index)
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])

    def subset(self, indices: Sequence[int] | Tensor, name: str | None = None) -> ImageFileDataset:
        """A new dataset of the chosen items, labels re-indexed to the classes that remain."""
        index, labels, classes, info = self._subset_parts(indices)
        return ImageFileDataset(
            [self.paths[i] for i in index.tolist()],
            labels,
            classes,
            name=name or self.name,
            transform=self.transform,
            class_info=info,
        )


def check_split(split: str) -> None:
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")


#: The side of the ``"imagenet"`` transforms' output when a loader is given no ``image_size``.
DEFAULT_IMAGE_SIZE = 224


def image_size_from_env() -> int:
    """``$DMLKIT_IMAGE_SIZE`` (so that notebooks, which pass no loader options, can train at a
    smaller size, e.g. on a CPU), else :data:`DEFAULT_IMAGE_SIZE`; anything but an integer above
    64 (smaller images get the ConvNet, not the ResNet) is an error."""
    text = os.environ.get("DMLKIT_IMAGE_SIZE", "").strip()
    if not text:
        return DEFAULT_IMAGE_SIZE
    if not text.isdigit() or int(text) <= 64:
        raise ValueError(f"DMLKIT_IMAGE_SIZE must be an integer above 64 (the ResNet path), got {text!r}")
    return int(text)


def resolve_transform(transform: TransformArg, split: str, image_size: int | None) -> ImageTransform | None:
    if isinstance(transform, str):
        if transform != "imagenet":
            raise ValueError(f"transform must be a callable, None or 'imagenet', got {transform!r}")
        return imagenet_transforms(train=split == "train", size=image_size or image_size_from_env())
    return transform


def search_dirs(root: str | os.PathLike[str] | None, name: str, nested: Sequence[str]) -> list[Path]:
    """``root`` (or ``<data_dir>/<name>``) and the sub-folders the archives unpack to."""
    base = Path(root).expanduser() if root is not None else data_dir() / name
    return [*(base / sub for sub in nested), base]


def not_found(title: str, tried: Sequence[Path], layout: str, how: str) -> DatasetNotFoundError:
    lines = [
        f"{title} not found. Looked in:",
        *(f"  - {path}" for path in tried),
        "Expected layout:",
        *(f"  {line}" for line in layout.strip("\n").splitlines()),
        "How to get it (no automatic download):",
        *(f"  {line}" for line in how.strip("\n").splitlines()),
    ]
    return DatasetNotFoundError("\n".join(lines))


def check_first_image(title: str, paths: Sequence[Path], annotation: Path) -> None:
    """Catch an annotation file whose images were not unpacked next to it (cheap: one file)."""
    if paths and not paths[0].is_file():
        raise DatasetNotFoundError(
            f"{title}: {annotation} lists {len(paths)} images but the first, {paths[0]}, is missing; "
            "unpack the image archive next to the annotation files"
        )


def class_split_mask(official_ids: np.ndarray, split: str, num_train_classes: int, title: str) -> np.ndarray:
    """Mask of the items of ``split`` when classes ``1..num_train_classes`` are the train side."""
    largest = int(official_ids.max())
    if not 1 <= num_train_classes < largest:
        raise ValueError(
            f"{title}: num_train_classes must lie in [1, {largest}) (the largest class id on disk) "
            f"so both splits have classes, got {num_train_classes}"
        )
    if split == "all":
        return np.ones(len(official_ids), dtype=bool)
    in_train = official_ids <= num_train_classes
    return in_train if split == "train" else ~in_train


def build_dataset(
    paths: Sequence[Path],
    official_ids: np.ndarray,
    names: dict[int, str],
    mask: np.ndarray,
    name: str,
    transform: ImageTransform | None,
    extra_info: dict[int, dict[str, Any]] | None = None,
) -> ImageFileDataset:
    """A dataset of the masked items; labels are the rank of the official id among those kept."""
    chosen = np.flatnonzero(mask)
    ids = official_ids[chosen]
    kept, labels = np.unique(ids, return_inverse=True)
    info = [{"official_id": int(c), **(extra_info or {}).get(int(c), {})} for c in kept]
    return ImageFileDataset(
        [paths[i] for i in chosen],
        torch.from_numpy(labels.astype(np.int64)),
        [names.get(int(c), str(int(c))) for c in kept],
        name=name,
        transform=transform,
        class_info=info,
    )


def read_table(path: Path, columns: int, header: bool = False) -> list[list[str]]:
    """Whitespace-separated rows of a text annotation file, with a clear error on a bad row."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if header and number == 1:
                continue
            fields = line.split(maxsplit=columns - 1)
            if not fields:
                continue
            if len(fields) != columns:
                raise ValueError(f"{path}:{number}: expected {columns} columns, got {line.rstrip()!r}")
            rows.append(fields)
    return rows
