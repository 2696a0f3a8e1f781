"""Drive JupyterLab in a real headless browser (Debian's Chromium through Playwright).

Shared by ``tools/lab_check.py`` (run whole notebooks as a student does) and the browser tests
(``tests/browser/``: the explorers and ``make lab``). JupyterLab is started on a free
``127.0.0.1`` port with a token and its own Jupyter directories (config, data, runtime,
settings, workspaces) under a scratch folder, so nothing of the user's Jupyter set-up is read
or written; the lab app is exposed in the page (``window.jupyterapp``) so that the kernel is
waited for and commands are run through the app itself, not through the toolbar's widgets.

Needs ``pip install playwright`` and ``apt-get install chromium`` (``playwright install``
downloads a browser from outside and does not work here).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CHROMIUM_ARGS = [
    "--no-sandbox",  # as root (containers) Chromium refuses to start sandboxed
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HINT = (
    "apt-get install chromium && pip install playwright (not `playwright install`: it downloads from outside)"
)


def chromium() -> str | None:
    """The Chromium executable, or ``None``."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def missing() -> str | None:
    """Why a browser check cannot run here (with how to fix it), or ``None``."""
    if chromium() is None:
        return f"no Chromium on this machine: {INSTALL_HINT}"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return f"the playwright package is missing: {INSTALL_HINT}"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def lab_settings(folder: Path) -> Path:
    """JupyterLab user settings: every cell rendered (JupyterLab 4 otherwise skips off-screen
    cells), no news pop-up."""
    for plugin, values in {
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    }.items():
        parent, name = plugin.rsplit("/", 1)
        (folder / parent).mkdir(parents=True, exist_ok=True)
        (folder / parent / f"{name}.jupyterlab-settings").write_text(json.dumps(values))
    return folder


def isolated_environment(scratch: Path, **extra: str) -> dict[str, str]:
    """The environment of a lab server with its own Jupyter directories under ``scratch``."""
    env = dict(os.environ, **extra)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        folder = scratch / name.lower()
        folder.mkdir(parents=True, exist_ok=True)
        env[name] = str(folder)
    env.pop("DMLKIT_HEADLESS", None)  # a student's lab is live
    return env


@dataclass
class Lab:
    """A running JupyterLab server."""

    process: subprocess.Popen
    port: int
    token: str

    def url(self, path: str, workspace: str = "check") -> str:
        return f"http://127.0.0.1:{self.port}/lab/workspaces/{workspace}/tree/{path}?reset&token={self.token}"


def wait_for_port(process: subprocess.Popen, port: int, timeout: float = 90.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {process.returncode} before it listened on {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


@contextmanager
def running_lab(root_dir: Path, scratch: Path, env: dict[str, str] | None = None) -> Iterator[Lab]:
    """JupyterLab serving ``root_dir`` (serve copies: lab autosaves), stopped on exit."""
    port, token = free_port(), secrets.token_hex(16)
    env = env if env is not None else isolated_environment(scratch)
    sockets = scratch / "kernels"
    sockets.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        f"--port={port}",
        "--ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        f"--LabApp.user_settings_dir={lab_settings(scratch / 'lab-settings')}",
        f"--LabApp.workspaces_dir={scratch / 'lab-workspaces'}",
        "--LabApp.expose_app_in_browser=True",
        "--KernelManager.transport=ipc",
        f"--KernelManager.ip={sockets / 'kernel'}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--ServerApp.allow_root=True")
    log = open(scratch / "lab.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(process, port)
        yield Lab(process, port, token)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@contextmanager
def browser() -> Iterator[object]:
    """A headless Chromium (Playwright), closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


KERNEL_STATUS = """() => {
  const app = window.jupyterapp;
  const widget = app && app.shell.currentWidget;
  const session = widget && widget.context && widget.context.sessionContext;
  const kernel = session && session.session && session.session.kernel;
  return kernel ? kernel.status : null;
}"""


def open_notebook(page, url: str, timeout: float = 120.0) -> None:
    """Open a notebook and wait, through the lab app, until its kernel is idle."""
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_function(f"({KERNEL_STATUS})() === 'idle'", timeout=timeout * 1000)


def kernel_name(page) -> str:
    return page.evaluate("""() => window.jupyterapp.shell.currentWidget.context.sessionContext.session.kernel.name""")


def run_all(page, timeout: float = 600.0) -> float:
    """Run every cell through the app's command and wait until none is queued or running;
    returns the seconds it took."""
    started = time.perf_counter()
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    deadline = time.time() + timeout
    page.wait_for_timeout(500)
    while time.time() < deadline:
        busy = page.locator(".jp-InputPrompt:has-text('[*]')").count()
        status = page.evaluate(KERNEL_STATUS)
        if not busy and status == "idle":
            page.wait_for_timeout(800)  # the last outputs arrive after the prompt changes
            if not page.locator(".jp-InputPrompt:has-text('[*]')").count() and page.evaluate(KERNEL_STATUS) == "idle":
                return time.perf_counter() - started
        page.wait_for_timeout(500)
    raise TimeoutError(f"cells still running after {timeout:.0f} s")


def error_outputs(page) -> list[str]:
    """The text of every error output on the page."""
    return page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
