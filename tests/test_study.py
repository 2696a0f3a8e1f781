"""``dmlkit results`` end to end at smoke scale: every stage, its statistics, and that nothing it
chooses sees the held-out classes."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from dmlkit import study, zoo
from dmlkit.cli import main as cli_main


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    return out, study.run_study(out, study.smoke_plan(), log=lambda _: None)


def test_every_stage_is_written_with_the_run_that_produced_it(smoke_results):
    out, results = smoke_results
    assert list(results["stages"]) == list(study.STAGES)
    assert results["commit"] and results["written"] and results["plan"]["smoke"] is True
    assert json.loads((out / "results.json").read_text()) == results
    plan = study.smoke_plan()
    assert len(list((out / "runs").rglob("*.json"))) == (
        len(plan.methods) * (1 + 5 + len(plan.seeds) + len(plan.stability_seeds))
        + len(plan.rho_methods) * len(plan.p_switch) * len(plan.seeds)
    )


def test_the_budget_is_the_latest_step_at_which_a_method_reaches_95_percent_of_its_plateau(smoke_results):
    _, results = smoke_results
    convergence = results["stages"]["convergence"]
    steps = [c["plateau"]["step_at_level"] for c in convergence["curves"].values()]
    assert convergence["budget"] == max(s if s is not None else convergence["steps"] for s in steps)
    assert results["stages"]["leaderboard"]["budget"] == convergence["budget"]
    assert results["stages"]["stability"]["long_budget"] == 3 * convergence["budget"]
    for curve in convergence["curves"].values():
        assert len(curve["steps"]) == len(curve["map@r"]) == len(curve["rho"]) == 3


def test_the_search_gives_every_method_the_same_trials_and_the_leaderboard_uses_the_winner(smoke_results):
    _, results = smoke_results
    search = results["stages"]["search"]
    assert {len(m["trials"]) for m in search["methods"].values()} == {5}
    for entry in search["methods"].values():
        best = max(entry["trials"], key=lambda t: t["map@r"])
        assert entry["best"] == best
        assert entry["paper_value"] in [t[entry["knob"]] for t in entry["trials"]]
    board = results["stages"]["leaderboard"]
    assert board["leader"] == max(board["summary"], key=lambda n: board["summary"][n]["map@r"])


def test_nothing_is_chosen_on_the_held_out_classes(tmp_path, monkeypatch):
    """The convergence and search stages train and evaluate on the validation split only."""
    seen = []
    real_train = zoo.train

    def spy(method, train_data, test_data, budget, seed=0, **kwargs):
        seen.append((budget.steps, set(train_data.labels.tolist()), len(test_data), test_data.num_classes))
        return real_train(method, train_data, test_data, budget, seed, **kwargs)

    monkeypatch.setattr(zoo, "train", spy)
    plan = study.smoke_plan()
    study.run_study(tmp_path, plan, stages=("search",), log=lambda _: None)
    from dmlkit.experiment import load_data

    train, test = load_data("glyphs", smoke=True)
    assert seen and all(n_classes == plan.validation_classes for *_, n_classes in seen)
    assert all(len(labels) == train.num_classes - plan.validation_classes for _, labels, *_ in seen)
    assert all(size < len(test) for _, _, size, _ in seen)


def test_a_second_call_reuses_every_finished_run(smoke_results, monkeypatch):
    out, results = smoke_results

    def refuse(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(zoo, "train", refuse)
    again = study.run_study(out, study.smoke_plan(), log=lambda _: None)
    assert again["stages"]["leaderboard"]["summary"] == results["stages"]["leaderboard"]["summary"]


def test_the_stability_check_is_spearman_of_the_order_at_the_budget_and_at_three_times_it(smoke_results):
    _, results = smoke_results
    stability = results["stages"]["stability"]
    names = list(stability["map@r_at_budget"])
    x = [stability["map@r_at_budget"][n] for n in names]
    y = [stability["map@r_at_long_budget"][n] for n in names]
    assert stability["spearman"] == pytest.approx(stats.spearmanr(x, y).statistic)
    assert stability["passes"] == (stability["spearman"] >= 0.9)


def test_the_paired_interval_is_the_t_interval_of_the_per_seed_differences():
    a, b = [0.62, 0.61, 0.65], [0.55, 0.55, 0.57]
    d = np.subtract(a, b)
    half = 4.302652729911275 * d.std(ddof=1) / math.sqrt(3)  # t(0.975, 2)
    interval = study.paired_interval(a, b)
    assert interval["mean"] == pytest.approx(d.mean())
    assert (interval["low"], interval["high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    assert study.verdict(interval) == "better" and study.verdict(study.paired_interval(b, a)) == "worse"
    assert study.verdict({"low": -0.1, "high": 0.2}) == "no clear difference"


def test_the_rho_stage_compares_every_p_switch_with_zero_seed_by_seed(smoke_results):
    _, results = smoke_results
    rho = results["stages"]["rho"]
    for entry in rho["methods"].values():
        assert set(entry["vs_p0"]) == {str(p) for p in rho["p_switch"] if p > 0}
        for comparison in entry["vs_p0"].values():
            assert comparison["map@r"]["n"] == len(rho["seeds"])
    assert sum(rho["counts"].values()) == sum(len(e["vs_p0"]) for e in rho["methods"].values())


def test_a_bad_plan_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(ValueError, match="at least 2 distinct seeds"):
        study.StudyPlan(seeds=(0,))
    with pytest.raises(ValueError, match="must hold 0"):
        study.StudyPlan(p_switch=(0.1, 0.2))
    with pytest.raises(KeyError, match="unknown method"):
        study.StudyPlan(methods=("no such loss",))
    with pytest.raises(ValueError, match="unknown stage"):
        study.run_study(tmp_path, study.smoke_plan(), stages=("tuning",))
    with pytest.raises(SystemExit):
        cli_main(["results", "--smoke", "--stage", "nonsense"])
    assert "invalid choice" in capsys.readouterr().err


def test_the_cli_runs_the_smoke_study(tmp_path):
    assert cli_main(["results", "--smoke", "--out", str(tmp_path), "--stage", "convergence"]) == 0
    assert "convergence" in json.loads((tmp_path / "results.json").read_text())["stages"]


def test_tuned_settings_are_the_search_winners_and_the_convergence_steps(smoke_results):
    out, results = smoke_results
    tuned = study.tuned_settings(out, "glyphs")
    search, convergence = results["stages"]["search"], results["stages"]["convergence"]
    assert list(tuned) == list(search["methods"])
    for name, entry in tuned.items():
        best, knob = search["methods"][name]["best"], search["methods"][name]["knob"]
        assert entry.lr == best["lr"] and entry.settings == {knob: best[knob]}
        assert entry.step_at_95 == convergence["step_at_95"][name]
        assert entry.search_steps == search["steps"] and entry.convergence_steps == convergence["steps"]
    names = list(tuned)
    reached = [t.step_at_95 if t.step_at_95 is not None else t.convergence_steps for t in tuned.values()]
    assert reached == [t.converged_by for t in tuned.values()]
    assert study.family_budget(tuned, names) == max(reached) == convergence["budget"]
    assert study.family_budget(tuned, names, cap=1) == 1
    # a method the study did not measure does not count; none measured is an error
    assert study.family_budget(tuned, [names[0], "ranked list"]) == reached[0]
    with pytest.raises(ValueError, match="measured none"):
        study.family_budget(tuned, ["ranked list"])


def test_a_family_notebook_trains_a_searched_recipe_at_its_winner_and_others_at_the_paper(smoke_results):
    from dmlkit.experiment import Budget

    out, _ = smoke_results
    tuned = study.tuned_settings(out)
    name = next(iter(tuned))
    budget, settings = study.tuned_budget(name, Budget(steps=7), tuned)
    assert (budget.lr, budget.recipe, budget.steps, settings) == (tuned[name].lr, "paper", 7, tuned[name].settings)
    budget, settings = study.tuned_budget("ranked list", Budget(steps=7, loss_lr=0.5), tuned)
    assert (budget.lr, budget.recipe, budget.loss_lr, settings) == (
        zoo.get_method("ranked list").base_lr,
        "paper",
        None,
        {},
    )
    line = study.budget_report(tuned, [name, "ranked list"], 1)
    assert f"{name} " in line and "short of the plateau" in line and "ranked list" not in line


def test_a_missing_or_foreign_study_is_a_clear_error_or_the_papers_settings(smoke_results, tmp_path):
    out, results = smoke_results
    with pytest.raises(FileNotFoundError, match="make results"):
        study.read_study(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="not of 'digits'"):
        study.read_study(out, "digits")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "results.json").write_text(json.dumps({**results, "stages": {"convergence": {}}}))
    with pytest.raises(ValueError, match=r"\['search'\]"):
        study.read_study(partial)
    # a notebook's default study: absent or of another data set -> the papers' settings, said so
    tuned, sentence = study.family_tuning(None, "digits", out)
    assert tuned == {} and "paper" in sentence and "digits" in sentence
    tuned, sentence = study.family_tuning(None, "glyphs", out)
    assert tuned == study.tuned_settings(out) and results["commit"] in sentence
    with pytest.raises(FileNotFoundError):  # an explicit STUDY that is not there is the user's error
        study.family_tuning(tmp_path / "nowhere", "glyphs", out)


def test_a_budget_cap_binds_and_the_rule_budget_is_kept_beside_it(smoke_results, tmp_path):
    import dataclasses
    import shutil

    out, results = smoke_results
    shutil.copytree(out / "runs", tmp_path / "runs")  # the convergence runs are reused, not retrained
    rule = results["stages"]["convergence"]["budget"]
    assert study.StudyPlan().budget_cap is None  # the default follows the rule
    capped = study.run_study(
        tmp_path,
        dataclasses.replace(study.smoke_plan(), budget_cap=rule - 1),
        stages=["convergence"],
        log=lambda _: None,
    )["stages"]["convergence"]
    assert (capped["budget"], capped["budget_by_rule"], capped["budget_cap"]) == (rule - 1, rule, rule - 1)
