"""Reporting: every table, the findings written from the numbers, and the report across notebooks.

- :mod:`dmlkit.reporting.tables` — one header map and number format for every Markdown table.
- :mod:`dmlkit.reporting.findings` — sentences computed from the statistics (rank correlations).
- :mod:`dmlkit.reporting.results` — ``figures/results.md`` and the README's results block
  (``python -m dmlkit.reporting``).
"""

from dmlkit.reporting.findings import RHO_TARGETS, correlation_rows, describe_correlation, roth_prediction
from dmlkit.reporting.tables import (
    column_header,
    correlation_table,
    format_accuracy_table,
    format_value,
    leaderboard_table,
    results_table,
)

__all__ = [
    "RHO_TARGETS",
    "column_header",
    "correlation_rows",
    "correlation_table",
    "describe_correlation",
    "format_accuracy_table",
    "format_value",
    "leaderboard_table",
    "results_table",
    "roth_prediction",
]
