"""Every Markdown table of the kit, with one map of column headers and one number format.

:func:`column_header` names a metric key (``"map@r"`` -> ``"MAP@R"``) and :func:`format_value`
writes one cell (accuracies in %, times in s or ms, ρ and density with three decimals, ``–``
for a missing value, ``± std`` over seeds). The tables: one row per run (:func:`results_table`),
the seeds' leaderboard (:func:`leaderboard_table`), rank correlations with their bootstrap
intervals (:func:`correlation_table`) and few-shot accuracies (:func:`format_accuracy_table`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = [
    "column_header",
    "format_value",
    "results_table",
    "leaderboard_table",
    "correlation_table",
    "format_accuracy_table",
]


_HEADERS = {
    "recall@1": "R@1",
    "recall@2": "R@2",
    "recall@4": "R@4",
    "recall@8": "R@8",
    "map@r": "MAP@R",
    "r_precision": "R-Prec",
    "nmi": "NMI",
    "rho": "ρ",
    "density": "density",
    "train_map@r": "train MAP@R",
    "gap_map@r": "gap MAP@R",
    "train_s": "train s",
    "ms_per_step": "ms/step",
    "mean_class_recall@1": "mean-class R@1",
    "worst_class_recall@1": "worst-class R@1",
}
_PERCENT = {
    "recall@1",
    "recall@2",
    "recall@4",
    "recall@8",
    "map@r",
    "r_precision",
    "nmi",
    "train_map@r",
    "gap_map@r",
    "mean_class_recall@1",
    "worst_class_recall@1",
}
_SECONDS = {"train_s", "ms_per_step"}


def column_header(column: str) -> str:
    """The short table header of a metric key (``"map@r"`` -> ``"MAP@R"``); unknown keys as given."""
    return _HEADERS.get(column, column)


def format_value(column: str, value: Any, std: Any = None) -> str:
    """One table cell: accuracies in % with one decimal, times with one decimal, anything else
    (ρ, density) with three; ``"–"`` for a missing or NaN value; ``" ± std"`` appended when a
    finite ``std`` is given, on the same scale."""

    def number(x: Any) -> float | None:
        return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and not math.isnan(x) else None

    mean, spread = number(value), number(std)
    if mean is None:
        return "–"
    scale, digits = (100.0, 1) if column in _PERCENT else (1.0, 1) if column in _SECONDS else (1.0, 3)
    text = f"{scale * mean:.{digits}f}"
    return text if spread is None else f"{text} ± {scale * spread:.{digits}f}"


def results_table(
    results: Sequence[Any] | dict[str, dict[str, float]],
    columns: Sequence[str] = ("recall@1", "recall@2", "recall@4", "recall@8", "map@r", "r_precision", "rho", "train_s"),
) -> str:
    """A Markdown table, one row per method; accuracies in %, ρ and density as plain numbers.

    ``results`` are :class:`dmlkit.experiment.RunResult` (their ``name`` and ``row()``) or a dict
    ``{method: {column: value}}``."""
    rows = results if isinstance(results, dict) else {r.name: r.row() for r in results}
    lines = ["| method | " + " | ".join(column_header(c) for c in columns) + " |"]
    lines.append("| --- |" + " ---: |" * len(columns))
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(format_value(c, row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def leaderboard_table(
    summary: dict[str, dict[str, float]],
    columns: Sequence[str] = ("map@r", "recall@1", "worst_class_recall@1", "rho", "gap_map@r"),
    families: dict[str, str] | None = None,
    sort_by: str | None = "map@r",
) -> str:
    """A Markdown leaderboard from :func:`summarise_seeds`: ``mean ± std`` per cell, accuracies in
    %, best first by ``sort_by`` (``None`` keeps the order); ``families`` adds a family column."""
    names = list(summary)
    if sort_by is not None:
        names.sort(key=lambda n: -summary[n].get(sort_by, -math.inf))
    head = ["rank", "method"] + (["family"] if families else []) + [column_header(c) for c in columns] + ["seeds"]
    lines = [
        "| " + " | ".join(head) + " |",
        "| ---: | --- |" + (" --- |" if families else "") + " ---: |" * (len(columns) + 1),
    ]
    for rank, name in enumerate(names, 1):
        entry = summary[name]
        cells = [format_value(c, entry.get(c), entry.get(c + "_std")) for c in columns]
        family = [families.get(name, "")] if families else []
        lines.append("| " + " | ".join([str(rank), name] + family + cells + [f"{entry['seeds']:.0f}"]) + " |")
    return "\n".join(lines)


def correlation_table(rows: dict[str, dict[str, float]]) -> str:
    """A Markdown table of rank correlations: ``rows["<runs>: <pair>"]`` is a result of
    :func:`dmlkit.analysis.bootstrap_rank_correlation` (``spearman``, ``low``, ``high``,
    ``p_value``, ``num_points``); the key's part before the first ``": "`` names the runs."""
    lines = [
        "| runs | pair | n | Spearman | 95% bootstrap interval | permutation p |",
        "| --- | --- | ---: | ---: | --- | ---: |",
    ]
    for key, s in rows.items():
        label, _, pair = key.partition(": ")
        lines.append(
            f"| {label} | {pair} | {s['num_points']:.0f} | {s['spearman']:+.2f} | "
            f"[{s['low']:+.2f}, {s['high']:+.2f}] | {s['p_value']:.3f} |"
        )
    return "\n".join(lines)


def format_accuracy_table(rows: dict[str, dict[str, Any]]) -> str:
    """A Markdown table: ``rows[name][column]`` is a result of :func:`dmlkit.few_shot.evaluate_embeddings`
    (shown as ``accuracy ± ci95`` in %), a number (shown with three decimals), a string (shown
    as it is) or ``None`` (–)."""
    if not rows:
        raise ValueError("format_accuracy_table needs at least one row")
    columns: list[str] = []
    for row in rows.values():
        columns += [c for c in row if c not in columns]
    lines = ["| method | " + " | ".join(columns) + " |", "| --- |" + " ---: |" * len(columns)]
    for name, row in rows.items():
        cells = []
        for column in columns:
            value = row.get(column)
            if value is None:
                cells.append("–")
            elif isinstance(value, dict):
                cells.append(f"{100 * value['accuracy']:.1f} ± {100 * value['ci95']:.1f}")
            elif isinstance(value, str):
                cells.append(value)
            else:
                cells.append(f"{float(value):.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
