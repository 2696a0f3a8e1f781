"""The zoo's optimiser recipes against the official trainers they cite.

The table below is transcribed from the trainers' code (the files and lines each recipe's
``source`` names), independently of dmlkit.zoo: if a recipe's numbers drift from it, or from its
own cited text, or if training with ``Budget(recipe="paper")`` builds other learning rates than
the recipe states, these tests fail.
"""

from __future__ import annotations

import re

import pytest

from dmlkit import zoo
from dmlkit.experiment import Budget

#: method -> (optimizer, head lr ×, loss-parameter lr ×, weight decay, loss-parameter decay, Adam ε)
OFFICIAL = {
    "contrastive": ("adam", 1, 1, 4e-4, 0.0, 1e-8),
    "triplet batch-hard": ("adam", 1, 1, 4e-4, 0.0, 1e-8),
    "MS": ("adam", 1, 1, 5e-4, 5e-4, 1e-8),
    "circle": ("adam", 1, 1, 4e-4, 0.0, 1e-8),
    "margin (distance-weighted)": ("adam", 1, 50, 4e-4, 0.0, 1e-8),
    "ProxyNCA": ("adam", 1, 50, 4e-4, 0.0, 1e-8),
    "ProxyNCA++": ("adam", 1, 1e5, 0.0, 0.0, 1.0),
    "Proxy-Anchor": ("adamw", 1, 100, 1e-4, 1e-4, 1e-8),
    "SoftTriple": ("adam", 1, 100, 1e-4, 1e-4, 0.01),
    "NormSoftmax": ("sgd", 1, 1, 1e-4, 1e-4, 1e-8),
    "FastAP": ("adam", 10, 1, 0.0, 0.0, 1e-8),
    "Smooth-AP": ("adam", 5, 1, 4e-4, 4e-4, 1e-8),
    "contrastive · SNR": ("adam", 1, 1, 4e-4, 0.0, 1e-8),
    "hyperbolic": ("adamw", 1, 1, 0.01, 0.01, 1e-8),
    "ProtoNet (episodic)": ("adam", 1, 1, 0.0, 0.0, 1e-8),
}
#: the paper's backbone learning rate, as the trainers set it for CUB (or their only data set)
PAPER_LR = {"Proxy-Anchor": 1e-4, "ProxyNCA++": 4e-3, "SoftTriple": 1e-4, "NormSoftmax": 1e-3, "MS": 3e-5}


def _multipliers_cited(source: str) -> set[float]:
    return {float(m) for m in re.findall(r"x(\d+(?:\.\d+)?(?:e\d+)?)\b", source)}


def test_every_leaderboard_method_has_a_cited_recipe():
    assert set(zoo.LEADERBOARD) <= set(OFFICIAL), "a leaderboard method lacks an entry in this table"
    for name in zoo.LEADERBOARD:
        recipe = zoo.get_method(name).optimizer
        assert recipe.source, name


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_recipe_equals_the_official_trainer(name):
    optimizer, head, loss, decay, loss_decay, eps = OFFICIAL[name]
    recipe = zoo.get_method(name).optimizer
    assert (recipe.optimizer, recipe.head_lr_multiplier, recipe.loss_lr_multiplier) == (optimizer, head, loss)
    assert (recipe.weight_decay, recipe.loss_parameters_decay, recipe.eps) == (decay, loss_decay, eps)
    cited = _multipliers_cited(recipe.source)
    for multiplier in (head, loss):
        if multiplier != 1:
            assert float(multiplier) in cited, f"{name}: x{multiplier:g} is not in its cited source {recipe.source!r}"
    if name in PAPER_LR:
        assert recipe.paper_lr == PAPER_LR[name]


def test_schedules_and_warmups_follow_the_trainers():
    anchor = zoo.get_method("Proxy-Anchor").optimizer
    assert anchor.gamma == 0.5 and len(anchor.milestones) == 5 and anchor.milestones[0] == pytest.approx(10 / 60)
    assert anchor.warmup == pytest.approx(1 / 60) and anchor.clip_grad_value == 10
    assert zoo.get_method("ProxyNCA++").optimizer.warmup == pytest.approx(5 / 45)
    assert zoo.get_method("MS").optimizer.milestones == (0.4, 0.8)
    assert zoo.get_method("hyperbolic").optimizer.clip_grad_norm == 3


@pytest.mark.parametrize("name", zoo.LEADERBOARD)
def test_training_with_the_paper_recipe_uses_its_learning_rates(name, small_glyphs):
    """Smoke scale: the optimiser fit builds has the recipe's learning rate in every group."""
    train, test = small_glyphs
    _, head, loss, *_ = OFFICIAL[name]
    lr = 2e-3
    result = zoo.train(name, train, test, Budget(steps=2, P=8, K=2, lr=lr, recipe="paper"))
    rates = result.history.settings["learning_rates"]
    expected_model = {"model": lr} if head == 1 and not zoo.get_method(name).optimizer.warmup else {}
    if not expected_model:
        expected_model = {"backbone": lr, "head": pytest.approx(lr * head)}
    for group, value in expected_model.items():
        assert rates[group] == value, (name, rates)
    if "loss" in rates:
        assert rates["loss"] == pytest.approx(lr * loss), (name, rates)
    else:
        assert loss == 1 or not list(result.loss.parameters())


def test_paper_recipe_and_a_loss_lr_contradict():
    with pytest.raises(ValueError, match="loss_lr=0.01 with recipe='paper'"):
        Budget(loss_lr=0.01, recipe="paper")
    with pytest.raises(ValueError, match="recipe must be 'shared' or 'paper'"):
        Budget(recipe="official")


@pytest.mark.parametrize("name", zoo.LEADERBOARD)
def test_every_leaderboard_method_has_a_knob_whose_grid_holds_the_paper_value(name):
    import inspect

    import torch

    method = zoo.get_method(name)
    assert method.knob is not None, name
    keyword, values = method.knob
    default = inspect.signature(method.make_loss).parameters[keyword].default
    assert default in values and len(values) == 3, (name, default, values)
    torch.manual_seed(0)
    labels = torch.arange(4).repeat_interleave(4)
    x = torch.nn.functional.normalize(torch.randn(16, 8), dim=1) * (0.5 if method.curvature else 1.0)
    for value in values:
        torch.manual_seed(1)
        loss = method.make_loss(4, 8, **{keyword: value})
        assert torch.isfinite(loss(x, labels)), (name, value)
    torch.manual_seed(1)
    plain = method.make_loss(4, 8)(x, labels)
    torch.manual_seed(1)
    assert torch.equal(plain, method.make_loss(4, 8, **{keyword: default})(x, labels))


def test_train_sets_the_knob_and_refuses_other_settings(small_glyphs):
    train, test = small_glyphs
    budget = Budget(steps=1, P=8, K=2)
    result = zoo.train("triplet batch-hard", train, test, budget, settings={"margin": 0.4})
    assert result.loss.margin == 0.4
    with pytest.raises(
        ValueError, match=r"unknown setting\(s\) \['alpha'\] of 'triplet batch-hard'; it takes \['margin'\]"
    ):
        zoo.train("triplet batch-hard", train, test, budget, settings={"alpha": 1.0})
