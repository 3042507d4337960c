"""Shard building: reproducibility, layout, manifest, atomicity, verification and bad input."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from caadbench.data.manifest import MANIFEST, LabelCounts, ShardEntry
from caadbench.data.shards import build_shards, decode_record, iter_records, read_manifest, read_shard
from caadbench.data.verify import check_shards, verify_shards
from caadbench.errors import CaadError, DataError, ShardError, SplitError
from tests.data.fake_sources import FakeContextual, FakeIndustrial

SHARD = 16  # small shards so every part spans several tars


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards") / "fake"
    build_shards(FakeContextual(), out, workers=1, max_shard_samples=SHARD, progress=False)
    return out


def _copy(built: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(built, dst)
    for p in dst.rglob("*"):
        p.chmod(0o644 if p.is_file() else 0o755)
    return dst


def _first_shard(root: Path, part: str = "test") -> tuple[Path, ShardEntry]:
    entry = next(e for e in read_manifest(root).shards if e.part == part)
    return root / entry.path, entry


def test_rebuild_with_other_worker_count_is_byte_identical(built, tmp_path):
    again = tmp_path / "again"
    build_shards(FakeContextual(), again, workers=2, max_shard_samples=SHARD, progress=False)
    assert (again / MANIFEST).read_bytes() == (built / MANIFEST).read_bytes()
    tars = sorted(p.relative_to(built) for p in built.rglob("*.tar"))
    assert tars == sorted(p.relative_to(again) for p in again.rglob("*.tar"))
    for rel in tars:
        assert (again / rel).read_bytes() == (built / rel).read_bytes(), rel
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again"]  # no temporary left behind


def test_other_seed_changes_the_splits(built, tmp_path):
    other = build_shards(FakeContextual(), tmp_path / "s1", seed=1, workers=1, max_shard_samples=SHARD,
                         progress=False)
    ours = json.loads((built / MANIFEST).read_text())
    assert other.splits["cc"].definition != ours["splits"]["cc"]["definition"]


def test_tar_layout_is_fixed_and_webdataset_readable(built):
    path, entry = _first_shard(built)
    with tarfile.open(path) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    keys = list(entry.keys)
    assert keys == sorted(keys)
    assert names == [f"{k}.{ext}" for k in keys for ext in ("image.png", "json", "mask.png")]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {(0, 0, 0, "", "", 0o444)}

    import webdataset as wds

    records = list(wds.WebDataset(str(path), shardshuffle=False))
    assert [r["__key__"] for r in records] == keys
    assert {"image.png", "mask.png", "json"} <= set(records[0])


def test_manifest_records_counts_splits_support_and_provenance(built):
    m = json.loads((built / MANIFEST).read_text())
    source = FakeContextual()
    specs = source.specs()
    assert m["format"] == "caadbench-shards" and m["format_version"] == 1
    assert m["fingerprint"] == source.fingerprint(specs)
    assert m["rulebook"] == source.rulebook() and m["source"] == source.describe()
    assert m["image_size"] == [32, 32] and m["num_samples"] == len(specs)
    assert set(m["splits"]) == {"cc", "ic", "cs"}
    for name, split in m["splits"].items():
        for part, info in split["parts"].items():
            entries = [e for e in m["shards"] if e["split"] == name and e["part"] == part]
            assert [e["path"] for e in entries] == info["shards"]
            assert sum(e["samples"] for e in entries) == info["samples"] == m["counts"][name][part]["samples"]
            counts = m["counts"][name][part]
            assert counts["label"]["normal"] + counts["label"]["anomalous"] == info["samples"]
            assert sum(counts["context"].values()) == info["samples"]
        chosen = {k for by_seed in split["support"].values() for by_subj in by_seed.values()
                  for keys in by_subj.values() for k in keys}
        support_keys = {k for e in m["shards"] if e["split"] == name and e["part"] == "support" for k in e["keys"]}
        assert support_keys == chosen
    assert "time" not in json.dumps(m).lower()


def test_records_decode_to_the_loaded_samples(built):
    path, entry = _first_shard(built)
    source = FakeContextual()
    specs = {s.key: s for s in source.specs()}
    records = list(iter_records(read_shard(built, entry), path))
    assert tuple(k for k, _ in records) == entry.keys
    for key, members in records[:4]:
        got, want = decode_record(key, members, f"{path}:{key}"), source.load(specs[key])
        assert np.array_equal(got.image, want.image) and np.array_equal(got.mask, want.mask)
        assert got.metadata() == want.metadata()


class CountingSource(FakeContextual):
    calls: list[str] = []

    def load(self, spec):
        CountingSource.calls.append(spec.key)
        return super().load(spec)


def test_each_sample_is_loaded_once(tmp_path):
    CountingSource.calls = []
    m = build_shards(CountingSource(), tmp_path / "o", workers=1, progress=False)
    assert len(CountingSource.calls) == len(set(CountingSource.calls)) == m.num_samples


def test_verify_passes_on_a_fresh_build(built):
    report = verify_shards(built)
    m = json.loads((built / MANIFEST).read_text())
    assert report.ok and report.shards == len(m["shards"])
    assert report.samples == sum(e["samples"] for e in m["shards"])


def test_verify_catches_a_flipped_byte(built, tmp_path):
    root = _copy(built, tmp_path)
    path, _ = _first_shard(root)
    data = bytearray(path.read_bytes())
    data[700] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ShardError, match=rf"{path}: shard content altered: sha256 .* differs from index.json"):
        verify_shards(root)


def test_verify_catches_truncated_missing_and_extra_shards(built, tmp_path):
    root = _copy(built, tmp_path)
    path, entry = _first_shard(root)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ShardError, match=rf"{path}: shard is truncated: 1000 bytes, index.json says "
                                         rf"{entry.bytes}"):
        verify_shards(root)
    path.unlink()
    (root / "cc" / "stray-000000.tar").write_bytes(b"")
    report = check_shards(root)
    assert (str(path), "shard listed in index.json is missing") in report.problems
    assert (str(root / "cc" / "stray-000000.tar"), "extra shard not listed in index.json") in report.problems
    with pytest.raises(ShardError, match=r"\(and 1 more problem\)"):
        verify_shards(root)


def test_verify_catches_a_manifest_whose_counts_were_edited(built, tmp_path):
    root = _copy(built, tmp_path)
    m = json.loads((root / MANIFEST).read_text())
    held = m["shards"][0]["samples"]
    m["shards"][0]["samples"] += 1
    (root / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(ShardError, match=rf"{root / m['shards'][0]['path']}: holds {held} samples, "
                                         rf"index.json says {held + 1}"):
        verify_shards(root)


@pytest.mark.parametrize("workers", [1, 2])
def test_interrupted_build_leaves_nothing_complete_looking(tmp_path, workers):
    source = FakeContextual(fail_at="red-road-001")
    out = tmp_path / "out"
    with pytest.raises(DataError, match="fake:red-road-001: loading sample 'red-road-001' failed: "
                                        "RuntimeError: simulated crash"):
        build_shards(source, out, workers=workers, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_interrupt_keeps_an_existing_output(built, tmp_path):
    root = _copy(built, tmp_path)
    before = (root / MANIFEST).read_bytes()
    with pytest.raises(DataError):
        build_shards(FakeContextual(fail_at="red-road-001"), root, overwrite=True, workers=1, progress=False)
    assert (root / MANIFEST).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy"]


def test_existing_output_needs_overwrite(built, tmp_path):
    root = _copy(built, tmp_path)
    with pytest.raises(CaadError, match="output already exists"):
        build_shards(FakeContextual(), root, workers=1, progress=False)
    m = build_shards(FakeContextual(per_pair=3), root, overwrite=True, workers=1, progress=False)
    assert json.loads((root / MANIFEST).read_text()) == m.to_dict()
    assert m.num_samples == len(FakeContextual(per_pair=3).specs())


def test_a_second_build_into_one_output_is_refused_while_the_first_runs(tmp_path):
    from caadbench.utils.atomic import output_lock

    out = tmp_path / "out"
    with output_lock(out):  # a build in progress holds the lock
        with pytest.raises(CaadError, match=rf"^{out}: process {os.getpid()} on \S+ is writing this output \(lock "
                                            rf"file {tmp_path / '.out.lock'}\)"):
            build_shards(FakeContextual(), out, workers=1, progress=False)
    assert list(tmp_path.iterdir()) == []
    build_shards(FakeContextual(), out, workers=1, progress=False)  # released
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_lock_left_by_a_dead_build_is_taken_over(tmp_path):
    import socket
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    (tmp_path / ".out.lock").write_text(f"{dead} {socket.gethostname()}\n")
    build_shards(FakeContextual(), tmp_path / "out", workers=1, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_output_that_appears_during_the_build_is_not_replaced(tmp_path):
    from caadbench.utils.atomic import atomic_directory

    out = tmp_path / "out"
    with pytest.raises(CaadError, match="output appeared while this build ran"):
        with atomic_directory(out) as tmp:
            (tmp / "mine").write_text("x")
            out.mkdir()  # what a concurrent build without the lock would do
    assert list(out.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_unwritable_output(tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        if os.access(parent, os.W_OK):
            pytest.skip("running as a user that can write to read-only directories")
        with pytest.raises(CaadError, match=f"{parent}: output directory is not writable"):
            build_shards(FakeContextual(), parent / "out", workers=1, progress=False)
    finally:
        parent.chmod(0o755)


def test_output_under_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CaadError, match=f"{tmp_path / 'file'}: cannot create output directory"):
        build_shards(FakeContextual(), tmp_path / "file" / "out", workers=1, progress=False)


class WrongLabelSource(FakeContextual):
    def load(self, spec):
        sample = super().load(spec)
        sample.label = 1 - sample.label
        return sample


class BadMaskSource(FakeContextual):
    def load(self, spec):
        sample = super().load(spec)
        sample.mask[0, 0] = 7
        return sample


def test_loaded_samples_are_validated_against_schema_and_spec(tmp_path):
    with pytest.raises(DataError, match="fake:blue-grass-000: loaded sample label 0 differs from its spec"):
        build_shards(WrongLabelSource(), tmp_path / "a", workers=1, progress=False)
    with pytest.raises(DataError, match="fake:blue-grass-000: mask is not binary"):
        build_shards(BadMaskSource(), tmp_path / "b", workers=2, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_bad_sources_fail_before_writing(tmp_path):
    with pytest.raises(DataError, match="empty source: no samples found"):
        build_shards(FakeContextual(rules={}), tmp_path / "a", progress=False)
    dup = FakeContextual(extra_specs=FakeContextual().specs()[:1])
    with pytest.raises(DataError, match="fake:blue-water-000: duplicate sample key 'blue-water-000'"):
        build_shards(dup, tmp_path / "b", progress=False)
    one_anomalous = dict(FakeContextual().rules, red=(["grass", "sand"], ["road"]))
    with pytest.raises(SplitError, match="subject 'red' has no anomalous context on the test side of split cc"):
        build_shards(FakeContextual(rules=one_anomalous), tmp_path / "c", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_industrial_source_builds_std(tmp_path):
    m = build_shards(FakeIndustrial(), tmp_path / "ind", workers=1, progress=False)
    assert set(m.splits) == {"std"} and m.kind == "industrial" and m.image_size == (24, 32)
    assert m.counts["std"]["train"].label == LabelCounts(normal=10, anomalous=0)
    assert m.counts["std"]["test"].label == LabelCounts(normal=10, anomalous=10)
    assert all(len(v) == 4 for v in m.splits["std"].support["4"]["0"].values())
    verify_shards(tmp_path / "ind")


def test_tiny_synthetic_set_end_to_end(tmp_path):
    """Integration: the real generator → shards (1 and 2 workers, identical) → verify → batches with masks."""
    from caadbench.data.loader import open_dataset
    from caadbench.data.sources import get_source_class

    def source():
        return get_source_class("synthetic")(seed=0, size=60, image_size=48)

    a = build_shards(source(), tmp_path / "a", workers=1, progress=False)
    b = build_shards(source(), tmp_path / "b", workers=2, progress=False)
    assert a == b and (tmp_path / "a" / MANIFEST).read_bytes() == (tmp_path / "b" / MANIFEST).read_bytes()
    assert verify_shards(tmp_path / "b").samples == sum(e.samples for e in a.shards)
    assert a.fingerprint == source().fingerprint() and a.rulebook == source().rulebook()
    assert a.splits["cc"].definition["unseen_without_seen_relative"] == {}
    ds = open_dataset(tmp_path / "a")
    assert ds.image_size == (48, 48)
    for batch in ds.batches("cc", "test", image_size=32, eval_size=40, batch_size=64):
        assert batch.subject_masks.flatten(1).any(1).all()  # every synthetic image has its subject
        assert (batch.gt_masks.flatten(1).any(1) == batch.labels.bool()).all()
        for context, subject in zip(batch.contexts, batch.subjects):  # unseen contexts and held-out seen images
            assert context in ds.context_sides("cc")[subject]["unseen"] + ds.context_sides("cc")[subject]["seen"]


def test_shards_are_capped_in_bytes(tmp_path):
    m = build_shards(FakeContextual(), tmp_path / "o", splits=["cc"], workers=1, max_shard_bytes=12_000,
                     progress=False)
    multi = [e for e in m.shards if e.samples > 1]
    assert multi and all(e.bytes <= 12_000 + 10_240 for e in multi)  # + tar end-of-archive padding
    assert max(e.samples for e in m.shards) < 16 and verify_shards(tmp_path / "o").ok
