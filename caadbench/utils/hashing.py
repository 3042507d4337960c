"""The one sha256 helper: shards, weights files and checkpoints are all hashed with it."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 22
"""Bytes read per step (4 MiB)."""


def sha256_file(path: str | Path, chunk: int = CHUNK) -> str:
    """Hex sha256 of a file, read in chunks of ``chunk`` bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
