"""``dmlkit results``: the tuned, converged study behind notebook 07's leaderboard.

One command runs, in order, every stage of a comparison an expert reviewer would accept
(Musgrave, Belongie & Lim, ECCV 2020, "A Metric Learning Reality Check"), each on the data it
may use:

1. **convergence** — every leaderboard method (:data:`dmlkit.zoo.LEADERBOARD`, its official
   optimiser recipe, the paper's hyper-parameters) trained on the training classes less the
   validation classes, validation MAP@R every few steps
   (:func:`dmlkit.studies.convergence_curve`). The **budget** is the largest step at which a
   method first reaches 95 % of its plateau: every method gets most of what it will get.
2. **search** — the same number of trials for every method, on the validation classes only
   (the 200 held-out classes are never used for choosing): the backbone learning rate at
   ``base_lr`` × (1/3, 1, 3) with the paper's value of the method's main hyper-parameter, then
   the other two values of that hyper-parameter at the best learning rate
   (:func:`dmlkit.studies.coordinate_trials`), 5 trials in all.
3. **leaderboard** — every method at its tuned setting and the budget, trained on all 200
   training classes, over several seeds, held-out MAP@R, Recall@1, ρ and the generalisation
   gap; the paired difference of every method to the leader with its 95 % t-interval.
4. **stability** — the same tuned methods at 3× the budget; the Spearman correlation of the
   method order at the budget with the order at 3× the budget (seed-matched).
5. **rho** — Roth et al.'s ρ-regularisation (ICML 2020) at the budget: the distance-weighted
   margin and triplet losses at several ``p_switch`` over the seeds, ρ and held-out MAP@R with
   paired differences to ``p_switch = 0``.

Every run is written to ``<out>/runs/<stage>/…json`` as soon as it ends; a second call reuses
them (a cut-off study resumes where it stopped), and ``results.json`` is rewritten atomically
after each stage with the commit, date, machine and plan that produced it. Notebook 07 reads it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from dmlkit.files import atomic_write_text
from dmlkit.verdicts import MIN_SEEDS, NO_DIFFERENCE, NO_VERDICT, decide, paired_interval

__all__ = [
    "STAGES",
    "StudyPlan",
    "Tuned",
    "smoke_plan",
    "run_study",
    "read_study",
    "tuned_settings",
    "family_budget",
    "budget_report",
    "tuned_budget",
    "family_tuning",
    "paired_interval",
    "verdict",
    "main",
]

STAGES = ("convergence", "search", "leaderboard", "stability", "rho")

#: Where ``dmlkit results`` writes by default (relative to the working directory).
DEFAULT_OUT = Path("figures") / "study"


@dataclass(frozen=True)
class StudyPlan:
    """What the study trains (steps are optimiser steps of P×K = 32×4 batches).

    ``budget_cap``: the most steps the budget may have, whatever the convergence rule asks for
    (``None``, the default: the rule's budget). A cap of 1,000 steps (about 21 epochs of the
    6,000 glyph training images) shortens the whole study to about 1.5 hours on a 2-core CPU;
    the rule's own budget is recorded beside it (``budget_by_rule``), and the stability stage
    (3× the budget) measures whether the capped budget already gives the order a longer one
    would.
    """

    methods: tuple[str, ...] = ()
    dataset: str = "glyphs"
    convergence_steps: int = 2000
    evaluations: int = 10
    budget_cap: int | None = None
    search_fraction: float = 0.5
    seeds: tuple[int, ...] = (0, 1, 2)
    stability_factor: int = 3
    stability_seeds: tuple[int, ...] = (0,)
    validation_classes: int = 40
    rho_methods: tuple[str, ...] = ("margin (distance-weighted)", "triplet (distance-weighted)")
    p_switch: tuple[float, ...] = (0.0, 0.15, 0.35)
    smoke: bool = False
    P: int = 32
    K: int = 4
    eval_images: int | None = None

    def __post_init__(self) -> None:
        from dmlkit import zoo

        if not self.methods:
            object.__setattr__(self, "methods", zoo.LEADERBOARD)
        for name in (*self.methods, *self.rho_methods):
            zoo.get_method(name)
        if self.evaluations < 3:
            raise ValueError(f"evaluations={self.evaluations}: a plateau needs at least 3 evaluations")
        if self.convergence_steps < self.evaluations:
            raise ValueError(f"convergence_steps={self.convergence_steps} is fewer than evaluations={self.evaluations}")
        if not 0 < self.search_fraction <= 1:
            raise ValueError(f"search_fraction must lie in (0, 1], got {self.search_fraction}")
        if self.stability_factor < 2:
            raise ValueError(f"stability_factor must be at least 2, got {self.stability_factor}")
        if len(self.seeds) < 2 or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be at least 2 distinct seeds (paired intervals), got {self.seeds}")
        if not set(self.stability_seeds) <= set(self.seeds):
            raise ValueError(f"stability_seeds {self.stability_seeds} must be among seeds {self.seeds}")
        if 0.0 not in self.p_switch or len(self.p_switch) < 2:
            raise ValueError(f"p_switch must hold 0 (the baseline) and at least one value > 0, got {self.p_switch}")

    @property
    def eval_every(self) -> int:
        return self.convergence_steps // self.evaluations


def smoke_plan() -> StudyPlan:
    """Every stage end to end in about a minute (numbers meaningless)."""
    from dmlkit import zoo

    return StudyPlan(
        methods=zoo.LEADERBOARD[:3],
        convergence_steps=12,
        evaluations=3,
        seeds=(0, 1),
        stability_seeds=(0,),
        validation_classes=10,
        rho_methods=("triplet (distance-weighted)",),
        p_switch=(0.0, 0.35),
        smoke=True,
        P=8,
        K=4,
    )


# --------------------------------------------------------------------------- reading a study


@dataclass(frozen=True)
class Tuned:
    """One method's winner of a study's search: the backbone learning rate and the loss's main
    hyper-parameter (``settings``, for :func:`dmlkit.zoo.train`), chosen on validation classes at
    ``search_steps``; ``step_at_95`` is the step at which the method's convergence curve (of
    ``convergence_steps``) first reached 95 % of its plateau (``None``: not within that run)."""

    method: str
    lr: float
    settings: dict[str, float]
    search_steps: int
    step_at_95: int | None
    convergence_steps: int

    @property
    def converged_by(self) -> int:
        """``step_at_95``, or the whole convergence run for a method that never reached it."""
        return self.step_at_95 if self.step_at_95 is not None else self.convergence_steps


def read_study(study: str | Path | None = None, dataset: str | None = None) -> dict[str, Any]:
    """The ``results.json`` of a ``dmlkit results`` run (a folder or the file; default
    :data:`DEFAULT_OUT`), with its convergence and search stages. A missing file, a study that has
    not run those stages, or one of another data set than ``dataset`` is a clear error."""
    path = Path(study) if study is not None else DEFAULT_OUT
    if path.is_dir() or path.suffix != ".json":
        path = path / "results.json"
    if not path.exists():
        raise FileNotFoundError(
            f"no study results at {path.resolve()}: run `make results` (or `dmlkit results --out DIR`)"
        )
    content = json.loads(path.read_text())
    stages = content.get("stages", {})
    missing = [s for s in ("convergence", "search") if s not in stages]
    if missing:
        raise ValueError(f"{path} has not run the stage(s) {missing} yet: run `make results` again (it resumes)")
    if dataset is not None and content["data"]["name"] != dataset:
        raise ValueError(f"the study at {path} is of {content['data']['name']!r}, not of {dataset!r}")
    return content


def tuned_settings(study: str | Path | dict[str, Any] | None = None, dataset: str | None = None) -> dict[str, Tuned]:
    """Every searched method's :class:`Tuned` winner, by zoo name (``study``: a
    :func:`read_study` result, or a path for it)."""
    content = study if isinstance(study, dict) else read_study(study, dataset)
    stages = content["stages"]
    reached = stages["convergence"]["step_at_95"]
    steps = int(stages["search"]["steps"])
    tuned = {}
    for name, entry in stages["search"]["methods"].items():
        best = entry["best"]
        step = reached.get(name)
        tuned[name] = Tuned(
            name,
            float(best["lr"]),
            {entry["knob"]: best[entry["knob"]]},
            steps,
            None if step is None else int(step),
            int(stages["convergence"]["steps"]),
        )
    return tuned


def family_budget(tuned: dict[str, Tuned], methods: Sequence[str], cap: int | None = None) -> int:
    """The steps at which every one of ``methods`` (those the study measured) has reached 95 % of
    its plateau: the largest ``step_at_95`` among them (a method that never reached it counts
    as the study's convergence run), at most ``cap``. The study's convergence rule, for one
    family's comparison."""
    measured = [tuned[m] for m in methods if m in tuned]
    if not measured:
        raise ValueError(f"the study measured none of {list(methods)}; it measured {sorted(tuned)}")
    longest = max(t.converged_by for t in measured)
    return min(longest, cap) if cap else longest


def budget_report(tuned: dict[str, Tuned], methods: Sequence[str], steps: int) -> str:
    """One line for a family notebook: the step at which each of ``methods`` reached 95 % of its
    plateau in the study, the study's budget for them (:func:`family_budget`), and those that
    ``steps`` leaves short of it."""
    measured = [m for m in methods if m in tuned]
    if not measured:
        return f"the study measured none of these methods; {steps} steps"
    line = "steps to 95 % of the plateau in the study: " + ", ".join(f"{m} {tuned[m].converged_by}" for m in measured)
    line += f"; the study's budget for them: {family_budget(tuned, measured)} steps; this run: {steps} steps"
    short = [f"{m} ({tuned[m].converged_by})" for m in measured if tuned[m].converged_by > steps]
    if short:
        line += " — short of the plateau for " + ", ".join(short)
    return line


def tuned_budget(recipe: str, budget: Any, tuned: dict[str, Tuned]) -> tuple[Any, dict[str, float]]:
    """``(budget, settings)`` to train the zoo method ``recipe`` (or a variant of it) with in a
    family notebook: its official trainer's optimiser recipe (``Budget(recipe="paper")``) at the
    study's tuned learning rate and loss setting when the study searched it, else at the method's
    ``base_lr`` and the paper's setting (``{}``)."""
    from dmlkit import zoo

    method = zoo.get_method(recipe)
    if recipe in tuned:
        return budget.with_(lr=tuned[recipe].lr, recipe="paper", loss_lr=None), dict(tuned[recipe].settings)
    return budget.with_(lr=method.base_lr, recipe="paper", loss_lr=None), {}


def family_tuning(study: str | Path | None, dataset: str, default: str | Path) -> tuple[dict[str, Tuned], str]:
    """What a family notebook trains its zoo recipes with: the :func:`tuned_settings` of
    ``study`` (an explicit path: its errors are raised), or of the committed study at
    ``default`` when there is one for ``dataset`` (else ``{}``, the papers' settings).
    Returns the settings and one sentence saying where they come from."""
    if study is not None:
        content = read_study(study, dataset)
    else:
        try:
            content = read_study(default, dataset)
        except (FileNotFoundError, ValueError) as why:
            return (
                {},
                f"no tuned settings for {dataset!r} ({why}): every recipe at its paper's setting and base learning rate",
            )
    tuned = tuned_settings(content)
    stages = content["stages"]
    sentence = (
        f"tuned settings of the study `{content['command']}` at commit {content['commit']} "
        f"(written {content['written']}; search of {stages['search']['trials_per_method']} trials per method "
        f"at {stages['search']['steps']} steps on {content['data']['validation_classes']} validation classes)"
    )
    return tuned, sentence


# --------------------------------------------------------------------------- statistics


def verdict(interval: dict[str, float]) -> str:
    """The kit's one verdict rule (:func:`dmlkit.verdicts.decide`): ``"better"``/``"worse"`` when the
    paired interval excludes 0, ``"no clear difference"`` when it contains it, ``"no verdict"``
    with fewer than :data:`dmlkit.verdicts.MIN_SEEDS` seeds."""
    return decide(interval, MIN_SEEDS)


# --------------------------------------------------------------------------- runs


def _slug(text: str) -> str:
    keep = "".join(ch if ch.isalnum() else "-" for ch in text).strip("-").lower()
    return "-".join(part for part in keep.split("-") if part)


def _key(**parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


class _Runs:
    """The run cache: one JSON file per finished run."""

    def __init__(self, out: Path, log: Callable[[str], None]) -> None:
        self.out = out
        self.log = log

    def get(
        self, stage: str, label: str, spec: dict[str, Any], compute: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        path = self.out / "runs" / stage / f"{_slug(label)}-{_key(**spec)}.json"
        if path.exists():
            record = json.loads(path.read_text())
            if record.get("spec") == json.loads(json.dumps(spec, default=str)):
                return record
        start = time.perf_counter()
        record = {"spec": spec, **compute()}
        record["wall_s"] = time.perf_counter() - start
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(record, indent=1, default=float) + "\n")
        value = record.get("map@r", math.nan)
        value = value[-1] if isinstance(value, list) else value
        self.log(f"  {stage:11s} {label:60s} {record['wall_s']:6.1f} s  MAP@R {100 * value:5.1f}")
        return record


def _metrics(result: Any) -> dict[str, Any]:
    row = result.row()
    return {k: float(v) for k, v in row.items()}


# --------------------------------------------------------------------------- the study


@dataclass
class _Context:
    plan: StudyPlan
    runs: _Runs
    train: Any
    test: Any
    split: Any
    results: dict[str, Any] = field(default_factory=dict)


def _budget(plan: StudyPlan, steps: int, lr: float, **changes: Any) -> Any:
    from dmlkit.experiment import Budget

    return Budget(steps=steps, P=plan.P, K=plan.K, lr=lr, recipe="paper", eval_images=plan.eval_images, **changes)


def _stage_convergence(ctx: _Context) -> dict[str, Any]:
    from dmlkit import zoo
    from dmlkit.studies import convergence_curve

    plan = ctx.plan
    curves = {}
    for name in plan.methods:
        method = zoo.get_method(name)
        spec = {"method": name, "steps": plan.convergence_steps, "eval_every": plan.eval_every, "lr": method.base_lr}

        def compute(method: Any = method) -> dict[str, Any]:
            curve = convergence_curve(
                method, ctx.split, _budget(plan, plan.convergence_steps, method.base_lr), plan.eval_every
            )
            return curve.as_dict()

        curves[name] = ctx.runs.get("convergence", name, spec, compute)
    reached = {n: c["plateau"]["step_at_level"] for n, c in curves.items()}
    by_rule = max(step if step is not None else plan.convergence_steps for step in reached.values())
    budget = min(by_rule, plan.budget_cap) if plan.budget_cap else by_rule
    return {
        "budget_by_rule": int(by_rule),
        "budget_cap": plan.budget_cap,
        "steps": plan.convergence_steps,
        "eval_every": plan.eval_every,
        "curves": curves,
        "step_at_95": reached,
        "not_plateaued": [n for n, c in curves.items() if not c["plateau"]["plateaued"]],
        "budget": int(budget),
        "slowest": max(reached, key=lambda n: reached[n] if reached[n] is not None else math.inf),
    }


def _stage_search(ctx: _Context) -> dict[str, Any]:
    from dmlkit import zoo
    from dmlkit.studies import coordinate_trials, paper_knob_value

    plan = ctx.plan
    budget = ctx.results["convergence"]["budget"]
    steps = max(plan.evaluations, round(budget * plan.search_fraction))
    per_method = {}
    for name in plan.methods:
        method = zoo.get_method(name)

        def run(trial: dict[str, float], method: Any = method) -> dict[str, Any]:
            spec = {"method": method.name, "steps": steps, **trial}

            def compute() -> dict[str, Any]:
                knob = {k: v for k, v in trial.items() if k != "lr"}
                result = zoo.train(
                    method, ctx.split.train, ctx.split.validation, _budget(plan, steps, trial["lr"]), 0, settings=knob
                )
                return {**trial, "map@r": result.test_metrics["map@r"], "recall@1": result.test_metrics["recall@1"]}

            label = f"{method.name} " + " ".join(f"{k}={v:g}" for k, v in trial.items())
            return ctx.runs.get("search", label, spec, compute)

        first = [run(t) for t in coordinate_trials(method)]
        best_lr = max(first, key=lambda r: r["map@r"])["lr"]
        second = [run(t) for t in coordinate_trials(method, lr=best_lr)]
        trials = first + second
        best = max(trials, key=lambda r: r["map@r"])
        keep = ("lr", method.knob[0], "map@r", "recall@1")
        per_method[name] = {
            "knob": method.knob[0],
            "paper_value": paper_knob_value(method),
            "trials": [{k: t[k] for k in keep} for t in trials],
            "best": {k: best[k] for k in keep},
        }
    return {"steps": steps, "trials_per_method": len(trials), "methods": per_method}


def _tuned(ctx: _Context, name: str) -> tuple[float, dict[str, float]]:
    """The search's winner of ``name``, read as the family notebooks read it (:func:`tuned_settings`)."""
    winner = tuned_settings({"stages": ctx.results})[name]
    return winner.lr, winner.settings


def _train_held_out(
    ctx: _Context,
    stage: str,
    name: str,
    steps: int,
    seed: int,
    lr: float,
    settings: dict[str, float],
    p_switch: float = 0.0,
) -> dict[str, Any]:
    from dmlkit import zoo

    spec = {"method": name, "steps": steps, "seed": seed, "lr": lr, "settings": settings, "p_switch": p_switch}

    def compute() -> dict[str, Any]:
        budget = _budget(ctx.plan, steps, lr, p_switch=p_switch)
        result = zoo.train(name, ctx.train, ctx.test, budget, seed, settings=settings or None)
        return {"method": name, "seed": seed, **_metrics(result)}

    label = f"{name} {steps} steps seed {seed}" + (f" p_switch {p_switch:g}" if p_switch else "")
    return ctx.runs.get(stage, label, spec, compute)


_KEYS = (
    "map@r",
    "recall@1",
    "r_precision",
    "worst_class_recall@1",
    "mean_class_recall@1",
    "rho",
    "density",
    "train_map@r",
    "gap_map@r",
    "train_s",
)


def _summary(records: list[dict[str, Any]]) -> dict[str, float]:
    """Mean ± std over the seeds of one method's runs (:func:`dmlkit.zoo.summarise_seeds`)."""
    from dmlkit import zoo

    (summary,) = zoo.summarise_seeds(records, keys=_KEYS).values()
    return summary


def _stage_leaderboard(ctx: _Context) -> dict[str, Any]:
    plan = ctx.plan
    budget = ctx.results["convergence"]["budget"]
    runs = {}
    for name in plan.methods:
        lr, settings = _tuned(ctx, name)
        runs[name] = [_train_held_out(ctx, "leaderboard", name, budget, s, lr, settings) for s in plan.seeds]
    summary = {n: _summary(r) for n, r in runs.items()}
    leader = max(summary, key=lambda n: summary[n]["map@r"])
    to_leader = {}
    for name in plan.methods:
        if name == leader:
            continue
        interval = paired_interval([r["map@r"] for r in runs[name]], [r["map@r"] for r in runs[leader]])
        to_leader[name] = {**interval, "verdict": verdict(interval)}
    return {
        "budget": budget,
        "seeds": list(plan.seeds),
        "summary": summary,
        "per_seed": {n: [{k: r[k] for k in ("seed", *_KEYS) if k in r} for r in rs] for n, rs in runs.items()},
        "leader": leader,
        "to_leader": to_leader,
    }


def _stage_stability(ctx: _Context) -> dict[str, Any]:
    plan = ctx.plan
    budget = ctx.results["convergence"]["budget"]
    long = budget * plan.stability_factor
    per_seed = ctx.results["leaderboard"]["per_seed"]
    at_budget, at_long = {}, {}
    for name in plan.methods:
        lr, settings = _tuned(ctx, name)
        records = [_train_held_out(ctx, "stability", name, long, s, lr, settings) for s in plan.stability_seeds]
        at_long[name] = float(np.mean([r["map@r"] for r in records]))
        at_budget[name] = float(np.mean([r["map@r"] for r in per_seed[name] if r["seed"] in plan.stability_seeds]))
    names = list(plan.methods)
    from dmlkit.analysis import rank_correlation

    rho_s = rank_correlation([at_budget[n] for n in names], [at_long[n] for n in names])
    return {
        "budget": budget,
        "long_budget": long,
        "seeds": list(plan.stability_seeds),
        "map@r_at_budget": at_budget,
        "map@r_at_long_budget": at_long,
        "spearman": rho_s,
        "passes": bool(rho_s >= 0.9),
    }


def _stage_rho(ctx: _Context) -> dict[str, Any]:
    from dmlkit import zoo

    plan = ctx.plan
    budget = ctx.results["convergence"]["budget"]
    out: dict[str, Any] = {"budget": budget, "p_switch": list(plan.p_switch), "seeds": list(plan.seeds), "methods": {}}
    for name in plan.rho_methods:
        lr = zoo.get_method(name).base_lr
        runs = {
            p: [_train_held_out(ctx, "rho", name, budget, s, lr, {}, p_switch=p) for s in plan.seeds]
            for p in plan.p_switch
        }
        base = runs[0.0]
        entry: dict[str, Any] = {"lr": lr, "summary": {str(p): _summary(r) for p, r in runs.items()}, "vs_p0": {}}
        for p, records in runs.items():
            if p == 0.0:
                continue
            m = paired_interval([r["map@r"] for r in records], [r["map@r"] for r in base])
            rho = paired_interval([r["rho"] for r in records], [r["rho"] for r in base])
            entry["vs_p0"][str(p)] = {"map@r": {**m, "verdict": verdict(m)}, "rho": {**rho, "verdict": verdict(rho)}}
        out["methods"][name] = entry
    verdicts = [v["map@r"]["verdict"] for e in out["methods"].values() for v in e["vs_p0"].values()]
    out["counts"] = {v: verdicts.count(v) for v in ("better", "worse", NO_DIFFERENCE, NO_VERDICT)}
    return out


_RUNNERS = {
    "convergence": _stage_convergence,
    "search": _stage_search,
    "leaderboard": _stage_leaderboard,
    "stability": _stage_stability,
    "rho": _stage_rho,
}


def _commit() -> str:
    try:
        root = Path(__file__).resolve().parents[1]
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "dmlkit"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def _fit_plan(plan: StudyPlan, train: Any, test: Any, log: Callable[[str], None]) -> tuple[StudyPlan, Any]:
    """The plan fitted to the data (:mod:`dmlkit.data_fit`): at most half the training classes
    (and at least 2) become validation classes, P×K fits the classes left for training, and large
    evaluation sets are sampled. Each change is logged; the glyph set needs none."""
    from dmlkit.data_fit import fit_batch, fit_to_data

    changes: dict[str, Any] = {}
    validation = min(plan.validation_classes, train.num_classes // 2)
    if validation < 2:
        raise ValueError(
            f"{plan.dataset} has {train.num_classes} training classes: the study needs at least 4 "
            "(2 validation classes for the search, 2 to train on)"
        )
    if validation != plan.validation_classes:
        changes["validation_classes"] = validation
        log(
            f"{plan.dataset} has {train.num_classes} training classes: {validation} of them are validation classes "
            f"(not {plan.validation_classes})"
        )
    P, K = fit_batch(plan.P, plan.K, min(train.num_classes - validation, test.num_classes))
    if (P, K) != (plan.P, plan.K):
        changes.update(P=P, K=K)
        log(f"{plan.dataset}: P×K = {P}×{K} (the plan's {plan.P}×{plan.K} has more classes than a side has)")
    budget = _budget(plan, 1, 1e-3)
    fitted, test = fit_to_data(budget.with_(P=P, K=K), train, test, log=log)
    if fitted.eval_images != plan.eval_images:
        changes["eval_images"] = fitted.eval_images
    return (replace(plan, **changes) if changes else plan), test


def run_study(
    out: str | Path = DEFAULT_OUT,
    plan: StudyPlan | None = None,
    stages: Sequence[str] = STAGES,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run ``stages`` of the study (each needs the ones before it; finished runs are reused from
    ``out``) and write ``out/results.json`` after each. Returns its content."""
    import torch

    from dmlkit.data import split_validation_classes
    from dmlkit.experiment import load_data

    plan = plan or StudyPlan()
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; stages: {', '.join(STAGES)}")
    last = max(STAGES.index(s) for s in stages)
    todo = STAGES[: last + 1]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train, test = load_data(plan.dataset, smoke=plan.smoke)
    plan, test = _fit_plan(plan, train, test, log)
    ctx = _Context(plan, _Runs(out, log), train, test, split_validation_classes(train, plan.validation_classes))
    path = out / "results.json"
    started = time.perf_counter()
    header = {
        "command": "dmlkit results" + (" --smoke" if plan.smoke else ""),
        "commit": _commit(),
        "plan": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(plan).items()},
        "data": {
            "name": plan.dataset,
            "train_classes": ctx.split.train.num_classes,
            "validation_classes": ctx.split.validation.num_classes,
            "held_out_classes": test.num_classes,
            "train_images": len(train),
            "held_out_images": len(test),
        },
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "processor": platform.machine(),
            "threads": torch.get_num_threads(),
        },
    }
    for stage in todo:
        t = time.perf_counter()
        log(f"stage {stage}")
        ctx.results[stage] = _RUNNERS[stage](ctx)
        ctx.results[stage]["wall_s"] = time.perf_counter() - t
        payload = {
            **header,
            "written": time.strftime("%Y-%m-%d %H:%M:%S"),
            "wall_s": time.perf_counter() - started,
            "stages": dict(ctx.results),
        }
        atomic_write_text(path, json.dumps(payload, indent=1, default=float) + "\n")
        log(f"stage {stage} done in {ctx.results[stage]['wall_s']:.0f} s -> {path}")
    return json.loads(path.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dmlkit results", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="every stage at a tiny budget (about a minute)")
    parser.add_argument("--out", default=None, help=f"output folder (default {DEFAULT_OUT}; smoke: build/smoke-study)")
    parser.add_argument("--stage", action="append", choices=STAGES, help="run up to this stage (default: all)")
    parser.add_argument("--dataset", default=None, help="a dmlkit.data name (default glyphs, the embedded set)")
    parser.add_argument("--convergence-steps", type=int, default=None)
    parser.add_argument(
        "--budget-cap",
        type=int,
        default=None,
        help="the most steps the chosen budget may have (default: no cap, the rule's budget; 0: no cap)",
    )
    args = parser.parse_args(argv)
    plan = smoke_plan() if args.smoke else StudyPlan()
    changes = {}
    if args.convergence_steps:
        changes["convergence_steps"] = args.convergence_steps
    if args.budget_cap is not None:
        if args.budget_cap < 0:
            parser.error(f"--budget-cap must be 0 (no cap) or a positive number of steps, got {args.budget_cap}")
        changes["budget_cap"] = args.budget_cap or None
    if args.dataset:
        changes["dataset"] = args.dataset
    if changes:
        plan = replace(plan, **changes)
    out = args.out or ("build/smoke-study" if args.smoke else DEFAULT_OUT)
    try:
        run_study(out, plan, args.stage or STAGES)
    except (ValueError, KeyError, FileNotFoundError) as error:
        print(f"dmlkit results: {error}", file=sys.stderr)
        return 2
    return 0
