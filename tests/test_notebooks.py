"""Every notebook runs end to end at the smoke budget, writes its figures and results, and its
worked-example cells (marked NBVAL_CHECK_OUTPUT) print exactly the committed numbers.

This is the check `pytest --nbval-lax` makes (``make nbval``), done on the same papermill run
that proves the notebook works, so each notebook executes once in the test suite.
"""

from pathlib import Path

import nbformat
import pytest

from dmlkit.figures import run_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MARKER = "NBVAL_CHECK_OUTPUT"


def text_of(outputs) -> str:
    parts = []
    for output in outputs:
        if output.get("output_type") == "stream":
            parts.append(output["text"])
        elif "text/plain" in output.get("data", {}):
            parts.append(output["data"]["text/plain"])
    return "\n".join(line.rstrip() for line in "".join(parts).strip().splitlines())


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_smoke_run(path, tmp_path):
    run = run_notebook(path, tmp_path / "figures", tmp_path / "build", {}, smoke=True)
    assert run.ok, f"{path.name} failed:\n{run.error}"
    figure_dir = tmp_path / "figures" / path.stem
    assert list(figure_dir.glob("*.png")), f"{path.name} wrote no figure"
    assert (figure_dir / "results.json").exists(), f"{path.name} wrote no results.json"

    executed = {c.source: c for c in nbformat.read(run.output, as_version=4).cells if c.cell_type == "code"}
    golden = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code" and MARKER in c.source]
    for cell in golden:
        expected = text_of(cell.outputs)
        assert expected, f"{path.name}: golden cell has no committed output (run tools/notebooks.py golden)"
        assert text_of(executed[cell.source].outputs) == expected, (
            f"{path.name}: a worked example printed different numbers:\n{cell.source[:300]}"
        )
