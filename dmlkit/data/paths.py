"""Where dmlkit keeps and looks for data on disk."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_dir", "DatasetNotFoundError"]


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not on disk; the message lists every place looked and how to get them."""


def data_dir() -> Path:
    """The root of dmlkit's data: ``$DMLKIT_DATA`` if set, else the user cache directory.

    The user cache directory is ``$XDG_CACHE_HOME/dmlkit`` (``~/.cache/dmlkit`` by default).
    Rendered glyph datasets are cached under ``<data_dir>/glyphs``.
    """
    override = os.environ.get("DMLKIT_DATA")
    if override:
        return Path(override).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache_home) / "dmlkit"
