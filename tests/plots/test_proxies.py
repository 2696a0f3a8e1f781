"""The proxy-family figures of dmlkit.plots: they draw, save, and refuse malformed input."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from dmlkit import plots


def _circle(degrees):
    a = np.deg2rad(np.asarray(degrees, dtype=float))
    return np.stack([np.cos(a), np.sin(a)], axis=1)


def _panel(**changes):
    panel = dict(
        embeddings=_circle([0, 30, 120, 150]),
        labels=np.array([0, 0, 1, 1]),
        proxies=_circle([15, 135]),
        proxy_labels=np.array([0, 1]),
        embedding_forces=np.array([[0.0, 0.1], [0.0, -0.1], [0.0, 0.0], [0.1, 0.0]]),
        proxy_forces=np.array([[0.0, 0.05], [0.0, 0.0]]),
        pair_weights=np.array([[-1.0, 0.2], [-0.5, 0.1], [0.3, -0.8], [0.0, -0.1]]),
    )
    panel.update(changes)
    return panel


def test_plot_proxy_forces_draws_and_saves(tmp_path):
    path = tmp_path / "forces.png"
    fig = plots.plot_proxy_forces({"a": _panel(), "b": _panel(pair_weights=None, proxy_forces=None)}, save=path)
    assert isinstance(fig, Figure) and path.exists()
    assert len(fig.axes) == 2


def test_plot_proxy_forces_accepts_zero_forces():
    fig = plots.plot_proxy_forces({"still": _panel(embedding_forces=np.zeros((4, 2)), proxy_forces=np.zeros((2, 2)))})
    assert isinstance(fig, Figure)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"pair_weights": np.zeros((3, 2))}, "pair_weights"),
        ({"embedding_forces": np.zeros((4, 3))}, "embedding_forces"),
        ({"proxies": np.zeros((2, 3))}, "proxies"),
        ({"labels": np.array([0, 1])}, "one label"),
    ],
)
def test_plot_proxy_forces_rejects_bad_shapes(changes, message):
    with pytest.raises(ValueError, match=message):
        plots.plot_proxy_forces({"bad": _panel(**changes)})


def test_plot_proxy_forces_rejects_missing_keys_and_bad_emphasis():
    with pytest.raises(ValueError, match="lacks"):
        plots.plot_proxy_forces({"bad": {"embeddings": np.zeros((2, 2))}})
    with pytest.raises(ValueError, match="emphasis"):
        plots.plot_proxy_forces({"a": _panel()}, emphasis=0)
    with pytest.raises(ValueError, match="at least one panel"):
        plots.plot_proxy_forces({})


def test_umap_with_proxies_maps_normalised_rows_jointly(monkeypatch, tmp_path):
    # UMAP itself runs in the notebooks' smoke tests; here a stand-in records what it is given
    # (its first call compiles numba code for ~10 s).
    seen = {}

    def fake_umap_2d(x, n_neighbors=15, distance="cosine", seed=0, min_dist=0.1):
        seen.update(x=x, distance=distance, n_neighbors=n_neighbors)
        return x[:, :2].numpy() * 10.0

    monkeypatch.setattr(plots.embedding_maps, "umap_2d", fake_umap_2d)
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(12, 5, generator=generator, dtype=torch.float64) * 3.0
    proxies = torch.randn(3, 5, generator=generator, dtype=torch.float64) * 7.0
    coords, proxy_coords = plots.umap_with_proxies(embeddings, proxies, n_neighbors=4)
    joint = seen["x"]
    assert joint.shape == (15, 5) and seen["distance"] == "cosine" and seen["n_neighbors"] == 4
    torch.testing.assert_close(joint.norm(dim=1), torch.ones(15))
    torch.testing.assert_close(joint[12:].double(), proxies / proxies.norm(dim=1, keepdim=True), atol=1e-6, rtol=0)
    assert coords.shape == (12, 2) and proxy_coords.shape == (3, 2)
    np.testing.assert_allclose(proxy_coords, joint[12:, :2].numpy() * 10.0)
    path = tmp_path / "grid.png"
    labels = torch.arange(3).repeat_interleave(4)
    fig = plots.umap_grid({"m": (coords, labels, proxy_coords, torch.arange(3))}, highlight=[0, 1], save=path)
    assert isinstance(fig, Figure) and path.exists()
    fig = plots.umap_grid({"m": (coords, labels, proxy_coords, torch.arange(3))})
    assert isinstance(fig, Figure)


def test_umap_with_proxies_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match="share D"):
        plots.umap_with_proxies(torch.zeros(10, 4), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="at least one proxy"):
        plots.umap_with_proxies(torch.randn(10, 4), torch.zeros(0, 4))


def test_umap_grid_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one map"):
        plots.umap_grid({})
    with pytest.raises(ValueError, match="3 points but 2 labels"):
        plots.umap_grid({"m": (np.zeros((3, 2)), np.array([0, 1]), np.zeros((1, 2)), np.array([0]))})
    with pytest.raises(ValueError, match="1 proxies but 2 proxy labels"):
        plots.umap_grid({"m": (np.zeros((2, 2)), np.array([0, 1]), np.zeros((1, 2)), np.array([0, 1]))})
    with pytest.raises(ValueError, match="expected"):
        plots.umap_grid({"m": (np.zeros((2, 2)),)})


def test_plot_scaling(tmp_path):
    path = tmp_path / "scaling.png"
    panels = {
        "ms": {"a": ([100, 1000, 10000], [1.0, 5.0, 40.0]), "b": ([100, 1000, 10000], [2.0, 2.0, 2.0])},
        "accuracy": {"a": ([100, 1000, 10000], [0.5, 0.4, 0.3])},
    }
    fig = plots.plot_scaling(panels, xlabel="classes", logy=("ms",), save=path)
    assert isinstance(fig, Figure) and path.exists()
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["100", "1,000", "10,000"]
    assert fig.axes[0].get_yscale() == "log" and fig.axes[1].get_yscale() == "linear"


def test_plot_scaling_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one panel"):
        plots.plot_scaling({}, xlabel="x")
    with pytest.raises(ValueError, match="logy"):
        plots.plot_scaling({"a": {"s": ([1, 2], [1, 2])}}, xlabel="x", logy=("b",))
