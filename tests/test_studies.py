"""Convergence curves and the equal-budget search run on validation classes (smoke scale)."""

import pytest

from dmlkit import studies, zoo
from dmlkit.data import split_validation_classes
from dmlkit.experiment import Budget


@pytest.fixture
def split(small_glyphs):
    train, _ = small_glyphs
    return split_validation_classes(train, validation=10, seed=0)


def test_a_curve_is_evaluated_on_validation_classes_and_has_a_plateau(split):
    curve = studies.convergence_curve("contrastive", split, Budget(steps=6, P=8, K=2), eval_every=2)
    assert curve.steps == (2, 4, 6) and len(curve.map_at_r) == 3
    assert all(0.0 <= v <= 1.0 for v in curve.map_at_r + curve.recall_at_1)
    assert curve.plateau.tail_start <= 6 and curve.as_dict()["method"] == "contrastive"
    with pytest.raises(ValueError, match="fewer than 3 evaluations"):
        studies.convergence_curve("contrastive", split, Budget(steps=4, P=8, K=2), eval_every=2)


def test_every_leaderboard_method_gets_the_same_number_of_trials():
    counts = {name: len(studies.search_grid(name)) for name in zoo.LEADERBOARD}
    assert set(counts.values()) == {9}
    grid = studies.search_grid("NormSoftmax")
    assert sorted({t["lr"] for t in grid}) == pytest.approx([1e-2 / 3, 1e-2, 3e-2])
    assert sorted({t["temperature"] for t in grid}) == [0.025, 0.05, 0.1]
    with pytest.raises(ValueError, match="names no main hyper-parameter"):
        studies.search_grid("lifted structure")


def test_search_names_the_trial_with_the_best_validation_map(split):
    outcome = studies.search("triplet batch-hard", split, Budget(steps=1, P=8, K=2), lr_factors=(1.0,))
    assert [t["margin"] for t in outcome["trials"]] == [0.1, 0.2, 0.4]
    assert outcome["best"]["map@r"] == max(t["map@r"] for t in outcome["trials"])


def test_the_coordinate_search_gives_every_method_five_trials_around_the_papers_value():
    for name in zoo.LEADERBOARD:
        method = zoo.get_method(name)
        first = studies.coordinate_trials(name)
        keyword = method.knob[0]
        paper = studies.paper_knob_value(name)
        assert [t["lr"] for t in first] == pytest.approx([method.base_lr * f for f in studies.LR_FACTORS])
        assert {t[keyword] for t in first} == {paper}
        second = studies.coordinate_trials(name, lr=first[0]["lr"])
        assert len(first) + len(second) == 5
        assert sorted([paper] + [t[keyword] for t in second]) == sorted(method.knob[1])
        assert all(t["lr"] == first[0]["lr"] for t in second)
    assert studies.paper_knob_value("Proxy-Anchor") == 32.0 and studies.paper_knob_value("circle") == 0.4


def test_a_curve_records_the_validation_rho_at_each_evaluation(split):
    curve = studies.convergence_curve("contrastive", split, Budget(steps=6, P=8, K=2), eval_every=2)
    assert len(curve.rho) == 3 and all(r > 0 for r in curve.rho)
