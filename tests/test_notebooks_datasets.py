"""Every notebook runs at the smoke budget on each small data set the kit lists besides the
glyphs (issue 23): Fashion-MNIST (read from Debian's ``dataset-fashion-mnist``, which CI
installs) and scikit-learn's digits. Both have 5 training and 5 held-out classes, so the run
also proves that the protocol fits itself to the data (P×K, few-shot ways, distractors) and
that the sections which need a coarser class level say they are skipped instead of failing.
"""

import json
from pathlib import Path

import nbformat
import pytest

from dmlkit.data import fashion_mnist as fm
from dmlkit.figures import run_notebook
from dmlkit.parameters import notebook_parameters

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def fashion_mnist_on_disk() -> bool:
    try:
        fm.find_fashion_mnist(("train", "test"), None)
    except Exception:
        return False
    return True


def stdout_of(path: Path) -> str:
    cells = nbformat.read(path, as_version=4).cells
    return "".join(o.get("text", "") for c in cells if c.cell_type == "code" for o in c.outputs)


@pytest.mark.notebook
@pytest.mark.parametrize("dataset", ["digits", pytest.param("fashion_mnist", marks=pytest.mark.fashion_mnist)])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_on_small_dataset(path: Path, dataset: str, tmp_path: Path) -> None:
    if dataset == "fashion_mnist" and not fashion_mnist_on_disk():
        pytest.skip(
            "Fashion-MNIST is not on disk: `apt-get install dataset-fashion-mnist` puts it in /usr/share/datasets"
        )
    parameters = {"DATASET": dataset}
    if "SEEDS" in notebook_parameters(path):
        parameters["SEEDS"] = 1  # the verdicts' seeds are exercised on the glyphs (tests/test_notebooks.py)
    run = run_notebook(path, tmp_path / "figures", tmp_path / "build", parameters, smoke=True)
    assert run.ok, f"{path.name} on {dataset} failed:\n{run.error}"
    figure_dir = tmp_path / "figures" / path.stem
    assert list(figure_dir.glob("*.png")), f"{path.name} wrote no figure"
    results = json.loads((figure_dir / "results.json").read_text())
    assert results.get("settings", {}).get("dataset", dataset) == dataset
    printed = stdout_of(run.output)
    if path.stem not in ("07_compression_generalisation",):
        # 5 training classes: the protocol's 16×4 smoke batch becomes 5×13, and the notebook says so
        assert "has 5 training classes: P×K = 5×13" in printed, printed[:2000]
    if path.stem == "05_hyperbolic":
        assert "section 4's hierarchy skipped" in printed
    if path.stem == "03_ap_ranking":
        assert "the category batches of this subsection skipped" in printed
    if path.stem == "06_few_shot":
        assert "episodes are 5-way (not 20-way)" in printed and "setting with distractors is left out" in printed
