"""The results schema: round trip, refusals, atomic and canonical writing, provenance, examples sidecar."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from caadbench.errors import ResultsError
from caadbench.eval.bootstrap import with_intervals
from caadbench.eval.metrics import METRIC_NAMES, auroc
from caadbench.eval.examples import examples_path, read_examples, write_examples
from caadbench.eval.meter import ResourceMeter
from caadbench.eval.provenance import collect_provenance
from caadbench.eval.results import build_results, dumps, read_results, write_results
from caadbench.eval.schema import SCHEMA_VERSION
from tests.eval.fakes import FAKE_RESAMPLES, fake_provenance, fake_results, version_1_document


@pytest.fixture(scope="module")
def run():
    return fake_results(seeds=(0, 1), n_per_pair=2, examples=True)


@pytest.fixture()
def written(run, tmp_path) -> Path:
    return write_results(tmp_path / "run.json", run[0])


def test_round_trip(run, written):
    results = run[0]
    back = read_results(written)
    assert dumps(back) == dumps(results) == written.read_text()
    assert back.seeds == [0, 1] and back.schema_version == SCHEMA_VERSION
    assert sorted(back.metrics) == sorted(METRIC_NAMES)
    assert back.samples[0].scores == [float(f"{s:.9g}") for s in results.samples[0].scores]
    assert back.random_init and back.provenance.weights_sha256 == "random-init"


def test_aggregation_over_seeds(run):
    results = run[0]
    for name, stat in results.metrics.items():
        assert stat.mean == pytest.approx(np.mean(stat.per_seed))
        assert stat.std == pytest.approx(np.std(stat.per_seed))
        assert 0 <= stat.mean <= 1
    cell = results.per_context[0]
    matrix = results.subject_context
    i, j = matrix.subjects.index(cell.subject), matrix.contexts.index(cell.context)
    assert matrix.auroc[i][j] == cell.auroc.mean and matrix.n[i][j] == cell.n and matrix.seen[i][j] == cell.seen
    absent = [(s, c) for i, s in enumerate(matrix.subjects) for j, c in enumerate(matrix.contexts) if matrix.n[i][j] == 0]
    assert absent and all(math.isnan(matrix.auroc[matrix.subjects.index(s)][matrix.contexts.index(c)])
                          for s, c in absent)


def test_nan_is_written_as_null_and_read_back(run, tmp_path):
    results = run[0]
    saved = results.metrics["aupro"].per_seed[0]
    results.metrics["aupro"].per_seed[0] = math.nan
    try:
        path = write_results(tmp_path / "nan.json", results)
        assert json.loads(path.read_text())["metrics"]["aupro"]["per_seed"][0] is None
        assert math.isnan(read_results(path).metrics["aupro"].per_seed[0])
    finally:
        results.metrics["aupro"].per_seed[0] = saved


def _edit(path: Path, change) -> Path:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return path


def test_refuses_another_schema_version(written):
    _edit(written, lambda d: d.update(schema_version=4))
    with pytest.raises(ResultsError, match="schema version 4 is not supported") as info:
        read_results(written)
    assert str(written) in str(info.value)


def test_seen_metrics_and_the_gap_over_seeds(run):
    """The gap is seen − unseen per seed; its mean and std are over those per-seed differences."""
    results = run[0]
    assert results.headline == "unseen" and results.has_gap and results.seen is not None
    seen_samples = [s for s in results.samples if s.seen]
    assert results.seen.n == len(seen_samples) and results.seen.n_anomalous == sum(s.label for s in seen_samples)
    for m in METRIC_NAMES:
        diffs = np.array(results.seen.metrics[m].per_seed) - np.array(results.metrics[m].per_seed)
        gap = results.gap[m]
        assert gap.per_seed == pytest.approx(diffs.tolist(), abs=1e-12)
        assert gap.mean == pytest.approx(diffs.mean()) and gap.std == pytest.approx(diffs.std())
    assert sum(e.n for e in results.per_subject.values()) == sum(1 for s in results.samples if s.seen is False)
    assert results.categories == sorted({s.subject for s in results.samples})


def test_a_run_without_seen_test_images_has_no_gap():
    results, _ = fake_results(seeds=(0,), n_per_pair=1, seen=False)
    assert results.headline == "unseen" and results.seen is None and results.gap is None and not results.has_gap


def test_version_1_files_still_load_with_the_gap_unavailable(tmp_path):
    """Files written before seen test images existed load: a cc run's headline is unseen, with no gap."""
    old_cc, _ = fake_results(seeds=(0, 1), n_per_pair=1, seen=False)
    doc = version_1_document(old_cc)
    (tmp_path / "v1.json").write_text(json.dumps(doc))
    back = read_results(tmp_path / "v1.json")
    assert back.schema_version == SCHEMA_VERSION and back.headline == "unseen"
    assert back.seen is None and back.gap is None and back.categories == sorted(doc["per_subject"])
    assert dumps(back) == dumps(old_cc)  # nothing else changes
    committed = sorted(Path(__file__).resolve().parents[2].glob("leaderboards/results/*.json"))
    for path in committed:  # the committed board's files of that time, while there are any
        if json.loads(path.read_text())["schema_version"] == 1:
            assert not read_results(path).has_gap
    # a version-1 in-context run: its headline is every test image
    ic, _ = fake_results(seeds=(0,), n_per_pair=1, split="ic")
    doc = version_1_document(ic)
    for s in doc["samples"]:
        s["seen"] = True
    (tmp_path / "v1-ic.json").write_text(json.dumps(doc))
    back = read_results(tmp_path / "v1-ic.json")
    assert back.headline == "all" and not back.has_gap


