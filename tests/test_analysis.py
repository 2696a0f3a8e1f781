import numpy as np
import pytest
import torch
from scipy.stats import entropy

from dmlkit.analysis import embedding_density, generalisation_gap, spectral_decay


def reference_rho(x: np.ndarray, drop: int = 1) -> float:
    """Roth et al.'s ρ written plainly with NumPy/SciPy: KL(uniform || normalised spectrum)."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = np.linalg.svd(x, compute_uv=False)[drop:]
    s = s / s.sum()
    return float(entropy(np.full_like(s, 1 / len(s)), s))


@pytest.mark.parametrize("shape", [(200, 16), (50, 64), (1000, 8)])
def test_spectral_decay_matches_reference(shape):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0)) + 0.3
    assert spectral_decay(x) == pytest.approx(reference_rho(x.numpy().astype(np.float64)), rel=1e-9)
    assert spectral_decay(x, drop=0) == pytest.approx(reference_rho(x.numpy().astype(np.float64), drop=0), rel=1e-9)


def test_spectral_decay_orders_compression():
    g = torch.Generator().manual_seed(1)
    spread = torch.randn(2000, 32, generator=g)
    low_rank = torch.randn(2000, 3, generator=g) @ torch.randn(3, 32, generator=g) + 1e-3 * torch.randn(
        2000, 32, generator=g
    )
    assert spectral_decay(spread) < 0.05
    assert spectral_decay(low_rank) > 1.0
    # scale invariance of rows
    assert spectral_decay(spread * 5) == pytest.approx(spectral_decay(spread))


def test_spectral_decay_errors():
    with pytest.raises(ValueError, match="at least 2 singular values"):
        spectral_decay(torch.randn(10, 2), drop=1)
    with pytest.raises(ValueError, match="NaN"):
        spectral_decay(torch.full((4, 4), float("nan")))


def test_density_plain_loop():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(30, 5, generator=g, dtype=torch.float64)
    labels = torch.tensor([0] * 10 + [1] * 12 + [2] * 7 + [3])
    xn = x / x.norm(dim=1, keepdim=True)
    intra = []
    for c in range(3):
        m = xn[labels == c]
        d = [float((m[i] - m[j]).norm()) for i in range(len(m)) for j in range(len(m)) if i != j]
        intra.append(np.mean(d))
    means = torch.stack([xn[labels == c].mean(0) for c in range(4)])
    inter = np.mean([float((means[i] - means[j]).norm()) for i in range(4) for j in range(4) if i != j])
    assert embedding_density(x, labels) == pytest.approx(np.mean(intra) / inter, rel=1e-10)


def test_generalisation_gap():
    gap = generalisation_gap({"map@r": 0.8, "recall@1": 0.9}, {"map@r": 0.5, "recall@1": 0.7, "x": 1})
    assert gap["map@r"]["gap"] == pytest.approx(0.3) and set(gap) == {"map@r", "recall@1"}
