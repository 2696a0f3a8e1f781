"""SNR losses (Yuan et al., CVPR 2019; Roth et al., ICML 2020) against pytorch-metric-learning
(PML) and against a loop written from the equations, in float64, values and gradients."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning import distances as pml_distances
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners
from pytorch_metric_learning import regularizers as pml_regularizers

from dmlkit.distances import EuclideanDistance, SNRDistance
from dmlkit.losses.pair_based import ContrastiveLoss
from dmlkit.losses.snr import (
    SignalToNoiseRatioContrastiveLoss,
    SignalToNoiseRatioTripletLoss,
    ZeroMeanRegularizer,
)
from tests._references import ATOL, LABELS, assert_same, make_batch, value_and_grad


def pml_contrastive(pos_margin, neg_margin, weight):
    extra = {}
    if weight:
        extra = {
            "embedding_regularizer": pml_regularizers.ZeroMeanRegularizer(),
            "embedding_reg_weight": weight,
        }
    return pml_losses.SignalToNoiseRatioContrastiveLoss(pos_margin=pos_margin, neg_margin=neg_margin, **extra)


# ---------------------------------------------------------------------------------------------
# Contrastive
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", [True, False], ids=["unit", "raw"])
@pytest.mark.parametrize("weight", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("margins", [(0.0, 1.0), (0.2, 0.8), (0.05, 1.5)])
@pytest.mark.parametrize("kind", list(LABELS))
def test_contrastive_equals_pml(kind, margins, weight, unit) -> None:
    ours = SignalToNoiseRatioContrastiveLoss(*margins, regularizer_weight=weight)
    reference = pml_contrastive(*margins, weight)
    for seed in (0, 1):
        embeddings, labels = make_batch(kind, seed, unit=unit)
        assert_same(ours, reference, embeddings, labels)


def test_contrastive_default_is_pml_default() -> None:
    embeddings, labels = make_batch("unequal", 5, dim=32, unit=False)
    assert_same(
        SignalToNoiseRatioContrastiveLoss(),
        pml_losses.SignalToNoiseRatioContrastiveLoss(),
        embeddings,
        labels,
    )


def test_contrastive_larger_batch_equals_pml() -> None:
    generator = torch.Generator().manual_seed(2)
    labels = torch.arange(16).repeat_interleave(8)
    embeddings = torch.randn(len(labels), 64, generator=generator, dtype=torch.float64)
    assert_same(
        SignalToNoiseRatioContrastiveLoss(regularizer_weight=0.01),
        pml_contrastive(0.0, 1.0, 0.01),
        embeddings,
        labels,
    )


def test_contrastive_with_reference_set_equals_pml() -> None:
    embeddings, labels = make_batch("balanced", 1, unit=False)
    ref_emb, ref_labels = make_batch("unequal", 2, unit=False)
    ours = SignalToNoiseRatioContrastiveLoss(regularizer_weight=0.2)
    reference = pml_contrastive(0.0, 1.0, 0.2)
    leaf_a = embeddings.clone().requires_grad_(True)
    leaf_b = embeddings.clone().requires_grad_(True)
    value = ours(leaf_a, labels, ref_emb, ref_labels)
    ref_value = reference(leaf_b, labels, ref_emb=ref_emb, ref_labels=ref_labels)
    value.backward()
    ref_value.backward()
    torch.testing.assert_close(value, ref_value, atol=ATOL, rtol=0)
    torch.testing.assert_close(leaf_a.grad, leaf_b.grad, atol=ATOL, rtol=0)


def test_contrastive_without_regulariser_is_contrastive_on_snr() -> None:
    embeddings, labels = make_batch("balanced", 3, unit=False)
    assert_same(
        SignalToNoiseRatioContrastiveLoss(0.1, 0.9),
        ContrastiveLoss(0.1, 0.9, SNRDistance()),
        embeddings,
        labels,
    )


def loop_contrastive(embeddings, labels, pos_margin, neg_margin, weight):
    """Yuan et al.'s SNR contrastive loss, pair by pair, with PML's AvgNonZero reduction."""
    x = F.normalize(embeddings, dim=1)
    pos_terms, neg_terms = [], []
    for i, j in itertools.permutations(range(len(labels)), 2):
        d = torch.var(x[j] - x[i]) / torch.var(x[i])
        if labels[i] == labels[j]:
            pos_terms.append(torch.relu(d - pos_margin))
        else:
            neg_terms.append(torch.relu(neg_margin - d))

    def avg_nonzero(terms):
        if not terms:
            return torch.zeros((), dtype=x.dtype)
        terms = torch.stack(terms)
        return terms.sum() / (terms > 0).sum().clamp_min(1)

    regulariser = embeddings.sum(dim=1).abs().mean()
    return avg_nonzero(pos_terms) + avg_nonzero(neg_terms) + weight * regulariser


@pytest.mark.parametrize("kind", ["balanced", "singletons"])
def test_contrastive_equals_loop(kind) -> None:
    embeddings, labels = make_batch(kind, 4, unit=False)
    assert_same(
        SignalToNoiseRatioContrastiveLoss(0.1, 1.2, regularizer_weight=0.05),
        lambda e, y: loop_contrastive(e, y, 0.1, 1.2, 0.05),
        embeddings,
        labels,
    )


# ---------------------------------------------------------------------------------------------
# Triplet (Roth et al.'s setting)
# ---------------------------------------------------------------------------------------------


def pml_triplet(margin, mining, weight):
    snr = pml_distances.SNRDistance
    extra = {}
    if weight:
        extra = {
            "embedding_regularizer": pml_regularizers.ZeroMeanRegularizer(),
            "embedding_reg_weight": weight,
        }
    loss = pml_losses.TripletMarginLoss(margin=margin, distance=snr(), **extra)
    if mining == "batch_hard":
        miner = pml_miners.BatchHardMiner(distance=snr())
    else:
        miner = pml_miners.TripletMarginMiner(margin, mining, distance=snr())
    # Roth et al.'s networks output unit vectors: PML sees the normalised embeddings
    return lambda e, y: loss(F.normalize(e, dim=1), y, miner(F.normalize(e, dim=1), y))


@pytest.mark.parametrize("weight", [0.0, 0.005, 0.5])
@pytest.mark.parametrize("mining", ["all", "semihard", "hard", "batch_hard"])
@pytest.mark.parametrize("kind", list(LABELS))
def test_triplet_equals_pml(kind, mining, weight) -> None:
    ours = SignalToNoiseRatioTripletLoss(0.2, mining, regularizer_weight=weight)
    for seed in (0, 1):
        embeddings, labels = make_batch(kind, seed, unit=False)
        assert_same(ours, pml_triplet(0.2, mining, weight), embeddings, labels)


def test_triplet_unnormalised_regulariser_equals_pml_on_raw_inputs() -> None:
    embeddings, labels = make_batch("balanced", 2, unit=False)
    ours = SignalToNoiseRatioTripletLoss(regularizer_weight=0.1, normalize_regularizer=False)
    loss = pml_losses.TripletMarginLoss(
        margin=0.2,
        distance=pml_distances.SNRDistance(),
        embedding_regularizer=pml_regularizers.ZeroMeanRegularizer(),
        embedding_reg_weight=0.1,
    )
    miner = pml_miners.TripletMarginMiner(0.2, "all", distance=pml_distances.SNRDistance())
    assert_same(ours, lambda e, y: loss(e, y, miner(e, y)), embeddings, labels)


def loop_roth(embeddings, labels, margin=0.2, weight=0.005):
    """Roth et al.'s SNR criterion written out: every valid triplet, AvgNonZero, regulariser on
    the unit vectors."""
    x = F.normalize(embeddings, dim=1)

    def d(i, j):
        return torch.var(x[i] - x[j]) / torch.var(x[i])

    terms = []
    n = len(labels)
    for a, p, q in itertools.product(range(n), repeat=3):
        if a != p and labels[a] == labels[p] and labels[a] != labels[q]:
            terms.append(torch.relu(d(a, p) - d(a, q) + margin))
    triplet = torch.zeros((), dtype=x.dtype)
    if terms:
        terms = torch.stack(terms)
        triplet = terms.sum() / (terms > 0).sum().clamp_min(1)
    return triplet + weight * x.sum(dim=1).abs().mean()


@pytest.mark.parametrize("kind", ["balanced", "unequal"])
def test_triplet_defaults_are_roths_setting(kind) -> None:
    embeddings, labels = make_batch(kind, 6, unit=False)
    assert_same(SignalToNoiseRatioTripletLoss(), loop_roth, embeddings, labels)


# ---------------------------------------------------------------------------------------------
# Regulariser
# ---------------------------------------------------------------------------------------------


def test_zero_mean_regularizer_equals_pml() -> None:
    embeddings, _ = make_batch("unequal", 3, unit=False)
    assert_same(
        lambda e, y: ZeroMeanRegularizer()(e),
        lambda e, y: pml_regularizers.ZeroMeanRegularizer()(e),
        embeddings,
        None,
    )


def test_zero_mean_regularizer_values() -> None:
    x = torch.tensor([[1.0, -1.0, 2.0, -2.0], [1.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    assert ZeroMeanRegularizer()(x).item() == pytest.approx(2.0)  # (|0| + |4|) / 2
    assert ZeroMeanRegularizer(normalize_embeddings=True)(x).item() == pytest.approx(1.0)  # (0 + 2)/2
    centred = x - x.mean(dim=1, keepdim=True)
    assert ZeroMeanRegularizer()(centred).item() == pytest.approx(0.0, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# Arguments, inputs, degenerate batches
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "factory",
    [
        lambda: SignalToNoiseRatioContrastiveLoss(distance=EuclideanDistance()),
        lambda: SignalToNoiseRatioContrastiveLoss(regularizer_weight=-0.1),
        lambda: SignalToNoiseRatioContrastiveLoss(regularizer_weight=float("nan")),
        lambda: SignalToNoiseRatioContrastiveLoss(pos_margin=1.0, neg_margin=0.5),
        lambda: SignalToNoiseRatioContrastiveLoss(pos_margin=float("inf")),
        lambda: SignalToNoiseRatioContrastiveLoss(distance=SNRDistance(eps=0.0)),
        lambda: SignalToNoiseRatioTripletLoss(distance=EuclideanDistance()),
        lambda: SignalToNoiseRatioTripletLoss(margin=-0.2),
        lambda: SignalToNoiseRatioTripletLoss(mining="hardest"),
        lambda: SignalToNoiseRatioTripletLoss(regularizer_weight=-1.0),
        lambda: SignalToNoiseRatioTripletLoss(margin=0.0, mining="semihard"),
    ],
)
def test_invalid_arguments(factory) -> None:
    with pytest.raises(ValueError):
        factory()


@pytest.mark.parametrize(
    "loss", [SignalToNoiseRatioContrastiveLoss(regularizer_weight=0.1), SignalToNoiseRatioTripletLoss()]
)
def test_invalid_inputs(loss) -> None:
    embeddings, labels = make_batch("balanced")
    with pytest.raises(ValueError, match="batch size"):
        loss(embeddings, labels[:-1])
    with pytest.raises(ValueError, match="integer"):
        loss(embeddings, labels.float())
    bad = embeddings.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        loss(bad, labels)
    constant = embeddings.clone()
    constant[3] = 0.5  # an embedding with no signal: a clear error, never a NaN loss
    with pytest.raises(ValueError, match="variance"):
        loss(constant, labels)


@pytest.mark.parametrize(
    "loss",
    [
        SignalToNoiseRatioContrastiveLoss(regularizer_weight=0.1),
        SignalToNoiseRatioContrastiveLoss(0.0, 1.0),
        SignalToNoiseRatioTripletLoss(),
        SignalToNoiseRatioTripletLoss(mining="batch_hard"),
    ],
)
@pytest.mark.parametrize("case", ["duplicates", "offsets", "one_class", "no_positive", "zero_mean"])
def test_finite_gradients_on_degenerate_but_valid_batches(loss, case) -> None:
    embeddings, labels = make_batch("balanced", 7, unit=False)
    if case == "duplicates":
        embeddings = embeddings[labels.argsort()]
        labels = labels.sort().values
        embeddings[1] = embeddings[0]  # same class, SNR distance exactly 0
        embeddings[4] = embeddings[0]  # other class, SNR distance exactly 0
    elif case == "offsets":
        embeddings[1] = embeddings[0] + 2.0  # a constant offset is no noise
    elif case == "one_class":
        labels = torch.zeros_like(labels)
    elif case == "no_positive":
        labels = torch.arange(len(labels))
    else:
        embeddings = embeddings - embeddings.mean(dim=1, keepdim=True)  # regulariser at its kink
    value, grad = value_and_grad(loss, embeddings, labels)
    assert torch.isfinite(value) and torch.isfinite(grad).all()


def test_registered_names_and_repr() -> None:
    assert "regularizer_weight=0.1" in repr(SignalToNoiseRatioContrastiveLoss(regularizer_weight=0.1))
    assert "margin=0.2" in repr(SignalToNoiseRatioTripletLoss())
    assert isinstance(SignalToNoiseRatioTripletLoss().distance, SNRDistance)
