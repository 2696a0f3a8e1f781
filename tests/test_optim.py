"""Optimiser recipes (dmlkit.optim) and their use in fit, against plain loops written from the
trainers' descriptions."""

import copy

import pytest
import torch

from dmlkit.losses import ContrastiveLoss, ProxyAnchorLoss
from dmlkit.models import ConvNet
from dmlkit.optim import (
    OptimizerRecipe,
    apply_warmup,
    build_optimizer,
    lr_factor,
    parameter_groups,
    warmup_steps,
)
from dmlkit.train import fit


def _batches(train, n, P=4, K=4, seed=0):
    """n fixed P×K index batches of ``train``."""
    g = torch.Generator().manual_seed(seed)
    labels = train.labels
    classes = torch.unique(labels)
    out = []
    for _ in range(n):
        chosen = classes[torch.randperm(len(classes), generator=g)[:P]]
        batch = []
        for c in chosen:
            members = torch.nonzero(labels == c).flatten()
            batch += members[torch.randperm(len(members), generator=g)[:K]].tolist()
        out.append(batch)
    return out


def _setup(train, embedding_size=8):
    torch.manual_seed(0)
    model = ConvNet(embedding_size)
    loss = ProxyAnchorLoss(train.num_classes, embedding_size)
    return model, loss, copy.deepcopy(model), copy.deepcopy(loss)


def _assert_same_parameters(a, b):
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p, q, msg=name)


def test_default_fit_is_one_adamw_with_a_loss_group(small_glyphs):
    """Without a recipe fit is what it always was: AdamW, one learning rate for the model, one for
    the loss's parameters, one weight decay for all."""
    train, _ = small_glyphs
    batches = _batches(train, 4)
    model, loss, model_ref, loss_ref = _setup(train)
    history = fit(model, loss, train, steps=4, sampler=batches, lr=1e-3, loss_lr=1e-2, progress=False, device="cpu")

    optimizer = torch.optim.AdamW(
        [{"params": list(model_ref.parameters()), "lr": 1e-3}, {"params": list(loss_ref.parameters()), "lr": 1e-2}],
        weight_decay=1e-4,
    )
    model_ref.train()
    for indices in batches:
        images, labels = train.get_batch(indices)
        value = loss_ref(model_ref(images), labels)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    _assert_same_parameters(model, model_ref)
    _assert_same_parameters(loss, loss_ref)
    assert history.settings["learning_rates"] == {"model": 1e-3, "loss": 1e-2}


def test_a_full_recipe_equals_a_loop_written_from_its_description(small_glyphs):
    """Proxy-Anchor's trainer: AdamW, proxies at 100× and without decay here, the backbone frozen
    during warm-up, ×0.5 at each milestone, gradient values clipped at 10."""
    train, _ = small_glyphs
    steps = 8
    recipe = OptimizerRecipe(
        "adamw",
        weight_decay=1e-4,
        loss_weight_decay=0.0,
        head_lr_multiplier=2.0,
        loss_lr_multiplier=100.0,
        warmup=0.25,
        milestones=(0.5, 0.75),
        gamma=0.5,
        clip_grad_value=10.0,
    )
    batches = _batches(train, steps)
    model, loss, model_ref, loss_ref = _setup(train)
    history = fit(model, loss, train, steps=steps, sampler=batches, lr=1e-3, recipe=recipe, progress=False)

    backbone = list(model_ref.features.parameters())
    head = list(model_ref.head.parameters())
    proxies = list(loss_ref.parameters())
    optimizer = torch.optim.AdamW(
        [
            {"params": backbone, "lr": 1e-3, "weight_decay": 1e-4},
            {"params": head, "lr": 2e-3, "weight_decay": 1e-4},
            {"params": proxies, "lr": 1e-1, "weight_decay": 0.0},
        ]
    )
    initial = [g["lr"] for g in optimizer.param_groups]
    model_ref.train()
    for step, indices in enumerate(batches, start=1):
        images, labels = train.get_batch(indices)
        value = loss_ref(model_ref(images), labels)
        optimizer.zero_grad()
        value.backward()
        if step <= 2:  # warm-up: 25% of 8 steps
            for p in backbone:
                p.grad = None
        torch.nn.utils.clip_grad_value_(backbone + head + proxies, 10.0)
        factor = 1.0 if step <= 4 else (0.5 if step <= 6 else 0.25)  # milestones after steps 4 and 6
        for group, lr in zip(optimizer.param_groups, initial):
            group["lr"] = lr * factor
        optimizer.step()
    _assert_same_parameters(model, model_ref)
    _assert_same_parameters(loss, loss_ref)
    assert history.settings["learning_rates"] == {"backbone": 1e-3, "head": 2e-3, "loss": 1e-1}
    assert history.settings["recipe"]["loss_lr_multiplier"] == 100.0


