"""Tests for dmlkit.losses.proxy_based: agreement with pytorch-metric-learning (PML), equations
written as plain loops, degenerate inputs, argument checks and sampled negative proxies."""

from __future__ import annotations

import itertools
import math
import statistics

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import regularizers as pml_regularizers

from dmlkit.losses.proxy_based import (
    PROXYNCA_PLUS_PLUS_PROXY_LR,
    NormalizedSoftmaxLoss,
    ProxyAnchorLoss,
    ProxyNCALoss,
    SoftTripleLoss,
    SparseCentersRegularizer,
)

NUM_CLASSES = 12
EMBEDDING_SIZE = 8
C, D = NUM_CLASSES, EMBEDDING_SIZE
TINY64 = torch.finfo(torch.float64).tiny  # PML's epsilon in SparseCentersRegularizer

# Label sets: classes absent from the batch (8..11 never appear) and unequal class counts,
# including singletons and a batch of a single class.
LABEL_SETS = {
    "random_0_to_7": None,  # drawn in _batch
    "unequal": [0, 0, 0, 0, 0, 0, 0, 3, 3, 5, 1, 1, 1, 7, 2, 2, 2, 2],
    "singletons": [4, 9, 1, 0, 6],
    "one_class": [2, 2, 2, 2, 2, 2],
}


