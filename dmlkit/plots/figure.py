"""Saving and showing figures, and the colours every figure shares."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure
from torch import Tensor

__all__ = ["panel_grid", "save_figure", "show", "class_colors"]


def save_figure(fig: Figure, path: str | os.PathLike | None, dpi: int = 120) -> Figure:
    """Save ``fig`` to ``path`` (creating folders) when a path is given; return the figure."""
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return fig


def show(fig: Figure, path: str | os.PathLike | None = None, dpi: int = 120) -> None:
    """Save ``fig`` to ``path`` (a ``.png``; folders are created) and show it inline, once.

    The image shown is the saved file itself (the same bytes), published as ``image/png`` with
    its file name in the output's metadata, so what a reader sees in JupyterLab or VS Code, what
    an executed notebook keeps and what lands in ``OUT_DIR`` are one picture. Outside a Jupyter
    kernel (a script, a plain Python shell) the figure is only saved. Returns ``None`` on purpose:
    a cell ending in ``show(...)`` has no value left for IPython to display a second time.
    """
    if not isinstance(fig, Figure):
        raise TypeError(f"show() expects a matplotlib Figure, got {type(fig).__name__}")
    if path is not None:
        path = Path(path)
        if path.suffix.lower() != ".png":
            raise ValueError(f"show() saves PNG files; got {str(path)!r} (use a name ending in .png)")
        if path.parent.exists() and not path.parent.is_dir():
            raise NotADirectoryError(f"cannot save {path.name}: {path.parent} is not a folder")
        save_figure(fig, path, dpi=dpi)
        png = path.read_bytes()
    else:
        import io

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        png = buffer.getvalue()
    if _in_jupyter_kernel():
        import base64

        from IPython.display import display

        name = path.name if path is not None else "figure"
        display(
            {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": f"[figure: {name}]"},
            raw=True,
            metadata={"image/png": {"dmlkit_figure": name}},
        )


def _in_jupyter_kernel() -> bool:
    """True inside an IPython kernel (JupyterLab, VS Code, papermill), False in a script."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def panel_grid(count: int, ncols: int | None, panel_size: tuple[float, float] = (4.0, 4.0)) -> tuple[Figure, list]:
    """A figure of ``count`` panels in rows of at most ``ncols`` (all in one row when ``None``),
    each ``panel_size`` inches; returns the figure and the ``count`` axes in reading order, the
    grid's spare axes already hidden."""
    if count < 1:
        raise ValueError(f"a panel grid needs at least one panel, got {count}")
    ncols = min(ncols or count, count)
    nrows = math.ceil(count / ncols)
    fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows))
    axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
    for ax in axes[count:]:
        ax.set_axis_off()
    return fig, axes[:count]


def class_colors(num_classes: int, seed: int = 0) -> np.ndarray:
    """RGBA colours for many classes: the 60 colours of tab20, tab20b and tab20c, shuffled with a
    fixed seed so neighbouring labels rarely share a hue, repeated when there are more classes."""
    palette = np.concatenate([colormaps[name](np.arange(20)) for name in ("tab20", "tab20b", "tab20c")])
    palette = palette[np.random.default_rng(seed).permutation(len(palette))]
    return palette[np.arange(num_classes) % len(palette)]


def _numpy(x: Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _check_rows(name: str, array: np.ndarray, rows: int | None = None, cols: int | None = None) -> None:
    if (
        array.ndim != 2
        or (rows is not None and array.shape[0] != rows)
        or (cols is not None and array.shape[1] != cols)
    ):
        expected = f"({rows if rows is not None else 'N'}, {cols if cols is not None else 'D'})"
        raise ValueError(f"{name} must have shape {expected}, got {tuple(array.shape)}")


def _group_colors(groups: Sequence[str]) -> dict[str, Any]:
    palette = colormaps["tab10"](np.arange(10))
    return {group: palette[i % 10] for i, group in enumerate(groups)}


_METRIC_NAMES = {"map@r": "MAP@R", "recall@1": "Recall@1", "r_precision": "R-Precision"}


def _episode_colors(n_way: int) -> np.ndarray:
    """tab10's distinct colours for the few classes of an episode; :func:`class_colors` beyond 10."""
    return colormaps["tab10"](np.arange(n_way)) if n_way <= 10 else class_colors(n_way)
