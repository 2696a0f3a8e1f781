"""One switch between a live JupyterLab session and a headless run.

A student who opens a notebook in JupyterLab should be able to move a slider and watch a figure
change; ``dmlkit figures``, the tests and nbval must still get one static picture per cell. Both
come from the same notebook code through :func:`is_live`:

* **live** — inside a Jupyter kernel, with ipywidgets installed, and the environment variable
  :data:`HEADLESS_ENV` (``DMLKIT_HEADLESS``) unset or ``0``;
* **headless** — everything else. ``dmlkit figures`` (:func:`dmlkit.figures.run_notebook`),
  the notebook tests and ``make nbval`` set ``DMLKIT_HEADLESS=1`` for their kernels.

What follows the switch:

* :func:`explore` — an explorer: live, the controls (ipywidgets) and an output area redrawn on
  every change; headless, one call with the controls' default values, whose figure is saved and
  shown like every other figure of the kit (:func:`dmlkit.plots.show`), so the executed notebook
  holds a real ``image/png`` in that cell;
* :func:`progress_bar` of :mod:`dmlkit.train` — a widget bar live, text headless (a widget bar in
  an executed notebook is frozen at 0 %);
* :class:`TrainingMonitor` — the loss and held-out metrics of a run redrawn in place every
  evaluation (``fit(..., monitor=...)``) live; headless only the last frame is drawn.
"""

from __future__ import annotations

import numbers
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "HEADLESS_ENV",
    "Choice",
    "Slider",
    "Toggle",
    "TrainingMonitor",
    "explore",
    "is_live",
]

#: The environment variable that forces headless behaviour (any value but ``""`` and ``"0"``).
HEADLESS_ENV = "DMLKIT_HEADLESS"


def is_live() -> bool:
    """True in an interactive Jupyter kernel with ipywidgets, unless ``DMLKIT_HEADLESS`` is set."""
    if os.environ.get(HEADLESS_ENV, "") not in ("", "0"):
        return False
    if "ipykernel" not in sys.modules:
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


# --------------------------------------------------------------------------- controls


