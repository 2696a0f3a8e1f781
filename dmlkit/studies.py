"""The studies behind a fair comparison: convergence curves and an equal-budget search, both on
validation classes.

Musgrave, Belongie & Lim (ECCV 2020, "A Metric Learning Reality Check") showed that published
gains shrink when every method gets the same tuning effort and nothing is chosen on the test
classes. Here every choice is made on **validation classes** carved out of the training classes
(:func:`dmlkit.data.split_validation_classes`):

- :func:`convergence_curve` trains one method with periodic evaluation on the validation
  classes and finds its plateau (:func:`dmlkit.convergence.find_plateau`): the step at which it
  reaches 95 % of what it will reach is what a budget must cover;
- :func:`search_grid` gives every method the same number of trials — the backbone learning rate
  at ``Method.base_lr`` × (1/3, 1, 3) times the three values of its main hyper-parameter
  (``Method.knob``) — and :func:`search` runs them and names the best by validation MAP@R;
- :func:`coordinate_trials` is the cheaper equal-budget search of ``dmlkit results``
  (:mod:`dmlkit.study`): the three learning rates at the paper's value of the knob, then the
  knob's other two values at the best learning rate — 5 trials for every method.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dmlkit.convergence import Plateau, find_plateau
from dmlkit.data.splits import ClassSplit
from dmlkit.experiment import Budget

__all__ = ["LR_FACTORS", "Curve", "convergence_curve", "search_grid", "search", "paper_knob_value", "coordinate_trials"]

#: The backbone learning rates a search tries, relative to ``Method.base_lr``.
LR_FACTORS = (1 / 3, 1.0, 3.0)


@dataclass(frozen=True)
class Curve:
    """Validation metrics of one run, evaluated every few steps, and its plateau (``rho``: ρ@1 of
    the validation embeddings at each evaluation)."""

    method: str
    steps: tuple[int, ...]
    map_at_r: tuple[float, ...]
    recall_at_1: tuple[float, ...]
    plateau: Plateau
    train_seconds: float
    rho: tuple[float, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "steps": list(self.steps),
            "map@r": list(self.map_at_r),
            "recall@1": list(self.recall_at_1),
            "rho": list(self.rho),
            "plateau": vars(self.plateau),
            "train_s": self.train_seconds,
        }


def _method(method: Any) -> Any:
    from dmlkit import zoo

    return zoo.get_method(method) if isinstance(method, str) else method


def convergence_curve(
    method: Any,
    split: ClassSplit,
    budget: Budget,
    eval_every: int,
    seed: int = 0,
    settings: dict[str, float] | None = None,
    tolerance: float = 0.005,
) -> Curve:
    """Train ``method`` (a :mod:`dmlkit.zoo` name or recipe) for ``budget.steps`` on
    ``split.train``, evaluating on ``split.validation`` every ``eval_every`` steps, and find the
    plateau of its MAP@R (``tolerance``: the gain over the last third that still counts as flat)."""
    from dmlkit import zoo

    method = _method(method)
    if eval_every < 1 or budget.steps // eval_every < 3:
        raise ValueError(
            f"eval_every={eval_every} gives fewer than 3 evaluations in {budget.steps} steps; "
            "a plateau needs at least 3"
        )
    result = zoo.train(
        method, split.train, split.validation, budget.with_(eval_every=eval_every), seed, settings=settings
    )
    records = result.history.evaluations
    steps = tuple(int(r["step"]) for r in records)
    map_at_r = tuple(float(r["map@r"]) for r in records)
    recall = tuple(float(r["recall@1"]) for r in records)
    rho = tuple(float(r["rho"]) for r in records if "rho" in r)
    return Curve(
        method=method.name,
        steps=steps,
        map_at_r=map_at_r,
        recall_at_1=recall,
        plateau=find_plateau(steps, map_at_r, tolerance=tolerance),
        train_seconds=result.history.train_seconds,
        rho=rho if len(rho) == len(steps) else (),
    )


def search_grid(method: Any, lr_factors: Sequence[float] = LR_FACTORS) -> list[dict[str, float]]:
    """The trials of ``method``'s search: every backbone learning rate ``base_lr × factor`` with
    every value of its knob (``{"lr": …, knob: …}``), the same count for every method."""
    method = _method(method)
    if method.knob is None:
        raise ValueError(f"{method.name!r} names no main hyper-parameter (Method.knob) to search")
    keyword, values = method.knob
    return [{"lr": method.base_lr * factor, keyword: value} for factor in lr_factors for value in values]


def search(
    method: Any,
    split: ClassSplit,
    budget: Budget,
    seed: int = 0,
    lr_factors: Sequence[float] = LR_FACTORS,
) -> dict[str, Any]:
    """Run every trial of :func:`search_grid` at ``budget`` (its ``lr`` replaced by each trial's)
    and return ``{"method", "trials": [{..., "map@r", "recall@1"}], "best": the trial with the
    highest validation MAP@R}`` (ties: the first in grid order)."""
    from dmlkit import zoo

    method = _method(method)
    trials = []
    for trial in search_grid(method, lr_factors):
        lr = trial["lr"]
        knob = {k: v for k, v in trial.items() if k != "lr"}
        result = zoo.train(method, split.train, split.validation, budget.with_(lr=lr), seed, settings=knob)
        trials.append({**trial, "map@r": result.test_metrics["map@r"], "recall@1": result.test_metrics["recall@1"]})
    best = max(trials, key=lambda t: t["map@r"])
    return {"method": method.name, "budget": budget.steps, "seed": seed, "trials": trials, "best": best}


def paper_knob_value(method: Any) -> float:
    """The paper's value of ``method``'s knob: the default of that keyword of ``make_loss``."""
    import inspect

    method = _method(method)
    if method.knob is None:
        raise ValueError(f"{method.name!r} names no main hyper-parameter (Method.knob)")
    keyword = method.knob[0]
    parameter = inspect.signature(method.make_loss).parameters.get(keyword)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        raise ValueError(f"{method.name!r}: make_loss has no default for its knob {keyword!r}")
    return parameter.default


def coordinate_trials(
    method: Any, lr: float | None = None, lr_factors: Sequence[float] = LR_FACTORS
) -> list[dict[str, float]]:
    """One half of a coordinate search. Without ``lr``: the learning rates ``base_lr × factor``
    at the paper's value of the knob. With ``lr`` (the best of those): the knob's other values
    at that learning rate. Both halves together give every method
    ``len(lr_factors) + len(values) - 1`` trials."""
    method = _method(method)
    if method.knob is None:
        raise ValueError(f"{method.name!r} names no main hyper-parameter (Method.knob) to search")
    keyword, values = method.knob
    paper = paper_knob_value(method)
    if paper not in values:
        raise ValueError(f"{method.name!r}: the paper's {keyword}={paper} is not among the searched values {values}")
    if lr is None:
        return [{"lr": method.base_lr * factor, keyword: paper} for factor in lr_factors]
    return [{"lr": lr, keyword: value} for value in values if value != paper]