def _batch(name: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    if LABEL_SETS[name] is None:
        labels = torch.randint(0, 8, (20,), generator=generator)
    else:
        labels = torch.tensor(LABEL_SETS[name])
    embeddings = torch.randn(labels.numel(), EMBEDDING_SIZE, generator=generator, dtype=torch.float64)
    # Rows of very different norms: both libraries normalise.
    scales = torch.rand(labels.numel(), 1, generator=generator, dtype=torch.float64) * 5 + 0.1
    embeddings = embeddings * scales
    return embeddings, labels


def _value_and_grads(loss_fn, embeddings, labels, parameter):
    embeddings = embeddings.clone().requires_grad_()
    loss = loss_fn(embeddings, labels)
    (embedding_grad, parameter_grad) = torch.autograd.grad(loss, [embeddings, parameter])
    return loss.detach(), embedding_grad, parameter_grad


# Each case: (id, dmlkit factory, PML factory, name of PML's parameter, PML's is transposed)
PML_CASES = [
    ("ProxyNCA", lambda: ProxyNCALoss(C, D), lambda: pml_losses.ProxyNCALoss(C, D), "proxies", False),
    (
        "ProxyNCA_scale9",
        lambda: ProxyNCALoss.proxynca_plus_plus(C, D),
        lambda: pml_losses.ProxyNCALoss(C, D, softmax_scale=9),
        "proxies",
        False,
    ),
    ("ProxyAnchor", lambda: ProxyAnchorLoss(C, D), lambda: pml_losses.ProxyAnchorLoss(C, D), "proxies", False),
    (
        "ProxyAnchor_m0.3_a16",
        lambda: ProxyAnchorLoss(C, D, margin=0.3, alpha=16),
        lambda: pml_losses.ProxyAnchorLoss(C, D, margin=0.3, alpha=16),
        "proxies",
        False,
    ),
    ("SoftTriple", lambda: SoftTripleLoss(C, D, tau=0.0), lambda: pml_losses.SoftTripleLoss(C, D), "fc", True),
    (
        "SoftTriple_K3",
        lambda: SoftTripleLoss(C, D, centers_per_class=3, la=10, gamma=0.5, margin=0.2, tau=0.0),
        lambda: pml_losses.SoftTripleLoss(C, D, centers_per_class=3, la=10, gamma=0.5, margin=0.2),
        "fc",
        True,
    ),
    (
        "SoftTriple_tau",
        lambda: SoftTripleLoss(C, D, tau=0.2, regularizer_eps=TINY64),
        lambda: pml_losses.SoftTripleLoss(
            C, D, weight_regularizer=pml_regularizers.SparseCentersRegularizer(NUM_CLASSES, 10), weight_reg_weight=0.2
        ),
        "fc",
        True,
    ),
    (
        "NormalizedSoftmax",
        lambda: NormalizedSoftmaxLoss(C, D),
        lambda: pml_losses.NormalizedSoftmaxLoss(C, D),
        "W",
        True,
    ),
    (
        "NormalizedSoftmax_T0.5",
        lambda: NormalizedSoftmaxLoss(C, D, temperature=0.5),
        lambda: pml_losses.NormalizedSoftmaxLoss(C, D, temperature=0.5),
        "W",
        True,
    ),
]


@pytest.mark.parametrize("label_set", list(LABEL_SETS))
@pytest.mark.parametrize("case", PML_CASES, ids=[case[0] for case in PML_CASES])
def test_matches_pml_values_and_gradients(case, label_set):
    _, ours_factory, pml_factory, pml_name, transposed = case
    torch.manual_seed(1)
    ours = ours_factory().double()
    pml = pml_factory().double()
    pml_parameter = getattr(pml, pml_name)
    with torch.no_grad():
        pml_parameter.copy_(ours.proxies.T if transposed else ours.proxies)
    embeddings, labels = _batch(label_set)

    value, embedding_grad, proxy_grad = _value_and_grads(ours, embeddings, labels, ours.proxies)
    pml_value, pml_embedding_grad, pml_grad = _value_and_grads(pml, embeddings, labels, pml_parameter)
    if transposed:
        pml_grad = pml_grad.T

    torch.testing.assert_close(value, pml_value, rtol=0, atol=1e-6)
    torch.testing.assert_close(embedding_grad, pml_embedding_grad, rtol=0, atol=1e-6)
    torch.testing.assert_close(proxy_grad, pml_grad, rtol=0, atol=1e-6)
    assert proxy_grad.abs().sum() > 0


# --------------------------------------------------------------------------------------------
# equations written as loops
# --------------------------------------------------------------------------------------------


def _proxynca_loop(embeddings, labels, proxies, scale, exclude_positive):
    total = 0.0
    for i in range(embeddings.shape[0]):
        x = embeddings[i] / embeddings[i].norm()
        numerator = None
        denominator = 0.0
        for c in range(proxies.shape[0]):
            p = proxies[c] / proxies[c].norm()
            term = math.exp(-scale * float(((x - p) ** 2).sum()))
            if c == int(labels[i]):
                numerator = term
                if exclude_positive:
                    continue
            denominator += term
        total += -math.log(numerator / denominator)
    return total / embeddings.shape[0]


@pytest.mark.parametrize("exclude_positive", [True, False])
@pytest.mark.parametrize("scale", [1.0, 9.0])
@pytest.mark.parametrize("label_set", ["random_0_to_7", "one_class"])
def test_proxynca_denominator_against_loop(exclude_positive, scale, label_set):
    torch.manual_seed(2)
    loss_fn = ProxyNCALoss(C, D, softmax_scale=scale, exclude_positive_from_denominator=exclude_positive).double()
    embeddings, labels = _batch(label_set, seed=3)
    expected = _proxynca_loop(embeddings, labels, loss_fn.proxies.detach(), scale, exclude_positive)
    assert loss_fn(embeddings, labels).item() == pytest.approx(expected, abs=1e-10)


def test_proxynca_original_denominator_is_smaller_by_the_positive_term():
    torch.manual_seed(3)
    embeddings, labels = _batch("unequal")
    original = ProxyNCALoss(C, D, exclude_positive_from_denominator=True).double()
    pml_like = ProxyNCALoss(C, D).double()
    with torch.no_grad():
        pml_like.proxies.copy_(original.proxies)
    # excluding a positive term from the denominator can only lower the loss
    assert original(embeddings, labels).item() < pml_like(embeddings, labels).item()


def _proxy_anchor_loop(embeddings, labels, proxies, margin, alpha):
    x = F.normalize(embeddings, dim=1)
    p = F.normalize(proxies, dim=1)
    cos = x @ p.T
    positive, negative, with_positives = 0.0, 0.0, 0
    for c in range(proxies.shape[0]):
        members = labels == c
        if members.any():
            with_positives += 1
            positive += math.log1p(float(torch.exp(-alpha * (cos[members, c] - margin)).sum()))
        negative += math.log1p(float(torch.exp(alpha * (cos[~members, c] + margin)).sum()))
    return positive / with_positives + negative / proxies.shape[0]


@pytest.mark.parametrize("label_set", ["unequal", "one_class"])
def test_proxy_anchor_against_loop(label_set):
    torch.manual_seed(4)
    loss_fn = ProxyAnchorLoss(C, D, margin=0.1, alpha=32).double()
    embeddings, labels = _batch(label_set, seed=5)
    expected = _proxy_anchor_loop(embeddings, labels, loss_fn.proxies.detach(), 0.1, 32.0)
    assert loss_fn(embeddings, labels).item() == pytest.approx(expected, rel=1e-12)


def _soft_triple_loop(embeddings, labels, centers, k, la, gamma, margin):
    num_classes = centers.shape[0] // k
    total = 0.0
    for i in range(embeddings.shape[0]):
        x = embeddings[i] / embeddings[i].norm()
        logits = []
        for c in range(num_classes):
            sims = [float(x @ (centers[c * k + j] / centers[c * k + j].norm())) for j in range(k)]
            weights = [math.exp(s / gamma) for s in sims]
            relaxed = sum(w * s for w, s in zip(weights, sims)) / sum(weights)
            logits.append(la * (relaxed - (margin if c == int(labels[i]) else 0.0)))
        top = max(logits)
        total += -(logits[int(labels[i])] - top - math.log(sum(math.exp(v - top) for v in logits)))
    return total / embeddings.shape[0]


def _center_regularizer_loop(centers, num_classes, k, eps):
    total = 0.0
    for c in range(num_classes):
        for t in range(k):
            for s in range(t + 1, k):
                a = centers[c * k + t] / centers[c * k + t].norm()
                b = centers[c * k + s] / centers[c * k + s].norm()
                total += math.sqrt(2.0 + eps - 2.0 * float(a @ b))
    return total / (num_classes * k * (k - 1))


def test_soft_triple_against_loop_and_row_layout():
    torch.manual_seed(5)
    k = 3
    loss_fn = SoftTripleLoss(C, D, centers_per_class=k, tau=0.2).double()
    embeddings, labels = _batch("unequal", seed=6)
    centers = loss_fn.proxies.detach()
    expected = _soft_triple_loop(embeddings, labels, centers, k, 20.0, 0.1, 0.01)
    expected += 0.2 * _center_regularizer_loop(centers, NUM_CLASSES, k, 1e-5)
    assert loss_fn(embeddings, labels).item() == pytest.approx(expected, rel=1e-12)


def test_sparse_centers_regularizer_matches_pml_and_loop():
    torch.manual_seed(6)
    k = 4
    centers = torch.randn(NUM_CLASSES * k, EMBEDDING_SIZE, dtype=torch.float64, requires_grad=True)
    ours = SparseCentersRegularizer(NUM_CLASSES, k, eps=TINY64)
    pml = pml_regularizers.SparseCentersRegularizer(NUM_CLASSES, k)
    value = ours(centers)
    pml_value = pml(centers)
    (grad,) = torch.autograd.grad(value, centers)
    (pml_grad,) = torch.autograd.grad(pml_value, centers)
    torch.testing.assert_close(value, pml_value, rtol=0, atol=1e-6)
    torch.testing.assert_close(grad, pml_grad, rtol=0, atol=1e-6)
    default = SparseCentersRegularizer(NUM_CLASSES, k)
    expected = _center_regularizer_loop(centers.detach(), NUM_CLASSES, k, 1e-5)
    assert default(centers).item() == pytest.approx(expected, rel=1e-12)
    # the loss's own method uses the same centres
    loss_fn = SoftTripleLoss(C, D, centers_per_class=k).double()
    with torch.no_grad():
        loss_fn.proxies.copy_(centers)
    assert loss_fn.center_regularization().item() == pytest.approx(expected, rel=1e-12)
    assert SparseCentersRegularizer(NUM_CLASSES, 1)(centers[:NUM_CLASSES]).item() == 0.0
    with pytest.raises(ValueError, match="shape"):
        default(centers[:-1])


def test_soft_triple_gradcheck():
    torch.manual_seed(7)
    loss_fn = SoftTripleLoss(5, 4, centers_per_class=3, la=5.0, gamma=0.3, margin=0.1, tau=0.2).double()
    embeddings = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    proxies = loss_fn.proxies.detach().clone().requires_grad_()
    labels = torch.tensor([0, 0, 1, 3, 3, 3])

    def loss(e, p):
        return torch.func.functional_call(loss_fn, {"proxies": p}, (e, labels))

    assert torch.autograd.gradcheck(loss, (embeddings, proxies))


# --------------------------------------------------------------------------------------------
# parameters, defaults and dtypes
# --------------------------------------------------------------------------------------------


def test_proxies_parameter_shapes_and_defaults():
    assert ProxyNCALoss(7, 5).proxies.shape == (7, 5)
    assert ProxyAnchorLoss(7, 5).proxies.shape == (7, 5)
    assert NormalizedSoftmaxLoss(7, 5).proxies.shape == (7, 5)
    soft_triple = SoftTripleLoss(7, 5)
    assert soft_triple.proxies.shape == (70, 5)
    assert (soft_triple.centers_per_class, soft_triple.la, soft_triple.gamma, soft_triple.margin, soft_triple.tau) == (
        10,
        20.0,
        0.1,
        0.01,
        0.2,
    )
    anchor = ProxyAnchorLoss(7, 5)
    assert (anchor.margin, anchor.alpha) == (0.1, 32.0)
    assert NormalizedSoftmaxLoss(7, 5).temperature == 0.05
    assert ProxyNCALoss(7, 5).softmax_scale == 1.0
    for loss_fn in (ProxyNCALoss(7, 5), soft_triple, anchor):
        assert [name for name, _ in loss_fn.named_parameters()] == ["proxies"]
        assert "num_classes=7" in repr(loss_fn)


def test_proxy_anchor_kaiming_normal_fan_out_init():
    torch.manual_seed(8)
    proxies = ProxyAnchorLoss(200, 256).proxies.detach()
    assert float(proxies.std()) == pytest.approx(math.sqrt(2.0 / 200), rel=0.03)


def test_proxynca_plus_plus_configuration():
    loss_fn = ProxyNCALoss.proxynca_plus_plus(10, 6, negative_sampling="random", num_negatives=3)
    assert loss_fn.softmax_scale == 9.0
    assert loss_fn.recommended_proxy_lr == PROXYNCA_PLUS_PLUS_PROXY_LR == 400.0
    assert not loss_fn.exclude_positive_from_denominator
    assert loss_fn.negative_sampling == "random"
    assert ProxyNCALoss(10, 6).recommended_proxy_lr is None
    # scale 9 on the squared distance = both unit vectors scaled by 3
    embeddings, labels = torch.randn(5, 6, dtype=torch.float64), torch.tensor([0, 1, 1, 4, 9])
    loss_fn = loss_fn.double()
    x = 3 * F.normalize(embeddings, dim=1)
    p = 3 * F.normalize(loss_fn.proxies.detach(), dim=1)
    expected = F.cross_entropy(-(torch.cdist(x, p) ** 2), labels)
    full = ProxyNCALoss.proxynca_plus_plus(10, 6).double()
    with torch.no_grad():
        full.proxies.copy_(loss_fn.proxies)
    assert full(embeddings, labels).item() == pytest.approx(float(expected), rel=1e-12)


def test_float64_embeddings_with_float32_proxies():
    loss_fn = ProxyAnchorLoss(6, 4)
    embeddings = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    loss = loss_fn(embeddings, torch.tensor([0, 1, 1, 2, 5]))
    loss.backward()
    assert loss.dtype == torch.float64 and loss_fn.proxies.grad.dtype == torch.float32


# --------------------------------------------------------------------------------------------
# degenerate inputs
# --------------------------------------------------------------------------------------------

ALL_LOSSES = [
    ("ProxyNCA", lambda: ProxyNCALoss(C, D)),
    ("ProxyNCA_original", lambda: ProxyNCALoss(C, D, exclude_positive_from_denominator=True)),
    ("ProxyNCA++", lambda: ProxyNCALoss.proxynca_plus_plus(C, D)),
    ("ProxyAnchor", lambda: ProxyAnchorLoss(C, D)),
    ("SoftTriple", lambda: SoftTripleLoss(C, D)),
    ("NormalizedSoftmax", lambda: NormalizedSoftmaxLoss(C, D)),
    ("ProxyNCA_random", lambda: ProxyNCALoss(C, D, negative_sampling="random", num_negatives=2)),
    ("ProxyAnchor_random", lambda: ProxyAnchorLoss(C, D, negative_sampling="random", num_negatives=2)),
    ("SoftTriple_hardest", lambda: SoftTripleLoss(C, D, negative_sampling="hardest", num_negatives=2)),
    (
        "NormalizedSoftmax_hardest_pool",
        lambda: NormalizedSoftmaxLoss(C, D, negative_sampling="hardest", num_negatives=2, negative_pool_size=3),
    ),
]

DEGENERATE = {
    "all_equal": lambda: (torch.ones(6, D), torch.tensor([0, 0, 1, 1, 2, 3])),
    "duplicates": lambda: (torch.randn(3, D).repeat(2, 1), torch.tensor([0, 1, 2, 0, 1, 2])),
    "duplicates_across_classes": lambda: (torch.randn(1, D).repeat(4, 1), torch.tensor([0, 1, 2, 3])),
    "all_equal_one_class": lambda: (torch.ones(5, D), torch.zeros(5, dtype=torch.long)),
    "single_sample": lambda: (torch.randn(1, D), torch.tensor([3])),
    "zero_rows": lambda: (torch.zeros(4, D), torch.tensor([0, 1, 1, 2])),
    "huge_and_tiny": lambda: (
        torch.randn(4, D) * torch.tensor([[1e6], [1e-6], [1.0], [1e3]]),
        torch.tensor([0, 1, 1, 2]),
    ),
}


@pytest.mark.parametrize("inputs", list(DEGENERATE))
@pytest.mark.parametrize("loss", ALL_LOSSES, ids=[name for name, _ in ALL_LOSSES])
def test_finite_values_and_gradients_on_degenerate_input(loss, inputs):
    torch.manual_seed(9)
    loss_fn = loss[1]()
    embeddings, labels = DEGENERATE[inputs]()
    embeddings.requires_grad_()
    value = loss_fn(embeddings, labels)
    value.backward()
    assert value.dim() == 0 and torch.isfinite(value)
    assert torch.isfinite(embeddings.grad).all()
    assert torch.isfinite(loss_fn.proxies.grad).all()


# --------------------------------------------------------------------------------------------
# argument and input checks
# --------------------------------------------------------------------------------------------

INVALID_ARGUMENTS = [
    (ProxyNCALoss, dict(num_classes=1, embedding_size=4)),
    (ProxyNCALoss, dict(num_classes=2.5, embedding_size=4)),
    (ProxyNCALoss, dict(num_classes=True, embedding_size=4)),
    (ProxyNCALoss, dict(num_classes=5, embedding_size=0)),
    (ProxyNCALoss, dict(num_classes=5, embedding_size=4, softmax_scale=0)),
    (ProxyNCALoss, dict(num_classes=5, embedding_size=4, softmax_scale=-1.0)),
    (ProxyNCALoss, dict(num_classes=5, embedding_size=4, softmax_scale=float("nan"))),
    (ProxyNCALoss, dict(num_classes=5, embedding_size=4, negative_sampling="uniform", num_negatives=2)),
    (ProxyNCALoss, dict(num_classes=5, embedding_size=4, negative_sampling="random")),
    (ProxyNCALoss, dict(num_classes=5, embedding_size=4, negative_sampling="random", num_negatives=0)),
    (ProxyNCALoss, dict(num_classes=5, embedding_size=4, num_negatives=3)),
    (
        ProxyNCALoss,
        dict(num_classes=5, embedding_size=4, negative_sampling="random", num_negatives=2, negative_pool_size=4),
    ),
    (
        ProxyNCALoss,
        dict(num_classes=5, embedding_size=4, negative_sampling="hardest", num_negatives=3, negative_pool_size=2),
    ),
    (ProxyAnchorLoss, dict(num_classes=5, embedding_size=4, margin=-0.1)),
    (ProxyAnchorLoss, dict(num_classes=5, embedding_size=4, alpha=0)),
    (ProxyAnchorLoss, dict(num_classes=5, embedding_size=4, negative_sampling="hardest", num_negatives=2)),
    (SoftTripleLoss, dict(num_classes=5, embedding_size=4, centers_per_class=0)),
    (SoftTripleLoss, dict(num_classes=5, embedding_size=4, la=0)),
    (SoftTripleLoss, dict(num_classes=5, embedding_size=4, gamma=-0.1)),
    (SoftTripleLoss, dict(num_classes=5, embedding_size=4, margin=-0.01)),
    (SoftTripleLoss, dict(num_classes=5, embedding_size=4, tau=-0.2)),
    (SoftTripleLoss, dict(num_classes=5, embedding_size=4, regularizer_eps=0)),
    (NormalizedSoftmaxLoss, dict(num_classes=5, embedding_size=4, temperature=0)),
    (NormalizedSoftmaxLoss, dict(num_classes=5, embedding_size=4, temperature="0.05")),
    (SparseCentersRegularizer, dict(num_classes=5, centers_per_class=0)),
    (SparseCentersRegularizer, dict(num_classes=5, centers_per_class=3, eps=-1.0)),
]


@pytest.mark.parametrize("cls, kwargs", INVALID_ARGUMENTS)
def test_invalid_constructor_arguments_raise(cls, kwargs):
    with pytest.raises(ValueError):
        cls(**kwargs)


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=[name for name, _ in ALL_LOSSES])
def test_invalid_inputs_raise(loss):
    loss_fn = loss[1]()
    embeddings = torch.randn(4, EMBEDDING_SIZE)
    with pytest.raises(ValueError, match=r"\[0, 12\)"):
        loss_fn(embeddings, torch.tensor([0, 1, 2, NUM_CLASSES]))
    with pytest.raises(ValueError, match=r"\[0, 12\)"):
        loss_fn(embeddings, torch.tensor([0, -1, 2, 3]))
    with pytest.raises(ValueError, match="size"):
        loss_fn(torch.randn(4, EMBEDDING_SIZE + 1), torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError):
        loss_fn(embeddings, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError):
        loss_fn(embeddings, torch.tensor([0.0, 1.0, 2.0, 3.0]))
    with pytest.raises(ValueError):
        loss_fn(embeddings[0], torch.tensor([0]))
    with pytest.raises(ValueError):
        loss_fn(torch.full((4, EMBEDDING_SIZE), float("nan")), torch.tensor([0, 1, 2, 3]))


