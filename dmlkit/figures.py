"""Regenerate every figure headlessly: execute the notebooks with papermill in fresh kernels.

    dmlkit figures [--smoke] [--only NAME ...] [--out DIR] [--param KEY=VALUE ...] [--timeout S]
    python -m dmlkit.figures ...            (the same)

Each notebook runs in a fresh kernel with its ``parameters`` cell overridden: ``SMOKE`` (with
``--smoke``), ``OUT_DIR`` and every ``--param``. Every ``--param`` is checked against the type each
notebook declares (:mod:`dmlkit.parameters`), and ``--out`` must be a writable folder, before any
kernel starts.

Nothing a run cannot finish is published. A notebook renders into a staging folder beside
``DIR/<stem>/`` (:mod:`dmlkit.files`); only when it succeeds does that folder replace
``DIR/<stem>/`` in one rename, and only then are its entries in ``DIR/runs.json`` (wall times) and
``DIR/results.md`` (:mod:`dmlkit.reporting`) rewritten, each atomically. The folder also holds the
executed notebook, ``DIR/<stem>/<stem>.ipynb`` with every output (images compacted to keep it
under 3 MB, :mod:`dmlkit.executed_copy`), for readers of the repository page. A notebook that fails, runs
past ``--timeout`` or is interrupted (Ctrl-C, SIGTERM) leaves the previous figures, results and
run record exactly as they were; the summary says what happened and where the executed notebook
(``build/notebooks/``, git-ignored) shows it. The exit code is 0 when every notebook succeeded, 1
when one failed or timed out, 2 for bad arguments and 130 when interrupted.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dmlkit.executed_copy import compact_notebook
from dmlkit.files import (
    atomic_write_text,
    remove_stale_staging,
    replace_directory,
    staging_directory,
    writable_directory,
)
from dmlkit.notebook_worker import raise_keyboard_interrupt
from dmlkit.parameters import SHARED_PARAMETERS, check_overrides, notebook_parameters

__all__ = ["NotebookRun", "find_notebooks", "notebook_parameters", "run_notebook", "main"]

#: Seconds a notebook may run before it is stopped (``--timeout``): the longest notebook takes
#: about 8 minutes at the default budget on a 2-core CPU, so this leaves room for a slower laptop.
DEFAULT_TIMEOUT = 3600.0


@dataclass
class NotebookRun:
    """The outcome of executing one notebook: ``status`` is ``ok``, ``failed``, ``timed out`` or
    ``interrupted``."""

    name: str
    seconds: float
    status: str
    output: Path
    figures: list[Path] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def summary(self) -> str:
        shown = "ok" if self.ok else self.status.upper()
        tail = f"{len(self.figures)} files" if self.ok else "previous figures kept"
        return f"{self.name:<34} {self.seconds:7.1f} s  {shown:<11}  {tail}"


def default_notebook_dir() -> Path:
    """``./notebooks``: the command runs from the kit's folder unless ``--notebooks`` says where."""
    return Path.cwd() / "notebooks"


def find_notebooks(directory: Path, only: list[str] | None = None) -> list[Path]:
    """The notebooks of ``directory`` in name order, or only those whose stems are in ``only``
    (in that order) — except that a notebook marked ``"dmlkit": {"runs_last": true}`` in its
    metadata (notebook 07, which reads every other notebook's results) comes after the others."""
    if not directory.is_dir():
        raise FileNotFoundError(
            f"no notebook folder at {directory}: run the command in the kit's folder (the one with "
            "notebooks/) or pass --notebooks DIR"
        )
    notebooks = sorted(p for p in directory.glob("*.ipynb") if not p.name.startswith("."))
    if only:
        stems = {p.stem: p for p in notebooks}
        unknown = [name for name in only if name not in stems]
        if unknown:
            raise ValueError(f"unknown notebook(s) {unknown}; available: {', '.join(sorted(stems)) or 'none'}")
        notebooks = [stems[name] for name in only]
    return sorted(notebooks, key=_runs_last)  # a stable sort: the rest keep their order


def _runs_last(path: Path) -> bool:
    import json

    try:
        metadata = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError):
        return False  # an unreadable notebook fails later, where its run is reported
    return bool(metadata.get("dmlkit", {}).get("runs_last", False))


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


