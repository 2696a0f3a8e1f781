"""The method zoo: every recipe builds a working loss; training adds the worst-class Recall@1;
seeds are summarised into mean ± std; the hyperbolic per-class Recall@1 matches a plain loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dmlkit import zoo
from dmlkit.evaluate import worst_class_gap
from dmlkit.experiment import Budget
from dmlkit.geometry import HyperbolicProjection
from dmlkit.geometry.retrieval import hyperbolic_per_class_recall_at_1
from dmlkit.reporting import leaderboard_table


@pytest.mark.parametrize("method", zoo.METHODS, ids=[m.name for m in zoo.METHODS])
def test_every_recipe_gives_a_finite_differentiable_loss(method):
    torch.manual_seed(0)
    labels = torch.arange(6).repeat_interleave(4)
    features = torch.randn(24, 8, requires_grad=True)
    x = HyperbolicProjection(c=method.curvature, clip_r=method.clip_r)(features) if method.curvature else features
    loss = method.make_loss(6, 8)
    value = loss(x, labels)
    value.backward()
    assert value.dim() == 0 and torch.isfinite(value)
    assert torch.isfinite(features.grad).all() and features.grad.abs().sum() > 0
    assert method.family in zoo.FAMILIES


def test_names_are_unique_and_lookup_is_clear():
    names = [m.name for m in zoo.METHODS]
    assert len(names) == len(set(names))
    assert zoo.get_method("MS").family == "pair-based"
    with pytest.raises(KeyError, match="unknown method 'MSS'; known: .*'MS'"):
        zoo.get_method("MSS")


def test_train_adds_worst_class_metrics_and_refuses_p_switch_where_it_does_not_apply(small_glyphs):
    train, test = small_glyphs
    budget = Budget(steps=2, P=8, K=4)
    result = zoo.train("MS", train, test, budget, seed=1)
    expected = worst_class_gap(result.test_embeddings, result.test_labels)
    assert result.test_metrics["worst_class_recall@1"] == pytest.approx(expected["worst_class_recall@1"])
    assert result.test_metrics["mean_class_recall@1"] == pytest.approx(expected["mean_class_recall@1"])
    assert result.settings["family"] == "pair-based" and result.settings["seed"] == 1
    hyperbolic = zoo.train("hyperbolic", train, test, budget)
    assert hyperbolic.settings["distance"] == "poincare(c=0.1)"
    assert 0 <= hyperbolic.test_metrics["worst_class_recall@1"] <= hyperbolic.test_metrics["mean_class_recall@1"]
    assert hyperbolic.test_embeddings.norm(dim=1).max() < 1 / math.sqrt(0.1)
    with pytest.raises(ValueError, match="needs a distance-weighted recipe .*'FastAP' does not take one"):
        zoo.train("FastAP", train, test, budget.with_(p_switch=0.2))


def test_train_builds_a_rho_regularised_loss(small_glyphs):
    """Budget.p_switch reaches the loss's constructor (the sampler's switch), not a mutated attribute."""
    train, test = small_glyphs
    result = zoo.train("margin (distance-weighted)", train, test, Budget(steps=2, P=8, K=4, p_switch=0.3))
    assert result.settings["p_switch"] == 0.3
    method = zoo.get_method("triplet (distance-weighted)")
    assert method.rho_regularizable and method.make_loss(5, 4, p_switch=0.25).p_switch == 0.25


def test_hyperbolic_per_class_recall_equals_a_plain_loop():
    import geoopt

    torch.manual_seed(2)
    c = 0.5
    x = HyperbolicProjection(c=c, clip_r=None)(torch.randn(30, 3, dtype=torch.float64))
    labels = torch.tensor([0] * 8 + [1] * 8 + [2] * 13 + [4])  # class 4: a single item, class 3: none
    ball = geoopt.PoincareBall(c=torch.tensor(c, dtype=torch.float64))
    hits = {k: [] for k in range(5)}
    for i in range(30):
        d = ball.dist(x[i].expand_as(x), x)
        d[i] = float("inf")
        if (labels == labels[i]).sum() > 1:
            hits[int(labels[i])].append(float(labels[int(d.argmin())] == labels[i]))
    expected = [np.mean(hits[k]) if hits[k] else float("nan") for k in range(5)]
    got = hyperbolic_per_class_recall_at_1(x, labels, c=c)
    assert got.shape == (5,) and torch.isnan(got[3]) and torch.isnan(got[4])
    assert np.allclose(got[:3].numpy(), expected[:3])
    with pytest.raises(ValueError, match="non-negative labels"):
        hyperbolic_per_class_recall_at_1(x, labels - 1, c=c)


def test_summarise_seeds_and_leaderboard_table():
    rows = [{"method": "A", "map@r": v, "recall@1": 0.9} for v in (0.5, 0.6, 0.7)]
    rows += [{"method": "B", "map@r": v, "recall@1": 0.8} for v in (0.7, 0.8, 0.9)]
    summary = zoo.summarise_seeds(rows)
    assert summary["A"]["map@r"] == pytest.approx(0.6)
    assert summary["A"]["map@r_std"] == pytest.approx(np.std([0.5, 0.6, 0.7], ddof=1))
    assert summary["B"]["seeds"] == 3
    table = leaderboard_table(summary, columns=("map@r", "recall@1"), families={"A": "x", "B": "y"})
    lines = table.splitlines()
    assert lines[2] == "| 1 | B | y | 80.0 ± 10.0 | 80.0 ± 0.0 | 3 |"
    assert lines[3].startswith("| 2 | A | x | 60.0 ± 10.0 |")
    single = zoo.summarise_seeds([{"method": "C", "map@r": 0.5}])
    assert math.isnan(single["C"]["map@r_std"])
    assert "50.0 |" in leaderboard_table(single, columns=("map@r",))
    with pytest.raises(ValueError, match="needs a 'method' entry"):
        zoo.summarise_seeds([{"map@r": 0.5}])
    with pytest.raises(ValueError, match="no rows"):
        zoo.summarise_seeds([])


def test_a_method_of_an_unknown_family_is_refused():
    with pytest.raises(ValueError, match="unknown family 'pairs' of 'x'; families: pair-based"):
        zoo.Method("x", "pairs", lambda c, d: None)


def test_a_hyperbolic_runs_periodic_evaluations_rank_by_the_poincare_distance(small_glyphs):
    """The last periodic evaluation is of the final model, so it must equal the final hyperbolic
    metrics, not the Euclidean ranking of the same points."""
    from dmlkit.evaluate import retrieval_metrics

    train, test = small_glyphs
    result = zoo.train("hyperbolic", train, test, Budget(steps=4, P=8, K=4, eval_every=2))
    last = result.history.evaluations[-1]
    assert last["step"] == 4
    for key in ("map@r", "recall@1", "r_precision"):
        assert last[key] == pytest.approx(result.test_metrics[key])
    euclidean = retrieval_metrics(result.test_embeddings, result.test_labels, distance="euclidean")
    assert set(euclidean) <= set(last)
