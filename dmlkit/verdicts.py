"""One rule for "better", "worse" and "no difference": verdicts from paired seeds.

Every comparison a notebook names — "MS mining helps", "SNR beats Euclidean", "the hyperbolic
model is ahead" — is decided here, the same way (the Reality Check's advice, Musgrave, Belongie
& Lim, ECCV 2020, §4: report runs over several seeds, not one):

1. Both methods are trained with the same seeds; seed *s* of one is paired with seed *s* of the
   other (same initial weights where the architectures agree, same batches).
2. The per-seed differences ``a_s - b_s`` give a mean and a two-sided Student-t interval
   (``n - 1`` degrees of freedom, 95 % by default).
3. A difference is named only when its interval excludes zero; otherwise the verdict is
   "no difference detectable at this budget". With fewer than :data:`MIN_SEEDS` pairs there is
   no verdict at all: one seed cannot tell a method from its noise (notebook 07 measured seed
   standard deviations of 0.6–3.9 MAP@R points on the glyphs).

Every sentence says the budget it holds at: a verdict at 1,000 steps can reverse at 5,000.

    >>> v = compare([80.1, 79.5, 80.4], [78.0, 78.2, 78.9], a_name="MS", b_name="MS without mining",
    ...             budget="1000 steps of P=32 x K=4")
    >>> v.word
    'better'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "BETTER",
    "MIN_SEEDS",
    "NO_DIFFERENCE",
    "NO_VERDICT",
    "SEEDS",
    "WORSE",
    "Verdict",
    "budget_text",
    "compare",
    "decide",
    "mean_std",
    "paired_interval",
    "seed_list",
]

#: Seeds a notebook trains each compared method with by default.
SEEDS = 3
#: The fewest seed pairs a verdict is drawn from.
MIN_SEEDS = 3
BETTER = "better"
WORSE = "worse"
#: The verdict word when the interval contains zero (its sentence: "no difference detectable at this budget").
NO_DIFFERENCE = "no clear difference"
#: The verdict word when there are fewer than :data:`MIN_SEEDS` pairs.
NO_VERDICT = "no verdict"


def seed_list(first: int, count: int) -> list[int]:
    """The seeds ``first, first + 1, …`` (``count`` of them, at least 1)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"the number of seeds must be a positive integer, got {count!r}")
    if isinstance(first, bool) or not isinstance(first, int):
        raise ValueError(f"the first seed must be an integer, got {first!r}")
    return [first + i for i in range(count)]


def _values(name: str, values: Sequence[float]) -> np.ndarray:
    x = np.asarray(list(values), dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{name} must be a non-empty sequence of numbers, one per seed, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} holds a NaN or infinite value: {x.tolist()}")
    return x


