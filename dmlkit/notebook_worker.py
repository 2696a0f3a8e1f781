"""Execute one notebook with papermill in this process: ``python -m dmlkit.notebook_worker SPEC``.

:mod:`dmlkit.figures` starts one such process per notebook so that it can stop a notebook that
runs past its time limit, or that the user interrupts, without leaving a kernel or a half-made
figure folder behind. ``SPEC`` is a JSON file with ``input``, ``output``, ``cwd``,
``kernel_name`` and ``parameters`` (the ``repr`` of a dict of Python literals). SIGTERM is turned
into ``KeyboardInterrupt`` so that papermill shuts its kernel down on the way out.
"""

from __future__ import annotations

import ast
import json
import signal
import sys


def raise_keyboard_interrupt(signum, frame):
    """A SIGTERM handler that unwinds like Ctrl-C, so ``finally`` blocks and papermill's kernel
    shutdown run (used here and by :mod:`dmlkit.figures`)."""
    raise KeyboardInterrupt(f"signal {signum}")


def _exit_with_parent(interval: float = 1.0) -> None:
    """A daemon thread that interrupts this worker when the process that started it is gone
    (killed with SIGKILL, say): an orphaned notebook must not run on, or write on, by itself."""
    import os
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def ipc_kernel_manager(folder: str) -> type:
    """A kernel manager class whose kernels talk over IPC sockets in ``folder`` instead of TCP.

    The kernel and this process share the machine, so a local socket file is enough; over TCP
    ipykernel warns once per kernel that the traffic is unencrypted, which would be the only
    line of a headless run that is not the kit's own."""
    import os

    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")
            kwargs.setdefault("ip", os.path.join(folder, "kernel"))
            super().__init__(**kwargs)

    return IPCKernelManager


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m dmlkit.notebook_worker SPEC.json", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    _exit_with_parent()
    with open(argv[0], encoding="utf-8") as handle:
        spec = json.load(handle)
    import tempfile

    import papermill

    sockets = tempfile.mkdtemp(prefix="dmlkit-kernel-")
    try:
        papermill.execute_notebook(
            spec["input"],
            spec["output"],
            parameters=ast.literal_eval(spec["parameters"]),
            kernel_name=spec["kernel_name"],
            cwd=spec["cwd"],
            progress_bar=False,
            log_output=False,
            kernel_manager_class=ipc_kernel_manager(sockets),
        )
    except papermill.PapermillExecutionError:
        return 1  # the error is in the executed notebook, where the caller reads it
    except KeyboardInterrupt:
        return 130
    finally:
        import shutil

        shutil.rmtree(sockets, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