# --------------------------------------------------------------------------------------------
# sampled negative proxies (Reddi et al., AISTATS 2019)
# --------------------------------------------------------------------------------------------

SAMPLED = [
    ("ProxyNCA", lambda **kw: ProxyNCALoss(C, D, softmax_scale=3.0, **kw), ["random", "hardest"]),
    (
        "ProxyNCA_original",
        lambda **kw: ProxyNCALoss(C, D, exclude_positive_from_denominator=True, **kw),
        ["random", "hardest"],
    ),
    ("ProxyAnchor", lambda **kw: ProxyAnchorLoss(C, D, **kw), ["random"]),
    ("SoftTriple", lambda **kw: SoftTripleLoss(C, D, centers_per_class=3, **kw), ["random", "hardest"]),
    ("NormalizedSoftmax", lambda **kw: NormalizedSoftmaxLoss(C, D, **kw), ["random", "hardest"]),
]
SAMPLED_CASES = [(name, factory, mode) for name, factory, modes in SAMPLED for mode in modes]


@pytest.mark.parametrize("label_set", ["random_0_to_7", "unequal", "one_class"])
@pytest.mark.parametrize("name, factory, mode", SAMPLED_CASES, ids=[f"{n}-{m}" for n, _, m in SAMPLED_CASES])
def test_all_negatives_sampled_equals_full_loss(name, factory, mode, label_set):
    torch.manual_seed(10)
    full = factory().double()
    embeddings, labels = _batch(label_set, seed=11)
    for num_negatives in (NUM_CLASSES - len(set(labels.tolist())), 1000):
        sampled = factory(negative_sampling=mode, num_negatives=num_negatives).double()
        with torch.no_grad():
            sampled.proxies.copy_(full.proxies)
        got = _value_and_grads(sampled, embeddings, labels, sampled.proxies)
        expected = _value_and_grads(full, embeddings, labels, full.proxies)
        for what, a, b in zip(("value", "embedding grad", "proxy grad"), got, expected):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-10, msg=lambda m, w=what: f"{w}: {m}")


