"""Browser tests: JupyterLab in headless Chromium through Playwright (``tools/lab.py``).

Marked ``browser``; a machine without Chromium or the playwright package skips them and says
how to install both. Screenshots go to ``build/browser/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import lab as lab_tools  # noqa: E402

SCREENSHOTS = ROOT / "build" / "browser"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium_browser():
    reason = lab_tools.missing()
    if reason:
        pytest.skip(reason)
    with lab_tools.browser() as instance:
        yield instance


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
