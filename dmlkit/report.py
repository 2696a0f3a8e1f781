"""One Markdown report across notebooks: ``figures/results.md``.

Every notebook writes ``results.json`` next to its figures (:func:`dmlkit.experiment.save_results`:
metrics, ρ, times and settings of every run). ``dmlkit figures`` then calls
:func:`write_results_markdown`, which reads them all and writes one file: the run times of the
notebooks, the synthesis notebook's leaderboard and findings when it has run, and one table with
every trained run of every notebook.

    python -m dmlkit.report [FIGURES_DIR]      (rewrites FIGURES_DIR/results.md; default figures/)
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

__all__ = ["collect_results", "results_markdown", "write_results_markdown"]

SYNTHESIS = "07_compression_generalisation"


def collect_results(figures_dir: str | Path) -> dict[str, dict[str, Any]]:
    """``{notebook stem: parsed results.json}`` for every ``<stem>/results.json`` under
    ``figures_dir``, in name order. A file that is not valid JSON raises ``ValueError`` naming it."""
    figures_dir = Path(figures_dir)
    if not figures_dir.is_dir():
        raise FileNotFoundError(f"no figures folder at {figures_dir} (run `dmlkit figures` first)")
    collected = {}
    for path in sorted(figures_dir.glob("*/results.json")):
        try:
            collected[path.parent.name] = json.loads(path.read_text())
        except ValueError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    return collected


def _pct(value: Any) -> str:
    return "–" if not isinstance(value, (int, float)) or math.isnan(value) else f"{100 * value:.1f}"


def _num(value: Any, digits: int = 3) -> str:
    return "–" if not isinstance(value, (int, float)) or math.isnan(value) else f"{value:.{digits}f}"


def _runs_table(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| notebook | method | steps | P×K | R@1 | MAP@R | R-Prec | ρ | train MAP@R | gap MAP@R | train s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for stem, payload in results.items():
        for name, entry in payload.get("methods", {}).items():
            test, settings = entry.get("test", {}), entry.get("settings", {})
            pk = f"{settings.get('P', '?')}×{settings.get('K', '?')}" if settings else "–"
            lines.append(
                f"| {stem} | {name} | {settings.get('steps', '–')} | {pk} | {_pct(test.get('recall@1'))} | "
                f"{_pct(test.get('map@r'))} | {_pct(test.get('r_precision'))} | {_num(entry.get('rho'))} | "
                f"{_pct(entry.get('train_map@r'))} | {_pct(entry.get('gap_map@r'))} | {_num(entry.get('train_s'), 1)} |"
            )
    return lines


def _times_table(figures_dir: Path) -> list[str]:
    log = figures_dir / "runs.json"
    if not log.exists():
        return []
    runs = json.loads(log.read_text())
    lines = ["| notebook | budget | wall time (s) | ok |", "| --- | --- | ---: | --- |"]
    for name, run in sorted(runs.items()):
        lines.append(f"| {name} | {run.get('budget', '?')} | {run.get('seconds', float('nan')):.1f} | {run.get('ok')} |")
    total = sum(run.get("seconds", 0.0) for run in runs.values())
    lines.append(f"| **total** | | **{total:.1f}** ({total / 60:.1f} min) | |")
    return lines


def _synthesis_section(payload: dict[str, Any]) -> list[str]:
    from dmlkit.zoo import leaderboard_table

    lines: list[str] = []
    board = payload.get("leaderboard")
    if board:
        settings = payload.get("settings", {})
        lines += [
            "## Leaderboard (notebook 07)",
            "",
            f"One ConvNet, one P×K sampler, {settings.get('steps', '?')} steps, seeds {settings.get('seeds', '?')}; "
            "held-out classes; mean ± standard deviation over seeds; worst-class R@1 is the mean Recall@1 "
            "of the worst 10% of the held-out classes.",
            "",
            leaderboard_table(board["summary"], families=board.get("families")),
            "",
        ]
    findings = payload.get("findings")
    if findings:
        lines += ["## Findings of notebook 07 (computed in the run)", ""]
        lines += [f"- {text}" for text in findings]
        lines.append("")
    return lines


def results_markdown(figures_dir: str | Path) -> str:
    """The text of ``results.md`` for the notebooks whose ``results.json`` are in ``figures_dir``."""
    figures_dir = Path(figures_dir)
    results = collect_results(figures_dir)
    lines = [
        "# Results of the notebooks",
        "",
        "Written by `dmlkit figures` from each notebook's `results.json`; do not edit by hand.",
        "Metrics are on the held-out classes unless marked *train*; accuracies in %.",
        "",
    ]
    written = sorted({p.get("written", "") for p in results.values() if p.get("written")})
    smoke = sorted({str(p.get("settings", {}).get("smoke")) for p in results.values()})
    if written:
        lines += [f"Results written {written[0]} to {written[-1]}; smoke budget: {', '.join(smoke)}.", ""]
    times = _times_table(figures_dir)
    if times:
        lines += ["## Run times of the notebooks", "", *times, ""]
    if SYNTHESIS in results:
        lines += _synthesis_section(results[SYNTHESIS])
    if results:
        lines += ["## Every run of every notebook", "", *_runs_table(results), ""]
    else:
        lines += ["No notebook has written a results.json here yet.", ""]
    return "\n".join(lines)


def write_results_markdown(figures_dir: str | Path) -> Path:
    """Write ``results.md`` into ``figures_dir`` and return its path."""
    path = Path(figures_dir) / "results.md"
    path.write_text(results_markdown(figures_dir))
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "figures"
    print(write_results_markdown(target))
