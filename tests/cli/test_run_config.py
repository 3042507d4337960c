"""Run configs: ``caadbench run --config run.yaml`` equals the same run from flags, flags override the file, a
results file reruns its result, and bad keys or options are refused naming the closest valid one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from caadbench.cli import main
from caadbench.eval.results import read_results
from caadbench.eval.runconfig import read_config_file, run_config_from_dict, run_config_to_dict
from caadbench.eval.runner import RunConfig
from tests.cli.test_run_cli import data  # noqa: F401  (the shards fixture)

MODEL = "clip.ensemble"
NAME = f"caad-synth-n60-64px_cc_{MODEL}_zeroshot_caad-tiny-random-init.json"


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def same_run(a, b) -> None:
    assert [s.key for s in a.samples] == [s.key for s in b.samples]
    assert [s.scores for s in a.samples] == [s.scores for s in b.samples]
    for m, stat in a.metrics.items():
        assert b.metrics[m].per_seed == pytest.approx(stat.per_seed, nan_ok=True), m


@pytest.fixture(scope="module")
def from_flags(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("flags")
    result = invoke("run", "--model", MODEL, "--split", "cc", "--data", data, "--backbone", "caad-tiny", "--seeds",
                    "0,1", "--option", "logit_scale=50", "--batch-size", "8", "--out", out)
    assert result.exit_code == 0, result.output
    return out / NAME


def test_yaml_run_equals_the_run_from_flags(data, from_flags, tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"model: {MODEL}\nsplit: cc\ndata: {data}\nbackbone: caad-tiny\nseeds: [0, 1]\nbatch_size: 8\n"
                   f"out: {tmp_path / 'yaml'}\noptions:\n  logit_scale: 5.0e+1\n")
    result = invoke("run", "--config", cfg)
    assert result.exit_code == 0, result.output
    flags, yaml = read_results(from_flags), read_results(tmp_path / "yaml" / NAME)
    same_run(flags, yaml)
    assert yaml.config == flags.config and yaml.config["logit_scale"] == 50.0
    stored = {k: v for k, v in yaml.run_config.items() if k != "out"}
    assert stored == {k: v for k, v in flags.run_config.items() if k != "out"}
    assert stored["seeds"] == [0, 1] and stored["options"] == {"logit_scale": 50.0} and stored["device"] == "auto"
    assert yaml.provenance.precision == "fp32" and yaml.provenance.device == "cpu"


def test_results_file_reruns_its_result(from_flags, tmp_path):
    result = invoke("run", "--config", from_flags, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    same_run(read_results(from_flags), read_results(tmp_path / NAME))


def test_flags_override_the_file_and_options_merge_key_by_key(data, tmp_path):
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps({"model": MODEL, "split": "cc", "data": str(data), "backbone": "caad-tiny",
                               "seeds": [0, 1], "out": str(tmp_path / "a"),
                               "options": {"logit_scale": 50, "init_seed": 0}}))
    result = invoke("run", "--config", cfg, "--seeds", "1", "--option", "logit_scale=20", "--out", tmp_path / "b")
    assert result.exit_code == 0, result.output
    res = read_results(tmp_path / "b" / NAME)
    assert res.seeds == [1] and res.config["logit_scale"] == 20.0 and res.run_config["options"] == {
        "logit_scale": 20, "init_seed": 0}
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize(("text", "words"), [
    ("modle: clip\nsplit: cc\n", "run.yaml: unknown run setting 'modle' (did you mean 'model'?)"),
    ("model: clip\nsplit: cc\noptions:\n  logit_scal: 3\n",
     "run.yaml: model clip: unknown option 'logit_scal' (did you mean 'logit_scale'?)"),
    ("model: clip\nsplit: cc\nseeds: [a]\n", "'seeds' expects an integer, got 'a'"),
    ("model: clip\nsplit: [cc\n", "run.yaml: not valid YAML"),
    ("- model\n", "run.yaml: a run config must be a mapping"),
    ("split: cc\n", "run.yaml: missing model"),
])
def test_bad_config_file_is_one_line_and_exit_2(tmp_path, text, words):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(text)
    result = invoke("run", "--config", cfg, "--out", tmp_path / "o")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines
    assert not (tmp_path / "o").exists()


def test_values_are_converted_to_the_field_types():
    cfg = run_config_from_dict({"model": "coreclip", "split": "cc", "data": "d", "seeds": "0, 2", "shots": "0",
                                "options": {"lr": "1e-3", "resume": "none", "text_refine": "false",
                                            "backbone": "caad-tiny"}})
    assert cfg.seeds == (0, 2) and cfg.shots == 0 and cfg.data == "d"  # a path or a URL, kept as given
    assert cfg.options == {"lr": 1e-3, "resume": None, "text_refine": False}
    assert cfg.backbone == "caad-tiny" and "backbone" not in cfg.options  # a run setting has one place
    assert run_config_from_dict(run_config_to_dict(cfg)) == cfg


def test_results_without_run_config_are_rebuilt(from_flags, tmp_path):
    raw = json.loads(from_flags.read_text())
    del raw["run_config"]
    legacy = tmp_path / "legacy.json"
    legacy.write_text(json.dumps(raw))
    settings = read_config_file(legacy)
    cfg = run_config_from_dict(settings, legacy)
    assert (cfg.model, cfg.split, cfg.seeds, cfg.shots) == (MODEL, "cc", (0, 1), 0)
    assert cfg.backbone == "caad-tiny" and cfg.options["logit_scale"] == 50.0
    assert cfg.data == raw["provenance"]["dataset_path"]


def test_run_config_lists_every_run_setting():
    stored = run_config_to_dict(RunConfig(model="clip", split="cc", data=Path("d")))
    import dataclasses

    assert set(stored) == {f.name for f in dataclasses.fields(RunConfig)} - {"progress"}
