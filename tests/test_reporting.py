"""dmlkit.reporting: the findings written from the numbers and the correlation table."""

from __future__ import annotations

import math

import pytest

from dmlkit.analysis import bootstrap_rank_correlation
from dmlkit.reporting import (
    correlation_rows,
    correlation_table,
    describe_correlation,
    format_value,
    results_table,
    roth_prediction,
)


def stats(spearman: float, low: float, high: float, n: int = 8, p: float = 0.01) -> dict[str, float]:
    return {"spearman": spearman, "low": low, "high": high, "num_points": n, "p_value": p}


@pytest.mark.parametrize(
    "values, expected",
    [
        (
            stats(-0.8, -0.95, -0.4),
            "a strong negative rank correlation (Spearman -0.80, n = 8); its 95% interval [-0.95, -0.40] excludes 0.",
        ),
        (
            stats(0.45, 0.1, 0.7),
            "a moderate positive rank correlation (Spearman +0.45, n = 8); its 95% interval [+0.10, +0.70] excludes 0.",
        ),
        (
            stats(0.1, -0.5, 0.6),
            "a weak positive rank correlation (Spearman +0.10, n = 8); its 95% interval [-0.50, +0.60] includes 0, so the sign itself is uncertain.",
        ),
    ],
)
def test_describe_correlation(values, expected):
    assert describe_correlation(values, "ρ vs MAP@R") == f"ρ vs MAP@R: {expected}"


def test_describe_correlation_without_ordering():
    assert describe_correlation(stats(math.nan, math.nan, math.nan), "x") == "x: no ordering to correlate."


def test_roth_prediction_needs_the_whole_interval():
    assert roth_prediction(stats(-0.7, -0.9, -0.2)).endswith("this is what these runs show.")
    assert roth_prediction(stats(0.7, 0.2, 0.9)).endswith("these runs contradict it.")
    assert roth_prediction(stats(-0.7, -0.9, 0.1)).endswith("neither confirm nor contradict it.")


def test_correlation_rows_are_the_bootstrap_of_each_pair():
    runs = [
        {"rho": r, "map@r": m, "gap_map@r": g}
        for r, m, g in [(0.1, 0.5, 0.2), (0.3, 0.4, 0.1), (0.2, 0.6, 0.3), (0.5, 0.3, 0.0)]
    ]
    rows = correlation_rows(runs, "all", num_resamples=200, seed=3)
    assert list(rows) == ["all: ρ vs held-out MAP@R", "all: ρ vs train − held-out MAP@R gap"]
    rho = [r["rho"] for r in runs]
    assert rows["all: ρ vs held-out MAP@R"] == bootstrap_rank_correlation(
        rho, [r["map@r"] for r in runs], num_resamples=200, seed=3
    )
    assert correlation_rows(runs[:2], "two", num_resamples=200) == {}


def test_correlation_table():
    table = correlation_table({"all runs: ρ vs MAP@R": stats(-0.5, -0.8, 0.05, n=12, p=0.034)})
    assert table.splitlines()[2] == "| all runs | ρ vs MAP@R | 12 | -0.50 | [-0.80, +0.05] | 0.034 |"


def test_results_table_and_format_value():
    assert format_value("map@r", 0.4567, 0.0123) == "45.7 ± 1.2"
    assert format_value("rho", 0.12345) == "0.123"
    assert format_value("train_s", math.nan) == "–"
    table = results_table({"A": {"map@r": 0.5, "rho": 0.2}}, columns=("map@r", "rho"))
    assert table.splitlines() == ["| method | MAP@R | ρ |", "| --- | ---: | ---: |", "| A | 50.0 | 0.200 |"]


def test_correlation_rows_with_other_targets():
    runs = [{"rho": r, "recall@1": m} for r, m in [(0.1, 0.5), (0.3, 0.4), (0.2, 0.6), (0.5, 0.3)]]
    rows = correlation_rows(runs, "all", num_resamples=100, targets={"recall@1": "ρ vs R@1"})
    assert list(rows) == ["all: ρ vs R@1"] and rows["all: ρ vs R@1"]["spearman"] == pytest.approx(-0.8)
