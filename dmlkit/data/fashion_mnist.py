"""Fashion-MNIST, read from its IDX files on disk, with a class-disjoint split for metric learning.

Fashion-MNIST (Xiao, Rasul and Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking
Machine Learning Algorithms", arXiv:1708.07747, 2017) has 70,000 grey 28x28 images of Zalando
articles in 10 classes: the official split is 60,000 training and 10,000 test images, the same
classes on both sides.

Metric learning is judged on classes never seen in training, so the default here is a
*class-disjoint* split: the official training and test images are pooled and divided by class,
classes 0-4 (T-shirt/top, Trouser, Pullover, Dress, Coat) for ``train`` and 5-9 (Sandal, Shirt,
Sneaker, Bag, Ankle boot) for ``test``. ``split_by="official"`` keeps the 60k/10k image split.

Where the files are looked for, in order (the first folder that holds the files a split needs
wins; each file may be gzipped, ``.gz``):

1. an explicit ``root``, then ``<root>/fashion-mnist`` and ``<root>/FashionMNIST/raw``;
2. ``$DMLKIT_DATA``, ``$DMLKIT_DATA/fashion-mnist`` and ``$DMLKIT_DATA/FashionMNIST/raw``;
3. ``/usr/share/datasets/fashion-mnist``, where Debian's package ``dataset-fashion-mnist``
   installs the four gzipped files;
4. dmlkit's data folder (:func:`dmlkit.data.paths.data_dir`, ``~/.cache/dmlkit`` by default):
   ``<data_dir>/fashion-mnist`` and torchvision's layout ``<data_dir>/FashionMNIST/raw``.

Nothing is downloaded unless ``download=True``, which goes through
``torchvision.datasets.FashionMNIST`` into ``<root or data_dir>/FashionMNIST/raw``.

The IDX format (LeCun et al.'s MNIST format) is parsed here with NumPy: a 4-byte magic number
(two zero bytes, a type code, the number of dimensions), one big-endian ``uint32`` per dimension,
then the data. Magic numbers and sizes are checked, so a truncated or corrupt file is an
:class:`IDXFormatError` naming the file, never a silently wrong array.
"""

from __future__ import annotations

import functools
import gzip
import os
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from dmlkit.data.base import TensorImageDataset
from dmlkit.data.paths import DatasetNotFoundError, data_dir

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_FILES",
    "SYSTEM_DIRS",
    "IDXFormatError",
    "read_idx",
    "find_fashion_mnist",
    "load_fashion_mnist",
]

#: The 10 class names, indexed by the official label.
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

#: The IDX files of each official part: ``(images, labels)``, each possibly with ``.gz``.
FASHION_MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

#: Debian's package ``dataset-fashion-mnist`` and the folder it installs the four ``.gz`` files in.
DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

#: System folders searched after ``root`` and ``$DMLKIT_DATA``.
SYSTEM_DIRS: tuple[Path, ...] = (DEBIAN_DIR,)

DEFAULT_TRAIN_CLASSES: tuple[int, ...] = (0, 1, 2, 3, 4)
_IMAGE_SIDE = 28
_OFFICIAL_SIZES = {"train": 60_000, "test": 10_000}

# IDX type codes (the third byte of the magic number) and the NumPy type of the data.
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class IDXFormatError(ValueError):
    """An IDX file is truncated, corrupt, or not the kind of file expected."""


