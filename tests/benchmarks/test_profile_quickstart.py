"""``benchmarks/profile_quickstart.py``: the stages of a small quickstart sum to its wall time, per model."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_stages_sum_to_the_wall_time(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("profile_quickstart", ROOT / "benchmarks" / "profile_quickstart.py")
    prof = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "profile_quickstart", prof)
    spec.loader.exec_module(prof)
    from caadbench.models import text_cache
    from caadbench.models.backbone import ClipBackbone

    text_cache.clear()  # an earlier test in this process may have encoded the same prompts on the same weights
    original = ClipBackbone.encode_text
    clock = prof.profile(tmp_path / "data", tmp_path / "qs", size=60, image_size=64, models=["clip", "clip.few_shot"],
                         shots=1, pretrained="random-init", echo=lambda _line: None)
    assert ClipBackbone.encode_text is original  # every patch is undone
    headers, rows = clock.table()
    by_model = {r[0]: dict(zip(headers[1:], r[1:])) for r in rows}
    assert set(by_model) == {prof.JOB, "clip", "clip.few_shot", "all", "share %"}
    assert by_model["all"]["sum"] == pytest.approx(clock.wall, rel=1e-9)  # every second lands in one stage
    assert by_model["share %"]["sum"] == pytest.approx(100.0)
    assert by_model[prof.JOB]["data"] > 0 and by_model[prof.JOB]["report"] > 0  # shards built, reports written
    for name in ("clip", "clip.few_shot"):
        row = by_model[name]
        assert row["data"] > 0 and row["image"] > 0 and row["metrics"] > 0 and row["backbone"] > 0
    assert by_model["clip"]["text"] > 0  # both use the two prompts: the second model reads the text cache
    assert by_model["clip.few_shot"]["text"] == 0
    assert (tmp_path / "qs" / "LEADERBOARD.md").is_file()