@dataclass(frozen=True)
class Slider:
    """A number between ``min`` and ``max``; ``value`` is the default (the headless value).
    Integers everywhere give an integer slider."""

    value: float
    min: float
    max: float
    step: float | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        for name in ("value", "min", "max"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise ValueError(f"Slider.{name} must be a number, got {v!r}")
        if not self.min <= self.value <= self.max:
            raise ValueError(f"Slider value {self.value} lies outside [{self.min}, {self.max}]")
        if self.step is not None and not self.step > 0:
            raise ValueError(f"Slider.step must be positive, got {self.step}")

    @property
    def integer(self) -> bool:
        parts = (self.value, self.min, self.max) + ((self.step,) if self.step is not None else ())
        return all(isinstance(v, numbers.Integral) for v in parts)

    def widget(self, name: str) -> Any:
        import ipywidgets as widgets

        kind = widgets.IntSlider if self.integer else widgets.FloatSlider
        step = self.step if self.step is not None else (1 if self.integer else (self.max - self.min) / 100)
        options = {} if self.integer else {"readout_format": ".3g"}
        return kind(
            value=self.value,
            min=self.min,
            max=self.max,
            step=step,
            description=self.label or name,
            continuous_update=False,
            style={"description_width": "initial"},
            **options,
        )


@dataclass(frozen=True)
class Choice:
    """One of ``options``; ``value`` is the default."""

    value: Any
    options: Sequence[Any]
    label: str | None = None

    def __post_init__(self) -> None:
        if self.value not in list(self.options):
            raise ValueError(f"Choice value {self.value!r} is not one of {list(self.options)!r}")

    def widget(self, name: str) -> Any:
        import ipywidgets as widgets

        return widgets.Dropdown(options=list(self.options), value=self.value, description=self.label or name)


@dataclass(frozen=True)
class Toggle:
    """On or off; ``value`` is the default."""

    value: bool
    label: str | None = None

    def widget(self, name: str) -> Any:
        import ipywidgets as widgets

        return widgets.Checkbox(value=bool(self.value), description=self.label or name, indent=False)


Control = Slider | Choice | Toggle


def _show_result(result: Any, path: Path | None) -> None:
    from matplotlib.figure import Figure

    if isinstance(result, Figure):
        import matplotlib.pyplot as plt

        from dmlkit.plots import show

        show(result, path)
        plt.close(result)


def explore(
    fn: Callable[..., Any],
    out: str | os.PathLike | None = None,
    *,
    live: bool | None = None,
    **controls: Control,
) -> dict[str, Any]:
    """Show ``fn`` with controls a student can move (live) or once at the defaults (headless).

    ``fn(**values)`` draws: it returns a matplotlib ``Figure`` (shown, and closed) and may print
    a readout (the numbers the explorer promises). ``controls`` name ``fn``'s keyword arguments:
    :class:`Slider`, :class:`Choice` or :class:`Toggle`, each with its default ``value``.
    ``out`` is where the headless figure is saved (a ``.png`` path, as :func:`dmlkit.plots.show`
    takes); live redraws are not saved. ``live`` overrides :func:`is_live`.

    Returns the values ``fn`` was last called with (the defaults when headless)."""
    if not callable(fn):
        raise TypeError(f"explore() needs a function to draw, got {type(fn).__name__}")
    for name, control in controls.items():
        if not isinstance(control, (Slider, Choice, Toggle)):
            raise TypeError(f"control {name!r} must be a Slider, Choice or Toggle, got {type(control).__name__}")
    values = {name: control.value for name, control in controls.items()}
    path = Path(out) if out is not None else None
    if not (is_live() if live is None else live):
        _show_result(fn(**values), path)
        return values

    import ipywidgets as widgets
    from IPython.display import display

    inputs = {name: control.widget(name) for name, control in controls.items()}
    output = widgets.Output()

    def redraw(change: Any = None) -> None:
        values.update({name: w.value for name, w in inputs.items()})
        with output:
            output.clear_output(wait=True)
            _show_result(fn(**values), None)

    for w in inputs.values():
        w.observe(redraw, names="value")
    panel = widgets.VBox([widgets.HBox(list(inputs.values()), layout=widgets.Layout(flex_flow="row wrap")), output])
    panel.add_class("dmlkit-explorer")
    display(panel)
    redraw()
    return values


# --------------------------------------------------------------------------- live training


class TrainingMonitor:
    """The training loss and the held-out metrics of one run, redrawn as it trains.

    Give it to :func:`dmlkit.train.fit` (``monitor=``): ``update(history)`` is called after every
    evaluation (``eval_every``) and ``close(history)`` at the end (also after an interrupt).
    Live, the figure is redrawn in place (one display handle); headless, nothing is drawn until
    ``close``, which shows the last frame once (saved to ``out`` when given).
    """

    def __init__(self, title: str = "training", out: str | os.PathLike | None = None, live: bool | None = None):
        self.title = title
        self.out = Path(out) if out is not None else None
        self.live = is_live() if live is None else live
        self._handle: Any = None
        self.frames = 0

    def _figure(self, history: Any) -> Any:
        import matplotlib.pyplot as plt

        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
        left.plot(history.steps, history.losses, color="0.3")
        left.set(xlabel="step", ylabel="training loss", title=self.title)
        evaluations = history.evaluations
        for key, label in (("recall@1", "Recall@1"), ("map@r", "MAP@R")):
            points = [(e["step"], 100 * e[key]) for e in evaluations if key in e]
            if points:
                right.plot(*zip(*points), marker="o", label=label)
        right.set(xlabel="step", ylabel="held-out, %", ylim=(0, 100), title="held-out retrieval")
        if evaluations:
            right.legend(loc="lower right")
        fig.tight_layout()
        return fig

    def update(self, history: Any) -> None:
        if not self.live:
            return
        import base64
        import io

        import matplotlib.pyplot as plt
        from IPython.display import display

        fig = self._figure(history)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        data = {"image/png": base64.b64encode(buffer.getvalue()).decode("ascii"), "text/plain": "[training]"}
        if self._handle is None:
            self._handle = display(data, raw=True, display_id=True)
        else:
            self._handle.update(data, raw=True)
        self.frames += 1

    def close(self, history: Any) -> None:
        if self.live:
            self.update(history)
            return
        import matplotlib.pyplot as plt

        from dmlkit.plots import show

        fig = self._figure(history)
        show(fig, self.out)
        plt.close(fig)
        self.frames += 1
