"""The three standard deep-metric-learning benchmarks, read from their usual on-disk layouts.

Every paper in the field since Oh Song et al. (2016) reports Recall@K on the same three sets, each
split by class (the second half of the classes is never seen in training):

* **CUB-200-2011** (Wah, Branson, Welinder, Perona and Belongie, "The Caltech-UCSD Birds-200-2011
  Dataset", Caltech technical report CNS-TR-2011-001, 2011): 11,788 bird photographs, 200
  species; classes 1-100 train (5,864 images), 101-200 test (5,924).
* **Cars196** (Krause, Stark, Deng and Fei-Fei, "3D Object Representations for Fine-Grained
  Categorization", ICCV Workshop on 3D Representation and Recognition (3dRR), 2013): 16,185 car
  photographs, 196 make-model-year classes; classes 1-98 train (8,054), 99-196 test (8,131).
* **Stanford Online Products** (Oh Song, Xiang, Jegelka and Savarese, "Deep Metric Learning via
  Lifted Structured Feature Embedding", CVPR 2016): 120,053 eBay product photographs, 22,634
  products in 12 super-classes; the split is given by ``Ebay_train.txt`` (11,318 classes,
  59,551 images) and ``Ebay_test.txt`` (11,316 classes, 60,502 images).

None of them is downloaded here (their licences ask for a manual download); a missing file is a
:class:`~dmlkit.data.paths.DatasetNotFoundError` that lists the folders looked at, the layout
expected and where the dataset is published. ``root`` defaults to ``<data_dir>/<name>`` with
``<data_dir>`` as in :func:`dmlkit.data.paths.data_dir` (``$DMLKIT_DATA`` when set) and
``<name>`` one of ``cub200``, ``cars196``, ``sop``.

The loaders return an :class:`ImageFileDataset`: the images stay on disk and are opened with PIL on
each access, converted to RGB and passed through a transform, by default the ImageNet-style
pipeline of :func:`imagenet_transforms` (random resized crop and flip for training; resize and
centre crop for evaluation) that the benchmarks' published numbers use.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from dmlkit.data.base import LabelledDataset, check_labels
from dmlkit.data.paths import DatasetNotFoundError, data_dir

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageFileDataset",
    "imagenet_transforms",
    "load_cub200",
    "load_cars196",
    "load_sop",
]

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
        labels: torch.Tensor | Sequence[int],
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

    def subset(self, indices: Sequence[int] | torch.Tensor, name: str | None = None) -> ImageFileDataset:
        """A new dataset of the chosen items, labels re-indexed to the classes that remain."""
        index = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        labels = self.labels[index]
        kept = torch.unique(labels)
        remap = torch.full((self.num_classes,), -1, dtype=torch.long)
        remap[kept] = torch.arange(kept.numel())
        info = [self.class_info[c] for c in kept.tolist()] if self.class_info else None
        return ImageFileDataset(
            [self.paths[i] for i in index.tolist()],
            remap[labels],
            [self.classes[c] for c in kept.tolist()],
            name=name or self.name,
            transform=self.transform,
            class_info=info,
        )


# --------------------------------------------------------------------------------------------
# Shared helpers


def _check_split(split: str) -> None:
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")


def _resolve_transform(transform: TransformArg, split: str, image_size: int) -> ImageTransform | None:
    if isinstance(transform, str):
        if transform != "imagenet":
            raise ValueError(f"transform must be a callable, None or 'imagenet', got {transform!r}")
        return imagenet_transforms(train=split == "train", size=image_size)
    return transform


def _search_dirs(root: str | os.PathLike[str] | None, name: str, nested: Sequence[str]) -> list[Path]:
    """``root`` (or ``<data_dir>/<name>``) and the sub-folders the archives unpack to."""
    base = Path(root).expanduser() if root is not None else data_dir() / name
    return [*(base / sub for sub in nested), base]


def _not_found(title: str, tried: Sequence[Path], layout: str, how: str) -> DatasetNotFoundError:
    lines = [
        f"{title} not found. Looked in:",
        *(f"  - {path}" for path in tried),
        "Expected layout:",
        *(f"  {line}" for line in layout.strip("\n").splitlines()),
        "How to get it (no automatic download):",
        *(f"  {line}" for line in how.strip("\n").splitlines()),
    ]
    return DatasetNotFoundError("\n".join(lines))


def _check_first_image(title: str, paths: Sequence[Path], annotation: Path) -> None:
    """Catch an annotation file whose images were not unpacked next to it (cheap: one file)."""
    if paths and not paths[0].is_file():
        raise DatasetNotFoundError(
            f"{title}: {annotation} lists {len(paths)} images but the first, {paths[0]}, is missing; "
            "unpack the image archive next to the annotation files"
        )


def _class_split(official_ids: np.ndarray, split: str, num_train_classes: int, title: str) -> np.ndarray:
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


def _build(
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


def _read_table(path: Path, columns: int, header: bool = False) -> list[list[str]]:
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


# --------------------------------------------------------------------------------------------
# CUB-200-2011

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
    image_size: int = 224,
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
        image_size: output side of the ``"imagenet"`` transforms.
        num_train_classes: the class boundary (100 in the standard protocol).

    Returns:
        An :class:`ImageFileDataset`; labels contiguous within the split in official class order,
        ``classes`` the species names, ``class_info`` the official class ids.

    Raises:
        DatasetNotFoundError: the annotation files or the images are not on disk.
    """
    _check_split(split)
    title = "CUB-200-2011"
    tried = _search_dirs(root, "cub200", ["CUB_200_2011"])
    required = ("images.txt", "image_class_labels.txt")
    folder = next((d for d in tried if all((d / f).is_file() for f in required)), None)
    if folder is None:
        raise _not_found(title, [d / "images.txt" for d in tried], _CUB_LAYOUT, _CUB_HOW)

    relative = {image_id: rel.strip() for image_id, rel in _read_table(folder / "images.txt", 2)}
    labels = _read_table(folder / "image_class_labels.txt", 2)
    if not labels:
        raise ValueError(f"{title}: {folder / 'image_class_labels.txt'} lists no image")
    missing = [image_id for image_id, _ in labels if image_id not in relative]
    if missing:
        raise ValueError(f"{title}: image ids {missing[:5]} of image_class_labels.txt are not in images.txt")
    paths = [folder / "images" / relative[image_id] for image_id, _ in labels]
    official_ids = np.array([int(class_id) for _, class_id in labels], dtype=np.int64)

    names: dict[int, str] = {}
    if (folder / "classes.txt").is_file():
        rows = _read_table(folder / "classes.txt", 2)
        names = {int(class_id): _cub_name(class_dir.strip()) for class_id, class_dir in rows}
    for image_id, class_id in labels:  # fall back on the image folder's name
        names.setdefault(int(class_id), _cub_name(relative[image_id].split("/")[0]))

    mask = _class_split(official_ids, split, num_train_classes, title)
    dataset = _build(
        paths, official_ids, names, mask, f"cub200-{split}", _resolve_transform(transform, split, image_size)
    )
    _check_first_image(title, dataset.paths, folder / "images.txt")
    return dataset


