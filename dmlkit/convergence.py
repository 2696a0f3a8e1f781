"""Has a training run converged? Plateau detection on a metric measured during training.

A comparison of methods at a fixed budget measures how fast each starts unless every method
has plateaued. :func:`find_plateau` reads a metric curve — e.g. held-out (validation-class)
MAP@R every few hundred steps, ``History.eval_steps``/``History.eval_metrics`` of
:func:`dmlkit.train.fit` — and says

- the **plateau**: the mean of the metric over the last ``fraction`` of the run;
- the **gain over that last part**: the rise of a least-squares line through its evaluations,
  over its length (robust to the evaluation noise that a difference of two points is not);
- **plateaued**: that gain is below ``tolerance`` (issue 14's rule: under 0.5 MAP@R points over
  the last third of the run);
- the **step at which the curve first reaches** ``level`` (95 %) of the plateau: a budget that
  runs to that step gets most of what the method will get.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dmlkit.checks import check_real

__all__ = ["Plateau", "find_plateau"]


@dataclass(frozen=True)
class Plateau:
    """What :func:`find_plateau` found on one curve."""

    value: float
    gain: float
    plateaued: bool
    step_at_level: int | None
    level: float
    tail_start: int

    def describe(self, points: float = 100.0) -> str:
        """One line, values scaled by ``points`` (100: fractions shown as percentage points)."""
        reached = (
            f"reaches {self.level:.0%} of it at step {self.step_at_level}"
            if self.step_at_level is not None
            else f"never reaches {self.level:.0%} of it"
        )
        state = "plateaued" if self.plateaued else "still rising" if self.gain > 0 else "still falling"
        return (
            f"plateau {points * self.value:.1f} (mean from step {self.tail_start}), "
            f"{points * self.gain:+.2f} over that part: {state}; {reached}"
        )


def find_plateau(
    steps: Sequence[int],
    values: Sequence[float],
    tolerance: float = 0.005,
    fraction: float = 1 / 3,
    level: float = 0.95,
) -> Plateau:
    """Plateau of the curve ``values`` measured at ``steps`` (see the module docstring).

    Args:
        steps: increasing training steps of the evaluations (at least 3).
        values: the metric at those steps (finite; larger is better, e.g. MAP@R as a fraction).
        tolerance: the largest gain over the last part that still counts as a plateau, in the
            units of ``values`` (0.005: half a MAP@R point for fractions).
        fraction: the share of the run, counted in steps from the end, that forms the last
            part; it holds at least two evaluations.
        level: the share of the plateau whose first crossing is reported.

    Raises:
        ValueError: fewer than 3 evaluations, steps not increasing, a non-finite value, or a
            setting outside its range.
    """
    x = np.asarray(steps, dtype=float)
    y = np.asarray(values, dtype=float)
    if x.ndim != 1 or y.shape != x.shape:
        raise ValueError(f"steps and values must be 1-D of one length, got {x.shape} and {y.shape}")
    if len(x) < 3:
        raise ValueError(f"a plateau needs at least 3 evaluations, got {len(x)}")
    if not np.all(np.diff(x) > 0):
        raise ValueError("steps must be strictly increasing")
    if not np.all(np.isfinite(y)):
        raise ValueError("values must be finite (a NaN metric means the run diverged)")
    check_real("tolerance", tolerance)
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if not (0 < check_real("fraction", fraction) < 1):
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    if not (0 < check_real("level", level) <= 1):
        raise ValueError(f"level must lie in (0, 1], got {level}")
    start = x[-1] - fraction * (x[-1] - x[0])
    tail = np.nonzero(x >= start)[0]
    if len(tail) < 2:
        tail = np.arange(len(x) - 2, len(x))
    tx, ty = x[tail], y[tail]
    slope = np.polyfit(tx, ty, 1)[0]
    gain = float(slope * (tx[-1] - tx[0]))
    value = float(ty.mean())
    target = level * value
    crossed = np.nonzero(y >= target - 1e-12 * max(1.0, abs(target)))[0]
    step_at_level = int(x[crossed[0]]) if len(crossed) and not math.isnan(target) else None
    return Plateau(value, gain, gain < tolerance, step_at_level, level, int(tx[0]))
