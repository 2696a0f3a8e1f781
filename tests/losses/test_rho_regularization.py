"""ρ-regularisation (Roth et al., ICML 2020): the switch of negatives for positives, its effect on
the pair-based losses (checked against pytorch-metric-learning given the switched tuples), and
the training option of the protocol."""

from __future__ import annotations

import pytest
import torch
from pytorch_metric_learning import losses as pml_losses

from dmlkit.experiment import Budget, run_method
from dmlkit.losses import (
    ContrastiveLoss,
    CrossBatchMemory,
    FastAPLoss,
    MultiSimilarityLoss,
    NPairsLoss,
    ProxyAnchorLoss,
    TripletMarginLoss,
    rho_regularize,
)
from dmlkit.miners import masks_to_pairs, pair_masks, switch_negatives


def pk_labels(P=6, K=4):
    return torch.arange(P).repeat_interleave(K)


def test_switch_nothing_at_zero_and_exactly_one_per_anchor_at_one():
    labels = torch.tensor([0, 0, 0, 1, 1, 2])  # class 2 has no positive
    pos, neg = pair_masks(labels)
    same_pos, same_neg = switch_negatives(pos, neg, 0.0)
    assert torch.equal(same_pos, pos) and torch.equal(same_neg, neg)
    new_pos, new_neg = switch_negatives(pos, neg, 1.0, generator=torch.Generator().manual_seed(0))
    moved = pos & ~new_pos
    assert torch.equal(moved, new_neg & ~neg)  # what left the positives joined the negatives
    assert moved.sum(1).tolist() == [1, 1, 1, 1, 1, 0]  # one per anchor that has a positive
    assert not (new_pos & new_neg).any()
    assert torch.equal(new_neg & neg, neg)  # real negatives stay negatives


def test_switch_rate_and_uniform_choice():
    labels = pk_labels(P=500, K=4)
    pos, neg = pair_masks(labels)
    g = torch.Generator().manual_seed(1)
    new_pos, _ = switch_negatives(pos, neg, 0.3, generator=g)
    switched = (pos & ~new_pos).any(1).float()
    n = switched.numel()
    assert abs(switched.mean().item() - 0.3) < 4 * (0.3 * 0.7 / n) ** 0.5
    # which of the three positives is switched: each about a third of the time
    choices = torch.zeros(3)
    for _ in range(20):
        new_pos, _ = switch_negatives(pos, neg, 1.0, generator=g)
        moved = (pos & ~new_pos)[0::4]  # anchors at the start of each class: positives at offsets 1, 2, 3
        choices += moved.view(500, 500, 4)[torch.arange(500), torch.arange(500)][:, 1:].sum(0).float()
    assert torch.allclose(choices / choices.sum(), torch.full((3,), 1 / 3), atol=0.03)


def test_switch_is_seeded_and_validates():
    pos, neg = pair_masks(pk_labels())
    a = switch_negatives(pos, neg, 0.5, generator=torch.Generator().manual_seed(5))
    b = switch_negatives(pos, neg, 0.5, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match=r"p_switch must lie in \[0, 1\], got 1.5"):
        switch_negatives(pos, neg, 1.5)
    with pytest.raises(ValueError, match="boolean masks of one shape"):
        switch_negatives(pos.float(), neg, 0.5)
    with pytest.raises(ValueError, match="boolean masks of one shape"):
        switch_negatives(pos[:3], neg, 0.5)


@pytest.mark.parametrize(
    "make, make_pml, tuples",
    [
        (lambda: ContrastiveLoss(), lambda: pml_losses.ContrastiveLoss(), "pairs"),
        (lambda: TripletMarginLoss(0.2, "all"), lambda: pml_losses.TripletMarginLoss(margin=0.2), "triplets"),
    ],
    ids=["contrastive", "triplet"],
)
def test_regularised_loss_equals_pml_on_the_switched_tuples(make, make_pml, tuples):
    torch.manual_seed(0)
    labels = pk_labels()
    x = torch.randn(len(labels), 8, dtype=torch.float64)
    ours_input = x.clone().requires_grad_(True)
    torch.manual_seed(11)
    ours = rho_regularize(make(), 0.5)(ours_input, labels)
    ours.backward()

    torch.manual_seed(11)  # the same draws as inside the loss
    pos, neg = switch_negatives(*pair_masks(labels), 0.5)
    assert (pair_masks(labels)[0] & ~pos).any()  # something was switched
    if tuples == "pairs":
        indices = masks_to_pairs(pos, neg)
    else:
        a, p, n = torch.nonzero(pos.unsqueeze(2) & neg.unsqueeze(1), as_tuple=True)
        indices = (a, p, n)
    ref_input = x.clone().requires_grad_(True)
    reference = make_pml()(ref_input, labels, indices_tuple=indices)
    reference.backward()
    assert torch.allclose(ours, reference, atol=1e-12)
    assert torch.allclose(ours_input.grad, ref_input.grad, atol=1e-12)
    plain = make()(x, labels)
    assert not torch.allclose(ours.detach(), plain)  # the switch changed the loss


def test_switch_acts_in_training_mode_only():
    torch.manual_seed(0)
    labels, x = pk_labels(), torch.randn(24, 8)
    loss = rho_regularize(MultiSimilarityLoss(), 1.0)
    assert loss.p_switch == 1.0
    loss.eval()
    assert torch.equal(loss(x, labels), MultiSimilarityLoss()(x, labels))
    loss.train()
    assert not torch.allclose(loss(x, labels), MultiSimilarityLoss()(x, labels))
    assert rho_regularize(loss, 0.0)(x, labels) == MultiSimilarityLoss()(x, labels)


def test_losses_without_pair_masks_are_refused():
    for loss in (NPairsLoss(), FastAPLoss(), ProxyAnchorLoss(4, 8), torch.nn.MSELoss()):
        with pytest.raises(ValueError, match=f"{type(loss).__name__} has none"):
            rho_regularize(loss, 0.2)
    with pytest.raises(ValueError, match=r"p_switch must lie in \[0, 1\]"):
        rho_regularize(ContrastiveLoss(), -0.1)
    memory = CrossBatchMemory(MultiSimilarityLoss(epsilon=0.1), embedding_size=8, memory_size=32)
    assert rho_regularize(memory, 0.25) is memory and memory.loss.p_switch == 0.25


def test_budget_option_trains_with_the_switch(small_glyphs):
    train, test = small_glyphs
    loss = ContrastiveLoss()
    result = run_method("contrastive", loss, train, test, Budget(steps=2, P=8, K=4, p_switch=0.35), progress=False)
    assert loss.p_switch == 0.35 and result.settings["p_switch"] == 0.35
    with pytest.raises(ValueError, match="FastAPLoss has none"):
        run_method("fastap", FastAPLoss(), train, test, Budget(steps=2, P=8, K=4, p_switch=0.35), progress=False)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"p_switch": 1.2}, r"Budget.p_switch must lie in \[0, 1\]"),
        ({"steps": 0}, "Budget.steps must be a positive integer"),
        ({"K": 2.5}, "Budget.K must be a positive integer"),
        ({"lr": 0.0}, "Budget.lr must be a positive finite number"),
        ({"loss_lr": float("nan")}, "Budget.loss_lr must be a positive finite number"),
        ({"eval_every": -1}, "Budget.eval_every must be a non-negative integer"),
    ],
)
def test_budget_rejects_impossible_settings(changes, message):
    with pytest.raises(ValueError, match=message):
        Budget().with_(**changes)
