"""`caadbench run` and `caadbench quickstart` through the click CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from caadbench.cli import main


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from caadbench.data.shards import build_shards
    from caadbench.data.sources import get_source_class

    root = tmp_path_factory.mktemp("cli-run") / "synth"
    build_shards(get_source_class("synthetic")(seed=0, size=60, image_size=64), root, workers=1, progress=False)
    return root


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def without_plan(output: str) -> list[str]:
    """The non-empty output lines but the plan line `run` logs before any work (see docs/evaluation.md)."""
    return [ln for ln in output.splitlines() if ln.strip() and not ln.startswith(("run: ", "warning: run: "))]


def test_run_prints_the_metrics_and_the_results_path(data, tmp_path):
    result = invoke("run", "--model", "clip.ensemble", "--split", "cc", "--data", str(data), "--backbone",
                    "caad-tiny", "--out", str(tmp_path), "--seeds", "0,1")
    assert result.exit_code == 0, result.output
    assert "I-AUROC" in result.output and "not comparable** to paper numbers" in result.output
    assert "| metric   | unseen %" in result.output  # 60 images: no seen pair has 2 images, so no seen column
    assert (tmp_path / "caad-synth-n60-64px_cc_clip.ensemble_zeroshot_caad-tiny-random-init.json").is_file()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--model", "nope", "--split", "cc"), "nope: unknown model"),
        (("--model", "winclipp", "--split", "cc"), "winclipp: unknown model (did you mean 'winclip'?"),
        (("--model", "clip", "--split", "cc", "--seeds", "a,b"), "--seeds a,b: expected comma-separated integers"),
        (("--model", "clip", "--split", "cc", "--option", "nonsense"), "expected KEY=VALUE"),
        (("--model", "clip", "--split", "cc", "--option", "no_such_option=1"), "unknown option 'no_such_option'"),
        (("--model", "clip", "--split", "cc", "--option", "promt_set=two"),
         "model clip: unknown option 'promt_set' (did you mean 'prompt_set'?)"),
        (("--model", "clip", "--split", "cc", "--option", "init_seed=x"), "'init_seed' expects an integer, got 'x'"),
        (("--split", "cc"), "missing model: pass --model or set it in a --config file"),
        (("--model", "clip", "--split", "cc", "--device", "tpu"), "--device tpu: unknown device"),
        (("--model", "clip", "--split", "cc", "--pretrained", "/no/such/weights.pt"), "checkpoint file not found"),
        (("--model", "aprilgan", "--split", "cc", "--train-part", "test"), "of the evaluated cc/test part"),
        (("--model", "winclip", "--split", "cc", "--train-split", "ic"), "is a zero-shot model: --train-data"),
    ],
)
def test_run_bad_input_is_one_line_and_exit_2(data, tmp_path, args, words):
    result = invoke("run", *args, "--data", str(data), "--backbone", "caad-tiny", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    lines = without_plan(result.output)
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("args", "line"), [
    (("--workers", "-1"), "error: --workers: must be at least 0, got -1"),
    (("--image-size", "8"), "error: --image-size: must be at least 32, got 8"),
    (("--batch-size", "0"), "error: --batch-size: must be at least 1, got 0"),
])
def test_sizes_and_workers_are_checked_before_any_work(tmp_path, args, line):
    result = invoke("run", "--model", "clip", "--split", "cc", "--data", str(tmp_path / "absent"), *args,
                    "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and result.output.strip() == line  # before the data is even opened
    assert not (tmp_path / "o").exists()


def test_run_says_up_front_which_backbone_weights_and_cost(data, tmp_path):
    result = invoke("run", "--model", "clip", "--split", "cc", "--data", str(data), "--backbone", "caad-tiny",
                    "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith(f"warning: run: clip (zero-shot) on {data} cc: ") and " test images × 1 seed" in first
    assert "backbone caad-tiny, weights random-init †, the model's default (scores check the pipeline only" in first
    assert "(zero-shot, seeds 0)" in result.output
    trained = invoke("run", "--model", "aprilgan", "--split", "cc", "--data", str(data), "--backbone", "caad-tiny",
                     "--pretrained", "world", "--option", "max_steps=1", "--option", "prompt_set=two",
                     "--out", str(tmp_path))
    assert trained.exit_code == 0, trained.output
    first = trained.output.splitlines()[0]
    assert first.startswith("run: aprilgan (trained) on ") and "training 1 step (max_steps 1) on " in first
    assert first.endswith("backbone caad-tiny, weights world ◇ (the shipped synthetic-world weights)")
    assert "(trained, seeds 0)" in trained.output and "0-shot" not in trained.output


def test_missing_default_data_suggests_build_shards(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("run", "--model", "clip", "--split", "cc", "--backbone", "caad-tiny")
    assert result.exit_code == 2
    assert result.output.strip() == ("error: data/caad-synth: shard directory not found; build it with "
                                     "`caadbench build-shards` (the default synthetic set)")


def test_quickstart_runs_models_reports_and_leaderboard(data, tmp_path):
    out = tmp_path / "qs"
    result = invoke("quickstart", "--data", str(data), "--out", str(out), "--models", "clip,clip.few_shot",
                    "--shots", "1", "--seeds", "0,1")
    assert result.exit_code == 0, result.output
    board = (out / "LEADERBOARD.md").read_text()
    assert "clip.few_shot" in board and "◇" in board and "†" not in board  # the shipped world weights by default
    from caadbench.eval.results import read_results

    zero = read_results(out / "results" / "caad-synth-n60-64px_cc_clip_zeroshot_caad-tiny-world.json")
    few = read_results(out / "results" / "caad-synth-n60-64px_cc_clip.few_shot_1shot_caad-tiny-world.json")
    assert zero.seeds == [0] and few.seeds == [0, 1]  # seeds only where the result depends on one
    assert zero.provenance.weights == few.provenance.weights == "world"
    assert "| clip.few_shot" in result.output and "LEADERBOARD.md" in result.output
    for stem in ("caad-synth-n60-64px_cc_clip_zeroshot_caad-tiny-world",
                 "caad-synth-n60-64px_cc_clip.few_shot_1shot_caad-tiny-world"):
        assert (out / "results" / f"{stem}.json").is_file()
        assert (out / "reports" / stem / "report.md").is_file()


def test_run_with_text_cache_persists_prompts_and_scores_the_same(data, tmp_path, monkeypatch):
    import json

    from caadbench.models import text_cache

    monkeypatch.delenv(text_cache.ENV_DIR, raising=False)
    cache = tmp_path / "text-cache"
    scores = []
    try:
        for i in range(2):
            text_cache.clear()  # each run starts like a new process: only the directory carries over
            out = tmp_path / f"o{i}"
            result = invoke("run", "--model", "clip", "--split", "cc", "--data", str(data), "--backbone",
                            "caad-tiny", "--out", str(out), "--text-cache", str(cache))
            assert result.exit_code == 0, result.output
            result_json = json.loads(next(out.glob("*.json")).read_text())
            scores.append((result_json["metrics"], result_json["samples"]))
    finally:
        text_cache.use_disk(None)  # the option sets the variable for the process (and its children)
    assert list(cache.glob("*.safetensors")) and text_cache.disk_stats()["reads"] > 0
    assert scores[0] == scores[1]


@pytest.mark.parametrize(("flags", "retrain"), [((), False), (("--retrain",), True)])
def test_quickstart_retrain_flag_reaches_every_run(data, tmp_path, monkeypatch, flags, retrain):
    from caadbench.eval import quickstart

    seen, real = [], quickstart.run

    def fake_run(cfg):
        seen.append(cfg.retrain)
        return real(cfg)

    monkeypatch.setattr(quickstart, "run", fake_run)
    result = invoke("quickstart", "--data", str(data), "--out", str(tmp_path / "qs"), "--models", "clip", *flags)
    assert result.exit_code == 0, result.output
    assert seen == [retrain]
