"""The newcomer's example runs as shipped (small set, random-init caad-tiny to keep it fast)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "first_benchmark.py"


def test_example_builds_runs_two_models_tabulates_and_predicts(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("first_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--out", str(tmp_path), "--images", "60", "--image-size", "64", "--shots", "1",
                 "--pretrained", "random-init", "--device", "cpu"])
    out = capsys.readouterr().out
    results = sorted(p.name for p in (tmp_path / "results").glob("*.json"))
    assert results == ["caad-synth-n60-64px_cc_clip.few_shot_1shot_caad-tiny-random-init.json",
                       "caad-synth-n60-64px_cc_clip_zeroshot_caad-tiny-random-init.json"]
    assert "clip.few_shot" in out and "i_auroc" in out
    assert out.count("anomaly score") == 4
