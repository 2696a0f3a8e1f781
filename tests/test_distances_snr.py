"""The SNR distance (Yuan et al., CVPR 2019): against pytorch-metric-learning (PML) and the plain
formula, and its properties — asymmetry, invariance to a common scale (and to constant offsets),
a clear error for an anchor without signal, finite gradients on degenerate but valid inputs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning import distances as pml_distances

from dmlkit.distances import SNRDistance, get_distance, snr_distance, snr_ranking_embeddings

ATOL = 1e-6


def batch(rows: int = 12, dim: int = 16, seed: int = 0, unit: bool = True) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, dim, generator=generator, dtype=torch.float64)
    return F.normalize(x, dim=1) if unit else 3.0 * x + 0.5


def loop_snr(anchors: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """Var(b - a) / Var(a), one pair at a time (unbiased variances, as torch.var)."""
    out = torch.empty(len(anchors), len(others), dtype=torch.float64)
    for i, a in enumerate(anchors):
        for j, b in enumerate(others):
            out[i, j] = torch.var(b - a) / torch.var(a)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matrix_equals_pml_on_unit_norm_embeddings(seed: int) -> None:
    x = batch(seed=seed)
    y = batch(rows=7, seed=seed + 10)
    pml = pml_distances.SNRDistance()
    torch.testing.assert_close(SNRDistance()(x), pml(x), atol=ATOL, rtol=0)
    torch.testing.assert_close(SNRDistance()(x, y), pml(x, y), atol=ATOL, rtol=0)
    # the functional form does not normalise; on unit-norm rows it is the same matrix
    torch.testing.assert_close(snr_distance(x, y), pml(x, y), atol=ATOL, rtol=0)
    torch.testing.assert_close(SNRDistance().paired(x[:7], y), pml.pairwise_distance(x[:7], y), atol=ATOL, rtol=0)


def test_matrix_equals_pml_on_raw_embeddings_both_normalising() -> None:
    x = batch(unit=False)
    torch.testing.assert_close(SNRDistance()(x), pml_distances.SNRDistance()(x), atol=ATOL, rtol=0)


def test_gradient_equals_pml() -> None:
    x = batch(unit=False, seed=4)
    weights = torch.rand(len(x), len(x), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    grads = []
    for distance in (SNRDistance(), pml_distances.SNRDistance()):
        leaf = x.clone().requires_grad_(True)
        (distance(leaf) * weights).sum().backward()
        grads.append(leaf.grad)
    torch.testing.assert_close(grads[0], grads[1], atol=ATOL, rtol=0)


def test_functional_is_the_plain_formula() -> None:
    x, y = batch(rows=5, unit=False), batch(rows=4, seed=3, unit=False)
    torch.testing.assert_close(snr_distance(x, y), loop_snr(x, y), atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(
        SNRDistance(normalize_embeddings=False).paired(x[:4], y),
        loop_snr(x[:4], y).diagonal(),
        atol=1e-10,
        rtol=1e-10,
    )
    normalised = snr_distance(x, y, normalize_embeddings=True)
    torch.testing.assert_close(normalised, SNRDistance()(x, y), atol=1e-12, rtol=0)


def test_hand_example() -> None:
    a = torch.tensor([[1.0, 3.0, 1.0, 3.0]], dtype=torch.float64)
    b = a + 1.0  # a constant offset is not noise
    c = torch.tensor([[3.0, 1.0, 3.0, 1.0]], dtype=torch.float64)  # c - a = (2,-2,2,-2)
    assert snr_distance(a, b).item() == pytest.approx(0.0, abs=1e-12)
    assert snr_distance(a, c).item() == pytest.approx(4.0)  # Var = 16/3 over 4/3
    assert snr_distance(a, 2 * a).item() == pytest.approx(1.0)
    assert snr_distance(2 * a, a).item() == pytest.approx(0.25)


def test_asymmetric() -> None:
    x = batch(unit=False)
    matrix = snr_distance(x)
    assert not torch.allclose(matrix, matrix.T)
    # swapping roles divides by the other row's variance: d(a,b) Var(a) = d(b,a) Var(b)
    variances = x.var(dim=1)
    torch.testing.assert_close(matrix * variances[:, None], (matrix * variances[:, None]).T, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("scale", [1e-3, 0.5, 7.0, -2.0])
def test_invariant_to_a_common_scale(scale: float) -> None:
    x, y = batch(unit=False), batch(rows=5, seed=8, unit=False)
    distance = SNRDistance(normalize_embeddings=False)
    torch.testing.assert_close(distance(scale * x, scale * y), distance(x, y), atol=1e-9, rtol=1e-9)
    # ...but not to scaling only one side
    assert not torch.allclose(distance(2.0 * x, y), distance(x, y))


def test_invariant_to_constant_offsets() -> None:
    x, y = batch(unit=False), batch(rows=5, seed=8, unit=False)
    offsets = torch.linspace(-3, 5, len(y), dtype=torch.float64)[:, None]
    anchor_offsets = torch.linspace(2, -1, len(x), dtype=torch.float64)[:, None]
    torch.testing.assert_close(snr_distance(x, y + offsets), snr_distance(x, y), atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(snr_distance(x + anchor_offsets, y), snr_distance(x, y), atol=1e-9, rtol=1e-9)


def test_equals_squared_euclidean_on_centred_unit_vectors() -> None:
    x = batch(unit=False)
    x = F.normalize(x - x.mean(dim=1, keepdim=True), dim=1)
    torch.testing.assert_close(snr_distance(x), torch.cdist(x, x).square(), atol=1e-10, rtol=0)


@pytest.mark.parametrize("normalize", [True, False])
def test_ranking_embeddings_rank_like_the_snr_distance(normalize: bool) -> None:
    x = batch(rows=30, unit=False, seed=5)
    snr = SNRDistance(normalize_embeddings=normalize)(x)
    z = snr_ranking_embeddings(x, normalize_embeddings=normalize)
    euclidean = torch.cdist(z, z)
    assert torch.equal(snr.argsort(dim=1)[:, 1:], euclidean.argsort(dim=1)[:, 1:])


@pytest.mark.parametrize(
    "anchors",
    [
        torch.ones(1, 8, dtype=torch.float64),  # exactly constant
        torch.full((1, 8), 0.3, dtype=torch.float64) + 1e-9 * torch.arange(8.0, dtype=torch.float64),
    ],
    ids=["constant", "nearly_constant"],
)
@pytest.mark.parametrize("normalize", [True, False])
def test_anchor_without_signal_is_a_clear_error(anchors: torch.Tensor, normalize: bool) -> None:
    x = torch.cat([batch(rows=3, dim=8), anchors])
    with pytest.raises(ValueError, match="variance"):
        SNRDistance(normalize_embeddings=normalize)(x)
    with pytest.raises(ValueError, match="variance"):
        SNRDistance(normalize_embeddings=normalize).paired(x, x.flip(0))
    # a reference without signal is fine: only the anchor divides
    values = SNRDistance(normalize_embeddings=normalize)(batch(rows=3, dim=8), anchors)
    assert torch.isfinite(values).all()


def test_eps_is_the_documented_threshold() -> None:
    a = torch.tensor([[0.0, 1e-4, 0.0, 1e-4]], dtype=torch.float64)  # variance 1/3 * 1e-8
    b = torch.zeros(1, 4, dtype=torch.float64)
    assert math.isfinite(snr_distance(a, b, eps=1e-12).item())
    with pytest.raises(ValueError, match="eps"):
        snr_distance(a, b, eps=1e-6)


@pytest.mark.parametrize("kwargs", [{"eps": 0.0}, {"eps": -1e-3}, {"eps": float("nan")}, {"eps": float("inf")}])
def test_invalid_arguments(kwargs) -> None:
    with pytest.raises(ValueError):
        SNRDistance(**kwargs)
    with pytest.raises(ValueError):
        snr_distance(batch(), **kwargs)


def test_invalid_inputs() -> None:
    distance = SNRDistance()
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        distance(torch.randn(4, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="dimensions"):
        distance(batch(dim=8), batch(dim=6))
    with pytest.raises(ValueError, match="2-D"):
        distance(torch.randn(8, dtype=torch.float64))
    bad = batch()
    bad[2, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        distance(bad)
    with pytest.raises(ValueError, match="same shape"):
        distance.paired(batch(rows=4), batch(rows=5))
    with pytest.raises(ValueError):
        snr_ranking_embeddings(torch.empty(0, 4))


@pytest.mark.parametrize("normalize", [True, False])
def test_finite_gradients_on_degenerate_but_valid_inputs(normalize: bool) -> None:
    base = batch(rows=4, seed=6)
    x = torch.cat(
        [
            base,
            base[:1],  # an exact duplicate: distance 0 to row 0
            base[1:2] + 0.25,  # row 1 shifted by a constant: SNR distance 0, Euclidean not
            torch.tensor([[1e-3, -1e-3] * 8], dtype=torch.float64),  # small but real signal
        ]
    )
    references = torch.cat([x, torch.full((1, 16), 0.7, dtype=torch.float64)])  # no signal
    for distance in (SNRDistance(normalize_embeddings=normalize),):
        leaf, ref = x.clone().requires_grad_(True), references.clone().requires_grad_(True)
        values = distance(leaf, ref)
        assert torch.isfinite(values).all()
        values.sum().backward()
        assert torch.isfinite(leaf.grad).all() and torch.isfinite(ref.grad).all()
        leaf = x.clone().requires_grad_(True)
        distance.paired(leaf, leaf.flip(0)).sum().backward()
        assert torch.isfinite(leaf.grad).all()


def test_get_distance() -> None:
    """One meaning per name: "euclidean" is on the vectors as given, as in the retrieval metrics."""
    x = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 3
    euclidean, off_diagonal = get_distance("euclidean")(x), ~torch.eye(6, dtype=torch.bool)
    torch.testing.assert_close(euclidean[off_diagonal], torch.cdist(x, x)[off_diagonal])
    # the matrix form ||a||² - 2ab + ||b||² leaves a round-off square of order 1e-15 on the
    # diagonal, i.e. a distance of order 1e-8 (float64) where cdist gives exactly 0
    assert euclidean.diagonal().abs().max() < 1e-6
    torch.testing.assert_close(get_distance("squared_euclidean")(x), torch.cdist(x, x) ** 2)
    unit = torch.nn.functional.normalize(x, dim=1)
    torch.testing.assert_close(get_distance("cosine")(x), unit @ unit.T)
    with pytest.raises(ValueError, match="choose one of"):
        get_distance("manhattan")
    assert isinstance(get_distance("snr"), SNRDistance)
    assert "snr" in repr(get_distance("snr")).lower()