def test_sampling_touches_only_batch_classes_and_sampled_negatives():
    torch.manual_seed(12)
    loss_fn = NormalizedSoftmaxLoss(50, EMBEDDING_SIZE, negative_sampling="random", num_negatives=5)
    labels = torch.tensor([3, 3, 7, 20, 20, 20])
    loss_fn(torch.randn(6, EMBEDDING_SIZE), labels).backward()
    touched = (loss_fn.proxies.grad.abs().sum(dim=1) > 0).nonzero().flatten().tolist()
    assert {3, 7, 20} <= set(touched) and len(touched) == 3 + 5


def test_hardest_negatives_are_the_most_similar_absent_classes():
    torch.manual_seed(13)
    loss_fn = NormalizedSoftmaxLoss(C, D, negative_sampling="hardest", num_negatives=3).double()
    embeddings, labels = _batch("random_0_to_7", seed=14)
    loss_fn(embeddings, labels).backward()
    absent = [c for c in range(NUM_CLASSES) if c not in set(labels.tolist())]
    cos = F.normalize(embeddings, dim=1) @ F.normalize(loss_fn.proxies.detach(), dim=1).T
    hardest = sorted(absent, key=lambda c: -float(cos[:, c].max()))[:3]
    touched = set((loss_fn.proxies.grad.abs().sum(dim=1) > 0).nonzero().flatten().tolist())
    assert touched - set(labels.tolist()) == set(hardest)


