"""Tests for dmlkit.geometry.delta: Gromov δ-hyperbolicity (Khrulkov et al., CVPR 2020)."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest
import torch

from dmlkit.geometry import (
    HyperbolicProjection,
    delta_hyperbolicity,
    dist_matrix,
    gromov_delta,
    gromov_products,
    max_min_product,
)

F64 = torch.float64


def _tree_metric(n: int, seed: int) -> torch.Tensor:
    """Path lengths in a random tree with integer edge weights (exact in float64)."""
    rng = np.random.default_rng(seed)
    d = np.full((n, n), np.inf)
    np.fill_diagonal(d, 0.0)
    for node in range(1, n):
        parent = rng.integers(0, node)
        w = float(rng.integers(1, 6))
        d[node, parent] = d[parent, node] = w
    for k in range(n):  # Floyd-Warshall
        d = np.minimum(d, d[:, k : k + 1] + d[k : k + 1, :])
    return torch.tensor(d, dtype=F64)


def _circle(n: int, metric: str, random: bool = False, seed: int = 0):
    if random:
        t = torch.rand(n, generator=torch.Generator().manual_seed(seed), dtype=F64) * 2 * math.pi
    else:
        t = torch.arange(n, dtype=F64) * 2 * math.pi / n
    if metric == "arc":
        gap = (t[:, None] - t[None, :]).abs()
        return torch.minimum(gap, 2 * math.pi - gap)
    pts = torch.stack([t.cos(), t.sin()], dim=1)
    return torch.cdist(pts, pts)


def _delta_loop(d: torch.Tensor, base: int) -> float:
    """δ relative to ``base`` straight from the definition: max over x, y, z of
    min((x|z), (y|z)) - (x|y), with (x|y) = (d(x,w) + d(y,w) - d(x,y)) / 2."""
    d = d.tolist()
    n = len(d)

    def gp(x, y):
        return 0.5 * (d[x][base] + d[y][base] - d[x][y])

    triples = itertools.product(range(n), repeat=3)
    return max(min(gp(x, z), gp(y, z)) - gp(x, y) for x, y, z in triples)


def _four_point_delta(d: torch.Tensor) -> float:
    """Base-free four-point δ: half the gap between the two largest pair sums, maximised."""
    d = d.tolist()
    best = 0.0
    for x, y, z, w in itertools.combinations(range(len(d)), 4):
        sums = sorted([d[x][y] + d[z][w], d[x][z] + d[y][w], d[x][w] + d[y][z]])
        best = max(best, (sums[2] - sums[1]) / 2)
    return best


def test_hand_checked_four_cycle():
    # the 4-cycle with unit edges: d = 1 between neighbours, 2 across
    d = torch.tensor([[0, 1, 2, 1], [1, 0, 1, 2], [2, 1, 0, 1], [1, 2, 1, 0]], dtype=F64)
    # Gromov products relative to point 0, computed by hand: (1|2) = (1 + 2 - 1)/2 = 1, ...
    expected = torch.tensor([[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 2, 1], [0, 0, 1, 1]], dtype=F64)
    torch.testing.assert_close(gromov_products(d, 0), expected)
    # (A ⊗ A)_{13} = max_z min(A_1z, A_z3) = min(A_12, A_23) = 1 while A_13 = 0, so δ = 1;
    # pair sums: 1 + 1, 2 + 2, 1 + 1 -> (4 - 2) / 2 = 1; diameter 2 -> δ_rel = 1.
    assert gromov_delta(d) == 1.0
    result = delta_hyperbolicity(distance_matrix=d, precision="float64")
    assert (result.delta, result.delta_rel, result.diameter) == (1.0, 1.0, 2.0)


def test_hand_checked_unit_square():
    # corners of the unit square, Euclidean: pair sums 2, 2 and 2*sqrt(2) -> δ = sqrt(2) - 1
    pts = torch.tensor([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=F64)
    result = delta_hyperbolicity(pts, precision="float64")
    assert result.delta == pytest.approx(math.sqrt(2) - 1, abs=1e-14)
    assert result.delta_rel == pytest.approx(2 - math.sqrt(2), abs=1e-14)  # 2 δ / sqrt(2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tree_metric_is_exactly_zero_hyperbolic(seed):
    d = _tree_metric(40, seed)
    for base in (0, 7, 39):
        assert gromov_delta(d, base) == 0.0
    result = delta_hyperbolicity(distance_matrix=d, n_samples=25, n_tries=3, seed=seed, precision="float64")
    assert result.delta == 0.0 and result.delta_rel == 0.0
    # points on a line with integer coordinates: R is a tree
    line = torch.randint(-50, 50, (30, 1), generator=torch.Generator().manual_seed(seed)).to(F64)
    line = torch.unique(line, dim=0)
    assert delta_hyperbolicity(line, precision="float64").delta == 0.0


@pytest.mark.parametrize("n", [8, 12, 40])
def test_circle_equally_spaced(n):
    # 4 points a quarter apart: arc sums pi/2 + pi/2, pi + pi -> δ = pi/2 = diam/2, δ_rel = 1;
    # chord sums sqrt2 + sqrt2, 2 + 2 -> δ = 2 - sqrt(2), diameter 2, δ_rel = 2 - sqrt(2)
    arc = delta_hyperbolicity(distance_matrix=_circle(n, "arc"), precision="float64")
    assert arc.delta == pytest.approx(math.pi / 2, abs=1e-12)
    assert arc.delta_rel == pytest.approx(1.0, abs=1e-12)
    chord = delta_hyperbolicity(distance_matrix=_circle(n, "chord"), precision="float64")
    assert chord.delta == pytest.approx(2 - math.sqrt(2), abs=1e-12)
    assert chord.delta_rel == pytest.approx(2 - math.sqrt(2), abs=1e-12)


def test_circle_random_points_range():
    arc_d = _circle(300, "arc", random=True, seed=3)
    arc = delta_hyperbolicity(distance_matrix=arc_d, n_samples=200, precision="float64")
    assert 0.95 < arc.delta_rel <= 1.0 + 1e-12
    chord_d = _circle(300, "chord", random=True, seed=4)
    chord = delta_hyperbolicity(distance_matrix=chord_d, n_samples=200, precision="float64")
    assert 0.55 < chord.delta_rel <= 2 - math.sqrt(2) + 1e-9
    assert chord.n_samples == 200


def test_against_the_definition_and_the_four_point_bounds():
    pts = torch.randn(9, 3, generator=torch.Generator().manual_seed(5), dtype=F64)
    d = torch.cdist(pts, pts)
    four_point = _four_point_delta(d)
    for base in range(9):
        delta_w = gromov_delta(d, base)
        assert delta_w == pytest.approx(_delta_loop(d, base), abs=1e-12)
        assert delta_w <= four_point + 1e-12 <= 2 * delta_w + 2e-12


def test_max_min_product_against_loop():
    g = torch.Generator().manual_seed(6)
    a = torch.rand(7, 5, generator=g, dtype=F64)
    b = torch.rand(5, 4, generator=g, dtype=F64)
    expected = torch.tensor(
        [[max(min(a[i, k].item(), b[k, j].item()) for k in range(5)) for j in range(4)] for i in range(7)],
        dtype=F64,
    )
    torch.testing.assert_close(max_min_product(a, b), expected)
    torch.testing.assert_close(max_min_product(a, b, max_elements=1), expected)  # one row per chunk
    with pytest.raises(ValueError):
        max_min_product(a, a)


def test_subsampling_is_seeded_and_hyperbolic_distances_work():
    c = 0.1
    feats = torch.randn(120, 8, generator=torch.Generator().manual_seed(7))
    ball = HyperbolicProjection(c=c)(feats)
    fn = functools.partial(dist_matrix, c=c)
    first = delta_hyperbolicity(ball, distance_fn=fn, n_samples=50, n_tries=3, seed=1, precision="float64")
    again = delta_hyperbolicity(ball, distance_fn=fn, n_samples=50, n_tries=3, seed=1, precision="float64")
    other = delta_hyperbolicity(ball, distance_fn=fn, n_samples=50, n_tries=3, seed=2, precision="float64")
    assert first == again
    assert first.deltas != other.deltas
    assert first.n_samples == 50 and first.n_tries == 3 and len(first.deltas_rel) == 3
    assert first.delta_rel == pytest.approx(float(np.mean(first.deltas_rel)))
    assert 0.0 < first.delta_rel <= 1.0
    # the same points through a precomputed matrix give the same estimate
    full = dist_matrix(ball.double(), c=c)
    from_matrix = delta_hyperbolicity(distance_matrix=full, n_samples=50, n_tries=3, seed=1, precision="float64")
    assert from_matrix.delta == pytest.approx(first.delta, rel=1e-9)
    # numpy input is accepted
    assert delta_hyperbolicity(distance_matrix=full.numpy(), n_samples=50, seed=1, precision="float64").n_samples == 50


def test_invalid_inputs_raise():
    d = _circle(8, "arc")
    pts = torch.randn(10, 2, dtype=F64)
    with pytest.raises(ValueError):
        delta_hyperbolicity()
    with pytest.raises(ValueError):
        delta_hyperbolicity(pts, distance_matrix=d, precision="float64")
    with pytest.raises(ValueError):
        delta_hyperbolicity(distance_matrix=d, distance_fn=torch.cdist, precision="float64")
    with pytest.raises(ValueError):
        gromov_delta(d[:, :5])  # not square
    asym = d.clone()
    asym[0, 1] += 0.5
    with pytest.raises(ValueError, match="symmetric"):
        gromov_delta(asym)
    with pytest.raises(ValueError, match="non-negative"):
        gromov_delta(-d)
    diag = d + torch.eye(8, dtype=F64)
    with pytest.raises(ValueError, match="diagonal"):
        gromov_delta(diag)
    nan = d.clone()
    nan[2, 3] = nan[3, 2] = float("nan")
    with pytest.raises(ValueError):
        gromov_delta(nan)
    with pytest.raises(ValueError):
        gromov_delta(d[:2, :2])  # fewer than 3 points
    with pytest.raises(ValueError, match="diameter"):
        delta_hyperbolicity(torch.zeros(5, 3), precision="float64")
    for bad in (2, 0, 1.5, True):
        with pytest.raises(ValueError):
            delta_hyperbolicity(pts, n_samples=bad, precision="float64")
    with pytest.raises(ValueError):
        delta_hyperbolicity(pts, n_tries=0, precision="float64")
    with pytest.raises(ValueError):
        gromov_products(d, base_index=8)
    with pytest.raises(ValueError):
        delta_hyperbolicity(torch.tensor([[float("nan"), 0.0]] * 4))


def test_float32_products_change_delta_by_rounding_only():
    """The (max, min) product selects entries, so float32 agrees with float64 to their rounding."""
    points = torch.randn(300, 16, generator=torch.Generator().manual_seed(7), dtype=F64)
    fast = delta_hyperbolicity(points, n_samples=300, n_tries=2)
    exact = delta_hyperbolicity(points, n_samples=300, n_tries=2, precision="float64")
    assert fast.delta == pytest.approx(exact.delta, rel=1e-6)
    assert fast.delta_rel == pytest.approx(exact.delta_rel, rel=1e-6)
    with pytest.raises(ValueError, match="precision must be"):
        delta_hyperbolicity(points, precision="float16")
