"""Spearman's rank correlation and its bootstrap interval, against scipy and a plain loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from dmlkit.analysis import bootstrap_rank_correlation, rank_correlation


@pytest.mark.parametrize("seed", range(5))
def test_rank_correlation_equals_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, size=25).astype(float)  # many ties
    y = x + rng.normal(size=25)
    y[:4] = y[0]
    assert rank_correlation(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_rank_correlation_extremes():
    assert rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3, 4], [4, 1, 0, -5]) == pytest.approx(-1.0)
    assert rank_correlation([0.4, 0.6, 0.5, 0.9, 0.7], [60, 58, 55, 30, 50]) == pytest.approx(-0.9)
    assert math.isnan(rank_correlation([1, 1, 1], [1, 2, 3]))


def test_bootstrap_interval_equals_a_plain_loop():
    rng = np.random.default_rng(3)
    x = rng.normal(size=15)
    y = -x + rng.normal(size=15)
    result = bootstrap_rank_correlation(x, y, num_resamples=300, confidence=0.9, seed=7)
    picks = np.random.default_rng(7).integers(0, 15, size=(300, 15))  # the function's first draw
    values = []
    for row in picks:
        value = stats.spearmanr(x[row], y[row]).statistic
        if np.isfinite(value):
            values.append(value)
    low, high = np.quantile(values, [0.05, 0.95])
    assert result["low"] == pytest.approx(low, abs=1e-12)
    assert result["high"] == pytest.approx(high, abs=1e-12)
    assert result["low"] <= result["spearman"] <= result["high"]
    assert result["num_points"] == 15 and result["num_resamples"] == 300


def test_permutation_p_value_separates_signal_from_noise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    strong = bootstrap_rank_correlation(x, 2 * x + 0.3 * rng.normal(size=40), seed=1)
    unrelated = bootstrap_rank_correlation(x, rng.normal(size=40), seed=1)
    assert strong["p_value"] == pytest.approx(1 / 2001)  # no permutation reaches it
    assert unrelated["p_value"] > 0.05
    assert unrelated["low"] < 0 < unrelated["high"]
    again = bootstrap_rank_correlation(x, 2 * x, seed=1)
    assert again == bootstrap_rank_correlation(x, 2 * x, seed=1)  # seeded


@pytest.mark.parametrize(
    "x, y, options, message",
    [
        ([1, 2, 3], [1, 2], {}, "one value per point, got 3 and 2"),
        ([1, 2], [1, 2], {}, "at least 3 points, got 2"),
        ([1, 2, float("nan")], [1, 2, 3], {}, "must be finite"),
        ([1, 2, 3], [1, 2, 3], {"num_resamples": 10}, "num_resamples must be an integer >= 100"),
        ([1, 2, 3], [1, 2, 3], {"confidence": 1.0}, "confidence must lie strictly between 0 and 1"),
    ],
)
def test_clear_errors(x, y, options, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_rank_correlation(x, y, **options)
