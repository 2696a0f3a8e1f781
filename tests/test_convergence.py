"""Plateau detection (dmlkit.convergence) against curves whose answer is known in closed form."""

import math

import numpy as np
import pytest

from dmlkit.convergence import find_plateau


def test_flat_after_a_ramp():
    steps = list(range(0, 1001, 100))  # 0 .. 1000
    values = [min(s, 400) / 400 * 0.6 for s in steps]  # rises to 0.6 at step 400, then flat
    p = find_plateau(steps, values)
    assert p.value == pytest.approx(0.6)
    assert p.gain == pytest.approx(0.0, abs=1e-12)
    assert p.plateaued
    # 95% of 0.6 = 0.57 is first reached at step 400 (0.45 at 300)
    assert p.step_at_level == 400
    assert p.tail_start == 700  # last third of 0..1000 starts at 666.7


def test_a_line_is_not_a_plateau_and_its_gain_is_exact():
    steps = np.arange(0, 901, 100)
    values = 0.1 + 1e-4 * steps  # +0.03 over the last third (600..900)
    p = find_plateau(steps, values)
    assert p.gain == pytest.approx(0.03)
    assert not p.plateaued
    assert "still rising" in p.describe()


def test_noise_does_not_fake_a_trend():
    rng = np.random.default_rng(0)
    steps = np.arange(0, 3001, 50)
    values = 0.7 * (1 - np.exp(-steps / 200)) + rng.normal(0, 0.003, len(steps))
    p = find_plateau(steps, values)
    assert p.plateaued
    assert p.value == pytest.approx(0.7, abs=0.003)
    # 1 - exp(-s/200) >= 0.95  <=>  s >= 200 ln 20 = 599; evaluations every 50 steps, noise 0.003
    assert 500 <= p.step_at_level <= 700
    assert math.isclose(p.level, 0.95)


def test_tolerance_decides():
    steps, values = [0, 100, 200, 300, 400, 500], [0.1, 0.3, 0.4, 0.45, 0.452, 0.456]
    assert find_plateau(steps, values, tolerance=0.01).plateaued
    assert not find_plateau(steps, values, tolerance=0.001).plateaued


@pytest.mark.parametrize(
    ("steps", "values", "kwargs", "message"),
    [
        ([0, 1], [0.1, 0.2], {}, "at least 3"),
        ([0, 2, 1], [0.1, 0.2, 0.3], {}, "strictly increasing"),
        ([0, 1, 2], [0.1, float("nan"), 0.3], {}, "finite"),
        ([0, 1, 2], [0.1, 0.2], {}, "one length"),
        ([0, 1, 2], [0.1, 0.2, 0.3], {"fraction": 1.0}, "fraction"),
        ([0, 1, 2], [0.1, 0.2, 0.3], {"level": 0.0}, "level"),
        ([0, 1, 2], [0.1, 0.2, 0.3], {"tolerance": -1.0}, "tolerance"),
    ],
)
def test_bad_input_is_refused(steps, values, kwargs, message):
    with pytest.raises(ValueError, match=message):
        find_plateau(steps, values, **kwargs)
