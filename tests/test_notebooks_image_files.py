"""The GPU user's route, up to the device: notebook 01 end to end at the smoke budget on tiny
generated trees in the CUB-200-2011 and the Stanford Online Products layouts (a few classes of
small JPEGs), read from ``$DMLKIT_DATA`` as a real user's copy would be, through the
image-file loaders and the ResNet path (ResNet-18, random initialisation, 72-pixel images on
the CPU)."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dmlkit.figures import run_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "01_pair_based.ipynb"
PER_CLASS = 4


def jpeg(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(80, 96, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def cub_tree(base: Path) -> None:
    """``base/cub200/CUB_200_2011``: 4 training classes (official ids 1-4) and 4 held-out ones
    (101-104), the standard boundary at 100."""
    folder = base / "cub200" / "CUB_200_2011"
    images, labels, classes, image_id = [], [], [], 0
    for class_id in (1, 2, 3, 4, 101, 102, 103, 104):
        class_dir = f"{class_id:03d}.Bird_{class_id}"
        classes.append(f"{class_id} {class_dir}")
        for j in range(PER_CLASS):
            image_id += 1
            relative = f"{class_dir}/Bird_{class_id}_{j}.jpg"
            jpeg(folder / "images" / relative, image_id)
            images.append(f"{image_id} {relative}")
            labels.append(f"{image_id} {class_id}")
    (folder / "images.txt").write_text("\n".join(images) + "\n")
    (folder / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    (folder / "classes.txt").write_text("\n".join(classes) + "\n")


def sop_tree(base: Path) -> None:
    """``base/sop/Stanford_Online_Products``: 4 training and 4 held-out products of two
    super-categories."""
    folder = base / "sop" / "Stanford_Online_Products"
    image_id = 0
    for split, products in (("train", range(1, 5)), ("test", range(5, 9))):
        rows = ["image_id class_id super_class_id path"]
        for product in products:
            super_id, super_name = (1, "bicycle") if product % 2 else (2, "chair")
            for j in range(PER_CLASS):
                image_id += 1
                relative = f"{super_name}_final/{product:06d}_{j}.JPG"
                jpeg(folder / relative, image_id)
                rows.append(f"{image_id} {product} {super_id} {relative}")
        (folder / f"Ebay_{split}.txt").write_text("\n".join(rows) + "\n")


@pytest.mark.notebook
@pytest.mark.parametrize(("dataset", "make_tree"), [("cub200", cub_tree), ("sop", sop_tree)])
def test_notebook_01_runs_on_an_image_file_tree(dataset, make_tree, tmp_path, monkeypatch):
    make_tree(tmp_path / "data")
    monkeypatch.setenv("DMLKIT_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("DMLKIT_BACKBONE", "resnet18")
    monkeypatch.setenv("DMLKIT_IMAGE_SIZE", "72")
    run = run_notebook(NOTEBOOK, tmp_path / "figures", tmp_path / "build", {"DATASET": dataset, "SEEDS": 1}, smoke=True)
    assert run.ok, f"01 on a {dataset} tree failed:\n{run.error}"
    results = json.loads((tmp_path / "figures" / NOTEBOOK.stem / "results.json").read_text())
    assert results["settings"]["dataset"] == dataset
    contrastive = results["methods"]["contrastive"]
    assert contrastive["settings"]["P"] == 4 and contrastive["settings"]["K"] == 16  # 16×4 on 4 classes
    assert 0.0 <= contrastive["test"]["map@r"] <= 1.0