@pytest.mark.parametrize("change,message", [
    (lambda d: d.update(gap=None), "seen and gap must both be present"),
    (lambda d: d.update(headline="both"), "headline must be one of"),
    (lambda d: d["gap"]["i_auroc"].update(mean=-1.5), r"gap.i_auroc: value -1.5 is outside \[-1, 1\]"),
    (lambda d: d.update(categories=["cow"]), "categories must be the sorted subjects"),
    (lambda d: d.pop("seen"), "missing field seen"),
])
def test_refuses_inconsistent_seen_scopes(written, change, message):
    _edit(written, change)
    with pytest.raises(ResultsError, match=message):
        read_results(written)


@pytest.mark.parametrize("remove,field", [
    (lambda d: d["provenance"].pop("weights_sha256"), "provenance.weights_sha256"),
    (lambda d: d.pop("per_context"), "per_context"),
    (lambda d: d["metrics"]["i_auroc"].pop("std"), "metrics.i_auroc.std"),
    (lambda d: d.pop("schema_version"), "schema_version"),
])
def test_refuses_missing_fields(written, remove, field):
    _edit(written, remove)
    with pytest.raises(ResultsError, match=f"missing field {field}") as info:
        read_results(written)
    assert str(info.value).startswith(str(written))


@pytest.mark.parametrize("change,message", [
    (lambda d: d.update(shots="0"), "field shots: expected an integer"),
    (lambda d: d["samples"][0].update(label=True), r"samples\[0\].label: expected an integer"),
    (lambda d: d["metrics"]["i_ap"].update(mean=1.5), "outside \\[0, 1\\]"),
    (lambda d: d["seen"]["metrics"]["i_ap"].update(mean=1.5), "seen.i_ap: value 1.5 is outside"),
    (lambda d: d["metrics"].pop("aupro"), "metrics must be exactly"),
    (lambda d: d["samples"].reverse(), "sorted by key"),
    (lambda d: d["metrics"]["i_auroc"].update(ci_image=[0.7, 0.6]), r"metrics.i_auroc.ci_image: \[0.7, 0.6\] is not"),
    (lambda d: d["metrics"]["i_ap"].update(ci_context_per_seed=[[0.1, 0.2]]), "1 intervals for 2 seeds"),
    (lambda d: d["micro_i_auroc"].update(ci_image=[0.5, 1.2]), "micro_i_auroc.ci_image"),
])
def test_refuses_wrong_values(written, change, message):
    _edit(written, change)
    with pytest.raises(ResultsError, match=message):
        read_results(written)


def test_refuses_unreadable_files(tmp_path):
    with pytest.raises(ResultsError, match="not found"):
        read_results(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ResultsError, match="not valid JSON"):
        read_results(tmp_path / "bad.json")


def test_write_is_atomic_and_canonical(run, written, monkeypatch):
    before = written.read_bytes()
    assert list(json.loads(before)) == sorted(json.loads(before))  # sorted keys
    write_results(written, run[0])
    assert written.read_bytes() == before  # same object → identical bytes

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        write_results(written, run[0])
    assert written.read_bytes() == before
    assert sorted(p.name for p in written.parent.iterdir()) == ["run.json"]  # no temporary left behind


def test_invalid_results_are_not_written(run, tmp_path):
    results = run[0]
    saved = results.shots
    results.shots = -1
    try:
        with pytest.raises(ResultsError, match="shots"):
            write_results(tmp_path / "x.json", results)
    finally:
        results.shots = saved
    assert not (tmp_path / "x.json").exists()