def test_hardest_sampled_softmax_is_a_lower_bound_growing_with_k():
    torch.manual_seed(15)
    embeddings, labels = _batch("random_0_to_7", seed=16)
    full = NormalizedSoftmaxLoss(C, D, temperature=0.5).double()
    values = []
    for k in (1, 2, 3, 4):
        sampled = NormalizedSoftmaxLoss(C, D, temperature=0.5, negative_sampling="hardest", num_negatives=k).double()
        with torch.no_grad():
            sampled.proxies.copy_(full.proxies)
        values.append(sampled(embeddings, labels).item())
    assert values == sorted(values)
    assert values[-1] <= full(embeddings, labels).item() + 1e-12


def test_random_sampled_proxy_anchor_is_unbiased(monkeypatch):
    """Averaged over every equally likely draw of k absent classes, the loss is the full loss."""
    torch.manual_seed(17)
    full = ProxyAnchorLoss(C, D, alpha=8).double()
    sampled = ProxyAnchorLoss(C, D, alpha=8, negative_sampling="random", num_negatives=2).double()
    with torch.no_grad():
        sampled.proxies.copy_(full.proxies)
    embeddings, labels = _batch("unequal", seed=18)  # 7 classes present, M = 5 absent
    num_absent = NUM_CLASSES - len(set(labels.tolist()))
    values = []
    for chosen in itertools.combinations(range(num_absent), 2):
        rest = [i for i in range(num_absent) if i not in chosen]
        permutation = torch.tensor(list(chosen) + rest)
        monkeypatch.setattr(torch, "randperm", lambda n, device=None, _p=permutation: _p.to(device))
        values.append(sampled(embeddings, labels).item())
    assert len(set(round(v, 12) for v in values)) > 1  # the draws differ ...
    # ... but not on average
    assert statistics.fmean(values) == pytest.approx(full(embeddings, labels).item(), rel=1e-12)


