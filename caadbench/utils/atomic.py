"""Atomic outputs: nothing half-written is ever left looking complete.

Files are written to a temporary sibling and renamed into place; directories are built in a temporary
sibling directory and renamed when complete. On any exception the temporary is removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from caadbench.errors import CaadError


def _umask_mode(full: int) -> int:
    """``full`` with the process umask applied (mkstemp/mkdtemp create 0600/0700, too private for outputs)."""
    mask = os.umask(0)
    os.umask(mask)
    return full & ~mask


def _check_parent_writable(path: Path) -> None:
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CaadError(parent, f"cannot create output directory ({exc.strerror or exc})") from exc
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CaadError(parent, "output directory is not writable")


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same directory, fsync, rename)."""
    path = Path(path)
    _check_parent_writable(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _umask_mode(0o666))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_directory(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Build a directory in a temporary sibling and move it to ``path`` only when the block succeeds.

    Args:
        path: the final directory.
        overwrite: replace an existing ``path`` (removed only after the new one is complete).

    Yields:
        The temporary directory to fill.

    Raises:
        CaadError: ``path`` exists and ``overwrite`` is false, or its parent is not writable.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise CaadError(path, "output already exists (pass --overwrite to replace it)")
    _check_parent_writable(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    os.chmod(tmp, _umask_mode(0o777))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
