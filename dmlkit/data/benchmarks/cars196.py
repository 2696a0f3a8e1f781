"""Cars196 (Krause et al., 2013): classes 1-98 train, 99-196 test."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from dmlkit.data.benchmarks import common
from dmlkit.data.benchmarks.common import ImageFileDataset, TransformArg
from dmlkit.data.paths import DatasetNotFoundError

__all__ = ["load_cars196"]


_CARS_LAYOUT = """
<root>/cars_annos.mat       struct array 'annotations' (relative_im_path, bbox_x1, bbox_y1,
                            bbox_x2, bbox_y2, class, test) and cell array 'class_names'
<root>/car_ims/000001.jpg ... 016185.jpg
or the devkit layout (as torchvision's StanfordCars uses, also under <root>/stanford_cars):
<root>/devkit/cars_meta.mat, <root>/devkit/cars_train_annos.mat,
<root>/cars_test_annos_withlabels.mat (or in devkit/), <root>/cars_train/, <root>/cars_test/
"""


_CARS_HOW = """
Download the Cars dataset of Krause et al. (2013) from the "Stanford Cars Dataset" page of the
Stanford AI Lab (car_ims.tgz and cars_annos.mat; or its Kaggle or Hugging Face mirrors), unpack
it into the root folder, and pass root= or set $DMLKIT_DATA so that
$DMLKIT_DATA/cars196/cars_annos.mat exists. Reading .mat files needs scipy.
"""


def _loadmat(path: Path) -> dict[str, Any]:
    try:
        from scipy.io import loadmat
    except ImportError as error:  # pragma: no cover - scipy comes with scikit-learn
        raise ImportError(f"reading {path} needs scipy (pip install scipy)") from error
    return loadmat(str(path), squeeze_me=True)


def _mat_field(annotations: np.ndarray, field: str, path: Path) -> list[Any]:
    names = annotations.dtype.names or ()
    if field not in names:
        raise ValueError(f"{path}: 'annotations' has no field {field!r} (fields: {list(names)})")
    return list(np.atleast_1d(annotations[field]))


def _mat_variable(content: dict[str, Any], key: str, path: Path) -> np.ndarray:
    if key not in content:
        variables = sorted(k for k in content if not k.startswith("__"))
        raise ValueError(f"{path}: no variable {key!r} (variables: {variables})")
    return np.atleast_1d(content[key])


def _mat_class_names(content: dict[str, Any], path: Path) -> dict[int, str]:
    """Official class id (1-based position in the cell array) to name."""
    return {i + 1: str(n).strip() for i, n in enumerate(_mat_variable(content, "class_names", path))}


def _cars_from_annos(folder: Path) -> tuple[list[Path], np.ndarray, dict[int, str], Path]:
    path = folder / "cars_annos.mat"
    content = _loadmat(path)
    annotations = _mat_variable(content, "annotations", path)
    paths = [folder / str(p) for p in _mat_field(annotations, "relative_im_path", path)]
    ids = np.array([int(c) for c in _mat_field(annotations, "class", path)], dtype=np.int64)
    names = _mat_class_names(content, path) if "class_names" in content else {}
    return paths, ids, names, path


def _cars_from_devkit(folder: Path) -> tuple[list[Path], np.ndarray, dict[int, str], Path]:
    devkit = folder / "devkit"
    candidates = (folder / "cars_test_annos_withlabels.mat", devkit / "cars_test_annos_withlabels.mat")
    test_annos = next((p for p in candidates if p.is_file()), None)
    if test_annos is None:
        raise DatasetNotFoundError(
            f"Cars196: {devkit} has the training annotations but not cars_test_annos_withlabels.mat "
            f"(looked in {folder} and {devkit}); the class split needs the labels of the test images "
            "too: get that file from the dataset page, or use cars_annos.mat with car_ims/"
        )
    train_annos, meta = devkit / "cars_train_annos.mat", devkit / "cars_meta.mat"
    paths: list[Path] = []
    ids: list[int] = []
    for annos, images in ((train_annos, folder / "cars_train"), (test_annos, folder / "cars_test")):
        annotations = _mat_variable(_loadmat(annos), "annotations", annos)
        paths += [images / str(f) for f in _mat_field(annotations, "fname", annos)]
        ids += [int(c) for c in _mat_field(annotations, "class", annos)]
    names = _mat_class_names(_loadmat(meta), meta)
    return paths, np.array(ids, dtype=np.int64), names, train_annos


def load_cars196(
    root: str | os.PathLike[str] | None = None,
    split: str = "train",
    transform: TransformArg = "imagenet",
    image_size: int | None = None,
    num_train_classes: int = 98,
) -> ImageFileDataset:
    """Load a split of Cars196 (Krause et al., 2013) in the metric-learning protocol.

    The official train/test image split of the classification task is ignored: all 16,185 images
    are pooled and divided by class.

    Args:
        root: the folder holding ``cars_annos.mat`` and ``car_ims/`` (or the devkit layout, see
            the error message); default ``<data_dir>/cars196``.
        split: ``"train"`` (classes ``1..num_train_classes``), ``"test"`` (the rest) or ``"all"``.
        transform: a callable, ``None`` or ``"imagenet"`` (default), as in :func:`load_cub200`.
        image_size: output side of the ``"imagenet"`` transforms (None: ``$DMLKIT_IMAGE_SIZE``, else 224).
        num_train_classes: the class boundary (98 in the standard protocol).

    Returns:
        An :class:`ImageFileDataset`; labels contiguous within the split in official class order,
        ``classes`` the make-model-year names, ``class_info`` the official class ids.

    Raises:
        DatasetNotFoundError: the annotation files or the images are not on disk.
    """
    common.check_split(split)
    title = "Cars196"
    tried = common.search_dirs(root, "cars196", ["stanford_cars"])
    looked: list[Path] = []
    found = None
    for folder in tried:
        looked += [folder / "cars_annos.mat", folder / "devkit" / "cars_train_annos.mat"]
        if (folder / "cars_annos.mat").is_file():
            found = _cars_from_annos(folder)
            break
        devkit = folder / "devkit"
        if (devkit / "cars_train_annos.mat").is_file() and (devkit / "cars_meta.mat").is_file():
            found = _cars_from_devkit(folder)
            break
    if found is None:
        raise common.not_found(title, looked, _CARS_LAYOUT, _CARS_HOW)
    paths, official_ids, names, annotation = found
    if official_ids.size == 0:
        raise ValueError(f"{title}: {annotation} lists no image")

    mask = common.class_split_mask(official_ids, split, num_train_classes, title)
    dataset = common.build_dataset(
        paths, official_ids, names, mask, f"cars196-{split}", common.resolve_transform(transform, split, image_size)
    )
    common.check_first_image(title, dataset.paths, annotation)
    return dataset
