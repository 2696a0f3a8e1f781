"""Regenerate every figure headlessly: execute the notebooks with papermill in fresh kernels.

    dmlkit figures [--smoke] [--only NAME ...] [--out DIR] [--param KEY=VALUE ...]
    python -m dmlkit.figures ...            (the same)

Each notebook runs in a fresh kernel with its ``parameters`` cell overridden: ``SMOKE`` (with
``--smoke``), ``OUT_DIR`` (``DIR/<notebook-stem>``) and every ``--param``. Figures land in
``DIR/<stem>/``, with ``DIR/runs.json`` (wall times) and ``DIR/results.md`` (one table across the
notebooks' ``results.json``, :mod:`dmlkit.report`); executed notebooks in ``build/notebooks/``
(git-ignored). A one-line summary is
printed per notebook; a failing notebook makes the command fail, with the cell's error shown,
after the others have run. An unknown ``--param`` is an error listing the notebook's parameters.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["NotebookRun", "find_notebooks", "notebook_parameters", "run_notebook", "main"]

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_PARAMETERS = ("SMOKE", "SEED", "DATASET", "OUT_DIR")


@dataclass
class NotebookRun:
    """The outcome of executing one notebook."""

    name: str
    seconds: float
    ok: bool
    output: Path
    figures: list[Path] = field(default_factory=list)
    error: str = ""

    def summary(self) -> str:
        status = "ok" if self.ok else "FAILED"
        return f"{self.name:<34} {self.seconds:7.1f} s  {status:<6}  {len(self.figures)} files"


def default_notebook_dir() -> Path:
    """``./notebooks`` if it exists, else the ``notebooks/`` folder beside the package."""
    local = Path.cwd() / "notebooks"
    return local if local.is_dir() else REPO_ROOT / "notebooks"


def find_notebooks(directory: Path, only: list[str] | None = None) -> list[Path]:
    """The notebooks of ``directory`` in name order, or only those whose stems are in ``only``."""
    if not directory.is_dir():
        raise FileNotFoundError(f"no notebook folder at {directory}")
    notebooks = sorted(p for p in directory.glob("*.ipynb") if not p.name.startswith("."))
    if only:
        stems = {p.stem: p for p in notebooks}
        unknown = [name for name in only if name not in stems]
        if unknown:
            raise ValueError(
                f"unknown notebook(s) {unknown}; available: {', '.join(sorted(stems)) or 'none'}"
            )
        notebooks = [stems[name] for name in only]
    return notebooks


def notebook_parameters(path: Path) -> dict[str, Any]:
    """The names (and default expressions) of the notebook's ``parameters`` cell."""
    import papermill

    return papermill.inspect_notebook(str(path))


