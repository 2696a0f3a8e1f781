"""CUB-200-2011 (Wah et al., 2011): classes 1-100 train, 101-200 test."""

from __future__ import annotations

import os

import numpy as np

from dmlkit.data.benchmarks import common
from dmlkit.data.benchmarks.common import ImageFileDataset, TransformArg

__all__ = ["load_cub200"]


_CUB_LAYOUT = """
<root>/CUB_200_2011/images.txt             "<image_id> <class_dir>/<file>.jpg" per line
<root>/CUB_200_2011/image_class_labels.txt "<image_id> <class_id>" (class ids 1-200)
<root>/CUB_200_2011/classes.txt            "<class_id> <class_dir>" (optional, for names)
<root>/CUB_200_2011/images/<class_dir>/<file>.jpg
(root may also be the CUB_200_2011 folder itself)
"""


_CUB_HOW = """
Download CUB_200_2011.tgz from the "Caltech-UCSD Birds-200-2011" page of the Caltech Vision
Lab (Wah et al., 2011), unpack it into the root folder, and pass root= or set $DMLKIT_DATA so that
$DMLKIT_DATA/cub200/CUB_200_2011/images.txt exists.
"""


def _cub_name(class_dir: str) -> str:
    """``"001.Black_footed_Albatross"`` -> ``"Black footed Albatross"``."""
    number, dot, rest = class_dir.partition(".")
    return (rest if dot and number.isdigit() else class_dir).replace("_", " ")


def load_cub200(
    root: str | os.PathLike[str] | None = None,
    split: str = "train",
    transform: TransformArg = "imagenet",
    image_size: int | None = None,
    num_train_classes: int = 100,
) -> ImageFileDataset:
    """Load a split of CUB-200-2011 (Wah et al., 2011) in the metric-learning protocol.

    Args:
        root: the folder holding ``CUB_200_2011/`` (or that folder itself); default
            ``<data_dir>/cub200``.
        split: ``"train"`` (classes ``1..num_train_classes``), ``"test"`` (the rest) or ``"all"``.
        transform: a callable applied to each RGB PIL image, ``None`` for the PIL image itself,
            or ``"imagenet"`` (default) for :func:`imagenet_transforms` (training pipeline for
            ``"train"``, evaluation pipeline otherwise).
        image_size: output side of the ``"imagenet"`` transforms (None: ``$DMLKIT_IMAGE_SIZE``, else 224).
        num_train_classes: the class boundary (100 in the standard protocol).

    Returns:
        An :class:`ImageFileDataset`; labels contiguous within the split in official class order,
        ``classes`` the species names, ``class_info`` the official class ids.

    Raises:
        DatasetNotFoundError: the annotation files or the images are not on disk.
    """
    common.check_split(split)
    title = "CUB-200-2011"
    tried = common.search_dirs(root, "cub200", ["CUB_200_2011"])
    required = ("images.txt", "image_class_labels.txt")
    folder = next((d for d in tried if all((d / f).is_file() for f in required)), None)
    if folder is None:
        raise common.not_found(title, [d / "images.txt" for d in tried], _CUB_LAYOUT, _CUB_HOW)

    relative = {image_id: rel.strip() for image_id, rel in common.read_table(folder / "images.txt", 2)}
    labels = common.read_table(folder / "image_class_labels.txt", 2)
    if not labels:
        raise ValueError(f"{title}: {folder / 'image_class_labels.txt'} lists no image")
    missing = [image_id for image_id, _ in labels if image_id not in relative]
    if missing:
        raise ValueError(f"{title}: image ids {missing[:5]} of image_class_labels.txt are not in images.txt")
    paths = [folder / "images" / relative[image_id] for image_id, _ in labels]
    official_ids = np.array([int(class_id) for _, class_id in labels], dtype=np.int64)

    names: dict[int, str] = {}
    if (folder / "classes.txt").is_file():
        rows = common.read_table(folder / "classes.txt", 2)
        names = {int(class_id): _cub_name(class_dir.strip()) for class_id, class_dir in rows}
    for image_id, class_id in labels:  # fall back on the image folder's name
        names.setdefault(int(class_id), _cub_name(relative[image_id].split("/")[0]))

    mask = common.class_split_mask(official_ids, split, num_train_classes, title)
    dataset = common.build_dataset(
        paths, official_ids, names, mask, f"cub200-{split}", common.resolve_transform(transform, split, image_size)
    )
    common.check_first_image(title, dataset.paths, folder / "images.txt")
    return dataset
