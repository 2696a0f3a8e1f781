"""Tests for dmlkit.geometry.poincare: geoopt agreement, accuracy near the boundary, gradients.

Reference values come from three independent places:
- geoopt's ``PoincareBall`` (float64 curvature, ``project=False``), compared at 1e-10 wherever
  geoopt itself is accurate to that level;
- 60-digit mpmath evaluations of the closed-form distance, near the boundary, where geoopt's
  textbook route ``artanh(sqrt(c) * ||(-x) + y||)`` loses digits (~1e-8 at radius 0.999, ~1e-5 for
  nearby points within 1e-5 of the boundary) and clamps its artanh argument at 1 - 1e-7;
- geometric identities (isometry of Möbius translations, round trips, geodesic midpoints).
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from dmlkit.geometry import poincare

F64 = torch.float64
TOL = dict(atol=1e-10, rtol=1e-10)


def _geoopt_ball(c: float):
    """geoopt's ball with a float64 curvature, and the curvature it really uses (via softplus)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        geoopt = pytest.importorskip("geoopt")
    ball = geoopt.PoincareBall(c=torch.tensor(c, dtype=F64))
    return ball, float(ball.c.item())


def _points(n: int, d: int, low: float, high: float, c: float, seed: int, dtype=F64) -> torch.Tensor:
    """Random directions with sqrt(c) * norm uniform in [low, high]."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(n, d, generator=g, dtype=F64)
    u = u / u.norm(dim=1, keepdim=True)
    r = low + (high - low) * torch.rand(n, 1, generator=g, dtype=F64)
    return (u * r / math.sqrt(c)).to(dtype)


def _mp_dist(x: torch.Tensor, y: torch.Tensor, c: float) -> torch.Tensor:
    """60-digit arcosh form of the distance for each row pair (float64 inputs taken as exact)."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 60
    out = []
    cc = mpmath.mpf(c)
    for a, b in zip(x.tolist(), y.tolist()):
        a = [mpmath.mpf(v) for v in a]
        b = [mpmath.mpf(v) for v in b]
        na = sum(v * v for v in a)
        nb = sum(v * v for v in b)
        dd = sum((p - q) ** 2 for p, q in zip(a, b))
        arg = 1 + 2 * cc * dd / ((1 - cc * na) * (1 - cc * nb))
        out.append(float(mpmath.acosh(arg) / mpmath.sqrt(cc)))
    return torch.tensor(out, dtype=F64)


# ----------------------------------------------------------------------------------------------
# agreement with geoopt
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("c0", [0.1, 1.0, 2.5])
def test_matches_geoopt_on_interior_points(c0):
    ball, c = _geoopt_ball(c0)
    x = _points(64, 7, 0.0, 0.99, c, seed=1)
    y = _points(64, 7, 0.0, 0.99, c, seed=2)
    u = torch.randn(64, 7, generator=torch.Generator().manual_seed(3), dtype=F64) * 2.0
    r = torch.rand(64, 1, generator=torch.Generator().manual_seed(4), dtype=F64) * 3 - 1
    torch.testing.assert_close(poincare.mobius_add(x, y, c=c), ball.mobius_add(x, y, project=False), **TOL)
    torch.testing.assert_close(poincare.dist(x, y, c=c), ball.dist(x, y), **TOL)
    torch.testing.assert_close(poincare.dist(x, y, c=c, keepdim=True), ball.dist(x, y, keepdim=True), **TOL)
    torch.testing.assert_close(poincare.dist0(x, c=c), ball.dist0(x), **TOL)
    torch.testing.assert_close(poincare.expmap0(u, c=c), ball.expmap0(u, project=False), **TOL)
    torch.testing.assert_close(poincare.logmap0(x, c=c), ball.logmap0(x), **TOL)
    torch.testing.assert_close(poincare.expmap(x, u, c=c), ball.expmap(x, u, project=False), **TOL)
    torch.testing.assert_close(poincare.logmap(x, y, c=c), ball.logmap(x, y), **TOL)
    torch.testing.assert_close(poincare.lambda_x(x, c=c), ball.lambda_x(x), **TOL)
    torch.testing.assert_close(poincare.lambda_x(x, c=c, keepdim=True), ball.lambda_x(x, keepdim=True), **TOL)
    torch.testing.assert_close(
        poincare.mobius_scalar_mul(r, x, c=c), ball.mobius_scalar_mul(r, x, project=False), **TOL
    )
    torch.testing.assert_close(
        poincare.mobius_scalar_mul(0.3, x, c=c),
        ball.mobius_scalar_mul(torch.tensor(0.3, dtype=F64), x, project=False),
        **TOL,
    )
    torch.testing.assert_close(poincare.dist_matrix(x, y, c=c), ball.dist(x[:, None], y[None]), **TOL)
    within = poincare.dist_matrix(x, c=c)
    torch.testing.assert_close(within, ball.dist(x[:, None], x[None]), **TOL)
    assert torch.all(within.diagonal() == 0)


