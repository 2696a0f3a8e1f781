"""The ranked list loss: ``variant="paper"`` against loops written from the paper's equations with
constant weights (as in the authors' Caffe layer) and against the closed-form gradient;
``variant="pml"`` against pytorch-metric-learning, whose weights carry gradient."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses as pml_losses

from dmlkit.losses.pair_based import RankedListLoss
from tests._references import ATOL, LABELS, assert_same, make_batch, value_and_grad

#: (margin, Tn, imbalance, alpha, Tp): the authors' CUB setting, and one with positive weights
PARAMS = [(0.2, 10.0, 0.5, 1.4, 0.0), (0.4, 3.0, 0.3, 1.2, 2.0), (0.2, 10.0, 0.5, 1.1, 0.0)]


def pml_reference(margin, tn, imbalance, alpha, tp):
    with warnings.catch_warnings():  # PML warns for Tn > 5
        warnings.simplefilter("ignore")
        return pml_losses.RankedListLoss(margin, tn, imbalance, alpha, tp)


def loop_paper(embeddings, labels, margin, tn, imbalance, alpha, tp):
    """Per anchor i: P* = {j ~ i: d_ij > alpha - m}, N* = {k !~ i: d_ik < alpha}; L_P, L_N the means of
    the hinges weighted by w = exp(T * hinge) computed under ``no_grad`` (constants); the anchor's
    loss (1 - lambda) L_P + lambda L_N (0 for an empty set), averaged over the anchors."""
    x = F.normalize(embeddings, dim=1)
    n = len(labels)
    boundary = alpha - margin
    per_anchor = []
    for i in range(n):
        loss_p = loss_n = x.sum() * 0
        pos = [torch.linalg.norm(x[i] - x[j]) for j in range(n) if j != i and labels[j] == labels[i]]
        pos = [d for d in pos if d > boundary]
        neg = [torch.linalg.norm(x[i] - x[k]) for k in range(n) if labels[k] != labels[i]]
        neg = [d for d in neg if d < alpha]
        if pos:
            with torch.no_grad():
                w = [torch.exp(tp * (d - boundary)) for d in pos]
            loss_p = sum(wj * (d - boundary) for wj, d in zip(w, pos)) / sum(w)
        if neg:
            with torch.no_grad():
                w = [torch.exp(tn * (alpha - d)) for d in neg]
            loss_n = sum(wj * (alpha - d) for wj, d in zip(w, neg)) / sum(w)
        per_anchor.append((1 - imbalance) * loss_p + imbalance * loss_n)
    return torch.stack(per_anchor).mean()


@pytest.mark.parametrize("kind", list(LABELS))
@pytest.mark.parametrize("params", PARAMS)
def test_paper_variant_equals_loop_with_constant_weights(params, kind: str) -> None:
    for seed, unit in ((0, True), (1, True), (2, False)):
        embeddings, labels = make_batch(kind, seed, unit=unit)
        ours = RankedListLoss(*params, variant="paper")
        assert_same(ours, lambda e, y: loop_paper(e, y, *params), embeddings, labels)


@pytest.mark.parametrize("params", PARAMS)
def test_paper_gradient_closed_form(params) -> None:
    """d loss / d d_ij = (1 - lambda) w_ij / (N sum_P* w) on kept positives, -lambda w_ij / (N sum_N* w)
    on kept negatives, 0 elsewhere: the weights never differentiate."""
    margin, tn, imbalance, alpha, tp = params
    embeddings, labels = make_batch("unequal", 4)
    loss = RankedListLoss(*params, variant="paper")
    matrix = loss.distance(embeddings, None).detach().requires_grad_(True)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool)
    pos, neg = same & ~eye, ~same
    (grad,) = torch.autograd.grad(loss._loss(matrix, pos, neg, in_batch=True), matrix)
    d, n = matrix.detach(), len(labels)
    kept_p, kept_n = pos & (d > alpha - margin), neg & (d < alpha)
    w_p = torch.exp(tp * (d - (alpha - margin))) * kept_p
    w_n = torch.exp(tn * (alpha - d)) * kept_n
    safe = lambda s: torch.where(s > 0, s, torch.ones_like(s))  # noqa: E731
    expected = (1 - imbalance) * w_p / safe(w_p.sum(1, keepdim=True)) - imbalance * w_n / safe(w_n.sum(1, keepdim=True))
    assert kept_p.any() and kept_n.any()
    torch.testing.assert_close(grad, expected / n, atol=ATOL, rtol=0)


@pytest.mark.parametrize("kind", list(LABELS))
@pytest.mark.parametrize("params", PARAMS)
def test_pml_variant_equals_pml(params, kind: str) -> None:
    for seed in (0, 1):
        embeddings, labels = make_batch(kind, seed)
        assert_same(RankedListLoss(*params), pml_reference(*params), embeddings, labels)
        assert_same(RankedListLoss(*params, variant="pml"), pml_reference(*params), embeddings, labels)


def test_variants_differ_only_in_gradient() -> None:
    """Same value up to PML's 1e-5 padding of the weight sums; different gradients when Tn > 0."""
    embeddings, labels = make_batch("balanced", 5)
    pml_value, pml_grad = value_and_grad(RankedListLoss(), embeddings, labels)
    paper_value, paper_grad = value_and_grad(RankedListLoss(variant="paper"), embeddings, labels)
    torch.testing.assert_close(pml_value, paper_value, atol=1e-4, rtol=0)
    assert (pml_grad - paper_grad).abs().max() > 1e-2


