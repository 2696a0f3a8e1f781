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
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_lab(port: int, token: str, figures: Path) -> subprocess.Popen:
    env = dict(os.environ, DMLKIT_SMOKE="1", DMLKIT_FIGURES=str(figures))
    # Every cell rendered (JupyterLab 4 otherwise skips off-screen cells), no news pop-up.
    settings = figures / "lab-settings"
    for plugin, values in {
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    }.items():
        folder, name = plugin.rsplit("/", 1)
        (settings / folder).mkdir(parents=True, exist_ok=True)
        (settings / folder / f"{name}.jupyterlab-settings").write_text(json.dumps(values))
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        f"--port={port}",
        "--ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={ROOT / 'notebooks'}",
        "--ServerApp.allow_root=True",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={figures / 'lab-workspaces'}",
    ]
    lab = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return lab
        time.sleep(0.5)
    lab.kill()
    raise RuntimeError("JupyterLab did not start within 60 s")


def run_notebook(page, url: str, timeout: float) -> None:
    """Open the notebook, wait for its kernel, Run All Cells, wait until no cell is running."""
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_selector(".jp-StatusBar-Widget:has-text('Idle')", timeout=120_000)
    prompts = page.locator(".jp-CodeCell .jp-InputPrompt")
    for _ in range(3):  # a click before the kernel is really ready can be lost: try again
        page.click("li.lm-MenuBar-item:has-text('Run')")
        page.click("li.lm-Menu-item:has-text('Run All Cells')")
        for _ in range(20):
            page.wait_for_timeout(500)
            if any(t.strip() not in ("[ ]:", "") for t in prompts.all_inner_texts()):
                break
        else:
            continue
        break
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not page.locator(".jp-InputPrompt:has-text('[*]')").count():
            page.wait_for_timeout(1000)  # the last outputs arrive after the prompt changes
            if not page.locator(".jp-InputPrompt:has-text('[*]')").count():
                return
        page.wait_for_timeout(1000)
    raise TimeoutError(f"cells still running after {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stems", nargs="*", help="notebook stems (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "lab-check")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per notebook")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    stems = args.stems or sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    args.out.mkdir(parents=True, exist_ok=True)
    port, token = free_port(), secrets.token_hex(16)
    failures = 0
    with tempfile.TemporaryDirectory() as figures:
        lab = start_lab(port, token, Path(figures))
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for stem in stems:
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    started = time.perf_counter()
                    try:
                        run_notebook(
                            page,
                            f"http://127.0.0.1:{port}/lab/workspaces/check-{stem}/tree/{stem}.ipynb?reset&token={token}",
                            args.timeout,
                        )
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
                browser.close()
        finally:
            lab.terminate()
            lab.wait(timeout=30)
    print(f"screenshots in {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
