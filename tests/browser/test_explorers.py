"""Every notebook's explorer works live in JupyterLab, in a real browser.

For each notebook, a copy holding its cells up to the explorer cell (tagged ``explorer``) is
served by JupyterLab at the smoke budget with one seed; the test runs it as a student does
(Run All Cells), then checks what the explorer promises: its readout is printed, moving its
first slider changes the readout and redraws the picture, the notebook's figures above it are
shown as images, and no cell printed an error. A screenshot of each explorer goes to
``build/browser/<stem>.png``.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import nbformat
import pytest

from tests.browser.conftest import ROOT, lab_tools

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def explorer_index(nb) -> int | None:
    for i, cell in enumerate(nb.cells):
        if "explorer" in cell.get("metadata", {}).get("tags", []):
            return i
    return None


def trimmed_copy(path: Path, folder: Path) -> Path:
    """The notebook up to its explorer cell, one seed (the verdicts' seeds are not under test)."""
    nb = nbformat.read(str(path), as_version=4)
    index = explorer_index(nb)
    assert index is not None, f"{path.name} has no cell tagged 'explorer'"
    nb.cells = nb.cells[: index + 1]
    for cell in nb.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            cell.source = re.sub(r"^SEEDS = \d+", "SEEDS = 1", cell.source, flags=re.M)
    out = folder / path.name
    nbformat.write(nb, str(out))
    return out


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    if lab_tools.missing():
        pytest.skip(lab_tools.missing())
    scratch = tmp_path_factory.mktemp("lab")
    notebooks = scratch / "notebooks"
    notebooks.mkdir()
    figures = scratch / "figures"
    for path in NOTEBOOKS:
        if explorer_index(nbformat.read(str(path), as_version=4)) is not None:
            trimmed_copy(path, notebooks)
    env = lab_tools.isolated_environment(scratch, DMLKIT_SMOKE="1", DMLKIT_FIGURES=str(figures))
    with lab_tools.running_lab(notebooks, scratch, env) as lab:
        yield lab, figures


def picture(explorer) -> str:
    sources = [img.get_attribute("src") or "" for img in explorer.locator("img").all()]
    return hashlib.sha1("".join(sources).encode()).hexdigest() if any(sources) else ""


def readout(explorer) -> str:
    return "\n".join(t.strip() for t in explorer.locator(".jp-OutputArea-output pre").all_inner_texts()).strip()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_explorer_moves_live(path, lab_server, chromium_browser, screenshots):
    lab, figures = lab_server
    assert explorer_index(nbformat.read(str(path), as_version=4)) is not None, f"{path.name} has no explorer cell"
    page = chromium_browser.new_page(viewport={"width": 1400, "height": 1000})
    started = time.perf_counter()
    try:
        lab_tools.open_notebook(page, lab.url(path.name, workspace=path.stem))
        lab_tools.run_all(page, timeout=900)
        assert not lab_tools.error_outputs(page), f"{path.stem}: error output: {lab_tools.error_outputs(page)[:1]}"
        explorer = page.locator(".dmlkit-explorer").first
        explorer.wait_for(timeout=60_000)
        explorer.scroll_into_view_if_needed()
        page.wait_for_function("() => document.querySelector('.dmlkit-explorer img') !== null", timeout=60_000)
        before_text, before_image = readout(explorer), picture(explorer)
        assert before_text, f"{path.stem}: the explorer printed no readout"
        assert before_image, f"{path.stem}: the explorer drew no picture"

        handle = explorer.locator(".noUi-handle").first
        assert handle.count(), f"{path.stem}: the explorer has no slider"
        handle.focus()
        for _ in range(4):
            page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "(old) => { const p = document.querySelectorAll('.dmlkit-explorer .jp-OutputArea-output pre');"
            " return Array.from(p).map(e => e.innerText.trim()).join('\\n').trim() !== old; }",
            arg=before_text,
            timeout=60_000,
        )
        page.wait_for_timeout(500)
        after_text, after_image = readout(explorer), picture(explorer)
        assert after_text != before_text, f"{path.stem}: moving the slider did not change the readout"
        assert after_image and after_image != before_image, f"{path.stem}: moving the slider did not redraw"
        explorer.screenshot(path=str(screenshots / f"{path.stem}.png"))

        saved = sorted((figures / path.stem).rglob("*.png")) if (figures / path.stem).exists() else []
        shown = page.locator(".jp-OutputArea-output img").count()
        assert shown >= len(saved) + 1, f"{path.stem}: {len(saved)} figures saved but {shown} images on the page"
        assert not page.locator(".jp-OutputArea-output pre:has-text('<Figure size')").count()
    finally:
        print(f"{path.stem}: {time.perf_counter() - started:.0f} s in the browser")
        page.close()