@pytest.mark.parametrize("c0", [0.1, 1.0])
def test_project_and_midpoint_match_geoopt(c0):
    from geoopt.manifolds.stereographic import math as gmath

    ball, c = _geoopt_ball(c0)
    far = _points(32, 5, 0.5, 1.3, c, seed=5)  # some rows outside the ball
    for eps in (1e-3, 1e-5):
        torch.testing.assert_close(poincare.project(far, c=c, eps=eps), gmath.project(far, k=-ball.c, eps=eps), **TOL)
    x = _points(20, 5, 0.0, 1 - 1e-5, c, seed=6)
    w = torch.rand(20, generator=torch.Generator().manual_seed(7), dtype=F64)
    torch.testing.assert_close(
        poincare.einstein_midpoint(x, c=c), ball.weighted_midpoint(x, reducedim=[0], project=False), **TOL
    )
    torch.testing.assert_close(
        poincare.einstein_midpoint(x, w, c=c),
        ball.weighted_midpoint(x, w, reducedim=[0], project=False),
        **TOL,
    )


@pytest.mark.parametrize("c0", [0.1, 1.0])
def test_matches_geoopt_within_1e5_of_the_boundary(c0):
    """Points with 1 - 1e-5 <= sqrt(c)||x|| <= 1 - 1e-6, maps that geoopt evaluates accurately."""
    ball, c = _geoopt_ball(c0)
    x = _points(64, 6, 1 - 1e-5, 1 - 1e-6, c, seed=11)
    x2 = _points(64, 6, 1 - 1e-5, 1 - 1e-6, c, seed=12)
    y = _points(64, 6, 0.0, 0.9, c, seed=13)
    u = torch.randn(64, 6, generator=torch.Generator().manual_seed(14), dtype=F64)
    torch.testing.assert_close(poincare.mobius_add(x, y, c=c), ball.mobius_add(x, y, project=False), **TOL)
    torch.testing.assert_close(poincare.mobius_add(y, x, c=c), ball.mobius_add(y, x, project=False), **TOL)
    torch.testing.assert_close(poincare.mobius_add(x, x2, c=c), ball.mobius_add(x, x2, project=False), **TOL)
    torch.testing.assert_close(poincare.expmap0(20 * u, c=c), ball.expmap0(20 * u, project=False), **TOL)
    torch.testing.assert_close(poincare.expmap(x, u, c=c), ball.expmap(x, u, project=False), **TOL)
    torch.testing.assert_close(poincare.logmap(x, y, c=c), ball.logmap(x, y), **TOL)
    # logmap0 here and logmap between two such points are checked against mpmath below: geoopt's
    # own error there (3e-10 relative for logmap0 at c = 0.1; saturation of artanh for logmap)
    # exceeds 1e-10.
    torch.testing.assert_close(poincare.lambda_x(x, c=c), ball.lambda_x(x), **TOL)
    torch.testing.assert_close(
        poincare.mobius_scalar_mul(0.7, x, c=c),
        ball.mobius_scalar_mul(torch.tensor(0.7, dtype=F64), x, project=False),
        **TOL,
    )
    torch.testing.assert_close(
        poincare.einstein_midpoint(x, c=c), ball.weighted_midpoint(x, reducedim=[0], project=False), **TOL
    )


