"""`make lab` works as the README says: JupyterLab starts (as root too, where it needs
``--allow-root``), the kit's kernel is there and selected, and a notebook opens with it.

`make lab` is run on a copy of the notebooks (``LAB_DIR``; lab autosaves) with its own Jupyter
directories, on a free port with a token (``LAB_ARGS``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from tests.browser.conftest import ROOT, lab_tools


def test_make_lab_starts_and_opens_a_notebook_with_the_kits_kernel(tmp_path, chromium_browser, screenshots):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    notebooks = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", notebooks)
    env = lab_tools.isolated_environment(tmp_path, DMLKIT_SMOKE="1", DMLKIT_FIGURES=str(tmp_path / "figures"))
    port, token = lab_tools.free_port(), "t" + str(time.time_ns())
    args = (
        f"--no-browser --port={port} --ip=127.0.0.1 --IdentityProvider.token={token} "
        f"--LabApp.expose_app_in_browser=True --LabApp.user_settings_dir={lab_tools.lab_settings(tmp_path / 'settings')} "
        f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}"
    )
    process = subprocess.Popen(
        ["make", "-s", "lab", f"LAB_DIR={notebooks}", f"LAB_ARGS={args}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        lab_tools.wait_for_port(process, port, timeout=300)
        page = chromium_browser.new_page(viewport={"width": 1300, "height": 900})
        specs = json.loads(page.request.get(f"http://127.0.0.1:{port}/api/kernelspecs?token={token}").text())
        assert "dmlkit" in specs["kernelspecs"], (
            f"make lab did not install the kit's kernel: {list(specs['kernelspecs'])}"
        )
        url = f"http://127.0.0.1:{port}/lab/workspaces/make-lab/tree/00_introduction.ipynb?reset&token={token}"
        lab_tools.open_notebook(page, url)
        name = lab_tools.kernel_name(page)
        assert name in ("python3", "dmlkit"), f"the notebook opened with kernel {name!r}"
        # the kernel is the kit's: it imports dmlkit from this checkout
        status = page.evaluate(
            """async () => {
              const kernel = window.jupyterapp.shell.currentWidget.context.sessionContext.session.kernel;
              const reply = await kernel.requestExecute({code: "import dmlkit, dmlkit.live"}).done;
              return reply.content.status;
            }"""
        )
        assert status == "ok", "the notebook's kernel cannot import dmlkit"
        page.screenshot(path=str(screenshots / "make_lab.png"))
        page.close()
    finally:
        import os
        import signal

        os.killpg(process.pid, signal.SIGTERM)
        try:
            out, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, _ = process.communicate()
    text = out.decode(errors="replace")
    assert "without encryption" not in text, "the lab's kernels talk over unencrypted TCP"
    assert "Running as root is not allowed" not in text, text[-2000:]