def test_build_refuses_inconsistent_seeds():
    from caadbench.eval.evaluator import Evaluator
    from tests.eval.fakes import make_batches, rulebook, seen_contexts

    def evaluate(data_seed):
        ev = Evaluator(seen_contexts(rulebook()), examples_per_category=0)
        for batch, output in make_batches(n_per_pair=1, size=16, data_seed=data_seed):
            ev.update(batch, output)
        return ev.compute()

    a = evaluate(0)
    common = dict(model="clip", learning="zero-shot", dataset="d", split="cc", shots=0, support_keys={},
                  config={}, provenance=fake_provenance())
    with pytest.raises(ResultsError, match="2 evaluations"):
        build_results(seeds=[0], evaluations=[a, a], **common)
    b = evaluate(0)
    b.samples.keys[0] = "zzz-other"
    with pytest.raises(ResultsError, match="different test set"):
        build_results(seeds=[0, 1], evaluations=[a, b], **common)
    ok = build_results(seeds=[3], evaluations=[a], support_keys={3: {"cow": ["k2", "k1"]}},
                       **{k: v for k, v in common.items() if k != "support_keys"})
    assert ok.support_keys == {"3": {"cow": ["k1", "k2"]}}
    assert all(stat.std == 0 for stat in ok.metrics.values() if not math.isnan(stat.mean))


def test_collect_provenance(tiny_backbone):
    with ResourceMeter("cpu") as meter:
        meter.count(10)
    prov = collect_provenance(tiny_backbone.identity, dataset_fingerprint="abc", dataset_path="data/x",
                              device="cpu", meter=meter, command=["/usr/bin/caadbench", "run", "--model", "clip"])
    assert prov.random_init and prov.weights_sha256 == "random-init" and prov.backbone_arch == "caad-tiny"
    assert prov.command == "caadbench run --model clip"
    assert prov.peak_memory_bytes > 0 and prov.peak_memory_kind == "cpu-peak-rss"
    assert prov.images_per_s > 0 and prov.wall_time_s > 0
    assert prov.git_commit == "unknown" or len(prov.git_commit) == 40
    import open_clip
    import torch

    assert (prov.torch_version, prov.open_clip_version) == (torch.__version__, open_clip.__version__)


def test_examples_sidecar_round_trip(run, written):
    examples = run[1]
    path = write_examples(examples_path(written), examples)
    assert path.name == "run.examples.npz"
    back = read_examples(path)
    assert back.keys == examples.keys and back.categories == examples.categories
    assert np.array_equal(back.images, examples.images) and np.array_equal(back.maps, examples.maps)
    assert np.array_equal(back.gt, examples.gt)
    np.savez(path.with_suffix(".tmp.npz"), keys=np.array(["a"]))
    with pytest.raises(ResultsError, match="lacks array"):
        read_examples(path.with_suffix(".tmp.npz"))
    path.write_bytes(b"not an npz")
    with pytest.raises(ResultsError, match="not a readable examples file"):
        read_examples(path)


def test_a_built_run_carries_both_intervals_of_every_headline_metric(run):
    results = run[0]
    info = results.intervals
    assert info is not None and info.resamples == FAKE_RESAMPLES and info.confidence == 0.95
    assert info.df["image"] > info.df["context"] > 0 and set(info.bounds) == {"p_auroc", "p_f1max", "aupro"}
    for name in [*METRIC_NAMES, "micro"]:
        stat = results.micro_i_auroc if name == "micro" else results.metrics[name]
        for level in ("image", "context"):
            low, high = stat.interval(level)
            assert low <= stat.mean <= high, (name, level)
            per_seed = getattr(stat, f"ci_{level}_per_seed")
            assert len(per_seed) == 2 and all(lo <= v <= hi for (lo, hi), v in zip(per_seed, stat.per_seed))
    assert all(c.auroc.ci_image is not None for c in results.per_context)
    samples = [s for s in results.samples if s.seen is False]
    for seed_index, value in enumerate(results.micro_i_auroc.per_seed):
        assert value == pytest.approx(auroc([s.scores[seed_index] for s in samples], [s.label for s in samples]))


