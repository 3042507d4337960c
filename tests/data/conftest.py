"""Shared data fixtures: one small shard set of the fake contextual source (read-only for the tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from caadbench.data.shards import build_shards
from tests.data.fake_sources import FakeContextual


@pytest.fixture(scope="session")
def fake_set(tmp_path_factory) -> Path:
    """The fake contextual source built with 10-sample shards, so every part spans several tars."""
    out = tmp_path_factory.mktemp("fake-set") / "fake"
    build_shards(FakeContextual(), out, workers=1, max_shard_samples=10, progress=False)
    return out
