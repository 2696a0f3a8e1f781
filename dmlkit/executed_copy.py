"""The executed notebook kept beside its figures, small enough to read on the repository page.

``dmlkit figures`` writes each notebook's last good run to ``figures/<stem>/<stem>.ipynb`` so
that a reader who never runs anything sees every table, verdict and figure (GitHub renders
notebooks with their outputs). Executed notebooks carry every figure as a base64 PNG, often
several MB; :func:`compact_notebook` keeps them under :data:`MAX_BYTES`:

1. each ``image/png`` output is re-encoded as a 256-colour palette PNG (plots have few colours;
   the loss is invisible at screen size);
2. if the notebook is still too large, every image is scaled down by the same factor, step by
   step, until it fits;
3. widget state and execution timing metadata are dropped (they only matter to a live kernel),
   and text overwritten with a carriage return (progress bars) is kept as a terminal shows it:
   its last state.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from typing import Any

from dmlkit.files import atomic_write_text

__all__ = ["MAX_BYTES", "compact_notebook", "terminal_text"]

#: The largest executed copy (bytes) kept beside the figures.
MAX_BYTES = 3_000_000


def _recode(data: str, scale: float) -> str:
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(data)))
    image.load()
    if scale < 1.0:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA")
    method = Image.Quantize.FASTOCTREE if image.mode == "RGBA" else Image.Quantize.MEDIANCUT
    palette = image.quantize(colors=256, method=method)
    out = io.BytesIO()
    palette.save(out, format="PNG", optimize=True)
    return base64.b64encode(out.getvalue()).decode("ascii")


_OVERWRITTEN = re.compile(r"[^\n]*\r(?!\n)")


def terminal_text(text: str) -> str:
    """``text`` as a terminal leaves it: whatever a carriage return overwrote is gone."""
    return _OVERWRITTEN.sub("", text)


def _compact(nb: dict[str, Any], originals: list[tuple[dict[str, Any], str]], scale: float) -> str:
    for data, png in originals:
        data["image/png"] = _recode(png, scale)
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def compact_notebook(source: str | Path, destination: str | Path, max_bytes: int = MAX_BYTES) -> int:
    """Write a compacted copy of the executed notebook ``source`` to ``destination``.

    Returns the size in bytes. Raises ``ValueError`` when even images at a tenth of their size
    do not bring the notebook under ``max_bytes`` (its text outputs alone are too large)."""
    nb = json.loads(Path(source).read_text(encoding="utf-8"))
    nb.get("metadata", {}).pop("widgets", None)
    originals = []
    for cell in nb.get("cells", []):
        cell.get("metadata", {}).pop("execution", None)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                text = output.get("text", "")
                output["text"] = terminal_text("".join(text) if isinstance(text, list) else text)
            data = output.get("data", {})
            data.pop("application/vnd.jupyter.widget-view+json", None)
            if "image/png" in data:
                png = data["image/png"]
                originals.append((data, "".join(png) if isinstance(png, list) else png))
    scale = 1.0
    text = _compact(nb, originals, scale)
    while len(text.encode("utf-8")) > max_bytes and originals and scale > 0.1:
        scale *= 0.8
        text = _compact(nb, originals, scale)
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise ValueError(
            f"{source}: the executed notebook is {size / 1e6:.1f} MB even with its images at {scale:.0%} "
            f"of their size; the limit is {max_bytes / 1e6:.1f} MB (its text outputs are too long)"
        )
    atomic_write_text(Path(destination), text)
    return size
