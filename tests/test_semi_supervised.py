"""Tests for dmlkit.semi_supervised: label propagation against a dense solve and a loop over
Iscen et al.'s equations, the block conjugate gradient against numpy and scipy, the mean
teacher's EMA against its equation, the labelled subsets, and short training runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dmlkit.semi_supervised import (
    MeanTeacher,
    conjugate_gradient,
    fit_semi_supervised,
    knn_affinity,
    labelled_mask,
    normalised_affinity,
    propagate_labels,
    sigmoid_rampup,
    softmax_mse,
)


def _clusters(n_per: int = 8, classes: int = 3, dim: int = 5, seed: int = 0, spread: float = 3.0):
    generator = torch.Generator().manual_seed(seed)
    centres = spread * torch.randn(classes, dim, generator=generator)
    labels = torch.arange(classes).repeat_interleave(n_per)
    x = centres[labels] + 0.7 * torch.randn(len(labels), dim, generator=generator)
    return x, labels


def _dense_affinity(x, k, gamma):
    """Eq. (9) by a loop: a_ij = [cos]_+^γ for j among the k nearest other points of i."""
    z = F.normalize(x.double(), dim=1)
    s = z @ z.T
    n = len(x)
    a = np.zeros((n, n))
    for i in range(n):
        others = [j for j in range(n) if j != i]
        nearest = sorted(others, key=lambda j: (-float(s[i, j]), j))[:k]
        for j in nearest:
            a[i, j] = max(float(s[i, j]), 0.0) ** gamma
    w = a + a.T
    d = w.sum(1)
    return w, w / np.sqrt(np.outer(d, d))


def test_affinity_and_its_normalisation_equal_the_equation():
    x, _ = _clusters()
    w_dense, w_norm_dense = _dense_affinity(x, k=4, gamma=3.0)
    w = knn_affinity(x, k=4, gamma=3.0)
    np.testing.assert_allclose(w.to_dense().numpy(), w_dense, atol=1e-6)
    np.testing.assert_allclose(normalised_affinity(w).to_dense().numpy(), w_norm_dense, atol=1e-6)


def test_conjugate_gradient_solves_each_column_like_numpy_and_scipy():
    scipy_linalg = pytest.importorskip("scipy.sparse.linalg")
    generator = torch.Generator().manual_seed(1)
    m = torch.randn(12, 12, generator=generator, dtype=torch.float64)
    a = m @ m.T + 12 * torch.eye(12, dtype=torch.float64)
    b = torch.randn(12, 3, generator=generator, dtype=torch.float64)
    x, iterations = conjugate_gradient(lambda v: a @ v, b, max_iterations=100, tolerance=1e-12)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a.numpy(), b.numpy()), atol=1e-9)
    assert iterations <= 13  # exact arithmetic ends in n = 12 steps
    for column in range(3):
        reference, info = scipy_linalg.cg(a.numpy(), b[:, column].numpy(), rtol=1e-12, maxiter=100)
        assert info == 0
        np.testing.assert_allclose(x[:, column].numpy(), reference, atol=1e-8)
    # one iteration is the steepest-descent step along b
    x1, _ = conjugate_gradient(lambda v: a @ v, b[:, :1], max_iterations=1)
    r = b[:, 0]
    step = (r @ r) / (r @ (a @ r))
    np.testing.assert_allclose(x1[:, 0].numpy(), (step * r).numpy(), atol=1e-12)


def test_label_propagation_equals_a_dense_solve_and_the_papers_weights():
    x, labels = _clusters(spread=1.0)
    labelled = torch.zeros(len(labels), dtype=torch.bool)
    labelled[[0, 9, 17, 18]] = True
    k, gamma, alpha = 4, 3.0, 0.99
    result = propagate_labels(
        x, labels, labelled, 3, k=k, gamma=gamma, alpha=alpha, max_iterations=500, tolerance=1e-12
    )
    _, w_norm = _dense_affinity(x, k, gamma)
    y = np.zeros((len(labels), 3))
    y[labelled.numpy(), labels[labelled].numpy()] = 1.0
    z = np.linalg.solve(np.eye(len(labels)) - alpha * w_norm, y)  # Eq. (10)
    np.testing.assert_allclose(result.scores.numpy(), z, atol=1e-4, rtol=1e-5)
    pseudo = z.argmax(1)
    pseudo[labelled.numpy()] = labels[labelled].numpy()
    assert result.pseudo_labels.tolist() == pseudo.tolist()  # Eq. (11)
    z_hat = z / z.sum(1, keepdims=True)
    entropy = -np.where(z_hat > 0, z_hat * np.log(np.where(z_hat > 0, z_hat, 1.0)), 0.0).sum(1)
    certainty = 1 - entropy / math.log(3)  # Eq. (12)
    assert (certainty[~labelled.numpy()] < 1).all()  # a connected graph: every class reaches everyone
    certainty[labelled.numpy()] = 1.0
    np.testing.assert_allclose(result.certainty.numpy(), certainty, atol=1e-5)
    counts = np.bincount(pseudo, minlength=3)
    np.testing.assert_allclose(result.class_weights.numpy(), 1.0 / counts, rtol=1e-6)


def test_label_propagation_recovers_clear_clusters_from_one_label_each():
    x, labels = _clusters(spread=3.0, seed=4)
    labelled = torch.zeros(len(labels), dtype=torch.bool)
    labelled[[0, 8, 16]] = True
    assert propagate_labels(x, labels, labelled, 3, k=4).accuracy(labels) == 1.0


def test_label_propagation_leaves_unreached_images_uncertain():
    # two far-apart groups, labels only in the first: the second is not reached by a 2-NN graph
    x = torch.cat(
        [torch.randn(6, 3) * 0.1 + torch.tensor([5.0, 0, 0]), torch.randn(6, 3) * 0.1 + torch.tensor([0, 0, -5.0])]
    )
    labels = torch.tensor([0] * 6 + [1] * 6)
    labelled = torch.zeros(12, dtype=torch.bool)
    labelled[[0, 1]] = True
    result = propagate_labels(x, labels, labelled, 2, k=2)
    assert (result.certainty[6:] == 0).all()
    assert (result.weights()[6:] == 0).all()


def test_label_propagation_bad_input():
    x, labels = _clusters()
    none = torch.zeros(len(labels), dtype=torch.bool)
    with pytest.raises(ValueError, match="at least one label"):
        propagate_labels(x, labels, none, 3)
    with pytest.raises(ValueError, match="one entry per embedding"):
        propagate_labels(x, labels[:-1], none[:-1] | True, 3)
    with pytest.raises(ValueError, match="alpha must be below 1"):
        propagate_labels(x, labels, ~none, 3, k=3, alpha=1.0)
    with pytest.raises(ValueError, match="neighbours need"):
        knn_affinity(x[:3], k=5)


def test_mean_teacher_ema_follows_equation_one():
    student = torch.nn.Linear(3, 2)
    mt = MeanTeacher(student, decay=0.9, ramp_up_decay=0.5, ramp_up_steps=2)
    expected = [p.detach().clone() for p in mt.teacher.parameters()]
    alphas = []
    for step in range(5):
        with torch.no_grad():
            for p in student.parameters():
                p.add_(0.1 * (step + 1))
        alpha = min(1 - 1 / (step + 1), 0.5 if step < 2 else 0.9)
        alphas.append(mt.update())
        expected = [alpha * e + (1 - alpha) * p.detach() for e, p in zip(expected, student.parameters(), strict=True)]
    assert alphas == pytest.approx([0.0, 0.5, 2 / 3, 0.75, 0.8])  # the cap 1 − 1/(step + 1) binds early
    for e, p in zip(expected, mt.teacher.parameters(), strict=True):
        torch.testing.assert_close(p, e)
        assert not p.requires_grad


def test_consistency_cost_and_its_ramp_up():
    assert sigmoid_rampup(0, 10) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(10, 10) == 1.0 and sigmoid_rampup(3, 0) == 1.0
    s = torch.randn(4, 5, requires_grad=True)
    t = torch.randn(4, 5, requires_grad=True)
    value = softmax_mse(s, t)
    expected = ((F.softmax(s, 1) - F.softmax(t, 1)) ** 2).sum(1).mean() / 5
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)
    value.backward()
    assert t.grad is None and s.grad is not None  # no gradient reaches the teacher
    with pytest.raises(ValueError, match="batch, classes"):
        softmax_mse(s, t[:, :3])


def test_labelled_mask_counts_and_spread():
    labels = torch.arange(20).repeat_interleave(30)  # 600 images of 20 classes
    for fraction, expected in ((0.01, 6), (0.05, 30), (0.1, 60), (1.0, 600)):
        mask = labelled_mask(labels, fraction, seed=3)
        assert int(mask.sum()) == expected
        per_class = torch.bincount(labels[mask], minlength=20)
        assert int(per_class.max() - per_class.min()) <= 1
    assert torch.equal(labelled_mask(labels, 0.1, seed=1), labelled_mask(labels, 0.1, seed=1))
    assert not torch.equal(labelled_mask(labels, 0.1, seed=1), labelled_mask(labels, 0.1, seed=2))
    with pytest.raises(ValueError, match="keeps no label"):
        labelled_mask(labels, 0.0001)


@pytest.mark.parametrize("method", ["supervised", "label_propagation", "mean_teacher"])
def test_short_semi_supervised_runs(method, small_glyphs):
    from dmlkit.models import ConvNet

    train = small_glyphs[0]
    mask = labelled_mask(train.labels, 0.2, seed=0)
    torch.manual_seed(0)
    model, history = fit_semi_supervised(
        ConvNet(16),
        train,
        mask,
        method,
        steps=6,
        batch_size=32,
        labelled_batch=8,
        round_steps=2,
        knn=5,
        device="cpu",
        progress=False,
    )
    assert np.isfinite(history.losses).all() and history.steps[-1] == 6
    if method == "label_propagation":
        assert len(history.settings["propagations"]) >= 2
        assert 0.0 <= history.settings["propagations"][0]["pseudo_label_accuracy"] <= 1.0
    assert not model.training


def test_semi_supervised_bad_input(small_glyphs):
    tiny_glyphs = small_glyphs[0]
    from dmlkit.models import ConvNet

    all_labelled = torch.ones(len(tiny_glyphs), dtype=torch.bool)
    with pytest.raises(ValueError, match="nothing to propagate"):
        fit_semi_supervised(ConvNet(8), tiny_glyphs, all_labelled, "label_propagation", steps=1, progress=False)
    with pytest.raises(ValueError, match="method must be one of"):
        fit_semi_supervised(ConvNet(8), tiny_glyphs, all_labelled, "pseudo", steps=1, progress=False)
    with pytest.raises(ValueError, match="one entry per training image"):
        fit_semi_supervised(ConvNet(8), tiny_glyphs, all_labelled[:-1], "supervised", steps=1, progress=False)


class _RecordingData:
    """A dataset that records the indices of every batch it gives."""

    def __init__(self, data):
        self.data = data
        self.labels = data.labels
        self.batches: list[torch.Tensor] = []

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        return self.data[index]

    def __getattr__(self, name):
        return getattr(self.data, name)

    def get_batch(self, indices):
        self.batches.append(torch.as_tensor(indices).clone())
        return self.data.get_batch(indices)


def test_label_propagation_warms_up_on_whole_labelled_batches(small_glyphs):
    """Iscen et al.'s first stage trains on labelled images only: before the first propagation every
    image of a batch is labelled; after it, ``labelled_batch`` are and the rest are not."""
    from dmlkit.models import ConvNet

    data = _RecordingData(small_glyphs[0])
    mask = labelled_mask(data.labels, 0.3, seed=0)
    fit_semi_supervised(
        ConvNet(8),
        data,
        mask,
        "label_propagation",
        steps=10,
        batch_size=16,
        labelled_batch=4,
        warmup_fraction=0.5,
        round_steps=20,
        knn=5,
        device="cpu",
        progress=False,
    )
    training = [b for b in data.batches if len(b) == 16]  # the propagation's embedding batches are larger
    assert len(training) == 10
    for step, indices in enumerate(training, start=1):
        expected = 16 if step < 5 else 4  # the first propagation runs before step 5
        assert int(mask[indices].sum()) == expected, step


def test_classifier_learning_rate_is_its_own(small_glyphs, monkeypatch):
    import dmlkit.semi_supervised.training as training
    from dmlkit.models import ConvNet

    built = []
    original = training.build_optimizer
    monkeypatch.setattr(training, "build_optimizer", lambda *a, **k: built.append(original(*a, **k)) or built[-1])
    data = small_glyphs[0]
    mask = labelled_mask(data.labels, 0.5, seed=0)
    _, history = fit_semi_supervised(
        ConvNet(8),
        data,
        mask,
        "supervised",
        steps=1,
        batch_size=8,
        lr=1e-3,
        classifier_lr=1e-2,
        device="cpu",
        progress=False,
    )
    rates = {group["name"]: group["lr"] for group in built[0].param_groups}
    assert rates["loss"] == pytest.approx(1e-2) and min(rates.values()) == pytest.approx(1e-3)
    assert history.settings["classifier_lr"] == pytest.approx(1e-2)


def test_unlabelled_images_come_on_top_of_the_supervised_batch(small_glyphs):
    """``unlabelled_batch``: a semi-supervised step holds the P×K labelled images of supervised only
    and the unlabelled ones besides; with every label kept there is nothing to add."""
    from dmlkit.experiment import Budget
    from dmlkit.semi_supervised import run_semi_supervised

    train, test = small_glyphs
    budget = Budget(steps=3, P=4, K=2, embedding_size=8)
    for fraction, method, expected in (
        (0.3, "mean_teacher", (8, 4)),
        (0.3, "supervised", (8, 0)),
        (1.0, "mean_teacher", (8, 0)),
    ):
        data = _RecordingData(train)
        result = run_semi_supervised(
            "x", method, data, test, budget, fraction, views=None, device="cpu", progress=False, unlabelled_batch=4
        )
        mask = labelled_mask(train.labels, fraction, seed=0)
        training = data.batches[:3]
        assert all((int(mask[b].sum()), int((~mask[b]).sum())) == expected for b in training), (fraction, method)
        assert result.settings["images_per_step"] == sum(expected)
    with pytest.raises(ValueError, match="not both"):
        run_semi_supervised(
            "x", "mean_teacher", train, test, budget, 0.3, progress=False, unlabelled_batch=4, labelled_batch=2
        )
