"""Every notebook runs end to end at the smoke budget, writes its figures and results, and its
worked-example cells (marked NBVAL_CHECK_OUTPUT) print exactly the committed numbers.

This is the check `pytest --nbval-lax` makes (``make nbval``), done on the same papermill run
that proves the notebook works, so each notebook executes once in the test suite. The same run
checks that a reader sees every figure: each PNG the notebook saves to ``OUT_DIR`` is also an
``image/png`` output of the executed notebook (the same bytes, as :func:`dmlkit.plots.show`
publishes them), and no output is a bare ``<Figure size ...>`` text in place of a picture. The
executed copy kept beside the figures (``<stem>/<stem>.ipynb``) exists, is under 3 MB and shows
the images, and every formula the run prints as Markdown typesets with KaTeX.
"""

import base64
import re
from pathlib import Path

import nbformat
import pytest

from dmlkit.executed_copy import MAX_BYTES
from dmlkit.figures import run_notebook
from tests.test_formulas import control_characters, formulas, typeset

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MARKER = "NBVAL_CHECK_OUTPUT"


def shown_images(cells) -> list[bytes]:
    """The ``image/png`` outputs of the executed cells, decoded."""
    return [
        base64.b64decode(output["data"]["image/png"])
        for cell in cells
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]


def bare_figure_texts(cells) -> list[str]:
    """Outputs that are only ``<Figure size ...>`` text: a figure the reader never sees."""
    return [
        output["data"]["text/plain"]
        for cell in cells
        for output in cell.get("outputs", [])
        if set(output.get("data", {})) == {"text/plain"}
        and re.match(r"<(matplotlib\.figure\.)?Figure size", output["data"]["text/plain"])
    ]


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

    executed_cells = [c for c in nbformat.read(run.output, as_version=4).cells if c.cell_type == "code"]
    shown = shown_images(executed_cells)
    unseen = [p.name for p in sorted(figure_dir.rglob("*.png")) if p.read_bytes() not in shown]
    assert not unseen, f"{path.name}: saved but never shown inline: {unseen}"
    assert not bare_figure_texts(executed_cells), (
        f"{path.name}: a figure printed as text instead of an image: {bare_figure_texts(executed_cells)}"
    )

    # The explorer (dmlkit.live.explore) drew its static picture headless, and no widget (a frozen
    # progress bar, an explorer's controls) was left in the executed notebook.
    explorers = [c for c in executed_cells if "explorer" in c.get("metadata", {}).get("tags", [])]
    assert explorers, f"{path.name} has no cell tagged 'explorer'"
    for cell in explorers:
        assert shown_images([cell]), f"{path.name}: the explorer cell shows no image headless"
    widgets = [
        o
        for c in executed_cells
        for o in c.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert not widgets, f"{path.name}: {len(widgets)} widget outputs (frozen in an executed notebook)"

    kept = figure_dir / path.name  # the reader's copy beside the figures (dmlkit.executed_copy)
    assert kept.exists() and kept.stat().st_size < MAX_BYTES, (
        f"{path.name}: no executed copy under 3 MB in {figure_dir}"
    )
    assert shown_images(nbformat.read(kept, as_version=4).cells), f"{kept} holds no image"

    # The Markdown the run prints (tables, verdicts) typesets too.
    printed = [
        {"where": f"output of cell {i}", "tex": tex, "display": display}
        for i, cell in enumerate(executed_cells)
        for output in cell.get("outputs", [])
        for tex, display in formulas(output.get("data", {}).get("text/markdown", ""))
    ]
    if printed:
        failures = typeset(printed) + [
            {"where": p["where"], "tex": p["tex"], "error": "control character"}
            for p in printed
            if control_characters(p["tex"])
        ]
        assert not failures, f"{path.name}: printed formulas that do not typeset: {failures}"

    executed = {c.source: c for c in executed_cells}
    golden = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code" and MARKER in c.source]
    for cell in golden:
        expected = text_of(cell.outputs)
        assert expected, f"{path.name}: golden cell has no committed output (run tools/notebooks.py golden)"
        assert text_of(executed[cell.source].outputs) == expected, (
            f"{path.name}: a worked example printed different numbers:\n{cell.source[:300]}"
        )
