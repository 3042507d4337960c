"""File names as caadbench lists and shows them: names that are not UTF-8, and symbolic links that cannot be
followed.

On POSIX a file name is bytes; Python hands names that are not valid UTF-8 over as text with stand-in characters
(``surrogateescape``) that no UTF-8 file (a manifest, ``scores.csv``, a terminal line) can hold. :func:`shown`
writes such bytes as ``\\xNN`` (as ``ls -b`` does), so every message and table can name the file. A shard set must
be portable, so sources refuse such names (:func:`require_utf8`, saying how to rename); ``caadbench predict``
scores the image and names it as :func:`shown` does.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from caadbench.errors import DataError

RENAME_HINT = "rename it to UTF-8, e.g. `convmv -f latin1 -t utf-8 --notest -r DIR`"


def shown(path: str | Path) -> str:
    """``path`` as UTF-8 text: bytes of a name that are not UTF-8 appear as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def is_utf8(path: str | Path) -> bool:
    """Whether ``path`` is valid UTF-8 text (no stand-ins for undecodable bytes)."""
    return shown(path) == str(path)


def require_utf8(path: str | Path) -> Path:
    """Return ``path`` when its name is valid UTF-8.

    Raises:
        DataError: naming the file as :func:`shown` writes it and saying how to rename it.
    """
    if not is_utf8(path):
        raise DataError(shown(path), f"file name is not valid UTF-8 (bytes shown as \\xNN); {RENAME_HINT}")
    return Path(path)


def link_problem(path: str | Path) -> str | None:
    """Why a symbolic link cannot be followed (a loop, or a missing target), or ``None`` (not a link, or fine)."""
    path = Path(path)
    if not path.is_symlink():
        return None
    try:
        path.stat()
    except OSError as exc:
        return "symbolic link loop" if exc.errno == errno.ELOOP else "broken symbolic link (its target is missing)"
    return None


__all__ = ["RENAME_HINT", "is_utf8", "link_problem", "require_utf8", "shown"]
