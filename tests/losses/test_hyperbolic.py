"""Tests for dmlkit.losses.hyperbolic against plain-Python loops written from the equations."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from dmlkit.geometry import HyperbolicProjection
from dmlkit.losses.hyperbolic import HyperbolicPrototypeLoss, PairwiseCrossEntropyLoss

F64 = torch.float64


@pytest.fixture(autouse=True)
def _single_thread():
    """Tiny tensors: intra-op threads only add contention on a shared CPU (40x slower here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------------------------------
# scalar references in plain Python (math module, lists), from REFERENCE.md's formulas
# ----------------------------------------------------------------------------------------------
def _dot(a, b):
    return sum(p * q for p, q in zip(a, b))


def _mobius_add(x, y, c):
    xy, x2, y2 = _dot(x, y), _dot(x, x), _dot(y, y)
    den = 1 + 2 * c * xy + c * c * x2 * y2
    return [((1 + 2 * c * xy + c * y2) * a + (1 - c * x2) * b) / den for a, b in zip(x, y)]


def _hyp_dist(x, y, c):
    w = _mobius_add([-v for v in x], y, c)
    return 2 / math.sqrt(c) * math.atanh(math.sqrt(c) * math.sqrt(_dot(w, w)))


def _cos(x, y):
    return _dot(x, y) / math.sqrt(_dot(x, x) * _dot(y, y))


def _similarity(x, y, c, temperature):
    return (-_hyp_dist(x, y, c) if c > 0 else _cos(x, y)) / temperature


def _pairwise_ce_loop(embeddings: torch.Tensor, labels: torch.Tensor, c: float, temperature: float) -> float:
    z, y = embeddings.tolist(), labels.tolist()
    n = len(z)
    terms = []
    for i in range(n):
        for j in range(n):
            if i == j or y[i] != y[j]:
                continue
            numerator = math.exp(_similarity(z[i], z[j], c, temperature))
            others = [k for k in range(n) if k != i]
            denominator = sum(math.exp(_similarity(z[i], z[k], c, temperature)) for k in others)
            terms.append(-math.log(numerator / denominator))
    return sum(terms) / len(terms)


def _expmap0_project(v, c, eps=1e-3):
    norm = math.sqrt(_dot(v, v))
    p = [math.tanh(math.sqrt(c) * norm) * a / (math.sqrt(c) * norm) for a in v]
    max_norm = (1 - eps) / math.sqrt(c)
    pn = math.sqrt(_dot(p, p))
    return [a * max_norm / pn for a in p] if pn > max_norm else p


def _prototype_loop(embeddings, labels, proxies, c, temperature) -> float:
    z, y, v = embeddings.tolist(), labels.tolist(), proxies.tolist()
    protos = [_expmap0_project(row, c) for row in v] if c > 0 else v
    total = 0.0
    for zi, yi in zip(z, y):
        logits = [_similarity(zi, p, c, temperature) for p in protos]
        total += -(logits[yi] - math.log(sum(math.exp(l) for l in logits)))
    return total / len(z)


def _ball_batch(n: int, d: int, c: float, seed: int, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(n, d, generator=g, dtype=F64) * scale
    return HyperbolicProjection(c=c)(feats) if c > 0 else feats


LABELS = torch.tensor([0, 1, 0, 2, 1, 0, 3, 2, 0, 4, 1])  # classes of size 4, 3, 2, 1, 1


# ----------------------------------------------------------------------------------------------
# PairwiseCrossEntropyLoss
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("c, temperature", [(0.1, 0.2), (1.0, 0.5), (0.0, 0.1)])
def test_pairwise_ce_matches_loop(c, temperature):
    z = _ball_batch(len(LABELS), 5, c, seed=1)
    loss = PairwiseCrossEntropyLoss(c=c, temperature=temperature)(z, LABELS)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(_pairwise_ce_loop(z, LABELS, c, temperature), rel=1e-10)


def test_pairwise_ce_two_views_is_the_papers_formulation():
    """Two views per class: for view-0 anchor i, cross-entropy over [x1 (all), x0 (all but i)]
    with target x1_i, and symmetrically for view 1, averaged (Ermolov et al.'s loss)."""
    from dmlkit.geometry import dist_matrix

    c, tau, k = 0.1, 0.2, 6
    z = _ball_batch(2 * k, 4, c, seed=2)
    x0, x1 = z[:k], z[k:]

    def one_side(a, b):
        logits_ab = -dist_matrix(a, b, c=c) / tau
        logits_aa = -dist_matrix(a, c=c) / tau - torch.eye(k, dtype=F64) * 1e9
        return F.cross_entropy(torch.cat([logits_ab, logits_aa], dim=1), torch.arange(k))

    paper = 0.5 * (one_side(x0, x1) + one_side(x1, x0))
    labels = torch.cat([torch.arange(k), torch.arange(k)])
    ours = PairwiseCrossEntropyLoss(c=c, temperature=tau)(z, labels)
    torch.testing.assert_close(ours, paper, rtol=1e-12, atol=1e-12)


def test_spherical_two_views_equals_pml_ntxent():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        losses = pytest.importorskip("pytorch_metric_learning.losses")
    k = 8
    z = torch.randn(2 * k, 6, generator=torch.Generator().manual_seed(3), dtype=F64)
    labels = torch.cat([torch.arange(k), torch.arange(k)])
    ours = PairwiseCrossEntropyLoss(c=0.0)(z, labels)  # temperature defaults to 0.1
    theirs = losses.NTXentLoss(temperature=0.1)(z, labels)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


def test_pairwise_ce_defaults_and_repr():
    assert PairwiseCrossEntropyLoss().temperature == 0.2
    assert PairwiseCrossEntropyLoss().c == 0.1
    assert PairwiseCrossEntropyLoss(c=0).temperature == 0.1
    assert PairwiseCrossEntropyLoss(c=0, temperature=0.3).temperature == 0.3
    assert "c=0.1, temperature=0.2" in repr(PairwiseCrossEntropyLoss())


def test_pairwise_ce_permutation_invariant_and_no_positives():
    z = _ball_batch(len(LABELS), 5, 0.1, seed=4)
    loss_fn = PairwiseCrossEntropyLoss()
    perm = torch.randperm(len(LABELS), generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(loss_fn(z[perm], LABELS[perm]), loss_fn(z, LABELS))
    leaf = z.detach().clone().requires_grad_(True)
    zero = loss_fn(leaf, torch.arange(len(LABELS)))
    assert zero.item() == 0.0
    zero.backward()
    assert torch.all(leaf.grad == 0)
    assert loss_fn(z[:1], LABELS[:1]).item() == 0.0


@pytest.mark.parametrize("c", [0.1, 1.0])
def test_gradients_finite_in_float32_within_1e5_of_the_boundary(c):
    g = torch.Generator().manual_seed(6)
    u = torch.randn(12, 16, generator=g)
    z = (u / u.norm(dim=1, keepdim=True) * (1 - 1e-5) / math.sqrt(c)).requires_grad_(True)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    loss = PairwiseCrossEntropyLoss(c=c)(z, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    # identical positives (zero distance) also keep finite gradients
    dup = z.detach().clone()
    dup[1] = dup[0]
    dup.requires_grad_(True)
    PairwiseCrossEntropyLoss(c=c)(dup, labels).backward()
    assert torch.isfinite(dup.grad).all()
    proto = HyperbolicPrototypeLoss(4, 16, c=c)
    z.grad = None
    proto(z, labels).backward()
    assert torch.isfinite(z.grad).all() and torch.isfinite(proto.proxies.grad).all()


def train_full_batch(model, loss_fn, x, labels, lr: float, steps: int = 40) -> tuple[float, float]:
    """Adam on the model's and the loss's parameters, full batch; the loss before and at the last step."""
    opt = torch.optim.Adam([*model.parameters(), *loss_fn.parameters()], lr=lr)
    first = loss_fn(model(x), labels).item()
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(x), labels)
        loss.backward()
        opt.step()
    return first, loss.item()


def test_training_pulls_classes_together():
    torch.manual_seed(0)
    centres = torch.randn(4, 10) * 3
    labels = torch.arange(4).repeat_interleave(8)
    x = centres[labels] + torch.randn(32, 10)
    model = torch.nn.Sequential(torch.nn.Linear(10, 8), HyperbolicProjection(c=0.1))
    loss_fn = PairwiseCrossEntropyLoss()
    first, last = train_full_batch(model, loss_fn, x, labels, lr=1e-2)
    assert last < 0.8 * first


# ----------------------------------------------------------------------------------------------
# HyperbolicPrototypeLoss
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("c, temperature", [(0.1, 0.2), (1.0, 0.7), (0.0, 0.1)])
def test_prototype_loss_matches_loop(c, temperature):
    num_classes, dim = 5, 4
    loss_fn = HyperbolicPrototypeLoss(num_classes, dim, c=c, temperature=temperature).double()
    with torch.no_grad():  # include one proxy far enough out to be projected
        loss_fn.proxies.mul_(1.5)
        loss_fn.proxies[0] = torch.full((dim,), 30.0, dtype=F64)
    z = _ball_batch(len(LABELS), dim, c, seed=7)
    loss = loss_fn(z, LABELS)
    expected = _prototype_loop(z, LABELS, loss_fn.proxies.detach(), c, temperature)
    assert loss.item() == pytest.approx(expected, rel=1e-10)


def test_spherical_prototype_loss_equals_pml_normalized_softmax():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        losses = pytest.importorskip("pytorch_metric_learning.losses")
    ours = HyperbolicPrototypeLoss(5, 4, c=0.0, temperature=0.05).double()
    theirs = losses.NormalizedSoftmaxLoss(5, 4, temperature=0.05).double()
    with torch.no_grad():
        theirs.W.copy_(ours.proxies.T)
    z = torch.randn(len(LABELS), 4, generator=torch.Generator().manual_seed(11), dtype=F64)
    torch.testing.assert_close(ours(z, LABELS), theirs(z, LABELS), rtol=1e-10, atol=1e-12)


def test_prototype_loss_parameters_and_dtype():
    loss_fn = HyperbolicPrototypeLoss(num_classes=6, embedding_size=8)
    assert loss_fn.proxies.shape == (6, 8)
    assert [name for name, _ in loss_fn.named_parameters()] == ["proxies"]
    assert loss_fn.temperature == 0.2 and loss_fn.c == 0.1
    assert HyperbolicPrototypeLoss(3, 2, c=0).temperature == 0.1
    balls = loss_fn.ball_proxies()
    assert torch.all(balls.norm(dim=1) <= (1 - 1e-3) / math.sqrt(0.1) + 1e-6)
    z = _ball_batch(6, 8, 0.1, seed=8)  # float64 embeddings, float32 proxies
    labels = torch.arange(6)
    loss = loss_fn(z, labels)
    loss.backward()
    assert loss.dtype == F64 and torch.isfinite(loss_fn.proxies.grad).all()
    assert loss_fn.logits(z).shape == (6, 6)
    assert "num_classes=6" in repr(loss_fn)


def test_prototype_loss_trains():
    torch.manual_seed(1)
    labels = torch.arange(5).repeat_interleave(6)
    x = torch.randn(5, 12)[labels] * 2 + 0.5 * torch.randn(30, 12)
    head = torch.nn.Sequential(torch.nn.Linear(12, 6), HyperbolicProjection(c=0.1))
    loss_fn = HyperbolicPrototypeLoss(5, 6)
    first, last = train_full_batch(head, loss_fn, x, labels, lr=2e-2)
    assert last < 0.7 * first
    assert (loss_fn.logits(head(x)).argmax(1) == labels).float().mean() > 0.9


# ----------------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------------
def test_invalid_arguments_raise():
    for kwargs in ({"c": -0.1}, {"temperature": 0.0}, {"temperature": -1.0}, {"c": float("nan")}):
        with pytest.raises(ValueError):
            PairwiseCrossEntropyLoss(**kwargs)
        with pytest.raises(ValueError):
            HyperbolicPrototypeLoss(3, 4, **kwargs)
    with pytest.raises(ValueError):
        HyperbolicPrototypeLoss(1, 4)
    with pytest.raises(ValueError):
        HyperbolicPrototypeLoss(3, 0)

    z = _ball_batch(4, 3, 0.1, seed=9)
    labels = torch.tensor([0, 0, 1, 1])
    pair = PairwiseCrossEntropyLoss()
    proto = HyperbolicPrototypeLoss(2, 3)
    for loss_fn in (pair, proto):
        with pytest.raises(ValueError, match="outside"):
            loss_fn(z * 10, labels)  # not in the ball
        bad = z.clone()
        bad[0, 0] = float("nan")
        with pytest.raises(ValueError):
            loss_fn(bad, labels)
        with pytest.raises(ValueError):
            loss_fn(z, labels[:3])
        with pytest.raises(ValueError):
            loss_fn(z, labels.float())
        with pytest.raises(ValueError):
            loss_fn(z[0], labels)
    with pytest.raises(ValueError):
        proto(z, torch.tensor([0, 1, 2, 0]))  # label out of range
    with pytest.raises(ValueError):
        proto(_ball_batch(4, 5, 0.1, seed=10), labels)  # wrong embedding size
