"""Distance-weighted sampling with ρ-regularisation (Wu et al., ICCV 2017; Roth et al., ICML 2020)
and the margin and triplet losses on its triplets: PML on given triplets, the sampler's semantics."""

from __future__ import annotations

import math

import pytest
import torch
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import reducers as pml_reducers

from dmlkit.distances import EuclideanDistance
from dmlkit.experiment import Budget, run_method
from dmlkit.losses.pair_based import (
    ContrastiveLoss,
    DistanceWeightedMiner,
    DistanceWeightedTripletLoss,
    MarginLoss,
    inverse_sphere_weights,
)
from tests._references import ATOL, assert_same, make_batch


def fixed_triplets(labels: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Distance-weighted triplets drawn once (some switched), to feed both libraries the same ones."""
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(len(labels), 8, generator=generator)
    return DistanceWeightedMiner(p_switch=0.3)(embeddings, labels, generator=generator)


@pytest.mark.parametrize("kind", ["balanced", "unequal", "singletons"])
@pytest.mark.parametrize("learn_beta", [False, True])
def test_margin_loss_equals_pml_on_the_same_triplets(kind, learn_beta):
    embeddings, labels = make_batch(kind, seed=1)
    triplets = fixed_triplets(labels)
    num_classes = int(labels.max()) + 1
    ours = MarginLoss(num_classes, margin=0.2, beta=1.2, learn_beta=learn_beta).double()
    pml = pml_losses.MarginLoss(
        margin=0.2, beta=1.2, learn_beta=learn_beta, num_classes=num_classes if learn_beta else None
    )
    pml.beta = torch.nn.Parameter(pml.beta.double()) if learn_beta else pml.beta.double()
    assert_same(lambda e, y: ours(e, y, triplets), lambda e, y: pml(e, y, triplets), embeddings, labels)
    if learn_beta:  # the gradients of the boundaries too
        ours(embeddings, labels, triplets).backward()
        pml(embeddings, labels, triplets).backward()
        torch.testing.assert_close(ours.beta.grad, pml.beta.grad, atol=ATOL, rtol=0)


def test_margin_loss_beta_regulariser_is_roths():
    """ν Σβ over the triplets, added to the mean (Roth et al.'s criteria/margin.py; PML divides it)."""
    embeddings, labels = make_batch("balanced", seed=2)
    triplets = fixed_triplets(labels, seed=2)
    plain = MarginLoss(4, nu=0.0).double()(embeddings, labels, triplets)
    with_nu = MarginLoss(4, nu=0.01).double()(embeddings, labels, triplets)
    assert float((with_nu - plain).detach()) == pytest.approx(0.01 * 1.2 * len(triplets[0]), rel=1e-6)


@pytest.mark.parametrize("kind", ["balanced", "unequal"])
def test_distance_weighted_triplet_loss_equals_pml_mean_reduced(kind):
    embeddings, labels = make_batch(kind, seed=3)
    triplets = fixed_triplets(labels, seed=3)
    pml = pml_losses.TripletMarginLoss(margin=0.2, reducer=pml_reducers.MeanReducer())
    ours = DistanceWeightedTripletLoss(margin=0.2)
    assert_same(lambda e, y: ours(e, y, triplets), lambda e, y: pml(e, y, triplets), embeddings, labels)


def test_switched_triplets_are_anchor_anchor_same_class():
    labels = torch.arange(8).repeat_interleave(4)
    embeddings = torch.randn(32, 16, generator=torch.Generator().manual_seed(0))
    a, p, n = DistanceWeightedMiner(p_switch=1.0)(embeddings, labels)
    assert torch.equal(a, torch.arange(32)) and torch.equal(p, a)
    assert (labels[n] == labels[a]).all() and (n != a).all()
    a, p, n = DistanceWeightedMiner(p_switch=0.0)(embeddings, labels)
    assert (labels[p] == labels[a]).all() and (p != a).all() and (labels[n] != labels[a]).all()


def test_switch_rate_and_anchors_without_positives():
    labels = torch.tensor([0, 0, 1, 1, 2, 3, 3, 3] * 8)  # class 2 has 8 members here; make a singleton
    labels[4] = 9
    embeddings = torch.randn(len(labels), 8, generator=torch.Generator().manual_seed(1))
    generator = torch.Generator().manual_seed(2)
    miner = DistanceWeightedMiner(p_switch=0.3)
    switched, total = 0, 0
    for _ in range(300):
        a, p, _ = miner(embeddings, labels, generator=generator)
        assert 4 not in a.tolist()  # the singleton has no positive: no triplet
        switched += int((p == a).sum())
        total += len(a)
    assert switched / total == pytest.approx(0.3, abs=0.02)


def test_negatives_follow_wu_et_al_weights():
    """For one anchor, the empirical negative frequencies match q(d)^-1 normalised (Eq. 4)."""
    generator = torch.Generator().manual_seed(4)
    labels = torch.tensor([0, 0] + [1, 2, 3, 4, 5, 6])
    embeddings = torch.randn(8, 5, generator=generator, dtype=torch.float64)
    unit = torch.nn.functional.normalize(embeddings, dim=1)
    d = (unit[0] - unit[2:]).norm(dim=1).clamp(0.5, 2 - 1e-6)
    dim = 5
    log_w = (2 - dim) * torch.log(d) - (dim - 3) / 2 * torch.log(1 - d**2 / 4)  # Wu et al. Eq. 4, plainly
    expected = torch.softmax(log_w, dim=0)
    counts = torch.zeros(6, dtype=torch.float64)
    miner = DistanceWeightedMiner(p_switch=0.0)
    for _ in range(4000):
        a, _, n = miner(embeddings, labels, generator=generator)
        counts[n[a == 0] - 2] += 1
    assert (counts / counts.sum() - expected).abs().max() < 0.03


def test_inverse_sphere_weights_formula():
    d = torch.tensor([0.1, 0.5, 1.0, 1.9], dtype=torch.float64)
    got = inverse_sphere_weights(d, 64)
    c = d.clamp(min=0.5)
    torch.testing.assert_close(got, (2 - 64) * c.log() - 61 / 2 * torch.log(1 - c**2 / 4))


def test_a_switched_triplet_pushes_the_same_class_sample_away():
    x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 0, 1])
    loss = DistanceWeightedTripletLoss(margin=1.0)
    before = float(torch.dist(x[0], x[1]))
    value = loss(x, labels, (torch.tensor([0]), torch.tensor([0]), torch.tensor([1])))  # (a, a, p')
    assert float(value) == pytest.approx(1.0 - before)  # [0 - d(a, p') + m]_+
    value.backward()
    with torch.no_grad():
        moved = torch.nn.functional.normalize(x - 0.1 * x.grad, dim=1)
    assert float(torch.dist(moved[0], moved[1])) > before


def test_bad_arguments():
    with pytest.raises(ValueError, match="p_switch must lie in"):
        DistanceWeightedMiner(p_switch=1.5)
    with pytest.raises(ValueError, match="unit sphere"):
        DistanceWeightedMiner(distance=EuclideanDistance(squared=True))
    with pytest.raises(ValueError, match="labels must lie in"):
        MarginLoss(2)(torch.randn(4, 3), torch.tensor([0, 0, 5, 5]))
    assert math.isfinite(float(MarginLoss(3)(torch.randn(3, 4), torch.tensor([0, 1, 2]))))  # no positives: 0


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


def test_run_method_refuses_a_switch_the_loss_was_not_built_with(small_glyphs):
    train, test = small_glyphs
    budget = Budget(steps=2, P=8, K=4, p_switch=0.35)
    with pytest.raises(ValueError, match="was not built with it"):
        run_method("contrastive", ContrastiveLoss(), train, test, budget, progress=False)
    result = run_method("margin", MarginLoss(train.num_classes, p_switch=0.35), train, test, budget, progress=False)
    assert result.settings["p_switch"] == 0.35