def test_pml_pulls_an_easy_negative_inwards() -> None:
    """One anchor, one hard negative (hinge 1.0) and one easy negative (hinge 0.05) with Tn = 10:
    with weights carrying gradient, d loss / d d_easy = -(w / sum w)(1 + Tn (h - L_N)) > 0, so
    gradient descent moves the easy negative towards the anchor; with constant weights it is < 0."""
    alpha = 1.4
    matrix = torch.tensor([[0.0, alpha - 1.0, alpha - 0.05]], dtype=torch.float64)
    pos = torch.zeros(1, 3, dtype=torch.bool)
    neg = torch.tensor([[False, True, True]])
    grads = {}
    for variant in ("pml", "paper"):
        leaf = matrix.clone().requires_grad_(True)
        loss = RankedListLoss(0.2, 10.0, 1.0, alpha, 0.0, variant=variant)._loss(leaf, pos, neg, in_batch=True)
        (grads[variant],) = torch.autograd.grad(loss, leaf)
    assert grads["pml"][0, 2] > 0 > grads["paper"][0, 2]
    assert grads["pml"][0, 1] < 0 and grads["paper"][0, 1] < 0  # the hard one is pushed out by both
    w = torch.exp(torch.tensor([10.0, 0.5], dtype=torch.float64))
    l_n = (w * torch.tensor([1.0, 0.05], dtype=torch.float64)).sum() / w.sum()
    torch.testing.assert_close(grads["paper"][0, 2], -w[1] / w.sum(), atol=ATOL, rtol=0)
    pad = 1e-5 * 3  # PML's padding of the weight sum, per reference sample
    expected = -(w[1] / (w.sum() + pad)) * (1 + 10.0 * (0.05 - l_n))
    torch.testing.assert_close(grads["pml"][0, 2], expected, atol=1e-6, rtol=0)


def test_paper_variant_with_reference_set() -> None:
    """Against a reference set (a cross-batch memory's form), the weights stay constants."""
    embeddings, labels = make_batch("unequal", 6)
    ref, ref_labels = make_batch("balanced", 7)
    params = PARAMS[0]
    ours = RankedListLoss(*params, variant="paper")
    leaf = embeddings.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(ours(leaf, labels, ref, ref_labels), leaf)
    margin, tn, imbalance, alpha, tp = params
    x, r = F.normalize(leaf, dim=1), F.normalize(ref, dim=1)
    d = torch.cdist(x, r)
    with torch.no_grad():
        w_n = torch.exp(tn * (alpha - d))
        w_p = torch.exp(tp * (d - (alpha - margin)))
    same = labels[:, None] == ref_labels[None, :]
    kept_p, kept_n = same & (d > alpha - margin), ~same & (d < alpha)
    num_p, den_p = (w_p * (d - (alpha - margin)) * kept_p).sum(1), (w_p * kept_p).sum(1)
    num_n, den_n = (w_n * (alpha - d) * kept_n).sum(1), (w_n * kept_n).sum(1)
    loss_p = torch.where(den_p > 0, num_p / den_p.clamp_min(1e-300), torch.zeros_like(num_p))
    loss_n = torch.where(den_n > 0, num_n / den_n.clamp_min(1e-300), torch.zeros_like(num_n))
    reference = ((1 - imbalance) * loss_p + imbalance * loss_n).mean()
    (ref_grad,) = torch.autograd.grad(reference, leaf)
    torch.testing.assert_close(grad, ref_grad, atol=ATOL, rtol=0)
