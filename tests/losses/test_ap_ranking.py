"""Tests for dmlkit.losses.ap_ranking: FastAP, Smooth-AP and the exact average precision.

References: PML 2.9 (FastAP everywhere; Smooth-AP only on square, contiguous batches where it is
valid), straightforward Python loops written from the papers' equations, and scikit-learn's
average_precision_score for the exact AP.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dmlkit.distances import EuclideanDistance
from dmlkit.losses import ap_ranking
from dmlkit.losses.ap_ranking import (
    FastAPLoss,
    SmoothAPLoss,
    average_precision,
    fast_average_precision,
    smooth_average_precision,
)

pml_losses = pytest.importorskip("pytorch_metric_learning.losses")


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    # The tests run many small ops; on a shared 2-core machine extra threads only add overhead.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _batch(labels: list[int], dim: int = 6, seed: int = 0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(len(labels), dim, generator=generator, dtype=dtype).requires_grad_(True)
    return x, torch.tensor(labels)


def _scalar(tensor) -> float:
    return float(tensor.detach())


def _value_and_grad(loss_fn, x, y):
    loss = loss_fn(x, y)
    (grad,) = torch.autograd.grad(loss, x)
    return loss.detach(), grad


BATCHES = {
    "square 4x4": [c for c in range(4) for _ in range(4)],
    "P=3,K=5 shuffled": [2, 0, 1, 1, 0, 2, 2, 1, 0, 0, 1, 2, 0, 1, 2],
    "P=5,K=2": [0, 0, 1, 1, 2, 2, 3, 3, 4, 4],
    "unequal counts + singletons": [0, 0, 0, 0, 0, 1, 1, 2, 3, 3, 3, 4, 5],
}


# ---------------------------------------------------------------------------------------------
# Reference loops, written from the papers' equations
# ---------------------------------------------------------------------------------------------


def _smooth_ap_loop(x, y, temperature, include_query=False):
    """Brown et al. (ECCV 2020): AP_q = 1/|P| Σ_{i∈P} R(i,P)/R(i,Ω),
    R(i,S) = 1 + Σ_{j∈S,j≠i} σ(clamp((s_qj - s_qi)/τ, ±50))."""
    z = F.normalize(x, dim=1)
    s = z @ z.T
    n = len(y)
    aps = []
    for q in range(n):
        omega = [j for j in range(n) if include_query or j != q]
        pos = [j for j in omega if y[j] == y[q]]
        if not pos:
            continue

        def rank(i, subset):
            r = 1.0
            for j in subset:
                if j != i:
                    r = r + torch.sigmoid(torch.clamp((s[q, j] - s[q, i]) / temperature, -50, 50))  # noqa: B023 (called in the loop)
            return r

        aps.append(sum(rank(i, pos) / rank(i, omega) for i in pos) / len(pos))
    if not aps:
        return x.sum() * 0
    return 1 - sum(aps) / len(aps)


def _fast_ap_loop(x, y, num_bins):
    """Cakir et al. (CVPR 2019): FastAP_q = 1/N⁺ Σ_l h⁺_l H⁺_l / H_l over triangular soft bins."""
    z = F.normalize(x, dim=1)
    d2 = 2 - 2 * z @ z.T
    delta = 4.0 / num_bins
    n = len(y)
    values = []
    for q in range(n):
        others = [j for j in range(n) if j != q]
        pos = [j for j in others if y[j] == y[q]]
        if not pos:
            continue
        total, cum_pos, cum_all = 0.0, 0.0, 0.0
        for level in range(num_bins + 1):
            centre = level * delta
            h_pos = sum(torch.relu(1 - (d2[q, j] - centre).abs() / delta) for j in pos)
            h_all = sum(torch.relu(1 - (d2[q, j] - centre).abs() / delta) for j in others)
            cum_pos, cum_all = cum_pos + h_pos, cum_all + h_all
            if float(torch.as_tensor(cum_all).detach()) > 0:
                total = total + h_pos * cum_pos / cum_all
        values.append(total / len(pos))
    if not values:
        return x.sum() * 0
    return 1 - sum(values) / len(values)


def _ap_loop(scores_row, relevant):
    """Textbook AP of one ranked list: mean over relevant items of precision at their rank."""
    order = np.argsort(-np.asarray(scores_row), kind="stable")
    hits, total = 0, 0.0
    for position, index in enumerate(order, start=1):
        if relevant[index]:
            hits += 1
            total += hits / position
    return total / hits


# ---------------------------------------------------------------------------------------------
# FastAP
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BATCHES))
@pytest.mark.parametrize("num_bins", [1, 4, 10, 25])
def test_fastap_matches_pml_values_and_gradients(name, num_bins):
    x, y = _batch(BATCHES[name], seed=num_bins)
    ours, g_ours = _value_and_grad(FastAPLoss(num_bins), x, y)
    ref, g_ref = _value_and_grad(pml_losses.FastAPLoss(num_bins=num_bins), x, y)
    assert abs(_scalar(ours - ref)) < 1e-6
    torch.testing.assert_close(g_ours, g_ref, atol=1e-6, rtol=0)


def test_fastap_matches_pml_on_a_full_size_batch():
    x, y = _batch([c for c in range(32) for _ in range(8)], dim=32, seed=3)
    ours, g_ours = _value_and_grad(FastAPLoss(), x, y)
    ref, g_ref = _value_and_grad(pml_losses.FastAPLoss(), x, y)
    assert abs(_scalar(ours - ref)) < 1e-6
    torch.testing.assert_close(g_ours, g_ref, atol=1e-6, rtol=0)


def test_fastap_matches_pml_in_float32():
    x, y = _batch(BATCHES["unequal counts + singletons"], dim=16, dtype=torch.float32)
    ours, g_ours = _value_and_grad(FastAPLoss(), x, y)
    ref, g_ref = _value_and_grad(pml_losses.FastAPLoss(), x, y)
    assert ours.dtype == torch.float32
    assert abs(_scalar(ours - ref)) < 1e-5
    torch.testing.assert_close(g_ours, g_ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["P=5,K=2", "unequal counts + singletons"])
def test_fastap_matches_loop_from_the_paper(name):
    x, y = _batch(BATCHES[name], seed=7)
    ours, g_ours = _value_and_grad(FastAPLoss(5), x, y)
    ref, g_ref = _value_and_grad(lambda a, b: _fast_ap_loop(a, b, 5), x, y)
    assert abs(_scalar(ours - ref)) < 1e-10
    torch.testing.assert_close(g_ours, g_ref, atol=1e-10, rtol=0)


def test_fastap_equals_exact_ap_when_every_distance_sits_on_its_own_bin_centre():
    # Query at angle 0 on the unit circle; the others at squared distances 0.4, 0.8, 1.2, 2.0, 2.8
    # (bin centres for L = 10), labelled + - + - +. Ranking + - + - + gives
    # AP = (1/1 + 2/3 + 3/5) / 3, and hard bins make FastAP exact.
    squared = torch.tensor([0.4, 0.8, 1.2, 2.0, 2.8], dtype=torch.float64)
    angles = torch.acos(1 - squared / 2)
    points = torch.cat([torch.zeros(1), angles])
    x = torch.stack([points.cos(), points.sin()], dim=1)
    y = torch.tensor([0, 0, 1, 0, 2, 0])
    expected = (1 + 2 / 3 + 3 / 5) / 3
    fast = fast_average_precision(x, y, num_bins=10)
    assert _scalar(fast[0]) == pytest.approx(expected, abs=1e-12)
    assert float(average_precision(x, y)[0]) == pytest.approx(expected, abs=1e-12)


def test_fastap_at_a_bin_centre_is_finite_and_matches_pml():
    # One-hot (orthogonal) embeddings put every d² exactly on the centre z = 2 (L = 10), a kink.
    # dmlkit takes the right-hand derivative there; PML's cdist gives d² = 2 + 4e-16, just to the
    # right of the kink, so the two agree.
    x = torch.eye(6, dtype=torch.float64).requires_grad_(True)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    ours, g_ours = _value_and_grad(FastAPLoss(), x, y)
    ref, g_ref = _value_and_grad(pml_losses.FastAPLoss(), x, y)
    assert abs(_scalar(ours - ref)) < 1e-12
    torch.testing.assert_close(g_ours, g_ref, atol=1e-12, rtol=0)


def test_fastap_without_positives_is_zero_with_zero_gradient():
    x, y = _batch([0, 1, 2, 3, 4])
    loss, grad = _value_and_grad(FastAPLoss(), x, y)
    assert _scalar(loss) == 0.0
    assert torch.equal(grad, torch.zeros_like(grad))
    assert _scalar(pml_losses.FastAPLoss()(x, y)) == 0.0
    assert torch.isnan(fast_average_precision(x, y)).all()


def test_fastap_per_query_is_nan_only_without_positives_and_averages_to_the_loss():
    x, y = _batch(BATCHES["unequal counts + singletons"])
    per_query = fast_average_precision(x, y)
    singletons = torch.tensor([(y == c).sum() == 1 for c in y])
    assert torch.equal(torch.isnan(per_query), singletons)
    loss = FastAPLoss()(x, y).detach()
    assert float(1 - per_query.detach().nanmean()) == pytest.approx(_scalar(loss), abs=1e-12)


def test_fastap_is_invariant_to_scale_and_batch_order():
    x, y = _batch(BATCHES["P=3,K=5 shuffled"])
    loss = FastAPLoss()(x, y)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    assert _scalar(FastAPLoss()(3.0 * x[perm], y[perm])) == pytest.approx(_scalar(loss), abs=1e-12)


# ---------------------------------------------------------------------------------------------
# Smooth-AP
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BATCHES))
@pytest.mark.parametrize("include_query", [False, True])
def test_smoothap_matches_loop_from_the_paper(name, include_query):
    x, y = _batch(BATCHES[name], seed=1)
    loss_fn = SmoothAPLoss(temperature=0.05, include_query=include_query)
    ours, g_ours = _value_and_grad(loss_fn, x, y)
    ref, g_ref = _value_and_grad(lambda a, b: _smooth_ap_loop(a, b, 0.05, include_query), x, y)
    assert abs(_scalar(ours - ref)) < 1e-10
    torch.testing.assert_close(g_ours, g_ref, atol=1e-10, rtol=0)


def test_smoothap_matches_loop_at_the_paper_temperature_with_clamping():
    # τ = 0.01: differences beyond 0.5 hit the ±50 clamp.
    x, y = _batch(BATCHES["P=3,K=5 shuffled"], dim=3, seed=2)
    ours, g_ours = _value_and_grad(SmoothAPLoss(), x, y)
    ref, g_ref = _value_and_grad(lambda a, b: _smooth_ap_loop(a, b, 0.01), x, y)
    assert abs(_scalar(ours - ref)) < 1e-10
    torch.testing.assert_close(g_ours, g_ref, atol=1e-9, rtol=0)


@pytest.mark.parametrize("P", [3, 6])
def test_smoothap_matches_pml_on_square_batches_with_the_query_included(P):
    x, y = _batch([c for c in range(P) for _ in range(P)], seed=P)
    for temperature in (0.01, 0.1):
        ours, g_ours = _value_and_grad(SmoothAPLoss(temperature, include_query=True), x, y)
        ref, g_ref = _value_and_grad(pml_losses.SmoothAPLoss(temperature=temperature), x, y)
        # PML accumulates AP in float32 (and does not clamp): agreement to ~1e-8.
        assert abs(_scalar(ours - ref)) < 1e-6
        torch.testing.assert_close(g_ours, g_ref.to(g_ours.dtype), atol=1e-6, rtol=0)


def test_pml_smoothap_is_wrong_on_non_square_batches():
    # Documents why dmlkit has its own Smooth-AP (PML 2.9 reads the batch as K blocks of P).
    import pytorch_metric_learning

    if not pytorch_metric_learning.__version__.startswith("2.9"):
        pytest.skip("documents PML 2.9 behaviour")
    x, y = _batch([c for c in range(2) for _ in range(4)], seed=0)
    ref = _smooth_ap_loop(x, y, 0.01, include_query=True)
    assert _scalar(SmoothAPLoss(include_query=True)(x, y)) == pytest.approx(_scalar(ref), abs=1e-10)
    assert abs(_scalar(pml_losses.SmoothAPLoss()(x, y)) - _scalar(ref)) > 1e-3


def test_smoothap_tends_to_exact_ap_as_temperature_shrinks():
    x, y = _batch(BATCHES["unequal counts + singletons"], seed=4)
    for include_query in (False, True):
        smooth = smooth_average_precision(x, y, temperature=1e-7, include_query=include_query)
        exact = average_precision(x, y, include_query=include_query)
        torch.testing.assert_close(smooth.detach(), exact, atol=1e-9, rtol=0, equal_nan=True)


def test_smoothap_is_invariant_to_batch_order():
    x, y = _batch(BATCHES["unequal counts + singletons"], seed=5)
    loss = SmoothAPLoss()(x, y)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(1))
    assert _scalar(SmoothAPLoss()(x[perm], y[perm])) == pytest.approx(_scalar(loss), abs=1e-12)


@pytest.mark.parametrize("chunk_elements", [1, 2 * 13 * 13, 5 * 13 * 13])
def test_smoothap_chunking_does_not_change_values_or_gradients(monkeypatch, chunk_elements):
    x, y = _batch(BATCHES["unequal counts + singletons"], seed=6)
    loss, grad = _value_and_grad(SmoothAPLoss(0.02), x, y)
    monkeypatch.setattr(ap_ranking, "_SMOOTH_AP_CHUNK_ELEMENTS", chunk_elements)
    chunked, g_chunked = _value_and_grad(SmoothAPLoss(0.02), x, y)
    assert _scalar(chunked) == pytest.approx(_scalar(loss), abs=1e-14)
    torch.testing.assert_close(g_chunked, grad, atol=1e-14, rtol=0)


def test_smoothap_custom_backward_passes_gradcheck():
    generator = torch.Generator().manual_seed(0)
    similarity = torch.rand(7, 7, generator=generator, dtype=torch.float64) * 2 - 1
    y = torch.tensor([0, 0, 1, 1, 1, 2, 3])
    for include_query in (False, True):
        retrieval, positive = ap_ranking._retrieval_masks(y, include_query)
        function = ap_ranking._SmoothAPFunction.apply

        r, p = retrieval.double(), positive.double()

        def per_query(s, r=r, p=p, function=function):
            return function(s, r, p, 0.2)

        assert torch.autograd.gradcheck(per_query, (similarity.requires_grad_(True),))


def test_smoothap_without_positives_is_zero_with_zero_gradient():
    x, y = _batch([0, 1, 2, 3])
    loss, grad = _value_and_grad(SmoothAPLoss(), x, y)
    assert _scalar(loss) == 0.0
    assert torch.equal(grad, torch.zeros_like(grad))


def test_smoothap_float32_close_to_float64():
    x, y = _batch(BATCHES["P=3,K=5 shuffled"], seed=8)
    loss64, g64 = _value_and_grad(SmoothAPLoss(), x, y)
    x32 = x.detach().float().requires_grad_(True)
    loss32, g32 = _value_and_grad(SmoothAPLoss(), x32, y)
    assert loss32.dtype == torch.float32
    assert abs(_scalar(loss32) - _scalar(loss64)) < 1e-5
    torch.testing.assert_close(g32.double(), g64, atol=1e-4, rtol=0)


# ---------------------------------------------------------------------------------------------
# Degenerate inputs and validation (both losses)
# ---------------------------------------------------------------------------------------------

LOSSES = [FastAPLoss, SmoothAPLoss, lambda: SmoothAPLoss(include_query=True)]


@pytest.mark.parametrize("make_loss", LOSSES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_gradients_on_degenerate_embeddings(make_loss, dtype):
    y = torch.tensor([0, 0, 1, 1, 2, 2, 2])
    equal = torch.ones(7, 5, dtype=dtype).requires_grad_(True)
    base = torch.randn(3, 5, dtype=dtype, generator=torch.Generator().manual_seed(0))
    duplicates = base[[0, 0, 1, 1, 2, 2, 0]].clone().requires_grad_(True)
    for x in (equal, duplicates):
        loss, grad = _value_and_grad(make_loss(), x, y)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()


def test_all_equal_embeddings_values():
    # Every item ties: FastAP puts everything in bin 0, Smooth-AP ranks with σ(0) = 1/2.
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    x = torch.ones(6, 4, dtype=torch.float64)
    # FastAP: h⁺_0 = 2, H⁺_0 = 2, H_0 = 5 for every query -> 2·2/5 / 2 = 0.4.
    assert _scalar(FastAPLoss()(x, y)) == pytest.approx(1 - 0.4, abs=1e-12)
    # Smooth-AP: R(i,P) = 1 + 1/2, R(i,Ω) = 1 + 4/2 for both positives -> AP = 0.5.
    assert _scalar(SmoothAPLoss()(x, y)) == pytest.approx(1 - 0.5, abs=1e-12)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10", None])
def test_fastap_rejects_invalid_num_bins(bad):
    with pytest.raises(ValueError, match="num_bins"):
        FastAPLoss(num_bins=bad)


@pytest.mark.parametrize("bad", [0, -0.01, float("nan"), float("inf")])
def test_smoothap_rejects_invalid_temperature(bad):
    with pytest.raises(ValueError, match="temperature"):
        SmoothAPLoss(temperature=bad)
    with pytest.raises(ValueError, match="temperature"):
        smooth_average_precision(torch.randn(4, 3), torch.tensor([0, 0, 1, 1]), temperature=bad)


@pytest.mark.parametrize("make_loss", LOSSES + [lambda: average_precision])
def test_invalid_inputs_raise(make_loss):
    loss = make_loss()
    y = torch.tensor([0, 0, 1, 1])
    with pytest.raises(ValueError, match="2-D"):
        loss(torch.randn(4), y)
    with pytest.raises(ValueError, match="NaN"):
        loss(torch.tensor([[0.0, 1.0], [float("nan"), 1.0], [1.0, 0.0], [1.0, 1.0]]), y)
    with pytest.raises(ValueError, match="batch size"):
        loss(torch.randn(5, 3), y)
    with pytest.raises(ValueError, match="integer"):
        loss(torch.randn(4, 3), y.float())
    with pytest.raises(ValueError, match="1-D"):
        loss(torch.randn(4, 3), y.view(2, 2))
    with pytest.raises(ValueError, match="floating"):
        loss(torch.ones(4, 3, dtype=torch.long), y)


def test_extra_repr_names_arguments():
    assert "num_bins=7" in repr(FastAPLoss(7))
    assert "temperature=0.05" in repr(SmoothAPLoss(0.05))


# ---------------------------------------------------------------------------------------------
# Exact average precision
# ---------------------------------------------------------------------------------------------


def test_average_precision_hand_example():
    # Query 0 on the x-axis; others at decreasing cosine: + - + (labels 0, 1, 0).
    x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.5, 0.5], [0.1, 0.9]])
    y = torch.tensor([0, 0, 1, 0])
    ap = average_precision(x, y)
    assert float(ap[0]) == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert math.isnan(float(ap[2]))  # label 1 has no other item
    # With the query kept in its own lists it ranks first: (1 + 2/2 + 3/4) / 3.
    with_query = average_precision(x, y, include_query=True)
    assert float(with_query[0]) == pytest.approx((1 + 1 + 0.75) / 3)


def test_average_precision_matches_sklearn_and_a_loop():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    x, y = _batch(BATCHES["unequal counts + singletons"], dim=4, seed=9)
    x = x.detach()
    ap = average_precision(x, y)
    z = F.normalize(x, dim=1)
    s = (z @ z.T).numpy()
    for q in range(len(y)):
        others = [j for j in range(len(y)) if j != q]
        relevant = (y[others] == y[q]).numpy()
        if not relevant.any():
            assert math.isnan(float(ap[q]))
            continue
        expected = sklearn_metrics.average_precision_score(relevant, s[q, others])
        assert float(ap[q]) == pytest.approx(expected, abs=1e-12)
        assert float(ap[q]) == pytest.approx(_ap_loop(s[q, others], relevant), abs=1e-12)


def test_average_precision_ties_and_distances():
    y = torch.tensor([0, 0, 0, 1, 1])
    x = torch.ones(5, 3)
    # All tied: optimistic ranks each positive first among ties; pessimistic last.
    assert torch.allclose(average_precision(x, y)[:3], torch.ones(3))
    # Pessimistic: each positive has R(i,P) = 2 and R(i,Ω) = 4 -> AP = 0.5.
    assert torch.allclose(average_precision(x, y, ties="pessimistic")[:3], torch.full((3,), 0.5))
    with pytest.raises(ValueError, match="ties"):
        average_precision(x, y, ties="random")
    # Euclidean distance on normalised embeddings ranks as cosine similarity does.
    x, y = _batch(BATCHES["P=5,K=2"], seed=10)
    torch.testing.assert_close(average_precision(x, y, distance=EuclideanDistance()), average_precision(x, y))
    assert not average_precision(x, y).requires_grad


def test_average_precision_chunking(monkeypatch):
    x, y = _batch(BATCHES["unequal counts + singletons"], seed=11)
    full = average_precision(x, y)
    monkeypatch.setattr(ap_ranking, "_AP_CHUNK_ELEMENTS", 3 * len(y))
    torch.testing.assert_close(average_precision(x, y), full, equal_nan=True)
