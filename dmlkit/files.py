"""Writes that never leave a half-written file or folder behind.

Every file the kit writes for a reader to trust — ``results.json``, ``runs.json``,
``results.md``, the README's results block, data caches, checkpoints — goes through
:func:`atomic_output`: the content is written to a temporary file beside the destination and
renamed over it only once it is complete, so a crash, a full disk or a Ctrl-C leaves the previous
file exactly as it was. A notebook's figure folder is rendered into :func:`staging_directory` and
put in place by :func:`replace_directory`, one rename.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "atomic_output",
    "atomic_write_text",
    "atomic_write_bytes",
    "staging_directory",
    "replace_directory",
    "remove_stale_staging",
    "writable_directory",
]

STAGING_PREFIX = ".dmlkit-staging-"


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit it replaces ``path`` in one rename,
    on an exception it is deleted and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        if path.exists():  # keep the destination's permissions (mkstemp creates 0600 files)
            shutil.copymode(path, temporary)
        else:
            os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_output`); return the path."""
    with atomic_output(path) as temporary:
        temporary.write_text(text, encoding=encoding)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_output`); return the path."""
    with atomic_output(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def staging_directory(destination: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty folder beside ``destination`` (same file system, so it can be renamed onto
    it); it is removed when the block raises. The caller calls :func:`replace_directory` to
    publish it; whatever is left afterwards is removed too."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(dir=destination.parent, prefix=f"{STAGING_PREFIX}{destination.name}-{os.getpid()}-")
    )
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def replace_directory(new: str | os.PathLike, destination: str | os.PathLike) -> None:
    """Put folder ``new`` in the place of ``destination`` (which may not exist yet).

    On Linux the two folders are exchanged with one ``renameat2(RENAME_EXCHANGE)`` call, so at
    every instant ``destination`` holds either the complete old or the complete new content;
    elsewhere the old folder is first moved aside (a window of a few microseconds in which
    ``destination`` is missing, never half-filled). The old content ends up at ``new``'s path
    and is deleted.
    """
    new, destination = Path(new), Path(destination)
    if not destination.exists():
        os.rename(new, destination)
        return
    if not _exchange(new, destination):
        aside = new.with_name(new.name + ".old")
        os.rename(destination, aside)
        try:
            os.rename(new, destination)
        except BaseException:
            os.rename(aside, destination)
            raise
        new = aside
    shutil.rmtree(new, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with Linux's renameat2; ``False`` where it is not available."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    # 0: swapped; -1 (EINVAL, ENOSYS): a file system or kernel without exchange, use the fallback
    return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def remove_stale_staging(folder: str | os.PathLike) -> list[Path]:
    """Delete staging folders left in ``folder`` by runs that were killed (their process is gone);
    return what was removed."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for path in folder.glob(f"{STAGING_PREFIX}*"):
        pid = _staging_pid(path)
        if pid is not None and pid != os.getpid() and _alive(pid):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _staging_pid(path: Path) -> int | None:
    parts = path.name[len(STAGING_PREFIX) :].rsplit("-", 2)
    try:
        return int(parts[-2])
    except (IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def writable_directory(path: str | os.PathLike, what: str) -> Path:
    """Create ``path`` if needed and prove it can be written to; raise ``ValueError`` with a
    one-line message naming ``what`` (e.g. ``"--out"``) otherwise. Returns the resolved path."""
    path = Path(path).expanduser()
    for parent in (path, *path.parents):
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{what} {path}: {parent} is a file, not a folder")
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ValueError(f"{what} {path} cannot be written: {exc.strerror or exc}") from None
    return path.resolve()
