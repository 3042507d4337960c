"""Data commands: ``build-shards``, ``info``, ``verify`` (filled in by the data pipeline)."""

from __future__ import annotations