def _read_bytes(path: Path) -> bytes:
    """The decompressed content of ``path`` (gzip when its name ends in ``.gz``)."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise IDXFormatError(
            f"{path}: the gzip stream is truncated or corrupt ({error}); delete the file and get it again"
        ) from error


def read_idx(path: str | os.PathLike[str], ndim: int | None = None) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a NumPy array.

    Args:
        path: the file; a name ending in ``.gz`` is decompressed.
        ndim: the number of dimensions expected (3 for images, 1 for labels), or ``None`` to
            accept any.

    Returns:
        The array, in native byte order, of the shape recorded in the header; for byte data
        it is a read-only view of the file's content (copy it before writing).

    Raises:
        IDXFormatError: bad magic number, unknown type code, wrong number of dimensions, or a
            data size that does not match the header (truncated or padded file).
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise IDXFormatError(f"{path}: {len(raw)} bytes is too short for an IDX header")
    zero0, zero1, code, dims = raw[0], raw[1], raw[2], raw[3]
    magic = int.from_bytes(raw[:4], "big")
    if zero0 != 0 or zero1 != 0 or code not in _IDX_DTYPES:
        raise IDXFormatError(
            f"{path}: magic number 0x{magic:08X} is not an IDX header (expected 0x000008NN for "
            "unsigned bytes); the file is corrupt or of another format"
        )
    if ndim is not None and dims != ndim:
        raise IDXFormatError(
            f"{path}: expected an IDX file of {ndim} dimension(s) (magic 0x{0x800 + ndim:08X}), got "
            f"{dims} (magic 0x{magic:08X})"
        )
    header = 4 + 4 * dims
    if len(raw) < header:
        raise IDXFormatError(f"{path}: truncated header ({len(raw)} bytes, need {header})")
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=dims, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise IDXFormatError(
            f"{path}: the header announces shape {shape} ({expected} data bytes) but the file holds "
            f"{len(raw) - header} data bytes; it is truncated or corrupt"
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _candidate_dirs(root: str | os.PathLike[str] | None) -> list[Path]:
    """Every folder searched, in order, without duplicates."""

    def layouts(base: Path) -> list[Path]:
        return [base, base / "fashion-mnist", base / "FashionMNIST" / "raw"]

    dirs: list[Path] = []
    if root is not None:
        dirs += layouts(Path(root).expanduser())
    override = os.environ.get("DMLKIT_DATA")
    if override:
        dirs += layouts(Path(override).expanduser())
    dirs += list(SYSTEM_DIRS)
    base = data_dir()
    dirs += [base / "fashion-mnist", base / "FashionMNIST" / "raw"]
    unique: list[Path] = []
    for folder in dirs:
        if folder not in unique:
            unique.append(folder)
    return unique


def _find_file(folder: Path, name: str) -> Path | None:
    """``folder/name`` or ``folder/name.gz``, the uncompressed one first (faster to read)."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_fashion_mnist(
    parts: Iterable[str] = ("train", "test"), root: str | os.PathLike[str] | None = None
) -> dict[str, tuple[Path, Path]]:
    """Locate the IDX files of the official ``parts`` (``"train"``, ``"test"``).

    Returns:
        ``{part: (images_path, labels_path)}``, all from the first folder (see the module
        docstring for the order) that holds every file needed.

    Raises:
        DatasetNotFoundError: no folder holds them all; the message lists every folder tried and
            how to get the files.
    """
    parts = tuple(parts)
    names = [name for part in parts for name in FASHION_MNIST_FILES[part]]
    tried = _candidate_dirs(root)
    notes: list[str] = []
    for folder in tried:
        found = {name: _find_file(folder, name) for name in names}
        if all(path is not None for path in found.values()):
            paths: dict[str, Path] = {name: path for name, path in found.items() if path is not None}
            return {part: (paths[FASHION_MNIST_FILES[part][0]], paths[FASHION_MNIST_FILES[part][1]]) for part in parts}
        present = [name for name, path in found.items() if path is not None]
        if present:
            missing = [name for name, path in found.items() if path is None]
            notes.append(f"{folder} has {', '.join(present)} but lacks {', '.join(missing)}")
    raise DatasetNotFoundError(_not_found_message(names, tried, notes))


def _not_found_message(names: Sequence[str], tried: Sequence[Path], notes: Sequence[str]) -> str:
    lines = [
        "Fashion-MNIST not found. Looked for " + ", ".join(f"{name}[.gz]" for name in names) + " in:",
        *(f"  - {folder}" for folder in tried),
    ]
    if notes:
        lines += ["Incomplete folders:", *(f"  - {note}" for note in notes)]
    lines += [
        "To get the files, any one of:",
        f"  - Debian/Ubuntu: `apt-get install {DEBIAN_PACKAGE}` (installs the four gzipped IDX files in {DEBIAN_DIR});",
        "  - call load_fashion_mnist(..., download=True) to fetch them with "
        "torchvision.datasets.FashionMNIST into <root or data_dir>/FashionMNIST/raw;",
        "  - copy train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
        "t10k-labels-idx1-ubyte (gzipped or not) from the zalandoresearch/fashion-mnist "
        "repository's data/fashion folder into $DMLKIT_DATA/fashion-mnist, or pass root=.",
    ]
    return "\n".join(lines)


