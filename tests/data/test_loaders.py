"""Loaders of on-disk datasets: Fashion-MNIST, scikit-learn's digits and the three DML benchmarks.

Every test except the one marked ``fashion_mnist`` builds a tiny tree in ``tmp_path`` in the exact
layout of the real dataset (IDX files, CUB's text files, a ``cars_annos.mat`` written with scipy,
SOP's ``Ebay_*.txt``), so nothing is downloaded and the suite runs in seconds.
"""

from __future__ import annotations

import gzip
import os
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dmlkit.data import fashion_mnist as fm
from dmlkit.data.base import TensorImageDataset
from dmlkit.data.benchmarks import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageFileDataset,
    imagenet_transforms,
    load_cars196,
    load_cub200,
    load_sop,
)
from dmlkit.data.digits import load_digits
from dmlkit.data.fashion_mnist import (
    FASHION_MNIST_CLASSES,
    IDXFormatError,
    load_fashion_mnist,
    read_idx,
)
from dmlkit.data.paths import DatasetNotFoundError

REAL_SYSTEM_DIRS = fm.SYSTEM_DIRS


@pytest.fixture(autouse=True)
def isolated_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty ``$DMLKIT_DATA``, no system folder, and a torchvision that must not download."""
    data = tmp_path / "dmlkit-data"
    data.mkdir()
    monkeypatch.setenv("DMLKIT_DATA", str(data))
    monkeypatch.setattr(fm, "SYSTEM_DIRS", (tmp_path / "no-system-dir",))

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a loader tried to download through torchvision")

    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", forbidden)
    fm._read_part_cached.cache_clear()
    return data


def assert_contiguous(labels: torch.Tensor, num_classes: int) -> None:
    assert labels.dtype == torch.long
    assert torch.equal(torch.unique(labels), torch.arange(num_classes))


# --------------------------------------------------------------------------------------------
# Fashion-MNIST


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file: magic 0x000008NN, big-endian sizes, then the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as handle:
            handle.write(idx_bytes(array))
    else:
        path.write_bytes(idx_bytes(array))
    return path


def fake_fashion(folder: Path, gz: bool = False, per_class: tuple[int, int] = (3, 2)) -> dict[str, np.ndarray]:
    """Write the four IDX files with ``per_class`` train/test images of each of the 10 classes.

    Each image is filled with a value that encodes its part and index, so the test can check
    that images and labels stay paired.
    """
    arrays: dict[str, np.ndarray] = {}
    for part, count, offset in (("train", per_class[0], 0), ("test", per_class[1], 100)):
        labels = np.tile(np.arange(10, dtype=np.uint8), count)
        images = np.empty((labels.size, 28, 28), dtype=np.uint8)
        images[:] = (offset + 3 * np.arange(labels.size) % 100).astype(np.uint8)[:, None, None]
        images[:, 0, 0] = labels  # the label, readable back from the image
        image_name, label_name = fm.FASHION_MNIST_FILES[part]
        write_idx(folder / image_name, images, gz)
        write_idx(folder / label_name, labels, gz)
        arrays[f"{part}_images"], arrays[f"{part}_labels"] = images, labels
    return arrays


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("layout", [".", "fashion-mnist", "FashionMNIST/raw"])
def test_fashion_mnist_class_split(tmp_path: Path, gz: bool, layout: str) -> None:
    root = tmp_path / "root"
    fake_fashion(root / layout, gz=gz)
    train = load_fashion_mnist("train", root=root)
    test = load_fashion_mnist("test", root=root)
    everything = load_fashion_mnist("all", root=root)

    assert train.images.shape == (25, 1, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (25, 1, 28, 28)
    assert everything.images.shape == (50, 1, 28, 28)
    assert train.classes == list(FASHION_MNIST_CLASSES[:5])
    assert test.classes == list(FASHION_MNIST_CLASSES[5:])
    assert everything.classes == list(FASHION_MNIST_CLASSES)
    assert not set(train.classes) & set(test.classes)
    for dataset in (train, test, everything):
        assert_contiguous(dataset.labels, dataset.num_classes)
    # the label was written into pixel (0, 0): images and labels stayed paired
    assert torch.equal(train.images[:, 0, 0, 0].long(), train.labels)
    assert torch.equal(test.images[:, 0, 0, 0].long(), test.labels + 5)
    assert train.name == "fashion-mnist-train"


def test_fashion_mnist_official_split(tmp_path: Path) -> None:
    arrays = fake_fashion(tmp_path, gz=True)
    train = load_fashion_mnist("train", root=tmp_path, split_by="official")
    test = load_fashion_mnist("test", root=tmp_path, split_by="official")
    assert len(train) == 30 and len(test) == 20
    assert train.num_classes == test.num_classes == 10
    assert torch.equal(train.images[:, 0], torch.from_numpy(arrays["train_images"]))
    assert torch.equal(test.labels, torch.from_numpy(arrays["test_labels"]).long())
    assert len(load_fashion_mnist("all", root=tmp_path, split_by="official")) == 50


def test_fashion_mnist_official_train_needs_only_train_files(tmp_path: Path) -> None:
    fake_fashion(tmp_path)
    for name in fm.FASHION_MNIST_FILES["test"]:
        (tmp_path / name).unlink()
    assert len(load_fashion_mnist("train", root=tmp_path, split_by="official")) == 30
    with pytest.raises(DatasetNotFoundError, match="lacks t10k-images-idx3-ubyte"):
        load_fashion_mnist("train", root=tmp_path)  # the class split pools both parts


def test_fashion_mnist_train_classes(tmp_path: Path) -> None:
    fake_fashion(tmp_path)
    train = load_fashion_mnist("train", root=tmp_path, train_classes=[7, 2])
    test = load_fashion_mnist("test", root=tmp_path, train_classes=[7, 2])
    assert train.classes == ["Pullover", "Sneaker"]
    assert_contiguous(train.labels, 2)
    assert len(test.classes) == 8 and "Sneaker" not in test.classes
    assert_contiguous(test.labels, 8)
    with pytest.raises(ValueError, match="train_classes must lie in"):
        load_fashion_mnist("train", root=tmp_path, train_classes=[3, 10])
    with pytest.raises(ValueError, match="between 1 and 9"):
        load_fashion_mnist("train", root=tmp_path, train_classes=range(10))
    with pytest.raises(ValueError, match="repeated"):
        load_fashion_mnist("train", root=tmp_path, train_classes=[1, 1])
    with pytest.raises(ValueError, match="only applies"):
        load_fashion_mnist("train", root=tmp_path, split_by="official", train_classes=[1])


def test_fashion_mnist_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="split must be"):
        load_fashion_mnist("val", root=tmp_path)
    with pytest.raises(ValueError, match="split_by must be"):
        load_fashion_mnist("train", root=tmp_path, split_by="images")


@pytest.mark.parametrize("layout", ["", "fashion-mnist", "FashionMNIST/raw"])
def test_fashion_mnist_found_under_dmlkit_data(isolated_data: Path, layout: str) -> None:
    fake_fashion(isolated_data / layout, gz=True)
    assert len(load_fashion_mnist("all")) == 50


def test_fashion_mnist_found_in_system_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    system = tmp_path / "usr-share-datasets-fashion-mnist"
    fake_fashion(system, gz=True)
    monkeypatch.setattr(fm, "SYSTEM_DIRS", (system,))
    assert len(load_fashion_mnist("test")) == 25


def test_fashion_mnist_explicit_root_comes_first(isolated_data: Path, tmp_path: Path) -> None:
    fake_fashion(isolated_data, per_class=(1, 1))
    fake_fashion(tmp_path / "mine", per_class=(2, 1))
    assert len(load_fashion_mnist("all", root=tmp_path / "mine")) == 30
    assert len(load_fashion_mnist("all")) == 20


def test_fashion_mnist_missing_lists_paths_and_never_downloads(isolated_data: Path, tmp_path: Path) -> None:
    root = tmp_path / "empty-root"
    with pytest.raises(DatasetNotFoundError) as caught:
        load_fashion_mnist("train", root=root, download=False)
    message = str(caught.value)
    expected = [
        root,
        root / "fashion-mnist",
        root / "FashionMNIST" / "raw",
        isolated_data,
        isolated_data / "fashion-mnist",
        isolated_data / "FashionMNIST" / "raw",
        tmp_path / "no-system-dir",
    ]
    for path in expected:
        assert f"- {path}\n" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "download=True" in message
    assert "train-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message
    assert isinstance(caught.value, FileNotFoundError)
    assert not root.exists()  # nothing was created, let alone downloaded


def test_fashion_mnist_download_goes_through_torchvision(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[tuple[str, bool, bool]] = []

    def fake_torchvision(root: str, train: bool = True, download: bool = False) -> None:
        calls.append((root, train, download))
        fake_fashion(Path(root) / "FashionMNIST" / "raw", gz=False)

    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", fake_torchvision)
    dataset = load_fashion_mnist("train", root=tmp_path / "dl", download=True)
    assert calls == [(str(tmp_path / "dl"), True, True)]
    assert len(dataset) == 25
    load_fashion_mnist("test", root=tmp_path / "dl", download=True)  # on disk now: no second call
    assert len(calls) == 1


def test_read_idx_round_trip(tmp_path: Path) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for gz in (False, True):
        path = write_idx(tmp_path / f"x{gz}-idx3-ubyte", array, gz)
        assert np.array_equal(read_idx(path, ndim=3), array)
    with pytest.raises(IDXFormatError, match="expected an IDX file of 1 dimension"):
        read_idx(path, ndim=1)


def test_corrupt_idx_is_a_clear_error(tmp_path: Path) -> None:
    good = idx_bytes(np.zeros((4, 28, 28), dtype=np.uint8))
    cases = {
        "magic": b"\x12\x34" + good[2:],
        "truncated": good[:-10],
        "padded": good + b"\x00",
        "header": good[:6],
        "tiny": b"\x00\x00",
    }
    messages = {
        "magic": "magic number 0x1234",
        "truncated": "truncated or corrupt",
        "padded": "truncated or corrupt",
        "header": "truncated header",
        "tiny": "too short",
    }
    for case, content in cases.items():
        path = tmp_path / f"{case}-idx3-ubyte"
        path.write_bytes(content)
        with pytest.raises(IDXFormatError, match=messages[case]) as caught:
            read_idx(path, ndim=3)
        assert str(path) in str(caught.value)

    broken_gz = tmp_path / "broken-idx3-ubyte.gz"
    broken_gz.write_bytes(gzip.compress(good)[:-20])
    with pytest.raises(IDXFormatError, match="gzip stream is truncated or corrupt"):
        read_idx(broken_gz)


def test_corrupt_fashion_files_are_reported(tmp_path: Path) -> None:
    fake_fashion(tmp_path)
    labels = tmp_path / "train-labels-idx1-ubyte"
    labels.write_bytes(idx_bytes(np.zeros(29, dtype=np.uint8)))  # one label short
    with pytest.raises(IDXFormatError, match="30 images but .* 29 labels"):
        load_fashion_mnist("train", root=tmp_path)
    labels.write_bytes(idx_bytes(np.full(30, 12, dtype=np.uint8)))
    with pytest.raises(IDXFormatError, match=r"labels must lie in \[0, 10\)"):
        load_fashion_mnist("train", root=tmp_path)
    images = tmp_path / "train-images-idx3-ubyte"
    images.write_bytes(idx_bytes(np.zeros((30, 8, 8), dtype=np.uint8)))
    with pytest.raises(IDXFormatError, match="are 28x28"):
        load_fashion_mnist("train", root=tmp_path)


@pytest.mark.fashion_mnist
def test_real_fashion_mnist(monkeypatch: pytest.MonkeyPatch) -> None:
    system = REAL_SYSTEM_DIRS[0]
    names = [name for pair in fm.FASHION_MNIST_FILES.values() for name in pair]
    if not all((system / f"{name}.gz").is_file() or (system / name).is_file() for name in names):
        pytest.skip(
            f"Fashion-MNIST is not in {system}: `apt-get install dataset-fashion-mnist` "
            "(Debian/Ubuntu) installs it there"
        )
    monkeypatch.setattr(fm, "SYSTEM_DIRS", REAL_SYSTEM_DIRS)
    everything = load_fashion_mnist("all")
    assert everything.images.shape == (70_000, 1, 28, 28)
    assert everything.class_counts().tolist() == [7_000] * 10
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    assert len(train) == len(test) == 35_000
    official = load_fashion_mnist("train", split_by="official")
    assert len(official) == 60_000 and official.num_classes == 10


# --------------------------------------------------------------------------------------------
# scikit-learn digits


def test_digits_class_split() -> None:
    from sklearn.datasets import load_digits as sklearn_digits

    reference = sklearn_digits()
    train, test, everything = (load_digits(split) for split in ("train", "test", "all"))
    assert everything.images.shape == (1797, 1, 8, 8) and everything.images.dtype == torch.uint8
    assert int(everything.images.min()) == 0 and int(everything.images.max()) == 255
    expected = np.rint(reference.images * 255 / 16).astype(np.uint8)
    assert np.array_equal(everything.images[:, 0].numpy(), expected)
    assert train.classes == ["0", "1", "2", "3", "4"] and test.classes == ["5", "6", "7", "8", "9"]
    assert len(train) + len(test) == 1797
    for dataset in (train, test, everything):
        assert_contiguous(dataset.labels, dataset.num_classes)
    odd = load_digits("train", train_classes=[1, 3, 5, 7, 9])
    assert odd.classes == ["1", "3", "5", "7", "9"]


def test_digits_image_split_is_seeded_and_disjoint() -> None:
    train = load_digits("train", split_by="images", seed=3)
    test = load_digits("test", split_by="images", seed=3)
    assert train.num_classes == test.num_classes == 10
    assert len(train) + len(test) == 1797
    assert torch.equal(train.images, load_digits("train", split_by="images", seed=3).images)
    assert not torch.equal(train.images, load_digits("train", split_by="images", seed=4).images)

    def items(dataset: TensorImageDataset) -> Counter[tuple[bytes, str]]:
        return Counter(
            (bytes(image.numpy().ravel()), dataset.classes[label])
            for image, label in zip(dataset.images, dataset.labels.tolist())
        )

    # train and test partition the whole set: together they hold every image exactly once
    assert items(train) + items(test) == items(load_digits("all"))
    with pytest.raises(ValueError, match="split_by must be"):
        load_digits("train", split_by="official")


# --------------------------------------------------------------------------------------------
# The benchmarks: helpers writing tiny trees in the real layouts


def tiny_image(path: Path, seed: int, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    channels = 3 if mode == "RGB" else 1
    pixels = rng.integers(0, 256, size=(6, 7, channels), dtype=np.uint8).squeeze()
    Image.fromarray(pixels, mode=mode).save(path)


def fake_cub(base: Path, num_classes: int, per_class: int = 1) -> Path:
    """``base/CUB_200_2011`` with ``per_class`` JPEGs of each class ``1..num_classes``."""
    folder = base / "CUB_200_2011"
    images, labels, classes = [], [], []
    image_id = 0
    for class_id in range(1, num_classes + 1):
        class_dir = f"{class_id:03d}.Bird_number_{class_id}"
        classes.append(f"{class_id} {class_dir}")
        for j in range(per_class):
            image_id += 1
            relative = f"{class_dir}/Bird_Number_{class_id}_{j:04d}_{image_id}.jpg"
            mode = "L" if image_id == 1 else "RGB"  # a grey file must still load as RGB
            tiny_image(folder / "images" / relative, image_id, mode)
            images.append(f"{image_id} {relative}")
            labels.append(f"{image_id} {class_id}")
    (folder / "images.txt").write_text("\n".join(images) + "\n")
    (folder / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    (folder / "classes.txt").write_text("\n".join(classes) + "\n")
    return folder


def mat_struct_array(records: list[dict[str, object]]) -> np.ndarray:
    """A (1, N) MATLAB struct array, as savemat writes and the real annotation files hold."""
    fields = list(records[0])
    array = np.empty((1, len(records)), dtype=[(f, object) for f in fields])
    for i, record in enumerate(records):
        for field in fields:
            array[0, i][field] = record[field]
    return array


def fake_cars_annos(folder: Path, num_classes: int, per_class: int = 1) -> Path:
    """``cars_annos.mat`` + ``car_ims/`` as in the Stanford download (classes 1..num_classes)."""
    from scipy.io import loadmat, savemat

    records = []
    for i in range(num_classes * per_class):
        class_id = i // per_class + 1
        relative = f"car_ims/{i + 1:06d}.jpg"
        tiny_image(folder / relative, i)
        records.append(
            {
                "relative_im_path": relative,
                "bbox_x1": np.uint8(1),
                "bbox_y1": np.uint8(1),
                "bbox_x2": np.uint8(5),
                "bbox_y2": np.uint8(4),
                "class": np.uint8(class_id),
                "test": np.uint8(i % 2),
            }
        )
    names = np.empty((1, num_classes), dtype=object)
    names[0, :] = [f"Make{c} Model {2000 + c}" for c in range(1, num_classes + 1)]
    path = folder / "cars_annos.mat"
    savemat(str(path), {"annotations": mat_struct_array(records), "class_names": names})
    # the raw layout other code reads from the real file: a[0][i][0][0] path, a[0][i][5][0][0] class
    raw = loadmat(str(path))
    assert raw["annotations"].shape == (1, num_classes * per_class)
    assert raw["annotations"][0][0][0][0] == "car_ims/000001.jpg"
    assert int(raw["annotations"][0][0][5][0][0]) == 1
    assert str(raw["class_names"][0, 0][0]) == "Make1 Model 2001"
    return folder


# --------------------------------------------------------------------------------------------
# CUB-200-2011


def test_cub_standard_split_200_classes(tmp_path: Path) -> None:
    fake_cub(tmp_path, num_classes=200)
    train = load_cub200(tmp_path, "train", image_size=32)
    test = load_cub200(tmp_path, "test", image_size=32)
    assert len(train) == train.num_classes == 100 and len(test) == test.num_classes == 100
    assert_contiguous(train.labels, 100)
    assert_contiguous(test.labels, 100)
    assert train.classes[0] == "Bird number 1" and test.classes[0] == "Bird number 101"
    train_ids = {info["official_id"] for info in train.class_info}
    test_ids = {info["official_id"] for info in test.class_info}
    assert train_ids == set(range(1, 101)) and test_ids == set(range(101, 201))
    image, label = train[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32 and label == 0
    assert train.paths[0].is_file() and train.name == "cub200-train"
    assert len(load_cub200(tmp_path, "all", transform=None)) == 200


def test_cub_parametrised_boundary_and_pil_items(tmp_path: Path) -> None:
    folder = fake_cub(tmp_path, num_classes=4, per_class=3)
    train = load_cub200(folder, "train", transform=None, num_train_classes=2)  # root = CUB_200_2011
    test = load_cub200(tmp_path, "test", transform=None, num_train_classes=2)
    assert len(train) == len(test) == 6
    assert train.classes == ["Bird number 1", "Bird number 2"]
    assert test.classes == ["Bird number 3", "Bird number 4"]
    image, _label = train[0]  # written as a grey (mode "L") JPEG
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (7, 6)
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="num_train_classes must lie in"):
        load_cub200(tmp_path, "train", num_train_classes=4)
    with pytest.raises(ValueError, match="split must be"):
        load_cub200(tmp_path, "val")


def test_cub_under_dmlkit_data(isolated_data: Path) -> None:
    fake_cub(isolated_data / "cub200", num_classes=4)
    assert load_cub200(split="test", num_train_classes=2).num_classes == 2


def test_cub_missing_lists_paths(tmp_path: Path, isolated_data: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as caught:
        load_cub200(tmp_path / "nowhere")
    message = str(caught.value)
    assert str(tmp_path / "nowhere" / "CUB_200_2011" / "images.txt") in message
    assert str(tmp_path / "nowhere" / "images.txt") in message
    assert "Caltech-UCSD Birds-200-2011" in message and "image_class_labels.txt" in message
    with pytest.raises(DatasetNotFoundError, match=str(isolated_data / "cub200")):
        load_cub200()


def test_cub_annotations_without_images(tmp_path: Path) -> None:
    folder = fake_cub(tmp_path, num_classes=4)
    first = folder / "images" / "001.Bird_number_1" / "Bird_Number_1_0000_1.jpg"
    first.unlink()
    with pytest.raises(DatasetNotFoundError, match="is missing"):
        load_cub200(tmp_path, num_train_classes=2)


# --------------------------------------------------------------------------------------------
# Cars196


def test_cars_annos_standard_split_196_classes(tmp_path: Path) -> None:
    fake_cars_annos(tmp_path, num_classes=196)
    train = load_cars196(tmp_path, "train", image_size=32)
    test = load_cars196(tmp_path, "test", transform=None)
    assert len(train) == train.num_classes == 98 and len(test) == test.num_classes == 98
    assert_contiguous(train.labels, 98)
    assert_contiguous(test.labels, 98)
    assert train.classes[0] == "Make1 Model 2001" and test.classes[0] == "Make99 Model 2099"
    assert {info["official_id"] for info in test.class_info} == set(range(99, 197))
    assert test.paths[0] == tmp_path / "car_ims" / "000099.jpg"
    image, label = train[97]
    assert image.shape == (3, 32, 32) and label == 97
    assert isinstance(test[0][0], Image.Image)


def test_cars_annos_parametrised_boundary(tmp_path: Path) -> None:
    fake_cars_annos(tmp_path / "stanford_cars", num_classes=4, per_class=2)  # nested folder
    train = load_cars196(tmp_path, "train", num_train_classes=2, transform=None)
    test = load_cars196(tmp_path, "test", num_train_classes=2, transform=None)
    assert len(train) == len(test) == 4
    assert train.labels.tolist() == [0, 0, 1, 1] and test.labels.tolist() == [0, 0, 1, 1]
    assert not set(train.classes) & set(test.classes)


def test_cars_devkit_layout(tmp_path: Path) -> None:
    """torchvision's StanfordCars layout: official train and test images are pooled, then split."""
    from scipy.io import savemat

    devkit = tmp_path / "devkit"
    devkit.mkdir()
    names = np.empty((1, 4), dtype=object)
    names[0, :] = ["A 1", "B 2", "C 3", "D 4"]
    savemat(str(devkit / "cars_meta.mat"), {"class_names": names})
    for part, classes, target in (
        ("train", [1, 3, 2, 4], devkit / "cars_train_annos.mat"),
        ("test", [4, 1, 2, 3], tmp_path / "cars_test_annos_withlabels.mat"),
    ):
        records = []
        for i, class_id in enumerate(classes):
            tiny_image(tmp_path / f"cars_{part}" / f"{i + 1:05d}.jpg", i)
            records.append(
                {
                    "bbox_x1": np.uint8(1),
                    "bbox_y1": np.uint8(1),
                    "bbox_x2": np.uint8(4),
                    "bbox_y2": np.uint8(4),
                    "class": np.uint8(class_id),
                    "fname": f"{i + 1:05d}.jpg",
                }
            )
        savemat(str(target), {"annotations": mat_struct_array(records)})
    train = load_cars196(tmp_path, "train", num_train_classes=2, transform=None)
    test = load_cars196(tmp_path, "test", num_train_classes=2, transform=None)
    assert len(train) == len(test) == 4
    assert train.classes == ["A 1", "B 2"] and test.classes == ["C 3", "D 4"]
    assert {p.parent.name for p in train.paths} == {"cars_train", "cars_test"}
    assert train[0][0].mode == "RGB"

    (tmp_path / "cars_test_annos_withlabels.mat").unlink()
    with pytest.raises(DatasetNotFoundError, match="cars_test_annos_withlabels.mat"):
        load_cars196(tmp_path, num_train_classes=2)