@pytest.mark.parametrize("c", [0.1, 1.0])
def test_distance_near_the_boundary_against_mpmath(c):
    """Far-apart and nearby pairs within 1e-5 of the boundary, and mixed pairs: relative 1e-10."""
    x = _points(40, 5, 1 - 1e-5, 1 - 1e-7, c, seed=21)
    far = _points(40, 5, 1 - 1e-5, 1 - 1e-7, c, seed=22)
    step = torch.randn(40, 5, dtype=F64, generator=torch.Generator().manual_seed(23))
    near = poincare.expmap(x, 0.1 * step / poincare.lambda_x(x, c=c, keepdim=True), c=c)  # ~0.1 away
    mixed = _points(40, 5, 0.0, 0.9, c, seed=24)
    for y in (far, near, mixed):
        torch.testing.assert_close(poincare.dist(x, y, c=c), _mp_dist(x, y, c), rtol=1e-10, atol=0)
    # the Gram-matrix route is exact enough for pairs that are not near-duplicates
    exact = dict(rtol=1e-10, atol=0)
    torch.testing.assert_close(poincare.dist_matrix(x, far, c=c).diagonal(), _mp_dist(x, far, c), **exact)
    torch.testing.assert_close(poincare.dist0(x, c=c), _mp_dist(x, torch.zeros_like(x), c), **exact)
    # logmap: its Riemannian norm is the distance; logmap0 is dist0 / 2 along x / ||x||
    riemannian_norm = poincare.lambda_x(x, c=c) * poincare.logmap(x, far, c=c).norm(dim=-1)
    torch.testing.assert_close(riemannian_norm, _mp_dist(x, far, c), rtol=1e-10, atol=0)
    expected = (_mp_dist(x, torch.zeros_like(x), c) / 2)[:, None] * x / x.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(poincare.logmap0(x, c=c), expected, rtol=1e-10, atol=0)


# ----------------------------------------------------------------------------------------------
# gradients
# ----------------------------------------------------------------------------------------------
def _all_maps(x: torch.Tensor, y: torch.Tensor, u: torch.Tensor, c: float) -> list[torch.Tensor]:
    return [
        poincare.dist(x, y, c=c),
        poincare.dist(x, x, c=c),
        poincare.dist0(x, c=c),
        poincare.dist_matrix(x, y, c=c),
        poincare.dist_matrix(x, c=c),
        poincare.logmap0(x, c=c),
        poincare.logmap(x, y, c=c),
        poincare.logmap(y, x, c=c),
        poincare.expmap(x, u, c=c),
        poincare.expmap0(u, c=c),
        poincare.mobius_add(x, y, c=c),
        poincare.mobius_scalar_mul(0.5, x, c=c),
        poincare.lambda_x(x, c=c),
        poincare.einstein_midpoint(x, c=c),
        poincare.klein_to_poincare(poincare.poincare_to_klein(x, c=c), c=c),
    ]


@pytest.mark.parametrize("c", [0.1, 1.0])
@pytest.mark.parametrize("gap", [1e-5, 0.0, -1e-3])
def test_gradients_finite_in_float32_at_the_boundary(c, gap):
    """float32 points within 1e-5 of the boundary (and on / slightly beyond it: clamped)."""
    x = _points(16, 8, 1 - gap, 1 - gap, c, seed=31, dtype=torch.float32).requires_grad_(True)
    y = _points(16, 8, 1 - 1e-5, 1 - 1e-5, c, seed=32, dtype=torch.float32).requires_grad_(True)
    u = torch.zeros(16, 8).requires_grad_(True)
    for out in _all_maps(x, y, u, c):
        assert torch.isfinite(out).all()
        gx, gy, gu = torch.autograd.grad(out.sum(), (x, y, u), allow_unused=True)
        for g in (gx, gy, gu):
            assert g is None or torch.isfinite(g).all()


def test_zero_distance_and_zero_vector_have_zero_or_identity_gradients():
    x = _points(5, 3, 0.2, 0.8, 1.0, seed=41).requires_grad_(True)
    d = poincare.dist(x, x.detach().clone(), c=1.0)
    assert torch.all(d == 0)
    (g,) = torch.autograd.grad(d.sum(), x)
    assert torch.all(g == 0)
    zero = torch.zeros(3, dtype=F64)
    for fn in (lambda v: poincare.expmap0(v, c=0.7), lambda v: poincare.logmap0(v, c=0.7)):
        jac = torch.autograd.functional.jacobian(fn, zero)
        torch.testing.assert_close(jac, torch.eye(3, dtype=F64))


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(51)
    x = (_points(4, 3, 0.0, 0.95, 0.5, seed=52)).requires_grad_(True)
    y = (_points(4, 3, 0.0, 0.95, 0.5, seed=53)).requires_grad_(True)
    u = torch.randn(4, 3, generator=g, dtype=F64).requires_grad_(True)
    tiny = (1e-5 * torch.randn(4, 3, generator=g, dtype=F64)).requires_grad_(True)  # Taylor branch
    c = 0.5
    checks = [
        (lambda a, b: poincare.dist(a, b, c=c), (x, y)),
        (lambda a, b: poincare.dist_matrix(a, b, c=c), (x, y)),
        (lambda a, b: poincare.mobius_add(a, b, c=c), (x, y)),
        (lambda a, b: poincare.expmap(a, b, c=c), (x, u)),
        (lambda a, b: poincare.logmap(a, b, c=c), (x, y)),
        (lambda a: poincare.expmap0(a, c=c), (u,)),
        (lambda a: poincare.expmap0(a, c=c), (tiny,)),
        (lambda a: poincare.logmap0(a, c=c), (x,)),
        (lambda a: poincare.logmap0(a, c=c), (tiny,)),
        (lambda a: poincare.mobius_scalar_mul(1.7, a, c=c), (x,)),
        (lambda a: poincare.einstein_midpoint(a, c=c), (x,)),
        (lambda a: poincare.dist0(a, c=c), (x,)),
    ]
    for fn, inputs in checks:
        assert torch.autograd.gradcheck(fn, inputs, eps=1e-7, atol=1e-6)


