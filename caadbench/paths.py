"""Where caadbench reads and writes by default, relative to the working directory (no heavy imports here: the
command line's option defaults read it)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_DATA = Path("data/caad-synth")
"""The default synthetic set: ``caadbench build-shards`` writes it, ``run`` and ``quickstart`` read it."""

__all__ = ["DEFAULT_DATA"]
