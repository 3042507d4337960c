"""``benchmarks/text_encoding.py``: one tiny run; the three ways to get prototypes must agree bit for bit."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from caadbench.models import text_cache

ROOT = Path(__file__).resolve().parents[2]


def test_text_encoding_benchmark_runs_and_finds_disk_reads_identical(capsys, monkeypatch):
    monkeypatch.delenv(text_cache.ENV_DIR, raising=False)
    spec = importlib.util.spec_from_file_location("text_encoding", ROOT / "benchmarks" / "text_encoding.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--archs", "caad-tiny", "--prompts", "two", "--subjects", "2"])
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| caad-tiny")]
    assert len(row) == 1 and row[0].rstrip(" |").endswith("True")
    assert text_cache.ENV_DIR not in os.environ  # the benchmark leaves no disk cache switched on
