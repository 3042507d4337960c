"""``benchmarks/gpu_check.py --tiny``: every row of the GPU check is measured, on the CPU, in one table."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_tiny_gpu_check_measures_every_row(tmp_path, capsys, monkeypatch):
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_check", gpu_check)  # dataclasses look their module up there
    spec.loader.exec_module(gpu_check)
    rows = gpu_check.main(["--tiny", "--out", str(tmp_path / "rows.json")])
    measures = [(r.measure, r.setting.split(",")[0]) for r in rows]
    for name in ("winclip", "winclip.plus"):
        assert (f"{name} predict", "fp32") in measures and (f"{name} predict", "bf16 autocast") in measures
        assert any(m == f"{name} |score fp32 - bf16|" for m, _ in measures)
    assert sum(m == "coreclip train" for m, _ in measures) == len(gpu_check.CORECLIP_ARCHS)
    assert all(math.isfinite(r.value) and r.value >= 0 for r in rows)
    assert all(r.value > 0 for r in rows if r.unit in ("images/s", "steps/s"))
    assert all(r.value < 0.05 for r in rows if "bf16" in r.measure)  # bf16 moves scores, never by much
    table = capsys.readouterr().out
    assert "| measure" in table and table.count("caad-tiny") == len(rows)
    assert json.loads((tmp_path / "rows.json").read_text())["rows"][0]["measure"] == rows[0].measure