@pytest.mark.parametrize(
    "make, expected_norm",
    [
        (lambda: ProxyNCALoss(100, 64), 8.0),  # N(0, 1) in 64-d: about sqrt(64)
        (lambda: NormalizedSoftmaxLoss(100, 64), 8.0),
        (lambda: ProxyNCALoss.proxynca_plus_plus(100, 64), 1.0),  # N(0, 1) / 8
    ],
)
def test_initial_proxy_norms_and_rescaling(make, expected_norm):
    torch.manual_seed(0)
    loss = make()
    assert loss.proxy_norm() == pytest.approx(expected_norm, rel=0.05)
    directions = F.normalize(loss.proxies.detach().clone(), dim=1)
    assert loss.rescale_proxies_(1.0) is loss
    torch.testing.assert_close(loss.proxies.detach().norm(dim=1), torch.ones(100))
    torch.testing.assert_close(F.normalize(loss.proxies.detach(), dim=1), directions)
    with pytest.raises(ValueError, match="norm must be a positive number"):
        loss.rescale_proxies_(0.0)


def test_softtriple_and_proxy_anchor_start_far_smaller_than_proxynca():
    torch.manual_seed(0)
    ratio = ProxyNCALoss(100, 64).proxy_norm() / SoftTripleLoss(100, 64).proxy_norm()
    assert ratio > 30  # the unfair start the review found (~80x): one learning rate, different angular rates
