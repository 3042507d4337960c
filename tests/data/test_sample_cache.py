"""Prepared samples kept per process: identical batches, shards unread once held, never another shard's bytes."""

from __future__ import annotations

import shutil

import pytest
import torch

import caadbench.data.pipeline as P
from caadbench.data.loader import open_dataset
from caadbench.data.sample_cache import ENV_MB, SAMPLES
from caadbench.data.shards import build_shards
from tests.data.fake_sources import FakeContextual

FIELDS = ("images", "subject_masks", "gt_masks", "labels", "has_gt")


def read(ds, part="train", **kwargs):
    return list(ds.batches("cc", part, image_size=kwargs.pop("image_size", 8), eval_size=8, batch_size=4, **kwargs))


def assert_same(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys == y.keys and x.subjects == y.subjects and x.contexts == y.contexts
        assert x.metadata == y.metadata
        for field in FIELDS:
            assert torch.equal(getattr(x, field), getattr(y, field)), field


@pytest.fixture()
def shard_reads(monkeypatch) -> list[str]:
    """The paths of the shards the pipeline reads, in order."""
    calls: list[str] = []
    real = P.read_shard

    def counting(root, entry):
        calls.append(entry.path)
        return real(root, entry)

    monkeypatch.setattr(P, "read_shard", counting)
    return calls


def test_held_samples_give_identical_batches_without_reading_shards(fake_set, shard_reads):
    ds = open_dataset(fake_set)
    with SAMPLES.disabled():
        reference = read(ds)
    n_shards = len(ds.manifest.part_shards("cc", "train"))
    assert len(shard_reads) == n_shards and SAMPLES.stats()["entries"] == 0
    first, second = read(ds), read(ds)
    assert len(shard_reads) == 2 * n_shards  # the second read came from the cache
    assert_same(first, reference)
    assert_same(second, reference)
    shuffled = [read(ds, shuffle=True, seed=1, epoch=e) for e in (0, 1)]
    with SAMPLES.disabled():
        assert_same(shuffled[0], read(ds, shuffle=True, seed=1, epoch=0))  # same order as an uncached shuffle
    assert len(shard_reads) == 3 * n_shards
    assert [k for b in shuffled[0] for k in b.keys] != [k for b in shuffled[1] for k in b.keys]
    second[0].metadata[0]["changed"] = True  # a caller's batch is its own
    assert "changed" not in read(ds)[0].metadata[0]


def test_other_sides_and_subsets(fake_set, shard_reads):
    ds = open_dataset(fake_set)
    read(ds)
    reads = len(shard_reads)
    small = read(ds, image_size=4)  # other input side: its own entries, read from the shards
    assert len(shard_reads) == 2 * reads and small[0].images.shape[-1] == 4
    keys = ds.support_keys("cc", 1, 0)
    wanted = sorted({k for ks in keys.values() for k in ks})
    support = read(ds, "support", keys=wanted)
    again = read(ds, "support", keys=wanted)
    assert_same(support, again)
    assert sorted(k for b in again for k in b.keys) == wanted


def test_a_rebuilt_set_is_never_served_from_another_shards_entries(tmp_path, shard_reads):
    a, b = tmp_path / "a", tmp_path / "b"
    build_shards(FakeContextual(), a, workers=1, max_shard_samples=10, progress=False)
    build_shards(FakeContextual(seed=1), b, workers=1, max_shard_samples=10, progress=False)
    first = read(open_dataset(a))
    other = read(open_dataset(b))
    assert not all(torch.equal(x.images, y.images) for x, y in zip(first, other))
    with SAMPLES.disabled():
        assert_same(other, read(open_dataset(b)))
    copy = tmp_path / "copy"
    shutil.copytree(a, copy)
    reads = len(shard_reads)
    assert_same(read(open_dataset(copy)), first)  # the same shard bytes elsewhere: the same entries
    assert len(shard_reads) == reads


def test_a_zero_limit_turns_the_cache_off(fake_set, shard_reads, monkeypatch):
    monkeypatch.setenv(ENV_MB, "0")
    ds = open_dataset(fake_set)
    read(ds)
    read(ds)
    assert SAMPLES.stats()["entries"] == 0 and len(shard_reads) == 2 * len(ds.manifest.part_shards("cc", "train"))