def _notebook_error(executed: Path) -> str:
    """The first error output of an executed notebook, as plain text, or ``""``."""
    import nbformat

    try:
        nb = nbformat.read(str(executed), as_version=4)
    except (OSError, ValueError):
        return ""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                plain = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(output.get("traceback", [])))
                return f"{output.get('ename')}: {output.get('evalue')}\n{plain}"
    return ""


def _stop(process: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGTERM to the worker (which shuts its kernel down), SIGKILL after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_notebook(
    path: Path,
    out_dir: Path,
    build_dir: Path,
    parameters: dict[str, Any],
    smoke: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> NotebookRun:
    """Execute one notebook headlessly in a worker process (:mod:`dmlkit.notebook_worker`).

    Figures go to a staging folder that replaces ``out_dir/<stem>`` only when the notebook
    succeeds; the executed copy goes to ``build_dir/<stem>.ipynb``. A failure, a run past
    ``timeout`` seconds or an interruption leaves ``out_dir/<stem>`` as it was. A
    ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM under :func:`main`) stops the worker and its kernel
    and is raised again after the clean-up.
    """
    destination = (Path(out_dir) / path.stem).resolve()
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    output = (build_dir / path.name).resolve()
    started = time.perf_counter()
    with staging_directory(destination) as staging, tempfile.TemporaryDirectory() as scratch:
        values = dict(parameters)
        values["OUT_DIR"] = str(staging)
        if smoke:
            values["SMOKE"] = True
        spec = Path(scratch) / "spec.json"
        spec.write_text(
            json.dumps(
                {
                    "input": str(path.resolve()),
                    "output": str(output),
                    "cwd": str(path.resolve().parent),
                    "kernel_name": _kernel_name(),
                    "parameters": repr(values),
                }
            )
        )
        log = Path(scratch) / "worker.log"
        with open(log, "wb") as log_handle:
            process = subprocess.Popen(
                [sys.executable, "-m", "dmlkit.notebook_worker", str(spec)],
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=dict(os.environ, DMLKIT_HEADLESS="1"),  # explorers draw once, text progress bars
            )
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _stop(process)
                seconds = time.perf_counter() - started
                message = f"stopped after {seconds:.0f} s: past the time limit of {timeout:g} s (--timeout)"
                return NotebookRun(path.stem, seconds, "timed out", output, error=message)
            except BaseException:  # KeyboardInterrupt: stop the kernel, drop the staging folder
                _stop(process)
                raise
        seconds = time.perf_counter() - started
        if code != 0:
            error = _notebook_error(output) or log.read_text(errors="replace")[-4000:] or f"worker exit code {code}"
            return NotebookRun(path.stem, seconds, "failed", output, error=error)
        # The executed notebook names the staging folder as OUT_DIR; show the real one instead.
        _rewrite_out_dir(output, staging, destination)
        # The reader's copy: the executed notebook beside its figures, images compacted (< 3 MB).
        try:
            compact_notebook(output, staging / path.name)
        except (OSError, ValueError) as error:
            seconds = time.perf_counter() - started
            return NotebookRun(path.stem, seconds, "failed", output, error=f"could not keep the executed copy: {error}")
        replace_directory(staging, destination)
    figures = sorted(p for p in destination.rglob("*") if p.is_file())
    return NotebookRun(path.stem, seconds, "ok", output, figures)


def _rewrite_out_dir(executed: Path, staging: Path, destination: Path) -> None:
    try:
        text = executed.read_text(encoding="utf-8")
    except OSError:
        return
    if str(staging) in text:
        atomic_write_text(executed, text.replace(str(staging), str(destination)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dmlkit figures",
        description="Execute the notebooks headlessly and regenerate their figures.",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny budget: proves each notebook runs end to end")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only this notebook (file stem, e.g. 01_pair_based); repeatable",
    )
    parser.add_argument("--out", type=Path, default=None, metavar="DIR", help="figure folder (default: figures/)")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a parameter of every notebook; repeatable",
    )
    parser.add_argument(
        "--notebooks", type=Path, default=None, metavar="DIR", help="notebook folder (default: notebooks/)"
    )
    parser.add_argument(
        "--build", type=Path, default=None, metavar="DIR", help="where executed notebooks go (default: build/notebooks)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"stop a notebook that runs longer than this (default: {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("--list", action="store_true", help="list the notebooks and their parameters, run nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``dmlkit figures`` and ``python -m dmlkit.figures``."""
    args = build_parser().parse_args(argv)
    notebook_dir = args.notebooks or default_notebook_dir()
    root = notebook_dir.resolve().parent
    try:
        notebooks = find_notebooks(notebook_dir, args.only)
        overrides = dict(parse_param(p) for p in args.param)
        if not args.timeout > 0:
            raise ValueError(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    except (ValueError, FileNotFoundError) as exc:
        return _usage_error(exc)
    if not notebooks:
        return _usage_error(f"no notebooks in {notebook_dir}")

    # Check every override against every notebook before running anything.
    problems, values = [], {}
    for path in notebooks:
        try:
            known = notebook_parameters(path)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        missing = [name for name in SHARED_PARAMETERS if name not in known]
        if missing:
            problems.append(f"{path.name}: its parameters cell lacks {missing}")
        values[path], found = check_overrides(known, overrides, path.name)
        problems += found
        if args.list:
            print(f"{path.stem}:")
            for p in known.values():
                print(
                    f"  {p.name}: {p.type_text} = {' '.join(p.default.split())}" + (f"  # {p.help}" if p.help else "")
                )
    if args.list:
        return 0
    if problems:
        for problem in problems:
            print(f"dmlkit figures: error: {problem}", file=sys.stderr)
        return 2
    try:
        out_dir = writable_directory(args.out or root / "figures", "--out")
        build_dir = writable_directory(args.build or root / "build" / "notebooks", "--build")
    except ValueError as exc:
        return _usage_error(exc)
    for stale in remove_stale_staging(out_dir):
        print(f"dmlkit figures: removed {stale.name}, left by a run that was killed", flush=True)

    budget = "smoke" if args.smoke else "default"
    print(f"dmlkit figures: {len(notebooks)} notebook(s), {budget} budget, figures -> {out_dir}", flush=True)
    runs: list[NotebookRun] = []
    interrupted = None
    # SIGTERM and SIGINT both stop the run cleanly. SIGINT is set explicitly: a process started in
    # the background of a non-interactive shell inherits it ignored, and Python then installs no
    # KeyboardInterrupt for it.
    previous = {sig: signal.signal(sig, raise_keyboard_interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for path in notebooks:
            started = time.perf_counter()
            try:
                run = run_notebook(path, out_dir, build_dir, values[path], smoke=args.smoke, timeout=args.timeout)
            except KeyboardInterrupt as exc:
                interrupted = NotebookRun(
                    path.stem,
                    time.perf_counter() - started,
                    "interrupted",
                    build_dir / path.name,
                    error=f"interrupted ({exc or 'Ctrl-C'}); nothing of it was published",
                )
                print(interrupted.summary(), flush=True)
                break
            runs.append(run)
            print(run.summary(), flush=True)
            if run.ok:  # only a good run touches the record and the results table
                _record_run(out_dir, run, budget)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    failed = [r for r in runs if not r.ok]
    total = sum(r.seconds for r in runs)
    print(
        f"total {total:.1f} s, {len(runs) - len(failed)} ok, {len(failed)} failed"
        + (", interrupted" if interrupted else "")
        + f"; executed notebooks in {build_dir}"
    )
    if any(r.ok for r in runs):
        print(f"results table: {out_dir / 'results.md'}")
    for run in failed + ([interrupted] if interrupted else []):
        print(
            f"\n=== {run.name} {run.status}; its previous figures, results and run record are "
            f"unchanged; executed copy: {run.output} ===\n{run.error}",
            file=sys.stderr,
        )
    if interrupted:
        return 130
    return 1 if failed else 0


def _usage_error(problem: object) -> int:
    print(f"dmlkit figures: error: {problem}", file=sys.stderr)
    return 2


def _record_run(out_dir: Path, run: NotebookRun, budget: str) -> None:
    """Update ``runs.json`` and ``results.md`` for one successful run, each file atomically."""
    from dmlkit.reporting.results import write_results_markdown

    log = out_dir / "runs.json"
    existing = {}
    if log.exists():
        try:
            existing = json.loads(log.read_text())
        except ValueError:
            existing = {}
    existing[run.name] = {"seconds": round(run.seconds, 1), "ok": True, "budget": budget}
    atomic_write_text(log, json.dumps(existing, indent=2, sort_keys=True) + "\n")
    write_results_markdown(out_dir)


if __name__ == "__main__":
    sys.exit(main())
