"""Tests for dmlkit.geometry.retrieval: hyperbolic ranking, metrics and kNN graph.

References: dmlkit.evaluate.retrieval_metrics (on sets where the hyperbolic and the Euclidean
rankings provably coincide), a plain Python loop written from the metric definitions, and
dmlkit.neighbors.exact_knn.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import pytest
import torch

from dmlkit.evaluate import retrieval_metrics
from dmlkit.geometry import dist, dist_matrix, expmap0, mobius_add
from dmlkit.geometry.retrieval import (
    distance_retrieval_metrics,
    hyperbolic_knn,
    hyperbolic_retrieval_metrics,
    with_hyperbolic_metrics,
)
from dmlkit.neighbors import exact_knn
from tests._references import metrics_from_ranked_relevance

F64 = torch.float64


def ball_points(n, d, c, seed, max_tangent=2.0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(n, d, generator=g, dtype=F64)
    u = u / u.norm(dim=1, keepdim=True) * torch.rand(n, 1, generator=g, dtype=F64) * max_tangent
    return expmap0(u, c=c)


def random_labels(n, num_classes, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, num_classes, (n,), generator=g)


def loop_metrics(x, labels, c, ks):
    """The metric definitions, query by query, with distances from dist() one pair at a time."""
    n = x.shape[0]
    rankings = []
    for q in range(n):
        others = [j for j in range(n) if j != q]
        d = [float(dist(x[q], x[j], c=c)) for j in others]
        order = [others[i] for i in sorted(range(len(others)), key=lambda i: d[i])]
        rankings.append([bool(labels[j] == labels[q]) for j in order])
    return metrics_from_ranked_relevance(rankings, ks)


# ----------------------------------------------------------------------------------------------
# the ranking itself
# ----------------------------------------------------------------------------------------------
def test_hyperbolic_ranking_differs_from_euclidean():
    # query x0 = (0.3, 0) at c = 1: x1 = (0.75, 0) is 0.45 away in Euclidean terms but near the
    # boundary; x2 = (-0.2, 0) is 0.5 away but near the origin. Ranking keys
    # ||x0 - y||^2 / (1 - ||y||^2): 0.2025 / 0.4375 = 0.463 for x1, 0.25 / 0.96 = 0.260 for x2.
    x = torch.tensor([[0.3, 0.0], [0.75, 0.0], [-0.2, 0.0]], dtype=F64)
    euclid = exact_knn(x, 2, distance="euclidean", include_self=False)[0][0].tolist()
    hyper = hyperbolic_knn(x, 2, c=1.0, include_self=False)[0][0].tolist()
    assert euclid == [1, 2]
    assert hyper == [2, 1]
    # the ranking key of the module docstring, and ||(-x) (+) y||, give the same order
    key = (x[0] - x[1:]).pow(2).sum(1) / (1 - x[1:].pow(2).sum(1))
    torch.testing.assert_close(key, torch.tensor([0.2025 / 0.4375, 0.25 / 0.96], dtype=F64))
    mobius = mobius_add(-x[0].expand(2, 2), x[1:], c=1.0).norm(dim=1)
    distances = dist(x[0].expand(2, 2), x[1:], c=1.0)
    assert torch.argsort(key).tolist() == torch.argsort(mobius).tolist() == torch.argsort(distances).tolist() == [1, 0]
    # and the metrics see it: with x0 and x2 of one class, hyperbolic Recall@1 of x0 is a hit
    labels = torch.tensor([0, 1, 0])
    assert hyperbolic_retrieval_metrics(x, labels, c=1.0, ks=(1,))["recall@1"] == 1.0
    assert retrieval_metrics(x, labels, ks=(1,), distance="euclidean")["recall@1"] == 0.5


# ----------------------------------------------------------------------------------------------
# metrics
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("c", [0.1, 1.0])
def test_equals_evaluate_when_all_norms_are_equal(c):
    # every point on one sphere of radius 0.8/sqrt(c): d_c is increasing in ||x - y||
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 8, generator=g, dtype=F64)
    x = x / x.norm(dim=1, keepdim=True) * (0.8 / math.sqrt(c))
    labels = random_labels(300, 25, 1)
    ours = hyperbolic_retrieval_metrics(x, labels, c=c)
    for distance in ("euclidean", "cosine"):
        reference = retrieval_metrics(x, labels, distance=distance)
        assert ours.keys() == reference.keys()
        for key in ours:
            assert ours[key] == pytest.approx(reference[key], abs=1e-12), (distance, key)


def test_c_zero_is_the_euclidean_ranking():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(200, 5, generator=g, dtype=F64) * 3
    labels = random_labels(200, 20, 3)
    ours = hyperbolic_retrieval_metrics(x, labels, c=0.0, ks=(1, 3, 10))
    reference = retrieval_metrics(x, labels, ks=(1, 3, 10), distance="euclidean")
    assert ours == pytest.approx(reference, abs=1e-12)


@pytest.mark.parametrize("c", [0.1, 1.0])
def test_equals_a_plain_loop(c):
    x = ball_points(70, 3, c, seed=4, max_tangent=3.0)
    labels = random_labels(70, 9, 5)
    labels[0] = 99  # a class with a single item: not a query, still a gallery item
    ks = (1, 2, 4, 8)
    expected = loop_metrics(x, labels, c, ks)
    assert hyperbolic_retrieval_metrics(x, labels, c=c, ks=ks) == pytest.approx(expected, abs=1e-12)
    # and not the Euclidean numbers (the rankings differ on these points)
    euclid = retrieval_metrics(x, labels, ks=ks, distance="euclidean")
    assert any(abs(euclid[k] - expected[k]) > 1e-6 for k in expected)


def test_chunking_and_float32_do_not_change_the_result():
    x = ball_points(150, 4, 0.5, seed=6)
    labels = random_labels(150, 12, 7)
    full = hyperbolic_retrieval_metrics(x, labels, c=0.5)
    assert hyperbolic_retrieval_metrics(x, labels, c=0.5, chunk_size=7) == full
    assert hyperbolic_retrieval_metrics(x.float(), labels, c=0.5) == pytest.approx(full, abs=1e-12)


def test_generic_distance_function():
    x = ball_points(80, 3, 1.0, seed=8)
    labels = random_labels(80, 8, 9)
    fn = functools.partial(dist_matrix, c=1.0)
    assert distance_retrieval_metrics(x, labels, fn) == hyperbolic_retrieval_metrics(x, labels, c=1.0)
    cosine = distance_retrieval_metrics(
        x, labels, lambda a, b: 1 - torch.nn.functional.normalize(a, dim=1) @ torch.nn.functional.normalize(b, dim=1).T
    )
    assert cosine == pytest.approx(retrieval_metrics(x, labels, distance="cosine"), abs=1e-12)


def test_invalid_arguments():
    x = ball_points(20, 2, 1.0, seed=10)
    labels = random_labels(20, 4, 11)
    with pytest.raises(ValueError, match="outside the Poincaré ball"):
        hyperbolic_retrieval_metrics(x * 3, labels, c=1.0)
    with pytest.raises(ValueError, match="c must be"):
        hyperbolic_retrieval_metrics(x, labels, c=-1.0)
    with pytest.raises(ValueError, match="k=20"):
        hyperbolic_retrieval_metrics(x, labels, c=1.0, ks=(1, 20))
    with pytest.raises(ValueError, match="positive integer"):
        hyperbolic_retrieval_metrics(x, labels, c=1.0, ks=(0,))
    with pytest.raises(ValueError, match="nothing to retrieve"):
        hyperbolic_retrieval_metrics(x[:3], torch.arange(3), c=1.0, ks=(1,))
    with pytest.raises(ValueError, match="batch size"):
        hyperbolic_retrieval_metrics(x, labels[:5], c=1.0)
    with pytest.raises(ValueError, match="chunk_size"):
        hyperbolic_retrieval_metrics(x, labels, c=1.0, chunk_size=0)
    with pytest.raises(ValueError, match="distance_fn must return"):
        distance_retrieval_metrics(x, labels, lambda a, b: a @ b.T[:, :3])
    with pytest.raises(ValueError, match="neighbours impossible"):
        hyperbolic_knn(x, 20, c=1.0, include_self=False)
    with pytest.raises(ValueError, match="outside"):
        hyperbolic_knn(x * 3, 2, c=1.0)


# ----------------------------------------------------------------------------------------------
# the kNN graph
# ----------------------------------------------------------------------------------------------
def test_knn_matches_a_full_sort_and_the_exact_knn_contract():
    x = ball_points(90, 5, 0.3, seed=12)
    full = dist_matrix(x, c=0.3)
    idx, d = hyperbolic_knn(x, 6, c=0.3, chunk_size=11)
    assert idx.shape == d.shape == (90, 6)
    assert torch.equal(idx[:, 0], torch.arange(90)) and torch.all(d[:, 0] == 0)
    expected = torch.sort(full, dim=1, stable=True)
    assert torch.equal(idx, expected.indices[:, :6])
    torch.testing.assert_close(d, expected.values[:, :6].float())
    idx2, d2 = hyperbolic_knn(x, 5, c=0.3, include_self=False)
    assert torch.equal(idx2, idx[:, 1:]) and torch.equal(d2, d[:, 1:])
    # c = 0: 2 * Euclidean, same neighbours as exact_knn
    e_idx, e_d = exact_knn(x.float(), 6, distance="euclidean")
    h_idx, h_d = hyperbolic_knn(x, 6, c=0.0)
    assert torch.equal(e_idx, h_idx)
    torch.testing.assert_close(h_d, 2 * e_d, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------------------------
# RunResult rescoring
# ----------------------------------------------------------------------------------------------
@dataclass
class FakeRun:
    train_embeddings: torch.Tensor
    train_labels: torch.Tensor
    test_embeddings: torch.Tensor
    test_labels: torch.Tensor
    train_metrics: dict
    test_metrics: dict
    settings: dict = field(default_factory=dict)


def test_with_hyperbolic_metrics():
    x = ball_points(60, 3, 1.0, seed=13)
    labels = random_labels(60, 6, 14)
    run = FakeRun(x, labels, x[:40], labels[:40], {}, {"nmi": 0.5, "map@r": 0.0}, {"distance": "euclidean", "seed": 1})
    new = with_hyperbolic_metrics(run, c=1.0)
    assert new.test_metrics["nmi"] == 0.5
    assert new.test_metrics["map@r"] == hyperbolic_retrieval_metrics(x[:40], labels[:40], c=1.0)["map@r"]
    assert new.train_metrics == hyperbolic_retrieval_metrics(x, labels, c=1.0)
    assert new.settings == {"distance": "poincare(c=1)", "seed": 1}
    assert run.settings["distance"] == "euclidean"  # the original is untouched
    with pytest.raises(TypeError, match="RunResult"):
        with_hyperbolic_metrics(object(), c=1.0)


@pytest.mark.parametrize("c", [0.0, 0.1, 1.0])
def test_ranking_key_orders_like_the_distance(c):
    from dmlkit.geometry.retrieval import hyperbolic_ranking_key

    x = ball_points(120, 6, c if c else 1.0, seed=15, max_tangent=4.0)
    key = hyperbolic_ranking_key(x[:30], x, c=c)
    d = dist_matrix(x[:30], x, c=c)
    assert torch.equal(torch.argsort(key, dim=1, stable=True), torch.argsort(d, dim=1, stable=True))
    # the closed form: cosh(sqrt(c) d) - 1 = 2c * key / (1 - c||q||^2)
    if c:
        gap_q = 1 - c * x[:30].pow(2).sum(1, keepdim=True)
        torch.testing.assert_close(torch.cosh(math.sqrt(c) * d) - 1, 2 * c * key / gap_q, rtol=1e-9, atol=1e-12)