@functools.lru_cache(maxsize=4)
def _read_part_cached(
    images_path: str, labels_path: str, stamp: tuple[int, int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Parse and check one official part; cached on the files' paths, sizes and times."""
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1)
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise IDXFormatError(
            f"{images_path}, {labels_path}: expected unsigned-byte IDX files, got {images.dtype} and {labels.dtype}"
        )
    if images.shape[1:] != (_IMAGE_SIDE, _IMAGE_SIDE):
        raise IDXFormatError(
            f"{images_path}: Fashion-MNIST images are {_IMAGE_SIDE}x{_IMAGE_SIDE}, got "
            f"{images.shape[1]}x{images.shape[2]}"
        )
    if images.shape[0] != labels.shape[0]:
        raise IDXFormatError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds {labels.shape[0]} labels"
        )
    if labels.size and int(labels.max()) >= len(FASHION_MNIST_CLASSES):
        raise IDXFormatError(
            f"{labels_path}: labels must lie in [0, {len(FASHION_MNIST_CLASSES)}), got a {int(labels.max())}"
        )
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def _read_part(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    image_stat, label_stat = images_path.stat(), labels_path.stat()
    stamp = (image_stat.st_size, image_stat.st_mtime_ns, label_stat.st_size, label_stat.st_mtime_ns)
    return _read_part_cached(str(images_path), str(labels_path), stamp)


def _download(root: str | os.PathLike[str] | None, parts: Iterable[str]) -> Path:
    """Fetch the files with torchvision into ``<target>/FashionMNIST/raw``; return that folder.

    torchvision fetches all four files whichever part is asked for, so one call is enough.
    """
    from torchvision.datasets import FashionMNIST

    target = Path(root).expanduser() if root is not None else data_dir()
    target.mkdir(parents=True, exist_ok=True)
    FashionMNIST(str(target), train="train" in tuple(parts), download=True)
    return target / "FashionMNIST" / "raw"


def _check_train_classes(train_classes: Iterable[int] | None) -> tuple[int, ...]:
    if train_classes is None:
        return DEFAULT_TRAIN_CLASSES
    chosen = tuple(int(c) for c in train_classes)
    num_classes = len(FASHION_MNIST_CLASSES)
    bad = [c for c in chosen if not 0 <= c < num_classes]
    if bad:
        raise ValueError(f"train_classes must lie in [0, {num_classes}), got {bad}")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"train_classes has repeated classes: {list(chosen)}")
    if not 0 < len(chosen) < num_classes:
        raise ValueError(
            f"train_classes must hold between 1 and {num_classes - 1} classes so both splits have "
            f"one, got {len(chosen)}"
        )
    return tuple(sorted(chosen))


def load_fashion_mnist(
    split: str = "train",
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
    split_by: str = "classes",
    train_classes: Iterable[int] | None = None,
) -> TensorImageDataset:
    """Load a split of Fashion-MNIST (Xiao et al., 2017) from its IDX files.

    Args:
        split: ``"train"``, ``"test"`` or ``"all"`` (the 70,000 images, 10 classes).
        root: a folder to search first (see the module docstring for the whole search order) and
            the folder downloads go to.
        download: when the files are nowhere on disk, fetch them with
            ``torchvision.datasets.FashionMNIST``; with ``False`` (default) nothing is ever
            downloaded and missing files raise :class:`DatasetNotFoundError`.
        split_by: ``"classes"`` (default, the metric-learning protocol: the official training and
            test images pooled, then divided by class) or ``"official"`` (the 60,000 / 10,000
            image split, all 10 classes on both sides).
        train_classes: with ``split_by="classes"``, the official class indices of the ``train``
            side (default 0-4); the other classes form ``test``.

    Returns:
        A :class:`~dmlkit.data.base.TensorImageDataset` with ``uint8`` images ``(N, 1, 28, 28)``,
        labels contiguous within the split (kept classes in official order) and the class names.

    Raises:
        DatasetNotFoundError: the files are not on disk and ``download`` is false.
        IDXFormatError: a file is truncated or corrupt.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    if split_by not in ("classes", "official"):
        raise ValueError(f"split_by must be 'classes' or 'official', got {split_by!r}")
    if split_by == "official" and train_classes is not None:
        raise ValueError("train_classes only applies to split_by='classes'")
    chosen = _check_train_classes(train_classes)

    parts = (split,) if split_by == "official" and split != "all" else ("train", "test")
    try:
        files = find_fashion_mnist(parts, root)
    except DatasetNotFoundError:
        if not download:
            raise
        _download(root, parts)
        files = find_fashion_mnist(parts, root)

    num_classes = len(FASHION_MNIST_CLASSES)
    if split == "all" or split_by == "official":
        kept = np.arange(num_classes)
    else:
        in_train = np.isin(np.arange(num_classes), chosen)
        kept = np.flatnonzero(in_train if split == "train" else ~in_train)
    # Gather each part's images of the kept classes (new, writable arrays: the cache stays intact)
    # and number the kept classes 0, 1, ... in official order.
    images_parts, labels_parts = [], []
    for part in parts:
        part_images, part_labels = _read_part(*files[part])
        index = np.flatnonzero(np.isin(part_labels, kept))
        images_parts.append(part_images[index])
        labels_parts.append(part_labels[index])
    remap = np.full(num_classes, -1, dtype=np.int64)
    remap[kept] = np.arange(kept.size)
    return TensorImageDataset(
        torch.from_numpy(np.concatenate(images_parts)).unsqueeze(1),
        torch.from_numpy(remap[np.concatenate(labels_parts)]),
        [FASHION_MNIST_CLASSES[c] for c in kept],
        name=f"fashion-mnist-{split}",
    )
