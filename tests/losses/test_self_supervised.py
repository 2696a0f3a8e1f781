"""Tests for dmlkit.losses.self_supervised: NT-Xent, Ye et al.'s instance spreading loss and Wu
et al.'s memory bank.

References: pytorch-metric-learning 2.9's ``NTXentLoss`` (with labels, and wrapped in
``SelfSupervisedLoss`` in both its symmetric and cross-view forms), and Python loops written
from each paper's equation, in float64, values and gradients.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dmlkit.losses.self_supervised import (
    InstanceSpreadingLoss,
    MemoryBankInstanceLoss,
    NTXentLoss,
    two_view_labels,
)
from tests._references import LABELS, make_batch, value_and_grad

pml_losses = pytest.importorskip("pytorch_metric_learning.losses")

ATOL = 1e-6


def _views(n: int = 6, dim: int = 5, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    first = torch.randn(n, dim, generator=generator, dtype=torch.float64)
    second = first + 0.5 * torch.randn(n, dim, generator=generator, dtype=torch.float64)
    return first, second


def _two_view_grads(fn, first, second):
    a = first.clone().requires_grad_(True)
    b = second.clone().requires_grad_(True)
    value = fn(a, b)
    ga, gb = torch.autograd.grad(value, (a, b))
    return value.detach(), ga, gb


@pytest.mark.parametrize("temperature", [0.07, 0.1, 0.5])
@pytest.mark.parametrize("symmetric", [True, False])
def test_ntxent_two_views_equals_pml_self_supervised_loss(temperature, symmetric):
    first, second = _views()
    ours = NTXentLoss(temperature, symmetric=symmetric)
    reference = pml_losses.SelfSupervisedLoss(pml_losses.NTXentLoss(temperature=temperature), symmetric=symmetric)
    v, ga, gb = _two_view_grads(ours.two_views, first, second)
    rv, rga, rgb = _two_view_grads(reference, first, second)
    assert v.item() == pytest.approx(rv.item(), abs=ATOL)
    torch.testing.assert_close(ga, rga, atol=ATOL, rtol=0)
    torch.testing.assert_close(gb, rgb, atol=ATOL, rtol=0)


@pytest.mark.parametrize("kind", sorted(LABELS))
def test_ntxent_with_labels_equals_pml(kind):
    embeddings, labels = make_batch(kind, seed=3, unit=False)
    ours = value_and_grad(NTXentLoss(0.1), embeddings, labels)
    reference = value_and_grad(pml_losses.NTXentLoss(temperature=0.1), embeddings, labels)
    assert ours[0].item() == pytest.approx(reference[0].item(), abs=ATOL)
    torch.testing.assert_close(ours[1], reference[1], atol=ATOL, rtol=0)


def test_ntxent_is_simclr_equation_one():
    """Chen et al. Eq. (1), averaged over the 2N views: a loop over anchors."""
    first, second = _views(n=4, dim=3, seed=1)
    tau = 0.5
    z = F.normalize(torch.cat([first, second]), dim=1)
    n = first.shape[0]
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        numerator = math.exp(float(z[i] @ z[j]) / tau)
        denominator = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(2 * n) if k != i)
        total += -math.log(numerator / denominator)
    assert NTXentLoss(tau).two_views(first, second).item() == pytest.approx(total / (2 * n), abs=1e-9)


def test_two_view_labels_pair_each_image_with_its_other_view():
    assert two_view_labels(3).tolist() == [0, 1, 2, 0, 1, 2]


def test_ntxent_bad_input():
    first, second = _views()
    with pytest.raises(ValueError, match="same images"):
        NTXentLoss().two_views(first, second[:-1])
    with pytest.raises(ValueError, match="NaN"):
        NTXentLoss().two_views(first, second.clone().fill_(float("nan")))
    with pytest.raises(ValueError, match="positive"):
        NTXentLoss(temperature=0)
    with pytest.raises(ValueError, match="at least 2"):
        NTXentLoss().two_views(first[:1], second[:1])


def _spreading_loop(f, f_hat, tau):
    """Ye et al. Eq. (3)-(5), divided by the batch size, written term by term."""
    f = F.normalize(f, dim=1)
    f_hat = F.normalize(f_hat, dim=1)
    m = f.shape[0]
    total = 0.0
    for i in range(m):
        p_i = torch.exp(f[i] @ f_hat[i] / tau) / sum(torch.exp(f[k] @ f_hat[i] / tau) for k in range(m))
        total = total - torch.log(p_i)
        for j in range(m):
            if j != i:
                p_ij = torch.exp(f[i] @ f[j] / tau) / sum(torch.exp(f[k] @ f[j] / tau) for k in range(m))
                total = total - torch.log(1 - p_ij)
    return total / m


@pytest.mark.parametrize("tau", [0.1, 0.3, 1.0])
def test_instance_spreading_equals_the_papers_equation(tau):
    first, second = _views(n=5, dim=4, seed=2)
    ours = _two_view_grads(InstanceSpreadingLoss(tau).two_views, first, second)
    reference = _two_view_grads(lambda a, b: _spreading_loop(a, b, tau), first, second)
    for a, b in zip(ours, reference, strict=True):
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)


def test_instance_spreading_is_smaller_for_spread_invariant_features():
    """Identical views of orthogonal features (invariant and spread) cost less than views that
    point elsewhere, and less than collapsed features."""
    spread = torch.eye(4, dtype=torch.float64)
    loss = InstanceSpreadingLoss(0.1)
    collapsed = torch.ones(4, 4, dtype=torch.float64) + 1e-3 * torch.eye(4, dtype=torch.float64)
    assert loss.two_views(spread, spread) < loss.two_views(spread, spread.roll(1, 0))
    assert loss.two_views(spread, spread) < loss.two_views(collapsed, collapsed)


def test_memory_bank_equals_the_papers_equation_and_updates_its_entries():
    torch.manual_seed(0)
    n, d, tau, m = 10, 4, 0.07, 0.5
    loss = MemoryBankInstanceLoss(n, d, temperature=tau, momentum=m, seed=5).double()
    before = loss.memory.clone()
    features = torch.randn(3, d, dtype=torch.float64)
    indices = torch.tensor([7, 2, 4])
    leaf = features.clone().requires_grad_(True)
    value = loss(leaf, indices)
    (grad,) = torch.autograd.grad(value, leaf)

    def reference(x):
        f = F.normalize(x, dim=1)
        terms = []
        for row, i in enumerate(indices.tolist()):
            scores = torch.stack([before[j] @ f[row] / tau for j in range(n)])
            terms.append(-(scores[i] - torch.logsumexp(scores, 0)))
        return torch.stack(terms).mean()

    ref_leaf = features.clone().requires_grad_(True)
    ref_value = reference(ref_leaf)
    (ref_grad,) = torch.autograd.grad(ref_value, ref_leaf)
    assert value.item() == pytest.approx(ref_value.item(), abs=ATOL)
    torch.testing.assert_close(grad, ref_grad, atol=ATOL, rtol=0)
    # v_i <- normalise(m v_i + (1 - m) f_i) for the batch's entries only
    f = F.normalize(features, dim=1)
    for row, i in enumerate(indices.tolist()):
        expected = F.normalize(m * before[i] + (1 - m) * f[row], dim=0)
        torch.testing.assert_close(loss.memory[i], expected, atol=1e-12, rtol=0)
    untouched = [j for j in range(n) if j not in indices.tolist()]
    torch.testing.assert_close(loss.memory[untouched], before[untouched], atol=0, rtol=0)
    # in eval mode the bank is left alone
    loss.eval()
    frozen = loss.memory.clone()
    loss(features, indices)
    torch.testing.assert_close(loss.memory, frozen, atol=0, rtol=0)


def test_memory_bank_proximal_term():
    loss = MemoryBankInstanceLoss(6, 3, proximal=30.0, seed=1).double().eval()
    plain = MemoryBankInstanceLoss(6, 3, seed=1).double().eval()
    x = torch.randn(2, 3, dtype=torch.float64)
    idx = torch.tensor([0, 5])
    f = F.normalize(x, dim=1)
    expected = plain(x, idx) + 30.0 * (f - plain.memory[idx]).pow(2).sum(1).mean()
    assert loss(x, idx).item() == pytest.approx(expected.item(), abs=1e-9)


def test_memory_bank_bad_input():
    loss = MemoryBankInstanceLoss(5, 3)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        loss(torch.randn(2, 3), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="once per batch"):
        loss(torch.randn(2, 3), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="size 3"):
        loss(torch.randn(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="never update"):
        MemoryBankInstanceLoss(5, 3, momentum=1.0)
