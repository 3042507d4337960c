"""The runner: one results file per run, reproducible, fitted only on train/support, clear errors on bad input."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from caadbench.errors import CaadError, ModelError, ShardError, SplitError
from caadbench.eval.examples import examples_path
from caadbench.eval.results import read_results
from caadbench.eval.runner import RunConfig, run

TINY = "caad-tiny"
DATASET = "caad-synth-n60-64px"  # the fixture's synthetic build: 60 images of 64 px, not the default caad-synth


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from caadbench.data.shards import build_shards
    from caadbench.data.sources import get_source_class

    root = tmp_path_factory.mktemp("runner") / "synth"
    build_shards(get_source_class("synthetic")(seed=0, size=60, image_size=64), root, workers=1, progress=False)
    return root


def config(data: Path, out: Path, model: str = "clip", **kw) -> RunConfig:
    return RunConfig(model=model, split="cc", data=data, backbone=TINY, out=out, batch_size=16, progress=False,
                     **kw)


def test_zero_shot_run_writes_one_complete_results_file(data, tmp_path):
    path = run(config(data, tmp_path))
    assert path == tmp_path / f"{DATASET}_cc_clip_zeroshot_caad-tiny-random-init.json"
    res = read_results(path)
    assert res.model == "clip" and res.learning == "zero-shot" and res.dataset == DATASET
    assert res.shots == 0 and res.seeds == [0] and res.support_keys == {}
    from caadbench.data.loader import open_dataset

    ds = open_dataset(data)
    assert len(res.samples) == ds.count("cc", "test")
    assert {s.key for s in res.samples}.isdisjoint(
        {k for e in ds.manifest.part_shards("cc", "train") for k in e.keys})
    assert all(0.0 <= res.metrics[m].mean <= 1.0 for m in res.metrics)
    sides = ds.context_sides("cc")
    assert all(c.seen is (c.context in sides[c.subject]["seen"]) for c in res.per_context)
    p = res.provenance
    assert p.backbone_arch == TINY and p.weights == "random-init" and p.weights_sha256 == "random-init"
    assert p.dataset_fingerprint == ds.fingerprint and p.images_per_s > 0 and p.peak_memory_bytes > 0
    assert examples_path(path).is_file()
    assert res.diagnosis is None  # CLIP gives no diagnostic extras


def test_same_inputs_and_seed_give_the_same_metrics(data, tmp_path):
    a = read_results(run(config(data, tmp_path / "a", model="winclip.plus", shots=1)))
    b = read_results(run(config(data, tmp_path / "b", model="winclip.plus", shots=1)))
    assert {m: s.per_seed for m, s in a.metrics.items()} == {m: s.per_seed for m, s in b.metrics.items()}
    assert [s.scores for s in a.samples] == [s.scores for s in b.samples]


def test_few_shot_records_the_support_keys_of_every_seed(data, tmp_path):
    from caadbench.data.loader import open_dataset

    res = read_results(run(config(data, tmp_path, model="clip.few_shot", shots=1, seeds=(0, 1))))
    ds = open_dataset(data)
    for seed in (0, 1):
        assert res.support_keys[str(seed)] == {s: sorted(k) for s, k in ds.support_keys("cc", 1, seed).items()}
    assert len(res.metrics["i_auroc"].per_seed) == 2
    test_keys = {s.key for s in res.samples}
    assert all(test_keys.isdisjoint(keys) for by_subject in res.support_keys.values() for keys in by_subject.values())


def test_trained_model_trains_on_train_and_records_its_log(data, tmp_path):
    opts = {"epochs": 1, "text_steps": 2}
    res = read_results(run(config(data, tmp_path, model="coreclip", options=opts)))
    log = res.training["0"]
    assert res.learning == "trained" and 0 < log["trainable_share"] < 1 and log["stage2"]["steps"] >= 1
    d = res.diagnosis  # CoRe-CLIP's extras summarised per scope, families from the shards' rulebook
    assert d.branches == ["subject", "context", "global"] and "unseen" in d.branch_i_auroc and "unseen" in d.alpha
    assert d.branch_i_auroc["unseen"]["fused"].per_seed == res.metrics["i_auroc"].per_seed
    from caadbench.data.loader import open_dataset

    families = open_dataset(data).context_families()
    assert families["pasture"] == families["meadow"] == "grassland"
    assert all(p.family == families[p.context] and 0 < p.relatives <= p.candidates for p in d.neighbourhood_pairs)
    stem = f"{DATASET}_cc_coreclip_trained_caad-tiny-random-init"  # trained, not 0-shot
    assert res.learning == "trained" and (tmp_path / f"{stem}.json").is_file()
    ckpt = tmp_path / "checkpoints" / f"{stem}_seed0" / "coreclip-last.safetensors"
    assert ckpt.is_file()
    again_path = run(config(data, tmp_path / "again", model="coreclip", options=opts, checkpoint=ckpt))
    from caadbench.utils.hashing import sha256_file

    assert again_path.name == f"{DATASET}_cc_coreclip_trained-ckpt{sha256_file(ckpt)[:8]}_caad-tiny-random-init.json"
    again = read_results(again_path)
    assert [s.scores[0] for s in again.samples] == pytest.approx([s.scores[0] for s in res.samples], abs=1e-6)


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        ({"model": "nope"}, ModelError, "unknown model"),
        ({"model": "clip.nope"}, ModelError, "unknown model"),
        ({"split": "xx"}, SplitError, "split 'xx' is not stored"),
        ({"shots": 2}, ModelError, "uses no support set"),
        ({"model": "winclip.plus"}, ModelError, "pass --shots"),
        ({"model": "winclip.plus", "shots": 3}, SplitError, "3-shot support sets are not stored"),
        ({"seeds": ()}, CaadError, "--seeds"),
        ({"checkpoint": Path("/nonexistent/model.safetensors")}, ModelError, "checkpoint file not found"),
    ],
)
def test_bad_runs_fail_before_any_work_with_one_clear_line(data, tmp_path, change, error, words):
    with pytest.raises(error, match=words) as info:
        run(replace(config(data, tmp_path), **change))
    assert "\n" not in str(info.value)
    assert not any(tmp_path.iterdir())


def test_missing_or_unfinished_dataset(tmp_path):
    with pytest.raises(ShardError, match="not found"):
        run(config(tmp_path / "nothing", tmp_path / "out"))
    (tmp_path / "half").mkdir()
    with pytest.raises(ShardError, match="index.json"):
        run(config(tmp_path / "half", tmp_path / "out"))


def test_altered_dataset_fails_naming_the_shard(data, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    shard = sorted((copy / "cc").glob("test-*.tar"))[0]
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(ShardError, match=shard.name):
        run(config(copy, tmp_path / "out"))
    assert not list((tmp_path / "out").glob("*.json"))


def test_a_run_never_replaces_the_results_of_other_data_and_says_when_it_replaces_its_own(data, tmp_path, caplog):
    import logging

    from caadbench.data.shards import build_shards
    from caadbench.data.sources import get_source_class
    from caadbench.errors import ResultsError

    path = run(config(data, tmp_path))
    before = path.read_bytes()
    other = tmp_path / "other"  # other images under the same id: only a forced --dataset-id can do that
    build_shards(get_source_class("synthetic")(seed=1, size=60, image_size=64), other, workers=1, progress=False)
    with pytest.raises(ResultsError, match=rf"^{path}: holds the results of another run: dataset fingerprint "):
        run(config(other, tmp_path, dataset_id=DATASET))
    assert path.read_bytes() == before
    world = run(config(data, tmp_path, pretrained="world"))  # other weights: another name
    assert world.name == f"{DATASET}_cc_clip_zeroshot_caad-tiny-world.json" and path.read_bytes() == before
    smaller = run(config(data, tmp_path, image_size=64))  # another input size: another name
    assert smaller.name == f"{DATASET}_cc_clip_zeroshot_caad-tiny-64px-random-init.json"
    with caplog.at_level(logging.INFO, logger="caadbench"):
        assert run(config(data, tmp_path, seeds=(1,))) == path
    assert f"replacing {path} (an earlier run of the same model, data, backbone and weights; seeds 0 there, 1 here)" \
        in caplog.text


def test_checkpoint_for_another_backbone_is_refused(data, tmp_path):
    from caadbench.data.loader import open_dataset
    from caadbench.models import FitData, create_model

    ds = open_dataset(data)
    model = create_model("clip.few_shot", backbone=TINY)
    keys = sorted(k for ks in ds.support_keys("cc", 1, 0).values() for k in ks)
    support = list(ds.batches("cc", "support", image_size=model.image_size, keys=keys))
    model.fit(FitData(subjects=ds.subjects("cc"), support=support))
    ckpt = model.save(tmp_path / "tiny.safetensors")
    assert run(config(data, tmp_path / "a", model="clip.few_shot", shots=1, checkpoint=ckpt)).is_file()
    with pytest.raises(ModelError, match="checkpoint was made on backbone"):
        run(config(data, tmp_path / "b", model="clip.few_shot", shots=1, checkpoint=ckpt, options={"init_seed": 1}))


@pytest.mark.slow
def test_two_processes_give_the_metrics_of_one(data, tmp_path):
    single = read_results(run(config(data, tmp_path / "one", model="winclip")))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "caadbench", "run", "--model", "winclip", "--split", "cc", "--data", str(data), "--backbone", TINY,
           "--batch-size", "16", "--out", str(tmp_path / "two")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    double = read_results(tmp_path / "two" / f"{DATASET}_cc_winclip_zeroshot_caad-tiny-random-init.json")
    assert [s.key for s in double.samples] == [s.key for s in single.samples]
    for m, stat in single.metrics.items():
        assert double.metrics[m].mean == pytest.approx(stat.mean, abs=1e-6), m
    assert [s.scores[0] for s in double.samples] == pytest.approx([s.scores[0] for s in single.samples], abs=1e-5)


def test_an_option_that_makes_a_model_few_shot_runs_and_is_labelled_few_shot(data, tmp_path):
    """The learning type comes from the config: `clip --option few_shot=true` fits a support set."""
    res = read_results(run(config(data, tmp_path, model="clip", shots=1, options={"few_shot": True})))
    assert res.learning == "few-shot" and res.config["few_shot"] is True
    assert res.support_keys["0"] and all(len(keys) == 1 for keys in res.support_keys["0"].values())
    with pytest.raises(ModelError, match="few-shot model: pass --shots"):
        run(config(data, tmp_path, model="clip", options={"few_shot": True}))