# --------------------------------------------------------------------------------------------
# Cars196

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
    image_size: int = 224,
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
        image_size: output side of the ``"imagenet"`` transforms.
        num_train_classes: the class boundary (98 in the standard protocol).

    Returns:
        An :class:`ImageFileDataset`; labels contiguous within the split in official class order,
        ``classes`` the make-model-year names, ``class_info`` the official class ids.

    Raises:
        DatasetNotFoundError: the annotation files or the images are not on disk.
    """
    _check_split(split)
    title = "Cars196"
    tried = _search_dirs(root, "cars196", ["stanford_cars"])
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
        raise _not_found(title, looked, _CARS_LAYOUT, _CARS_HOW)
    paths, official_ids, names, annotation = found
    if official_ids.size == 0:
        raise ValueError(f"{title}: {annotation} lists no image")

    mask = _class_split(official_ids, split, num_train_classes, title)
    dataset = _build(
        paths, official_ids, names, mask, f"cars196-{split}", _resolve_transform(transform, split, image_size)
    )
    _check_first_image(title, dataset.paths, annotation)
    return dataset


# --------------------------------------------------------------------------------------------
# Stanford Online Products

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
    image_size: int = 224,
) -> ImageFileDataset:
    """Load a split of Stanford Online Products (Oh Song et al., CVPR 2016).

    The split is the one the dataset ships: ``Ebay_train.txt`` (classes 1-11,318) and
    ``Ebay_test.txt`` (classes 11,319-22,634); ``"all"`` is both.

    Args:
        root: the folder holding ``Stanford_Online_Products/`` (or that folder itself); default
            ``<data_dir>/sop``.
        split: ``"train"``, ``"test"`` or ``"all"``.
        transform: a callable, ``None`` or ``"imagenet"`` (default), as in :func:`load_cub200`.
        image_size: output side of the ``"imagenet"`` transforms.

    Returns:
        An :class:`ImageFileDataset`; labels contiguous within the split in official class order,
        ``classes`` named ``"<super_class>/<product id>"``, ``class_info`` with the official class
        id, the super-class name and the super-class id (for hierarchy experiments).

    Raises:
        DatasetNotFoundError: the annotation files or the images are not on disk.
    """
    _check_split(split)
    title = "Stanford Online Products"
    tried = _search_dirs(root, "sop", ["Stanford_Online_Products"])
    files = ["Ebay_train.txt", "Ebay_test.txt"] if split == "all" else [f"Ebay_{split}.txt"]
    folder = next((d for d in tried if all((d / f).is_file() for f in files)), None)
    if folder is None:
        raise _not_found(title, [d / f for d in tried for f in files], _SOP_LAYOUT, _SOP_HOW)

    paths: list[Path] = []
    ids: list[int] = []
    names: dict[int, str] = {}
    info: dict[int, dict[str, Any]] = {}
    for file in files:
        for _, class_id, super_id, relative in _read_table(folder / file, 4, header=True):
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
    resolved = _resolve_transform(transform, split, image_size)
    dataset = _build(paths, official_ids, names, mask, f"sop-{split}", resolved, info)
    _check_first_image(title, dataset.paths, folder / files[0])
    return dataset