# ----------------------------------------------------------------------------------------------
# geometry identities
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("c", [0.3, 1.0])
def test_identities(c):
    x = _points(30, 4, 0.0, 0.97, c, seed=61)
    y = _points(30, 4, 0.0, 0.97, c, seed=62)
    a = _points(30, 4, 0.0, 0.97, c, seed=63)
    # tangent vectors of Riemannian length ~1 at x (a fixed Euclidean length would, near the
    # boundary, reach it in float64 and make the round trip ill-posed)
    u = torch.randn(30, 4, generator=torch.Generator().manual_seed(64), dtype=F64)
    u = u / poincare.lambda_x(x, c=c, keepdim=True)
    zero = torch.zeros_like(x)
    tol = dict(atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(poincare.mobius_add(-x, x, c=c), zero, atol=1e-12, rtol=0)
    torch.testing.assert_close(poincare.mobius_add(zero, x, c=c), x)
    # left cancellation
    torch.testing.assert_close(poincare.mobius_add(-x, poincare.mobius_add(x, y, c=c), c=c), y, **tol)
    torch.testing.assert_close(poincare.dist(x, y, c=c), poincare.dist(y, x, c=c), **tol)
    # Möbius translations are isometries
    torch.testing.assert_close(
        poincare.dist(poincare.mobius_add(a, x, c=c), poincare.mobius_add(a, y, c=c), c=c),
        poincare.dist(x, y, c=c),
        **tol,
    )
    torch.testing.assert_close(poincare.dist(zero, x, c=c), poincare.dist0(x, c=c), **tol)
    torch.testing.assert_close(poincare.logmap0(poincare.expmap0(u, c=c), c=c), u, **tol)
    torch.testing.assert_close(poincare.expmap0(poincare.logmap0(x, c=c), c=c), x, **tol)
    torch.testing.assert_close(poincare.expmap(x, poincare.logmap(x, y, c=c), c=c), y, **tol)
    torch.testing.assert_close(poincare.logmap(x, poincare.expmap(x, u, c=c), c=c), u, **tol)
    torch.testing.assert_close(poincare.logmap(zero, x, c=c), poincare.logmap0(x, c=c), **tol)
    # the Riemannian norm of the log map is the distance
    riem = poincare.lambda_x(x, c=c) * poincare.logmap(x, y, c=c).norm(dim=-1)
    torch.testing.assert_close(riem, poincare.dist(x, y, c=c), **tol)
    # scalar multiplication scales the distance from the origin
    scaled = poincare.mobius_scalar_mul(2.5, x, c=c)
    torch.testing.assert_close(poincare.dist0(scaled, c=c), 2.5 * poincare.dist0(x, c=c), **tol)
    torch.testing.assert_close(poincare.mobius_scalar_mul(2.0, x, c=c), poincare.mobius_add(x, x, c=c), **tol)
    torch.testing.assert_close(poincare.klein_to_poincare(poincare.poincare_to_klein(x, c=c), c=c), x, **tol)
    # triangle inequality
    assert torch.all(poincare.dist(x, y, c=c) <= poincare.dist(x, a, c=c) + poincare.dist(a, y, c=c) + 1e-9)
    # broadcasting
    torch.testing.assert_close(poincare.dist(x[:, None], y[None], c=c), poincare.dist_matrix(x, y, c=c), **tol)


def test_hand_checked_values():
    # c = 1: d(0, (1/2, 0)) = 2 artanh(1/2) = ln 3; through the origin to (-1/2, 0): 2 ln 3
    # (arcosh(1 + 2 * 1 / (3/4)^2) = arcosh(41/9) = ln 9); lambda at (1/2, 0) = 2 / (3/4) = 8/3.
    a = torch.tensor([0.5, 0.0], dtype=F64)
    assert poincare.dist0(a, c=1.0).item() == pytest.approx(math.log(3), abs=1e-15)
    assert poincare.dist(a, -a, c=1.0).item() == pytest.approx(2 * math.log(3), abs=1e-15)
    assert poincare.lambda_x(a, c=1.0).item() == pytest.approx(8 / 3, abs=1e-15)
    # a (+) a = ((1 + 2/4 + 1/4) + (1 - 1/4)) * (1/2) / (1 + 2/4 + 1/16) = 1.25 / 1.5625 = 4/5
    torch.testing.assert_close(poincare.mobius_add(a, a, c=1.0), torch.tensor([0.8, 0.0], dtype=F64))
    # expmap0 of (1, 0) at c = 1 is (tanh 1, 0); the Einstein midpoint of a and -a is 0
    torch.testing.assert_close(
        poincare.expmap0(torch.tensor([1.0, 0.0], dtype=F64), c=1.0),
        torch.tensor([math.tanh(1.0), 0.0], dtype=F64),
    )
    mid = poincare.einstein_midpoint(torch.stack([a, -a]), c=1.0)
    torch.testing.assert_close(mid, torch.zeros(2, dtype=F64))


def test_einstein_midpoint_geometry():
    c = 0.8
    x = _points(2, 3, 0.3, 0.99, c, seed=71)
    m = poincare.einstein_midpoint(x, c=c)
    half = poincare.dist(x[0], x[1], c=c) / 2
    torch.testing.assert_close(poincare.dist(m, x[0], c=c), half)
    torch.testing.assert_close(poincare.dist(m, x[1], c=c), half)
    # single point, permutation invariance, one midpoint per weight row
    pts = _points(9, 3, 0.0, 0.99, c, seed=72)
    torch.testing.assert_close(poincare.einstein_midpoint(pts[:1], c=c), pts[0])
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(73))
    torch.testing.assert_close(poincare.einstein_midpoint(pts[perm], c=c), poincare.einstein_midpoint(pts, c=c))
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2])
    onehot = torch.nn.functional.one_hot(labels, 3).T.to(F64)
    per_class = poincare.einstein_midpoint(pts, onehot, c=c)
    assert per_class.shape == (3, 3)
    for k in range(3):
        torch.testing.assert_close(per_class[k], poincare.einstein_midpoint(pts[labels == k], c=c))
    # the Klein midpoint of two points lies on the chord between them (Klein geodesics are straight)
    k0, k1, km = (poincare.poincare_to_klein(p, c=c) for p in (x[0], x[1], m))
    cross = torch.linalg.matrix_rank(torch.stack([k1 - k0, km - k0]), tol=1e-10)
    assert cross == 1
    # c = 0: the weighted arithmetic mean
    w = torch.rand(9, generator=torch.Generator().manual_seed(74), dtype=F64)
    mean = (w[:, None] * pts).sum(0) / w.sum()
    torch.testing.assert_close(poincare.einstein_midpoint(pts, w, c=0.0), mean)