def test_warmup_leaves_the_backbone_untouched_and_trains_the_rest(small_glyphs):
    train, _ = small_glyphs
    model, loss, _, _ = _setup(train)
    groups = parameter_groups(model, loss)
    assert [len(groups[k]) for k in ("head", "loss")] == [2, 1]
    assert len(groups["backbone"]) == len(list(model.features.parameters()))
    optimizer = build_optimizer(OptimizerRecipe("adamw", warmup=0.5), groups, lr=1e-2)
    before = {k: [p.detach().clone() for p in v] for k, v in groups.items()}
    images, labels = train.get_batch(_batches(train, 1)[0])
    loss(model(images), labels).backward()
    apply_warmup(groups)
    optimizer.step()
    for p, q in zip(groups["backbone"], before["backbone"]):
        assert torch.equal(p, q)
    for key in ("head", "loss"):
        assert any(not torch.equal(p, q) for p, q in zip(groups[key], before[key]))
    assert warmup_steps(OptimizerRecipe(warmup=0.25), 10) == 2


def test_the_schedule_counts_milestones_passed():
    recipe = OptimizerRecipe(milestones=(0.5,), gamma=0.1)
    assert [lr_factor(recipe, s, 10) for s in (1, 5, 6, 10)] == [1.0, 1.0, pytest.approx(0.1), pytest.approx(0.1)]
    assert lr_factor(OptimizerRecipe(), 7, 10) == 1.0
    with pytest.raises(ValueError, match="step must lie"):
        lr_factor(recipe, 11, 10)


def test_sgd_and_adam_recipes_build_what_they_name():
    model, loss = ConvNet(4), ProxyAnchorLoss(5, 4)
    groups = parameter_groups(model, loss)
    sgd = build_optimizer(OptimizerRecipe("sgd", weight_decay=1e-4), groups, lr=1e-3)
    assert isinstance(sgd, torch.optim.SGD) and all(g["momentum"] == 0.9 for g in sgd.param_groups)
    adam = build_optimizer(OptimizerRecipe("adam", eps=1.0, loss_lr_multiplier=1e5), groups, lr=4e-3)
    assert isinstance(adam, torch.optim.Adam) and not isinstance(adam, torch.optim.AdamW)
    assert [g["eps"] for g in adam.param_groups] == [1.0, 1.0]
    assert adam.param_groups[-1]["lr"] == pytest.approx(400.0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"warmup": 1.0}, "warmup"),
        ({"milestones": (0.6, 0.3)}, "milestones"),
        ({"milestones": (0.0,)}, "milestones"),
        ({"loss_lr_multiplier": 0.0}, "loss_lr_multiplier"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"eps": 0.0}, "eps"),
    ],
)
def test_impossible_recipes_are_clear_errors(settings, message):
    with pytest.raises(ValueError, match=message):
        OptimizerRecipe(**settings)


def test_a_recipe_and_optimizer_settings_together_are_an_error(small_glyphs):
    train, _ = small_glyphs
    with pytest.raises(ValueError, match="either a recipe or optimizer/weight_decay"):
        fit(ConvNet(4), ContrastiveLoss(), train, steps=1, P=4, K=2, recipe=OptimizerRecipe(), weight_decay=0.0)


def test_nothing_to_train_is_a_clear_error():
    model = ConvNet(4)
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="nothing to train"):
        build_optimizer(OptimizerRecipe(), parameter_groups(model, ContrastiveLoss()), lr=1e-3)
