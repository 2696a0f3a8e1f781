"""Select a dataset by name: ``load("glyphs", split="test")``.

Notebooks carry the dataset name in their ``DATASET`` parameter; :func:`load` turns it into a
dataset with ``.labels`` and ``.classes``. :func:`register` adds a loader under a new name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from dmlkit.data.base import LabelledDataset

__all__ = ["load", "register", "available", "DATASETS"]

#: name -> "module:function" (imported on first use, so a missing optional dependency of one
#: loader never breaks the others) or a callable.
DATASETS: dict[str, str | Callable[..., LabelledDataset]] = {
    "glyphs": "dmlkit.data.glyphs:load_glyphs",
    "fashion_mnist": "dmlkit.data.fashion_mnist:load_fashion_mnist",
    "digits": "dmlkit.data.digits:load_digits",
    "cub200": "dmlkit.data.benchmarks:load_cub200",
    "cars196": "dmlkit.data.benchmarks:load_cars196",
    "sop": "dmlkit.data.benchmarks:load_sop",
}


def register(name: str, loader: Callable[..., LabelledDataset]) -> None:
    """Make ``loader(split=..., **options)`` available as ``load(name, ...)``."""
    if not callable(loader):
        raise TypeError(f"loader for {name!r} must be callable")
    DATASETS[name] = loader


def available() -> list[str]:
    """The dataset names :func:`load` accepts."""
    return sorted(DATASETS)


def _resolve(name: str) -> Callable[..., LabelledDataset]:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(available())}")
    entry = DATASETS[name]
    if callable(entry):
        return entry
    module, function = entry.split(":")
    return getattr(importlib.import_module(module), function)


def load(name: str, split: str = "train", **options: Any) -> LabelledDataset:
    """Load split ``split`` (``"train"``, ``"test"`` or ``"all"``) of dataset ``name``.

    ``options`` go to the dataset's loader (e.g. ``num_classes=`` for glyphs, ``root=`` for the
    on-disk benchmarks). The result is a torch ``Dataset`` with ``.labels`` and ``.classes``.
    """
    return _resolve(name)(split=split, **options)
