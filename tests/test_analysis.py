import numpy as np
import pytest
import torch
from scipy.stats import entropy
from sklearn.decomposition import TruncatedSVD

from dmlkit.analysis import embedding_density, generalisation_gap, spectral_decay


def authors_rho(x: np.ndarray, mode: int = 1) -> float:
    """ρ as the authors' ``metrics/rho_spectrum.py`` computes it: scikit-learn's
    TruncatedSVD(n_components=D-1) of the L2-normalised, uncentred embeddings (here with the exact
    ARPACK solver), ``s = s[mode-1:]``, then KL(uniform || s / sum s)."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = TruncatedSVD(n_components=x.shape[1] - 1, algorithm="arpack", tol=0).fit(x).singular_values_
    s = s[mode - 1 :]
    s = s / s.sum()
    return float(entropy(np.full_like(s, 1 / len(s)), s))


@pytest.mark.parametrize("shape", [(200, 16), (300, 64), (1000, 8)])
@pytest.mark.parametrize("mode", [1, 2])
def test_spectral_decay_is_the_authors_rho(shape, mode):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 0.3
    assert spectral_decay(x, mode=mode) == pytest.approx(authors_rho(x.numpy(), mode), rel=1e-8)


def test_rho_at_1_keeps_the_largest_singular_value():
    """A large first singular value (a shifted Gaussian): ρ@1 counts it, ρ@2 does not."""
    x = torch.randn(6000, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 1.0
    rho1, rho2 = spectral_decay(x), spectral_decay(x, mode=2)
    assert rho1 == pytest.approx(authors_rho(x.numpy(), 1), rel=1e-8)
    assert rho1 == pytest.approx(0.0736, abs=2e-3) and rho2 < 0.005
    assert rho1 > 30 * rho2


def test_rho_leaves_out_the_smallest_singular_value():
    """Embeddings in a (D-1)-dimensional subspace: the near-zero last singular value is not counted
    (TruncatedSVD keeps D-1), so ρ stays that of the D-1 directions used."""
    g = torch.Generator().manual_seed(3)
    flat = torch.randn(2000, 16, generator=g, dtype=torch.float64)
    flat[:, -1] = 1e-9 * torch.randn(2000, generator=g, dtype=torch.float64)
    assert spectral_decay(flat) == pytest.approx(authors_rho(flat.numpy(), 1), rel=1e-8)
    assert spectral_decay(flat) < 0.05


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
        spectral_decay(torch.randn(10, 3), mode=2)
    with pytest.raises(ValueError, match="mode must be an integer >= 1"):
        spectral_decay(torch.randn(10, 3), mode=0)
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
