"""A hoverable UMAP map, live only: point at a glyph, see its image and its class.

Bokeh draws the map in JupyterLab with its JavaScript inlined in the page (``INLINE`` resources,
no CDN: the kit runs offline); the tooltip shows each point's image as a small PNG data URI.
Headless runs (``dmlkit figures``, tests; :func:`dmlkit.live.is_live`) draw nothing here — the
notebook's static UMAP figure is their picture.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import Tensor

from dmlkit.plots.figure import _numpy

__all__ = ["hover_map", "show_hover_map", "thumbnail"]


def thumbnail(image: np.ndarray, size: int = 40) -> str:
    """A ``data:image/png;base64,…`` URI of an image ``(C, H, W)`` with values in [0, 1]."""
    from PIL import Image

    array = np.clip(np.asarray(image, dtype=np.float64), 0, 1)
    if array.ndim == 3 and array.shape[0] in (1, 3):
        array = array[0] if array.shape[0] == 1 else np.transpose(array, (1, 2, 0))
    picture = Image.fromarray((255 * array).astype("uint8"))
    picture.thumbnail((size, size))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def hover_map(
    coords: np.ndarray | Tensor,
    labels: np.ndarray | Tensor,
    dataset: Any,
    indices: Sequence[int],
    title: str = "held-out classes (hover for the image)",
    class_names: Sequence[str] | None = None,
) -> Any:
    """A Bokeh figure of 2-D ``coords`` (one row per item of ``dataset`` at ``indices``),
    coloured by label, whose tooltip shows the item's image, index and class."""
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.palettes import Category20
    from bokeh.plotting import figure

    coords, labels = _numpy(coords), _numpy(labels).astype(int)
    if coords.ndim != 2 or coords.shape[1] != 2 or len(coords) != len(labels) or len(labels) != len(indices):
        raise ValueError(
            f"one 2-D point, label and dataset index per item: coords {coords.shape}, labels {labels.shape}, "
            f"{len(indices)} indices"
        )
    palette = Category20[20]
    names = [class_names[c] if class_names is not None else str(c) for c in labels]
    source = ColumnDataSource(
        {
            "x": coords[:, 0],
            "y": coords[:, 1],
            "color": [palette[c % 20] for c in labels],
            "label": names,
            "index": [int(i) for i in indices],
            "thumb": [thumbnail(_numpy(dataset[int(i)][0])) for i in indices],
        }
    )
    plot = figure(title=title, width=620, height=520, tools="pan,wheel_zoom,reset")
    plot.scatter("x", "y", color="color", size=6, alpha=0.8, source=source)
    plot.add_tools(
        HoverTool(
            tooltips='<div><img src="@thumb" width="40" height="40" style="image-rendering: pixelated"></div>'
            "<div>class @label, item @index</div>"
        )
    )
    plot.xaxis.visible = plot.yaxis.visible = False
    return plot


def show_hover_map(*args: Any, live: bool | None = None, **kwargs: Any) -> Any:
    """Show :func:`hover_map` live (inline Bokeh, no CDN); headless, do nothing and return ``None``."""
    from dmlkit.live import is_live

    if not (is_live() if live is None else live):
        return None
    from bokeh.io import output_notebook, show
    from bokeh.resources import INLINE

    plot = hover_map(*args, **kwargs)
    output_notebook(resources=INLINE, hide_banner=True)
    show(plot)
    return plot
