"""Shipped checkpoints: made by ship-checkpoints, loaded instead of training only on an exact match, sha256- and
dataset-checked, and evaluating to the very scores training then evaluating gives."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from caadbench.errors import ModelError
from caadbench.eval import shipped
from caadbench.eval.results import read_results
from caadbench.eval.runner import RunConfig, run
from caadbench.eval.ship import ship_checkpoints

TINY = "caad-tiny"
OPTIONS = {"coreclip": {"epochs": 1, "text_steps": 2}, "aprilgan": {"max_steps": 2}, "anomalyclip": {"max_steps": 2},
           "probe": {}}  # a few steps: the property holds for any length of training
OPTS = OPTIONS["coreclip"]


def build(root: Path, seed: int) -> Path:
    from caadbench.data.shards import build_shards
    from caadbench.data.sources import get_source_class

    build_shards(get_source_class("synthetic")(seed=seed, size=60, image_size=64), root, workers=1, progress=False)
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("shipped") / "synth", 0)


@pytest.fixture(scope="module")
def made(data, tmp_path_factory) -> tuple[Path, Path]:
    """``(manifest, the work folder of the trained runs)``: every shipped model made on ``data`` with random-init
    caad-tiny."""
    root = tmp_path_factory.mktemp("ship")
    manifest = ship_checkpoints(data=data, models=list(OPTIONS), backbone=TINY, pretrained="random-init",
                                work=root / "work", manifest=root / "weights" / "checkpoints.json", options=OPTIONS,
                                progress=False)
    return manifest, root / "work"


@pytest.fixture()
def use(monkeypatch, made, tmp_path) -> Path:
    """A copy of the made manifest and files, which ``run`` reads as the shipped one."""
    folder = tmp_path / "weights"
    shutil.copytree(made[0].parent, folder)
    monkeypatch.setattr(shipped, "MANIFEST", folder / "checkpoints.json")
    return folder / "checkpoints.json"


def cfg(data: Path, out: Path, model: str = "coreclip", **kw) -> RunConfig:
    return RunConfig(model=model, split="cc", data=data, backbone=TINY, pretrained="random-init", out=out,
                     progress=False, options=dict(OPTIONS[model]), **kw)


def test_the_shipped_models_are_the_quickstarts_trained_ones():
    from caadbench.eval.ship import shipped_models

    assert sorted(shipped_models()) == sorted(OPTIONS)


def test_manifest_entry_is_complete_and_the_file_small(made):
    manifest, _ = made
    data = json.loads(manifest.read_text())
    assert data["format"] == shipped.FORMAT and len(data["checkpoints"]) == len(OPTIONS)
    entry = next(e for e in shipped.read_manifest(manifest) if e["model"] == "coreclip")
    assert set(entry) == set(shipped.ENTRY_FIELDS)
    assert entry["command"].startswith("caadbench ship-checkpoints --data ") and entry["seed"] == 0
    assert entry["dataset"]["split"] == "cc" and entry["backbone"]["arch"] == TINY
    path = manifest.parent / entry["file"]
    assert entry["bytes"] == path.stat().st_size < 3_000_000
    from caadbench.models.base import read_checkpoint

    _, tensors = read_checkpoint(path)
    assert not any(k.startswith("backbone.") for k in tensors)  # the frozen backbone is not shipped


@pytest.mark.parametrize(("field", "value", "words"), [
    ("sha256", 5, "field 'sha256' should be str"),
    ("file", "../x.safetensors", "plain .safetensors name"),
    ("config_sha256", "0" * 64, "config_sha256 does not match"),
])
def test_manifest_schema_is_checked(made, tmp_path, field, value, words):
    data = json.loads(made[0].read_text())
    data["checkpoints"][0][field] = value
    bad = tmp_path / "checkpoints.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=words):
        shipped.read_manifest(bad)


@pytest.mark.parametrize("model", list(OPTIONS))
def test_loading_gives_the_scores_of_training_then_evaluating(data, made, use, tmp_path, model):
    trained = read_results(next(made[1].glob(f"*_cc_{model}_*.json")))
    loaded = read_results(run(cfg(data, tmp_path, model)))
    assert loaded.shipped["0"]["sha256"] == next(e for e in shipped.read_manifest(use) if e["model"] == model)["sha256"]
    assert loaded.shipped["0"]["commit"] and loaded.shipped["0"]["command"].startswith("caadbench ship-checkpoints")
    assert [s.scores for s in loaded.samples] == [s.scores for s in trained.samples]  # bit for bit
    assert {m: s.per_seed for m, s in loaded.metrics.items()} == {m: s.per_seed for m, s in trained.metrics.items()}
    assert loaded.training == trained.training and loaded.selection == trained.selection
    assert loaded.train_data == trained.train_data and trained.shipped is None


def test_retrain_trains(data, use, tmp_path):
    res = read_results(run(cfg(data, tmp_path, retrain=True)))
    assert res.shipped is None and (tmp_path / "checkpoints").is_dir()


def test_other_config_trains_with_a_note(data, use, tmp_path, caplog):
    caplog.set_level("INFO")
    res = read_results(run(RunConfig(**{**vars(cfg(data, tmp_path)), "options": {**OPTS, "lr": 1e-4}})))
    assert res.shipped is None
    assert any("was made with another model config: training it" in r.getMessage() for r in caplog.records)


def test_sha256_mismatch_is_refused(data, use, tmp_path):
    entry = next(e for e in shipped.read_manifest(use) if e["model"] == "coreclip")
    with (use.parent / entry["file"]).open("ab") as fh:
        fh.write(b" ")
    with pytest.raises(ModelError, match="differs from the manifest's") as err:
        run(cfg(data, tmp_path))
    assert "\n" not in str(err.value)


def test_another_datasets_checkpoint_is_refused(data, use, tmp_path):
    """A file trained on another set is refused even if its manifest entry is edited to claim this one."""
    from caadbench.data.loader import open_dataset
    from caadbench.utils.hashing import sha256_file

    other = build(tmp_path / "other", 1)
    entries = shipped.read_manifest(use)
    entry = next(e for e in entries if e["model"] == "coreclip")
    path = use.parent / entry["file"]
    ds = open_dataset(other)
    from caadbench.models.base import read_checkpoint
    from safetensors.torch import save_file

    meta, tensors = read_checkpoint(path)
    meta[shipped.DATA_KEY] = json.dumps(shipped.data_identity(ds, "cc"))
    save_file(tensors, str(path), metadata=meta)
    entry["sha256"] = sha256_file(path)
    shipped.write_manifest(entries, use)
    with pytest.raises(ModelError, match="was trained on another dataset or split"):
        run(cfg(data, tmp_path))
    # and on the other set itself nothing matches: it trains, no refusal
    res = read_results(run(cfg(other, tmp_path / "o")))
    assert res.shipped is None