def test_euclidean_limit_c_zero():
    x = torch.randn(6, 3, dtype=F64)
    y = torch.randn(6, 3, dtype=F64)
    torch.testing.assert_close(poincare.mobius_add(x, y, c=0), x + y)
    torch.testing.assert_close(poincare.expmap0(x, c=0), x)
    torch.testing.assert_close(poincare.logmap0(x, c=0), x)
    torch.testing.assert_close(poincare.expmap(x, y, c=0), x + y)
    torch.testing.assert_close(poincare.logmap(x, y, c=0), y - x)
    torch.testing.assert_close(poincare.dist(x, y, c=0), 2 * (x - y).norm(dim=-1))
    torch.testing.assert_close(poincare.dist_matrix(x, y, c=0), 2 * torch.cdist(x, y))
    torch.testing.assert_close(poincare.lambda_x(x, c=0), torch.full((6,), 2.0, dtype=F64))
    torch.testing.assert_close(poincare.mobius_scalar_mul(3.0, x, c=0), 3 * x)
    assert poincare.project(10 * x, c=0) is not None and torch.equal(poincare.project(10 * x, c=0), 10 * x)
    # continuity: a tiny curvature is close to the limit
    small = 0.01 * x
    small_y = 0.01 * y
    torch.testing.assert_close(
        poincare.dist(small, small_y, c=1e-9), poincare.dist(small, small_y, c=0), rtol=1e-8, atol=1e-12
    )
    torch.testing.assert_close(poincare.expmap0(x, c=1e-12), x, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# the embedding head and clipping
# ----------------------------------------------------------------------------------------------
def test_clip_features():
    x = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]], requires_grad=True)
    out = poincare.clip_features(x, 2.5)
    torch.testing.assert_close(out, torch.tensor([[1.5, 2.0], [0.3, 0.4], [0.0, 0.0]]))
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    with pytest.raises(ValueError):
        poincare.clip_features(x, 0.0)


