"""The kit's one verdict rule: a difference is named only when its paired interval over at least
three seeds excludes zero."""

import math

import numpy as np
import pytest
from scipy import stats

from dmlkit.experiment import Budget
from dmlkit.verdicts import (
    BETTER,
    NO_DIFFERENCE,
    NO_VERDICT,
    WORSE,
    budget_text,
    compare,
    decide,
    paired_interval,
    seed_list,
)


def test_a_real_difference_is_named_and_its_mirror_is_the_opposite():
    a, b = [80.1, 79.5, 80.4, 80.0], [78.0, 78.2, 78.9, 78.1]
    v = compare(a, b, a_name="MS", b_name="MS without mining", budget=Budget(steps=1000))
    assert v.word == BETTER and v.named
    assert compare(b, a, a_name="x", b_name="y", budget="b").word == WORSE
    assert "MS better" in v.sentence() and "1000 steps of P=32 × K=4" in v.sentence()


def test_a_difference_inside_the_seed_noise_is_not_named():
    # mean difference +1.0, but one seed reverses it: the interval contains 0
    v = compare([80.1, 77.5, 80.4], [78.0, 78.2, 78.9], a_name="a", b_name="b", budget="800 steps")
    assert v.word == NO_DIFFERENCE and not v.named
    assert v.low < 0 < v.high
    assert "no difference detectable at this budget" in v.sentence()


def test_one_or_two_seeds_give_no_verdict_however_large_the_gap():
    assert compare([90.0], [10.0], a_name="a", b_name="b", budget="x").word == NO_VERDICT
    v = compare([90.0, 91.0], [10.0, 11.5], a_name="a", b_name="b", budget="x")
    assert v.word == NO_VERDICT and "at least 3 seeds" in v.sentence()


def test_the_interval_is_the_student_t_interval_of_the_paired_differences():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=5), rng.normal(size=5)
    d = a - b
    half = stats.t.ppf(0.975, 4) * d.std(ddof=1) / math.sqrt(5)
    got = paired_interval(a, b)
    assert got["mean"] == pytest.approx(d.mean()) and got["n"] == 5
    assert got["low"] == pytest.approx(d.mean() - half) and got["high"] == pytest.approx(d.mean() + half)
    assert decide({"low": 0.1, "high": 0.3, "n": 3}, min_seeds=3) == BETTER
    assert decide({"low": -0.1, "high": 0.3, "n": 3}, min_seeds=3) == NO_DIFFERENCE


def test_false_positive_rate_on_equal_methods_is_near_the_confidence_level():
    rng = np.random.default_rng(1)
    named = sum(
        compare(rng.normal(size=3), rng.normal(size=3), a_name="a", b_name="b", budget="x").named for _ in range(2000)
    )
    assert 0.03 < named / 2000 < 0.07


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="one entry per seed"):
        paired_interval([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        paired_interval([1, float("nan"), 3], [1, 2, 3])
    with pytest.raises(ValueError, match="non-empty"):
        paired_interval([], [])
    with pytest.raises(ValueError, match="positive integer"):
        seed_list(0, 0)
    assert seed_list(4, 3) == [4, 5, 6]
    assert budget_text("3 seeds") == "3 seeds"


def test_a_quantity_that_is_neither_good_nor_bad_is_called_higher_or_lower():
    v = compare(
        [2.61, 2.70, 2.65],
        [1.90, 1.85, 1.95],
        a_name="memory bank",
        b_name="contrastive",
        budget="at 300 steps",
        metric="ρ",
        unit="",
        direction=("higher", "lower"),
        digits=3,
    )
    assert v.word == "better"  # the decision is the same; only the words change
    assert "memory bank higher" in v.sentence() and "better" not in v.sentence()
    assert "2.653 ± 0.045" in v.sentence() and "difference +0.753," in v.sentence()
    with pytest.raises(ValueError, match="two words"):
        compare([1, 2, 3], [1, 2, 3], a_name="a", b_name="b", budget="x", direction=("up",))
