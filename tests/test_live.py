"""The live/headless switch: explorers draw once headless and redraw on every control change live;
progress bars are text headless; fit keeps an interrupted run; the training monitor draws its
last frame once headless."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
from torch import nn

from dmlkit import live
from dmlkit.live import Choice, Slider, Toggle, TrainingMonitor, explore


def figure_of(margin, loss="contrastive", squared=False):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, margin])
    print(f"{loss} margin={margin} squared={squared}")
    return fig


def test_headless_explore_calls_once_with_the_defaults_and_saves(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(live.HEADLESS_ENV, "1")
    assert not live.is_live()
    values = explore(
        figure_of,
        tmp_path / "explorer.png",
        margin=Slider(0.5, 0.0, 1.0),
        loss=Choice("triplet", ["contrastive", "triplet"]),
        squared=Toggle(True),
    )
    assert values == {"margin": 0.5, "loss": "triplet", "squared": True}
    assert capsys.readouterr().out.strip() == "triplet margin=0.5 squared=True"
    assert (tmp_path / "explorer.png").read_bytes()[:4] == b"\x89PNG"


def test_live_explore_redraws_on_every_change(monkeypatch):
    import IPython.display
    import ipywidgets as widgets

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objects, **kwargs: shown.extend(objects))
    calls = []

    def draw(margin, steps):
        calls.append((margin, steps))

    values = explore(draw, live=True, margin=Slider(0.5, 0.0, 1.0, 0.1), steps=Slider(3, 1, 10))
    assert calls == [(0.5, 3)]
    (panel,) = shown  # controls above the output area, as a student sees them
    controls, output = panel.children
    assert isinstance(output, widgets.Output)
    steps = next(w for w in controls.children if w.description == "steps")
    assert isinstance(steps, widgets.IntSlider)
    steps.value = 7  # move it, as a student would
    assert calls[-1] == (0.5, 7) and values["steps"] == 7


def test_controls_refuse_impossible_defaults():
    with pytest.raises(ValueError, match="outside"):
        Slider(2.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="not one of"):
        Choice("x", ["a", "b"])
    with pytest.raises(TypeError, match="Slider, Choice or Toggle"):
        explore(figure_of, margin=0.5)


def test_progress_bar_is_text_when_headless(monkeypatch):
    from tqdm.std import tqdm as text_tqdm

    from dmlkit.train import progress_bar

    monkeypatch.setenv(live.HEADLESS_ENV, "1")
    bar = progress_bar(10, "x")
    assert type(bar) is text_tqdm
    bar.close()


class _Interrupting(nn.Module):
    """A loss that behaves like a kernel interrupt arriving at step ``at``."""

    def __init__(self, at):
        super().__init__()
        self.at, self.calls = at, 0

    def forward(self, embeddings, labels):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return embeddings.pow(2).mean()


def test_an_interrupted_fit_keeps_the_run_and_evaluates_it(small_glyphs, capsys):
    from dmlkit.models import default_model
    from dmlkit.train import fit

    train, test = small_glyphs
    model = default_model(train, embedding_size=8)
    monitor = TrainingMonitor(live=False)
    history = fit(
        model,
        _Interrupting(at=4),
        train,
        steps=20,
        P=4,
        K=2,
        eval_data=test,
        eval_every=2,
        progress=False,
        log_every=1,
        monitor=monitor,
    )
    assert history.interrupted_at == 4
    assert [e["step"] for e in history.evaluations] == [2, 4]  # the model as trained so far is evaluated
    assert "interrupted at step 4 of 20" in capsys.readouterr().out
    assert monitor.frames == 1  # headless: the last frame only


def test_the_training_monitor_redraws_in_place_when_live(monkeypatch):
    import IPython.display

    from dmlkit.train import History

    handles = []

    class Handle:
        def __init__(self):
            self.updates = 0

        def update(self, data, raw=True):
            assert "image/png" in data
            self.updates += 1

    def fake_display(data, raw=True, display_id=False):
        handles.append(Handle())
        return handles[-1]

    monkeypatch.setattr(IPython.display, "display", fake_display)
    monitor = TrainingMonitor(live=True)
    history = History(steps=[1, 2], losses=[1.0, 0.5], evaluations=[{"step": 2, "recall@1": 0.4, "map@r": 0.1}])
    monitor.update(history)
    monitor.update(history)
    monitor.close(history)
    assert monitor.frames == 3
    assert len(handles) == 1 and handles[0].updates == 2  # one picture, redrawn in place
