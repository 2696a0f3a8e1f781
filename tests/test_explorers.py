"""The explorers' drawing functions: each draws a figure and prints the readout it promises,
and the numbers agree with the kit's own metrics, losses and geometry."""

import math

import pytest
import torch
from matplotlib.figure import Figure

from dmlkit import explorers
from dmlkit.evaluate import retrieval_metrics


def test_the_per_query_scores_average_to_the_kits_metrics():
    g = torch.Generator().manual_seed(0)
    embeddings = torch.randn(60, 8, generator=g)
    labels = torch.arange(6).repeat_interleave(10)
    per_query = [explorers.query_scores(embeddings, labels, q, 4) for q in range(60)]
    metrics = retrieval_metrics(embeddings, labels, ks=(4,))
    assert sum(s["ap@r"] for s in per_query) / 60 == pytest.approx(metrics["map@r"], abs=1e-6)
    assert sum(s["r_precision"] for s in per_query) / 60 == pytest.approx(metrics["r_precision"], abs=1e-6)
    assert sum(s["hit@4"] for s in per_query) / 60 == pytest.approx(metrics["recall@4"], abs=1e-6)
    with pytest.raises(ValueError, match="query must lie"):
        explorers.query_scores(embeddings, labels, 60, 4)


@pytest.mark.parametrize(
    ("draw", "controls", "readout"),
    [
        (explorers.draw_pair_losses, {"margin": 0.3, "beta": 10.0}, "weight of a negative at s = λ"),
        (explorers.draw_proxy_softmax, {"angle": 10.0}, "p(own class)"),
        (explorers.draw_ap_path, {"s": 0.2, "bins": 5, "tau": 0.1}, "exact AP"),
        (explorers.draw_snr, {"t": 1.0, "mean": 0.5}, "d_SNR"),
        (explorers.draw_poincare, {"r2": 0.99, "c": 2.0}, "d(x, y)"),
        (explorers.draw_episode, {"steps": 3}, "query accuracy"),
        (explorers.draw_spectrum, {"decay": 1.5}, "ρ@1"),
        (explorers.draw_ntxent, {"temperature": 0.2, "angle": 60.0}, "p(0b | 0a)"),
    ],
)
def test_every_explorer_draws_a_figure_and_prints_its_readout(draw, controls, readout, capsys):
    assert isinstance(draw(**controls), Figure)
    assert readout in capsys.readouterr().out


def test_the_explorers_numbers_are_the_kits():
    from dmlkit.explorers.average_precision import _batch
    from dmlkit.explorers.poincare import point, reach
    from dmlkit.geometry.poincare.operations import dist0, expmap0
    from dmlkit.losses.ap_ranking import average_precision

    embeddings, labels = _batch(0.95)  # the moved positive first: positives at ranks 1, 2, 5 of 8
    assert float(average_precision(embeddings, labels)[0]) == pytest.approx((1 + 1 + 3 / 5) / 3)
    assert explorers.draw_ap_path.__module__.endswith("average_precision")
    c = 2.0
    assert float(expmap0(torch.tensor([[5.0, 0.0]], dtype=torch.float64) / 5 * 1.3, c).norm()) == pytest.approx(
        reach(1.3, c)
    )
    x = point(0.5, 0.0, c)
    assert float(dist0(x, c)) == pytest.approx(2 / math.sqrt(c) * math.atanh(0.5))
    support, prototypes = explorers.episode.episode_prototypes((0.0, 0.0), 0)
    assert torch.equal(support, prototypes)
    _, refined = explorers.episode.episode_prototypes((0.0, 0.0), 2)
    assert not torch.allclose(refined, support)
    from dmlkit.analysis import spectral_decay
    from dmlkit.explorers.spectrum import shaped_embeddings

    assert spectral_decay(shaped_embeddings(0.2, 0.0)) < spectral_decay(shaped_embeddings(1.0, 0.0))


def test_the_hover_map_carries_each_points_image_and_is_live_only(small_glyphs, monkeypatch):
    from dmlkit.live import HEADLESS_ENV
    from dmlkit.plots.hover import hover_map, show_hover_map

    _, test = small_glyphs
    coords = torch.randn(12, 2, generator=torch.Generator().manual_seed(0))
    plot = hover_map(coords, test.labels[:12], test, range(12))
    data = plot.renderers[0].data_source.data
    assert len(data["thumb"]) == 12 and all(t.startswith("data:image/png;base64,") for t in data["thumb"])
    assert "@thumb" in plot.hover[0].tooltips
    monkeypatch.setenv(HEADLESS_ENV, "1")
    assert show_hover_map(coords, test.labels[:12], test, range(12)) is None
    with pytest.raises(ValueError, match="one 2-D point"):
        hover_map(coords[:5], test.labels[:12], test, range(12))