def paired_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """Mean of the seed-paired differences ``a - b`` and its two-sided t-interval.

    ``n - 1`` degrees of freedom; NaN bounds for a single pair. ``a[i]`` and ``b[i]`` must come
    from the same seed."""
    from scipy import stats

    x, y = _values("a", a), _values("b", b)
    if x.size != y.size:
        raise ValueError(f"paired values need one entry per seed on both sides, got {x.size} and {y.size}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    d = x - y
    mean = float(d.mean())
    if d.size < 2:
        return {"mean": mean, "low": math.nan, "high": math.nan, "n": 1}
    half = float(stats.t.ppf(0.5 + confidence / 2, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": int(d.size)}


def decide(interval: dict[str, Any], min_seeds: int = 1) -> str:
    """:data:`BETTER` / :data:`WORSE` when the interval excludes 0, :data:`NO_DIFFERENCE` when it
    contains it, :data:`NO_VERDICT` with fewer than ``min_seeds`` pairs or no interval."""
    if int(interval.get("n", min_seeds)) < min_seeds or not (
        math.isfinite(interval["low"]) and math.isfinite(interval["high"])
    ):
        return NO_VERDICT
    if interval["low"] > 0:
        return BETTER
    if interval["high"] < 0:
        return WORSE
    return NO_DIFFERENCE


def mean_std(values: Sequence[float], digits: int = 1) -> str:
    """``"78.1 ± 0.6"`` (sample standard deviation), or the single value."""
    x = _values("values", values)
    if x.size == 1:
        return f"{x[0]:.{digits}f}"
    return f"{x.mean():.{digits}f} ± {x.std(ddof=1):.{digits}f}"


def budget_text(budget: Any) -> str:
    """``"1000 steps of P=32 × K=4"`` for a :class:`dmlkit.experiment.Budget` (or any object with
    ``steps``, ``P`` and ``K``); a string is returned as it is."""
    if isinstance(budget, str):
        return budget
    return f"{budget.steps} steps of P={budget.P} × K={budget.K}"


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`compare`; :meth:`sentence` is what a notebook prints."""

    a_name: str
    b_name: str
    a: tuple[float, ...]
    b: tuple[float, ...]
    mean: float
    low: float
    high: float
    n: int
    word: str
    budget: str
    metric: str
    unit: str
    confidence: float
    what: str = ""
    #: the words for a named difference: ``a`` "better"/"worse" by default; for a quantity that is
    #: neither good nor bad (ρ, a gap), e.g. ``("higher", "lower")``
    direction: tuple[str, str] = ("better", "worse")
    #: decimals of the printed values
    digits: int = 1

    @property
    def named(self) -> bool:
        """Whether the comparison names a difference (the interval excludes zero)."""
        return self.word in (BETTER, WORSE)

    def sentence(self) -> str:
        head = f"{self.what}: " if self.what else ""
        d = self.digits
        values = f"{self.a_name} {mean_std(self.a, d)} vs {self.b_name} {mean_std(self.b, d)} {self.metric}"
        if self.word == NO_VERDICT:
            return (
                f"{head}{values} ({self.n} seed{'s' if self.n != 1 else ''}, {self.budget}): no verdict — "
                f"a verdict needs at least {MIN_SEEDS} seeds of each"
            )
        unit = f" {self.unit}" if self.unit else ""
        interval = (
            f"difference {self.mean:+.{d}f}{unit}, {100 * self.confidence:.0f} % interval "
            f"[{self.low:+.{d}f}, {self.high:+.{d}f}]"
        )
        if self.word == BETTER:
            conclusion = f"{self.a_name} {self.direction[0]}"
        elif self.word == WORSE:
            conclusion = f"{self.a_name} {self.direction[1]}"
        else:
            conclusion = "no difference detectable at this budget"
        return f"{head}{values} over {self.n} seeds; {interval} — {conclusion} ({self.budget})"

    def as_dict(self) -> dict[str, Any]:
        """The verdict as JSON-ready values (for ``results.json``)."""
        return {
            "a": self.a_name,
            "b": self.b_name,
            "metric": self.metric,
            "mean": self.mean,
            "low": self.low,
            "high": self.high,
            "seeds": self.n,
            "verdict": self.word,
            "budget": self.budget,
        }


def compare(
    a: Sequence[float],
    b: Sequence[float],
    *,
    a_name: str,
    b_name: str,
    budget: Any,
    metric: str = "MAP@R",
    unit: str = "points",
    what: str = "",
    confidence: float = 0.95,
    min_seeds: int = MIN_SEEDS,
    direction: tuple[str, str] = ("better", "worse"),
    digits: int = 1,
) -> Verdict:
    """Decide whether ``a`` is better than, worse than or indistinguishable from ``b``.

    ``a`` and ``b`` hold one value per seed, in the same seed order (e.g. held-out MAP@R in %);
    ``budget`` is what the verdict holds at (a :class:`~dmlkit.experiment.Budget` or a phrase).
    The verdict is :data:`BETTER` or :data:`WORSE` only when the paired ``confidence`` interval
    of ``a - b`` excludes zero, :data:`NO_DIFFERENCE` when it contains zero, and
    :data:`NO_VERDICT` with fewer than ``min_seeds`` seeds. ``direction`` are the words the
    sentence uses for a positive and a negative named difference (``("higher", "lower")`` for a
    quantity such as ρ), ``digits`` the decimals it prints."""
    if len(direction) != 2 or not all(isinstance(w, str) and w for w in direction):
        raise ValueError(f"direction must be two words, e.g. ('higher', 'lower'), got {direction!r}")
    interval = paired_interval(a, b, confidence)
    return Verdict(
        a_name=str(a_name),
        b_name=str(b_name),
        a=tuple(float(v) for v in a),
        b=tuple(float(v) for v in b),
        mean=interval["mean"],
        low=interval["low"],
        high=interval["high"],
        n=int(interval["n"]),
        word=decide(interval, min_seeds),
        budget=budget_text(budget),
        metric=metric,
        unit=unit,
        confidence=confidence,
        what=what,
        direction=(str(direction[0]), str(direction[1])),
        digits=int(digits),
    )
