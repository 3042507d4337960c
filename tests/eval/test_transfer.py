"""The trained baselines through ``caadbench run``, and the cross-dataset protocol: ``--train-data`` trains on one
dataset and evaluates on another, records what it trained on, and refuses anything that would train on the
evaluated test images."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from caadbench.data.loader import open_dataset
from caadbench.errors import ModelError, SplitError
from caadbench.eval.leaderboard import generate_leaderboard
from caadbench.eval.results import read_results
from caadbench.eval.runner import RunConfig, run
from caadbench.eval.transfer import part_keys, same_data
from tests.data.sources.fixtures import write_mvtec

TINY = "caad-tiny"
QUICK = {"max_steps": 2, "progress": False}
FAST_TEXT = {"aprilgan": {"prompt_set": "two"}, "anomalyclip": {"prompt_length": 4}}


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    from caadbench.data.shards import build_shards
    from caadbench.data.sources import get_source_class

    root = tmp_path_factory.mktemp("transfer") / "synth"
    build_shards(get_source_class("synthetic")(seed=0, size=60, image_size=64), root, workers=1, progress=False)
    return root


@pytest.fixture(scope="module")
def mvtec(tmp_path_factory) -> Path:
    from caadbench.data.shards import build_shards
    from caadbench.data.sources import get_source_class

    base = tmp_path_factory.mktemp("transfer-mvtec")
    write_mvtec(base / "tree")
    build_shards(get_source_class("mvtec")(root=base / "tree"), base / "shards", workers=1, progress=False)
    return base / "shards"


def config(data: Path, out: Path, model: str, **kw) -> RunConfig:
    options = {**QUICK, **FAST_TEXT.get(model.split(".")[0], {})}
    return RunConfig(model=model, split=kw.pop("split", "cc"), data=data, backbone=TINY, out=out, batch_size=16,
                     progress=False, options=options, **kw)


@pytest.mark.parametrize("model", ["aprilgan", "anomalyclip"])
def test_cc_run_trains_on_the_train_part_records_it_and_reloads(synth, tmp_path, model):
    path = run(config(synth, tmp_path, model))
    assert path.name == f"caad-synth-n60-64px_cc_{model}_trained_caad-tiny-random-init.json"
    res = read_results(path)
    ds = open_dataset(synth)
    t = res.train_data
    assert res.learning == "trained" and res.training["0"]["train"]["steps"] == 2
    assert (t.dataset, t.split, t.part, t.samples, t.fingerprint) == ("caad-synth-n60-64px", "cc", "train",
                                                                      ds.count("cc", "train"), ds.fingerprint)
    assert not res.cross_dataset and res.config["max_steps"] == 2
    ckpt = (tmp_path / "checkpoints" / f"caad-synth-n60-64px_cc_{model}_trained_caad-tiny-random-init_seed0"
            / f"{model}-last.safetensors")
    again = read_results(run(config(synth, tmp_path / "again", model, checkpoint=ckpt)))
    assert again.train_data is None  # loaded, not trained here
    assert [s.scores[0] for s in again.samples] == pytest.approx([s.scores[0] for s in res.samples], abs=1e-6)


def test_cross_dataset_run_trains_on_synthetic_and_evaluates_on_mvtec(synth, mvtec, tmp_path):
    path = run(config(mvtec, tmp_path, "anomalyclip", split="std", train_data=synth, train_split="cc"))
    assert path.name == ("mvtec-ad-subset-bottle-metal_nut_std_anomalyclip_trained-on-caad-synth-n60-64px-cc-train_"
                         "caad-tiny-random-init.json")
    res = read_results(path)
    train, evaluated = open_dataset(synth), open_dataset(mvtec)
    t = res.train_data
    assert res.dataset == "mvtec-ad-subset-bottle-metal_nut" and res.split == "std" and res.cross_dataset
    assert (t.dataset, t.fingerprint, t.split, t.part) == ("caad-synth-n60-64px", train.fingerprint, "cc", "train")
    assert t.path == str(train.root) and t.samples == train.count("cc", "train")
    assert res.provenance.dataset_fingerprint == evaluated.fingerprint != t.fingerprint
    assert {s.key for s in res.samples} == part_keys(evaluated, "std", "test")
    assert set(res.per_subject) == {"bottle", "metal_nut"}  # evaluated on subjects never trained on
    assert (tmp_path / "checkpoints" / f"{path.stem}_seed0").is_dir()
    board = generate_leaderboard(tmp_path, None, tmp_path / "README.md")
    assert f"trained on caad-synth-n60-64px cc/train ({t.samples} images, fingerprint {t.fingerprint[:12]})" in board


def test_refuses_training_on_the_evaluated_test_part(synth, tmp_path):
    with pytest.raises(SplitError, match=r"contains \d+ image\(s\) of the evaluated cc/test part") as info:
        run(config(synth, tmp_path, "aprilgan", train_data=synth, train_split="cc", train_part="test"))
    assert "\n" not in str(info.value)
    with pytest.raises(SplitError, match="evaluated cc/test part"):  # the same without --train-data
        run(config(synth, tmp_path, "aprilgan", train_part="test"))
    assert not any(tmp_path.iterdir())


def test_refuses_a_copy_and_another_split_holding_test_images(synth, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(synth, copy)
    with pytest.raises(SplitError, match="same data as --data"):
        run(config(synth, tmp_path / "out", "anomalyclip", train_data=copy, train_part="test"))
    ds = open_dataset(synth)
    assert part_keys(ds, "ic", "train") & part_keys(ds, "cc", "test")  # the in-context split mixes them
    with pytest.raises(SplitError, match="ic/train part contains"):
        run(config(synth, tmp_path / "out", "anomalyclip", train_data=copy, train_split="ic"))
    assert not (tmp_path / "out").exists()


def test_same_data_means_equal_fingerprint_or_source_folder(synth, mvtec, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(mvtec, copy)
    index = json.loads((copy / "index.json").read_text())
    index["fingerprint"] = "0" * 64  # the same folder built with other options
    (copy / "index.json").write_text(json.dumps(index))
    assert same_data(open_dataset(copy), open_dataset(mvtec))
    assert not same_data(open_dataset(synth), open_dataset(mvtec))
    with pytest.raises(SplitError, match="same data"):
        run(config(mvtec, tmp_path / "out", "aprilgan", split="std", train_data=copy, train_part="test"))


@pytest.mark.parametrize(("change", "error", "words"), [
    ({"model": "winclip", "train_data": Path("/elsewhere")}, ModelError, "is a zero-shot model: --train-data"),
    ({"model": "clip", "train_part": "test"}, ModelError, "are for training"),
    ({"checkpoint": Path(__file__)}, ModelError, "loads --checkpoint"),
    ({"train_split": "std"}, SplitError, "--train-split 'std' is not stored"),
    ({"train_part": "nope"}, SplitError, "has no part 'nope'"),
])
def test_bad_training_flags_fail_before_any_work(synth, tmp_path, change, error, words):
    base = config(synth, tmp_path, "aprilgan")
    if "checkpoint" in change:
        change = {**change, "train_data": synth}
    if "model" in change:
        change = {**change, "options": {}}  # the trained models' options are not the zero-shot models' options
    with pytest.raises(error, match=words):
        run(replace(base, **change))
    assert not any(tmp_path.iterdir())
