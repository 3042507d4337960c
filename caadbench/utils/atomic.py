"""Atomic outputs: nothing half-written is ever left looking complete.

Files are written to a temporary sibling and renamed into place; directories are built in a temporary
sibling directory and renamed when complete. On any exception the temporary is removed. A directory is built under
a lock file beside it (``.<name>.lock``, holding the builder's pid and host), so two builds into one output cannot
both succeed: the second is refused at once (a lock left by a process that no longer runs on this host is taken
over), and a build also refuses to replace an output that appeared while it ran unless it may overwrite.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
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


def _holder(lock: Path) -> tuple[int, str] | None:
    """``(pid, host)`` written in a lock file, or ``None`` when it cannot be read."""
    try:
        pid, _, host = lock.read_text(encoding="utf-8").partition(" ")
        return int(pid), host.strip()
    except (OSError, ValueError):
        return None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextlib.contextmanager
def output_lock(path: Path) -> Iterator[None]:
    """Hold ``.<name>.lock`` beside ``path`` while the block runs.

    Raises:
        CaadError: another running process holds the lock (naming it and the lock file).
    """
    lock = path.with_name(f".{path.name}.lock")
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            holder = _holder(lock)
            if holder is not None and holder[1] == socket.gethostname() and not _running(holder[0]):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock)  # left by a process that no longer runs
                continue
            who = f"process {holder[0]} on {holder[1]}" if holder else "another process"
            raise CaadError(path, f"{who} is writing this output (lock file {lock}); wait until it finishes, or "
                                  "delete the lock file if that process is gone") from None
    else:
        raise CaadError(path, f"cannot take the lock file {lock}")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()} {socket.gethostname()}\n")
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)


@contextlib.contextmanager
def atomic_directory(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Build a directory in a temporary sibling and move it to ``path`` only when the block succeeds.

    Args:
        path: the final directory.
        overwrite: replace an existing ``path`` (removed only after the new one is complete).

    Yields:
        The temporary directory to fill.

    Raises:
        CaadError: ``path`` exists (before or, built by someone else, after the block) and ``overwrite`` is false,
            another process is building it (:func:`output_lock`), or its parent is not writable.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise CaadError(path, "output already exists (pass --overwrite to replace it)")
    _check_parent_writable(path)
    with output_lock(path), _building(path, overwrite) as tmp:
        yield tmp


@contextlib.contextmanager
def _building(path: Path, overwrite: bool) -> Iterator[Path]:
    """The temporary sibling of ``path``, renamed to it when the block succeeds, removed when it fails."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    os.chmod(tmp, _umask_mode(0o777))
    try:
        yield tmp
        if path.exists() and not overwrite:
            raise CaadError(path, "output appeared while this build ran (another build?); this one is discarded")
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
