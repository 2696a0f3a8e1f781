"""Run notebooks the way a student does: JupyterLab in a real (headless) browser, Run All Cells.

    python tools/lab_check.py [NOTEBOOK_STEM ...] [--out DIR] [--timeout SECONDS]

Starts JupyterLab on ``notebooks/`` (smoke budget, figures into a temporary folder), opens each
notebook in Debian's Chromium through Playwright, runs every cell from the Run menu, waits for the
kernel to finish and reports, per notebook: the images on the page, the figure files written to
``OUT_DIR``, any ``<Figure size ...>`` text a reader would see instead of a picture, and any error
output. A screenshot of each notebook's last screen, and of every figure as the page shows it, go to
``DIR`` (default ``build/lab-check``).
Exits 1 when a notebook shows an error, a bare figure text, or fewer images than it saved files.

Needs ``pip install playwright`` and ``apt-get install chromium`` (``playwright install``
downloads a browser from outside and does not work here).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lab as lab_tools

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stems", nargs="*", help="notebook stems (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "lab-check")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per notebook")
    args = parser.parse_args(argv)
    reason = lab_tools.missing()
    if reason:
        print(f"cannot run: {reason}")
        return 2
    stems = args.stems or sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    args.out.mkdir(parents=True, exist_ok=True)
    failures = 0
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        figures = scratch / "figures"
        copies = scratch / "notebooks"  # lab autosaves: serve copies
        shutil.copytree(ROOT / "notebooks", copies)
        env = lab_tools.isolated_environment(scratch, DMLKIT_SMOKE="1", DMLKIT_FIGURES=str(figures))
        with lab_tools.running_lab(copies, scratch, env) as lab, lab_tools.browser() as browser:
            for stem in stems:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                started = time.perf_counter()
                try:
                    lab_tools.open_notebook(page, lab.url(f"{stem}.ipynb", workspace=f"check-{stem}"))
                    lab_tools.run_all(page, args.timeout)
                except Exception as exc:  # report and go on with the next notebook
                    print(f"{stem}: did not finish: {exc}")
                    failures += 1
                seconds = time.perf_counter() - started
                images = page.locator(".jp-OutputArea-output img").count()
                bare = page.locator(".jp-OutputArea-output pre:has-text('<Figure size')").count()
                errors = page.locator(
                    ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']:has-text('Error')"
                ).count()
                saved = len([p for p in (Path(figures) / stem).rglob("*.png")])
                page.screenshot(path=str(args.out / f"{stem}.png"))
                for i in range(images):  # each figure as the reader sees it, scaled to the cell
                    image = page.locator(".jp-OutputArea-output img").nth(i)
                    image.scroll_into_view_if_needed(timeout=10_000)
                    image.screenshot(path=str(args.out / f"{stem}-figure{i}.png"), timeout=10_000)
                ok = errors == 0 and bare == 0 and images >= saved > 0
                failures += not ok
                print(
                    f"{stem}: {seconds:5.0f} s, {saved} figure files saved, {images} images shown, "
                    f"{bare} bare <Figure> texts, {errors} error outputs -> {'ok' if ok else 'FAIL'}",
                    flush=True,
                )
                page.close()
    print(f"screenshots in {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
