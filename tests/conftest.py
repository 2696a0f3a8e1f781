"""Shared fixtures: a small glyph set rendered once per test session into a temporary cache."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def data_root(tmp_path_factory):
    """A private DMLKIT_DATA so tests never touch the user's cache."""
    return tmp_path_factory.mktemp("dmlkit-data")


@pytest.fixture(autouse=True)
def _private_data_dir(data_root, monkeypatch):
    monkeypatch.setenv("DMLKIT_DATA", str(data_root))


@pytest.fixture(scope="session")
def small_glyphs(data_root):
    """(train, test) of a 40-class, 10-image glyph set (class-disjoint)."""
    import os

    from dmlkit.data import load

    old = os.environ.get("DMLKIT_DATA")
    os.environ["DMLKIT_DATA"] = str(data_root)
    try:
        options = dict(num_classes=40, images_per_class=10, seed=3)
        return load("glyphs", split="train", **options), load("glyphs", split="test", **options)
    finally:
        if old is None:
            os.environ.pop("DMLKIT_DATA")
        else:
            os.environ["DMLKIT_DATA"] = old