def test_version_2_files_read_without_intervals_and_get_them_from_their_samples(run, written, tmp_path):
    """A file written before intervals: every ci field reads as null, and with_intervals computes the image-metric
    intervals a fresh file stores (same design, resamples and seed); pixel ones stay unavailable."""
    doc = json.loads(written.read_text())
    doc["schema_version"] = 2
    for key in ("micro_i_auroc", "intervals"):
        doc.pop(key)
    for stats in [doc["metrics"], {"c": c["auroc"] for c in doc["per_context"]}]:
        for stat in stats.values():
            for level in ("image", "context"):
                stat.pop(f"ci_{level}")
                stat.pop(f"ci_{level}_per_seed")
    (tmp_path / "v2.json").write_text(json.dumps(doc))
    old = read_results(tmp_path / "v2.json")
    assert old.schema_version == SCHEMA_VERSION and old.intervals is None and old.micro_i_auroc is None
    assert old.metrics["i_auroc"].ci_image is None
    with_intervals(old, contexts=True, n_resamples=FAKE_RESAMPLES)
    new = read_results(written)
    for m in ("i_auroc", "i_ap", "i_f1max"):
        for level in ("image", "context"):
            assert old.metrics[m].interval(level) == pytest.approx(new.metrics[m].interval(level), abs=1e-8)
    assert old.metrics["p_auroc"].ci_image is None and any("pixel metrics" in n for n in old.intervals.notes)
    assert old.micro_i_auroc.ci_context == pytest.approx(new.micro_i_auroc.ci_context, abs=1e-8)
    assert old.per_context[3].auroc.ci_image == pytest.approx(new.per_context[3].auroc.ci_image, abs=1e-8)


def test_a_model_without_maps_gets_image_intervals_only():
    from caadbench.eval.evaluator import Evaluator
    from caadbench.models.base import AnomalyOutput
    from tests.eval.fakes import make_batches, rulebook, seen_contexts

    ev = Evaluator(seen_contexts(rulebook()), examples_per_category=0)
    for batch, output in make_batches(n_per_pair=2):
        ev.update(batch, AnomalyOutput(output.scores, None))
    results = build_results(model="clip", learning="zero-shot", dataset="caad-synth", split="cc", shots=0, seeds=[0],
                            evaluations=[ev.compute()], support_keys={}, config={}, provenance=fake_provenance(),
                            n_resamples=FAKE_RESAMPLES)
    assert results.metrics["i_auroc"].ci_image is not None and results.metrics["p_auroc"].ci_image is None
    assert results.intervals.bounds == {} and any("pixel metrics: no intervals" in n for n in results.intervals.notes)


# ------------------------------------------------------------------------------------------- diagnosis
@pytest.fixture(scope="module")
def diagnosed():
    return fake_results(seeds=(0, 1), n_per_pair=2, extras=True)[0]


def test_diagnosis_over_seeds_and_round_trip(diagnosed, tmp_path):
    from caadbench.eval.evaluator import Evaluator
    from tests.eval.diagnosis_fakes import COLUMNS, FAMILIES, with_extras
    from tests.eval.fakes import make_batches, rulebook, seen_contexts

    d = diagnosed.diagnosis
    assert d.branches == ["subject", "context", "global"] and set(d.neighbourhood) == {"adapted", "frozen"}
    for seed_index, seed in enumerate((0, 1)):  # every per-seed value is that seed's evaluation
        ev = Evaluator(seen_contexts(rulebook()), examples_per_category=0, families=FAMILIES, extras_columns=COLUMNS)
        for batch, output in with_extras(make_batches(n_per_pair=2, seed=seed), seed):
            ev.update(batch, output)
        sd = ev.compute().diagnosis
        assert d.branch_i_auroc["unseen"]["context"].per_seed[seed_index] == sd.branch_i_auroc["unseen"]["context"]
        assert d.alpha["seen"]["global"]["q90"].per_seed[seed_index] == sd.alpha["seen"]["global"]["q90"]
        assert d.neighbourhood["frozen"].per_seed[seed_index] == pytest.approx(
            np.mean([c.share["frozen"] for c in sd.neighbourhood]))
    assert d.branch_i_auroc["unseen"]["fused"].per_seed == diagnosed.metrics["i_auroc"].per_seed
    back = read_results(write_results(tmp_path / "d.json", diagnosed))
    assert json.loads(dumps(back)) == json.loads(dumps(diagnosed))
    assert back.diagnosis.neighbourhood_pairs[0].share["adapted"].per_seed == \
        pytest.approx(d.neighbourhood_pairs[0].share["adapted"].per_seed)


def test_results_without_diagnosis_still_read(diagnosed, tmp_path):
    doc = json.loads(dumps(diagnosed))
    doc.pop("diagnosis")  # a file written before the field existed
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    assert read_results(path).diagnosis is None
    assert fake_results(seeds=(0,), n_per_pair=1)[0].diagnosis is None  # a model without extras: none


def test_refuses_a_diagnosis_value_outside_0_1(diagnosed, tmp_path):
    doc = json.loads(dumps(diagnosed))
    doc["diagnosis"]["alpha"]["unseen"]["subject"]["mean"]["per_seed"][0] = 1.5
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ResultsError, match="diagnosis.alpha.unseen.subject.mean"):
        read_results(path)
