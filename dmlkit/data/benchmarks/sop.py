"""Stanford Online Products (Oh Song et al., CVPR 2016): Ebay_train.txt / Ebay_test.txt."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from dmlkit.data.benchmarks import common
from dmlkit.data.benchmarks.common import ImageFileDataset, TransformArg

__all__ = ["load_sop"]


_SOP_LAYOUT = """
<root>/Stanford_Online_Products/Ebay_train.txt  header "image_id class_id super_class_id path",
<root>/Stanford_Online_Products/Ebay_test.txt   then one row per image, e.g.
                                                "1 1 1 bicycle_final/111085122871_0.JPG"
<root>/Stanford_Online_Products/<super_class>_final/<product>_<n>.JPG
(root may also be the Stanford_Online_Products folder itself)
"""


_SOP_HOW = """
Download Stanford_Online_Products.zip from the "Stanford Online Products dataset" page of the
Stanford CVGL lab (Oh Song et al., CVPR 2016), unpack it into the root folder, and pass root= or
set $DMLKIT_DATA so that $DMLKIT_DATA/sop/Stanford_Online_Products/Ebay_train.txt exists.
"""


def load_sop(
    root: str | os.PathLike[str] | None = None,
    split: str = "train",
    transform: TransformArg = "imagenet",
    image_size: int | None = None,
) -> ImageFileDataset:
    """Load a split of Stanford Online Products (Oh Song et al., CVPR 2016).

    The split is the one the dataset ships: ``Ebay_train.txt`` (classes 1-11,318) and
    ``Ebay_test.txt`` (classes 11,319-22,634); ``"all"`` is both.

    Args:
        root: the folder holding ``Stanford_Online_Products/`` (or that folder itself); default
            ``<data_dir>/sop``.
        split: ``"train"``, ``"test"`` or ``"all"``.
        transform: a callable, ``None`` or ``"imagenet"`` (default), as in :func:`load_cub200`.
        image_size: output side of the ``"imagenet"`` transforms (None: ``$DMLKIT_IMAGE_SIZE``, else 224).

    Returns:
        An :class:`ImageFileDataset`; labels contiguous within the split in official class order,
        ``classes`` named ``"<super_class>/<product id>"``, ``class_info`` with the official class
        id, the super-class name and the super-class id (for hierarchy experiments).

    Raises:
        DatasetNotFoundError: the annotation files or the images are not on disk.
    """
    common.check_split(split)
    title = "Stanford Online Products"
    tried = common.search_dirs(root, "sop", ["Stanford_Online_Products"])
    files = ["Ebay_train.txt", "Ebay_test.txt"] if split == "all" else [f"Ebay_{split}.txt"]
    folder = next((d for d in tried if all((d / f).is_file() for f in files)), None)
    if folder is None:
        raise common.not_found(title, [d / f for d in tried for f in files], _SOP_LAYOUT, _SOP_HOW)

    paths: list[Path] = []
    ids: list[int] = []
    names: dict[int, str] = {}
    info: dict[int, dict[str, Any]] = {}
    for file in files:
        for _, class_id, super_id, relative in common.read_table(folder / file, 4, header=True):
            relative = relative.strip()
            cid = int(class_id)
            paths.append(folder / relative)
            ids.append(cid)
            if cid not in names:
                super_dir, _, filename = relative.partition("/")
                super_name = super_dir.removesuffix("_final")
                names[cid] = f"{super_name}/{filename.rsplit('_', 1)[0]}"
                info[cid] = {"super_class": super_name, "super_class_id": int(super_id)}
    official_ids = np.array(ids, dtype=np.int64)
    if official_ids.size == 0:
        raise ValueError(f"{title}: {', '.join(str(folder / f) for f in files)} list no image")
    mask = np.ones(len(official_ids), dtype=bool)
    resolved = common.resolve_transform(transform, split, image_size)
    dataset = common.build_dataset(paths, official_ids, names, mask, f"sop-{split}", resolved, info)
    common.check_first_image(title, dataset.paths, folder / files[0])
    return dataset