def parse_param(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as a Python literal when it is one, else as a string."""
    if "=" not in text:
        raise ValueError(f"--param expects KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key.isidentifier():
        raise ValueError(f"--param key {key!r} is not a valid parameter name")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return key, value


def _kernel_name() -> str:
    """The kernel of this interpreter: jupyter_client maps the native ``python3`` kernel onto
    ``sys.executable``, so the notebooks run in the same environment as this command."""
    return "python3"


def _cell_error(exc: Exception) -> str:
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    lines = getattr(exc, "traceback", None)
    if lines:
        import re

        plain = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(lines))
        return f"{ename}: {evalue}\n{plain}"
    return f"{ename}: {evalue}\n" + "".join(traceback.format_exception(exc))


def run_notebook(
    path: Path,
    out_dir: Path,
    build_dir: Path,
    parameters: dict[str, Any],
    smoke: bool = False,
) -> NotebookRun:
    """Execute one notebook headlessly; figures to ``out_dir/<stem>``, the executed copy to
    ``build_dir/<stem>.ipynb``."""
    import papermill

    figure_dir = (out_dir / path.stem).resolve()
    figure_dir.mkdir(parents=True, exist_ok=True)
    build_dir.mkdir(parents=True, exist_ok=True)
    output = build_dir / path.name
    values = dict(parameters)
    values["OUT_DIR"] = str(figure_dir)
    if smoke:
        values["SMOKE"] = True
    before = {p: p.stat().st_mtime for p in figure_dir.rglob("*") if p.is_file()}
    started = time.perf_counter()
    error = ""
    try:
        papermill.execute_notebook(
            str(path),
            str(output),
            parameters=values,
            kernel_name=_kernel_name(),
            cwd=str(path.parent),
            progress_bar=False,
            log_output=False,
        )
    except Exception as exc:  # a failing cell: report it, run the other notebooks
        error = _cell_error(exc)
    seconds = time.perf_counter() - started
    figures = sorted(
        p for p in figure_dir.rglob("*") if p.is_file() and before.get(p) != p.stat().st_mtime
    )
    return NotebookRun(path.stem, seconds, not error, output, figures, error)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dmlkit figures",
        description="Execute the notebooks headlessly and regenerate their figures.",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny budget: proves each notebook runs end to end")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this notebook (file stem, e.g. 01_pair_based); repeatable")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR", help="figure folder (default: figures/)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="override a parameter of every notebook; repeatable")
    parser.add_argument("--notebooks", type=Path, default=None, metavar="DIR", help="notebook folder (default: notebooks/)")
    parser.add_argument("--build", type=Path, default=None, metavar="DIR", help="where executed notebooks go (default: build/notebooks)")
    parser.add_argument("--list", action="store_true", help="list the notebooks and their parameters, run nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``dmlkit figures`` and ``python -m dmlkit.figures``."""
    args = build_parser().parse_args(argv)
    notebook_dir = args.notebooks or default_notebook_dir()
    root = notebook_dir.resolve().parent
    out_dir = (args.out or root / "figures").resolve()
    build_dir = (args.build or root / "build" / "notebooks").resolve()
    try:
        notebooks = find_notebooks(notebook_dir, args.only)
        overrides = dict(parse_param(p) for p in args.param)
    except (ValueError, FileNotFoundError) as exc:
        print(f"dmlkit figures: error: {exc}", file=sys.stderr)
        return 2
    if not notebooks:
        print(f"dmlkit figures: error: no notebooks in {notebook_dir}", file=sys.stderr)
        return 2

    # Check every override against every notebook before running anything.
    problems = []
    for path in notebooks:
        known = notebook_parameters(path)
        missing = [name for name in SHARED_PARAMETERS if name not in known]
        if missing:
            problems.append(f"{path.name}: its parameters cell lacks {missing}")
        unknown = [key for key in overrides if key not in known]
        if unknown:
            problems.append(
                f"{path.name}: unknown parameter(s) {unknown}; its parameters are: {', '.join(known)}"
            )
        if args.list:
            print(f"{path.stem}: " + ", ".join(f"{k}={v['default']}" for k, v in known.items()))
    if args.list:
        return 0
    if problems:
        for problem in problems:
            print(f"dmlkit figures: error: {problem}", file=sys.stderr)
        return 2

    budget = "smoke" if args.smoke else "default"
    print(f"dmlkit figures: {len(notebooks)} notebook(s), {budget} budget, figures -> {out_dir}", flush=True)
    runs = []
    for path in notebooks:
        run = run_notebook(path, out_dir, build_dir, overrides, smoke=args.smoke)
        runs.append(run)
        print(run.summary(), flush=True)
    total = sum(r.seconds for r in runs)
    failed = [r for r in runs if not r.ok]
    print(f"total {total:.1f} s, {len(runs) - len(failed)} ok, {len(failed)} failed; executed notebooks in {build_dir}")
    _write_run_log(out_dir, runs, budget)
    from dmlkit.report import write_results_markdown

    try:
        print(f"results table: {write_results_markdown(out_dir)}")
    except (ValueError, OSError) as exc:
        print(f"dmlkit figures: could not write results.md: {exc}", file=sys.stderr)
        failed = failed or [NotebookRun("results.md", 0.0, False, out_dir, error=str(exc))]
    for run in failed:
        print(f"\n=== {run.name} failed (executed copy: {run.output}) ===\n{run.error}", file=sys.stderr)
    return 1 if failed else 0


def _write_run_log(out_dir: Path, runs: list[NotebookRun], budget: str) -> None:
    log = out_dir / "runs.json"
    existing = {}
    if log.exists():
        try:
            existing = json.loads(log.read_text())
        except ValueError:
            existing = {}
    for run in runs:
        existing[run.name] = {"seconds": round(run.seconds, 1), "ok": run.ok, "budget": budget}
    log.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    sys.exit(main())