def test_hyperbolic_projection_head():
    c = 0.1
    head = poincare.HyperbolicProjection(c=c, clip_r=2.3)
    assert list(head.parameters()) == []
    feats = torch.randn(64, 16, dtype=F64) * torch.logspace(-3, 3, 64, dtype=F64)[:, None]
    feats[0] = 0
    out = head(feats)
    radius = (1 - 1e-3) / math.sqrt(c)
    assert torch.all(out.norm(dim=1) <= radius + 1e-12)
    norms = feats.norm(dim=1)
    big = norms > 2.3
    # clipped rows all land at the same hyperbolic radius tanh(sqrt(c) * r) / sqrt(c)
    torch.testing.assert_close(
        out[big].norm(dim=1),
        torch.full((int(big.sum()),), math.tanh(math.sqrt(c) * 2.3) / math.sqrt(c), dtype=F64),
    )
    torch.testing.assert_close(out[~big], poincare.expmap0(feats[~big], c=c))
    # float32 gradients are finite, also for a zero feature
    f32 = feats.float().requires_grad_(True)
    head(f32).sum().backward()
    assert torch.isfinite(f32.grad).all()
    # without clipping large features hit the projection radius
    unclipped = poincare.HyperbolicProjection(c=c, clip_r=None)(feats)
    torch.testing.assert_close(unclipped[-1].norm(), torch.tensor(radius, dtype=F64))
    # c = 0: clipping only
    torch.testing.assert_close(poincare.HyperbolicProjection(c=0.0)(feats), poincare.clip_features(feats, 2.3))
    assert "clip_r=2.3" in repr(head)


# ----------------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------------
def test_invalid_arguments_raise():
    x = torch.rand(4, 3, dtype=F64) * 0.1
    for bad_c in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            poincare.dist(x, x, c=bad_c)
        with pytest.raises(ValueError):
            poincare.HyperbolicProjection(c=bad_c)
    with pytest.raises(TypeError):
        poincare.expmap0(x, c=True)
    with pytest.raises(TypeError):
        poincare.expmap0(x, c="0.1")
    with pytest.raises(ValueError):
        poincare.mobius_add(x, torch.rand(4, 2, dtype=F64))
    with pytest.raises(ValueError):
        poincare.logmap0(torch.tensor([[float("nan"), 0.0]]))
    with pytest.raises(ValueError):
        poincare.expmap0(torch.tensor([1, 2]))  # integer tensor
    with pytest.raises(ValueError):
        poincare.dist_matrix(x[0], c=1.0)  # 1-D
    with pytest.raises(ValueError):
        poincare.dist_matrix(x, torch.rand(4, 5, dtype=F64), c=1.0)
    for bad_eps in (0.0, 1.0, -1e-3):
        with pytest.raises(ValueError):
            poincare.project(x, c=1.0, eps=bad_eps)
    for bad_r in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError):
            poincare.HyperbolicProjection(clip_r=bad_r)
    with pytest.raises(ValueError):
        poincare.einstein_midpoint(x, torch.tensor([1.0, -1.0, 1.0, 1.0], dtype=F64))
    with pytest.raises(ValueError):
        poincare.einstein_midpoint(x, torch.zeros(4, dtype=F64))
    with pytest.raises(ValueError):
        poincare.einstein_midpoint(x, torch.ones(3, dtype=F64))
    with pytest.raises(ValueError):
        poincare.mobius_scalar_mul(float("nan"), x)
    with pytest.raises(ValueError):
        poincare.HyperbolicProjection()(torch.rand(3))  # not (B, D)
