"""Keep the committed notebooks clean.

    python tools/notebooks.py strip NOTEBOOK...          outputs removed, but the text outputs of
                                                         cells marked NBVAL_CHECK_OUTPUT kept
    python tools/notebooks.py golden EXECUTED SOURCE     copy the NBVAL_CHECK_OUTPUT text outputs
                                                         of an executed notebook into the source

Images are never kept; golden cells get execution count 1 (nbval treats a cell without a count as
unrun and fails on its stored outputs), every other cell None.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

from dmlkit.files import atomic_write_text

MARKER = "NBVAL_CHECK_OUTPUT"


def is_golden(cell) -> bool:
    return cell.cell_type == "code" and MARKER in cell.source


def text_outputs(outputs):
    kept = []
    for output in outputs:
        if output.get("output_type") == "stream":
            kept.append(output)
        elif output.get("output_type") in ("execute_result", "display_data"):
            data = {k: v for k, v in output.get("data", {}).items() if k == "text/plain"}
            if data:
                kept.append(nbformat.v4.new_output("execute_result", data=data, execution_count=None))
    return kept


def strip(path: Path) -> bool:
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        golden = is_golden(cell) and bool(text_outputs(cell.outputs))
        # nbval skips (and fails) a reference cell without an execution count: golden cells keep 1
        cell.execution_count = 1 if golden else None
        cell.outputs = text_outputs(cell.outputs) if golden else []
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("lines_to_next_cell", None)
    for cell in nb.cells:
        cell.metadata.pop("lines_to_next_cell", None)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("jupytext", None)
    after = nbformat.writes(nb)
    if after != before:
        atomic_write_text(path, after)
    return after != before


def golden(executed: Path, source: Path) -> None:
    run = nbformat.read(executed, as_version=4)
    nb = nbformat.read(source, as_version=4)
    outputs = {cell.source: cell.outputs for cell in run.cells if is_golden(cell)}
    for cell in nb.cells:
        if is_golden(cell):
            if cell.source not in outputs:
                raise SystemExit(f"{source}: golden cell not found in {executed}:\n{cell.source[:200]}")
            cell.outputs = text_outputs(outputs[cell.source])
    text = nbformat.writes(nb)
    atomic_write_text(source, text if text.endswith("\n") else text + "\n")  # as nbformat.write
    strip(source)


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "strip":
        for name in argv[1:]:
            if strip(Path(name)):
                print(f"stripped {name}")
        return 0
    if len(argv) == 3 and argv[0] == "golden":
        golden(Path(argv[1]), Path(argv[2]))
        print(f"golden outputs of {argv[2]} updated from {argv[1]}")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