def test_cars_missing_lists_paths(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as caught:
        load_cars196(tmp_path)
    message = str(caught.value)
    for folder in (tmp_path, tmp_path / "stanford_cars"):
        assert str(folder / "cars_annos.mat") in message
        assert str(folder / "devkit" / "cars_train_annos.mat") in message
    assert "Stanford Cars Dataset" in message and "car_ims" in message


# --------------------------------------------------------------------------------------------
# Stanford Online Products


def fake_sop(base: Path) -> Path:
    """Train classes 1-3, test classes 4-6, two images each, in two super-classes."""
    folder = base / "Stanford_Online_Products"
    rows = {"train": [], "test": []}
    image_id = 0
    for class_id in range(1, 7):
        super_id, super_dir = (1, "bicycle_final") if class_id % 2 else (2, "chair_final")
        product = 1000 + class_id
        for j in range(2):
            image_id += 1
            relative = f"{super_dir}/{product}_{j}.JPG"
            tiny_image(folder / relative, image_id)
            part = "train" if class_id <= 3 else "test"
            rows[part].append(f"{image_id} {class_id} {super_id} {relative}")
    for part, lines in rows.items():
        text = "image_id class_id super_class_id path\n" + "\n".join(lines) + "\n"
        (folder / f"Ebay_{part}.txt").write_text(text)
    return folder


def test_sop_splits(tmp_path: Path) -> None:
    fake_sop(tmp_path)
    train = load_sop(tmp_path, "train", image_size=32)
    test = load_sop(tmp_path / "Stanford_Online_Products", "test", transform=None)
    everything = load_sop(tmp_path, "all", transform=None)
    assert len(train) == len(test) == 6 and len(everything) == 12
    assert train.num_classes == test.num_classes == 3 and everything.num_classes == 6
    for dataset in (train, test, everything):
        assert_contiguous(dataset.labels, dataset.num_classes)
    assert train.classes == ["bicycle/1001", "chair/1002", "bicycle/1003"]
    assert test.class_info[0] == {"official_id": 4, "super_class": "chair", "super_class_id": 2}
    assert not set(train.classes) & set(test.classes)
    image, label = train[5]
    assert image.shape == (3, 32, 32) and label == 2


def test_sop_missing_lists_paths(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as caught:
        load_sop(tmp_path, "all")
    message = str(caught.value)
    for folder in (tmp_path, tmp_path / "Stanford_Online_Products"):
        assert str(folder / "Ebay_train.txt") in message and str(folder / "Ebay_test.txt") in message
    assert "Stanford Online Products" in message and "super_class_id" in message


# --------------------------------------------------------------------------------------------
# Transforms and the file-backed dataset


def test_imagenet_transforms() -> None:
    from torchvision import transforms

    image = Image.new("RGB", (300, 260), color=(124, 116, 104))  # about the ImageNet mean
    for train in (True, False):
        pipeline = imagenet_transforms(train)
        out = pipeline(image)
        assert out.shape == (3, 224, 224) and out.dtype == torch.float32
        assert out.abs().max() < 0.05  # normalised with the ImageNet statistics
        kinds = [type(t) for t in pipeline.transforms]
        assert kinds[-2:] == [transforms.ToTensor, transforms.Normalize]
    train_kinds = [type(t) for t in imagenet_transforms(True).transforms]
    assert train_kinds[:2] == [transforms.RandomResizedCrop, transforms.RandomHorizontalFlip]
    resize, crop = imagenet_transforms(False).transforms[:2]
    assert isinstance(resize, transforms.Resize) and resize.size == 256 and crop.size == (224, 224)
    normalize = imagenet_transforms(False).transforms[-1]
    assert tuple(normalize.mean) == IMAGENET_MEAN and tuple(normalize.std) == IMAGENET_STD
    assert imagenet_transforms(False, size=112)(image).shape == (3, 112, 112)


def test_image_file_dataset_subset_and_loader(tmp_path: Path) -> None:
    paths = []
    for i in range(6):
        paths.append(tmp_path / f"{i}.png")
        tiny_image(paths[-1], i)
    dataset = ImageFileDataset(
        paths, [0, 0, 1, 1, 2, 2], ["a", "b", "c"], name="tiny", transform=imagenet_transforms(False, size=16)
    )
    part = dataset.subset([4, 5, 0], name="part")
    assert part.classes == ["a", "c"] and part.labels.tolist() == [1, 1, 0]
    assert part.paths == [paths[4], paths[5], paths[0]]
    images, labels = next(iter(torch.utils.data.DataLoader(dataset, batch_size=4)))
    assert images.shape == (4, 3, 16, 16) and labels.tolist() == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="6 paths but 5 labels"):
        ImageFileDataset(paths, [0, 0, 1, 1, 2], ["a", "b", "c"])
    with pytest.raises(ValueError, match="have no item"):
        ImageFileDataset(paths, [0, 0, 1, 1, 3, 3], ["a", "b", "c", "d"])


def test_no_test_touches_the_real_cache() -> None:
    assert os.environ["DMLKIT_DATA"].endswith("dmlkit-data")
