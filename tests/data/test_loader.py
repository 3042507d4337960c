"""The streaming batch reader: API, tensors against independent references, ranks/workers, shuffling, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from caadbench.data.batch import EVAL_RESOLUTION
from caadbench.data.loader import open_dataset
from caadbench.data.location import Location
from caadbench.data.shards import MANIFEST, build_shards
from caadbench.errors import ShardError, SplitError
from tests.data.fake_sources import FakeContextual, FakeIndustrial


@pytest.fixture(scope="module")
def root(fake_set) -> Path:
    return fake_set


@pytest.fixture(scope="module")
def industrial(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("loader") / "ind"
    build_shards(FakeIndustrial(), out, workers=1, progress=False)
    return out


def _keys(batches) -> list[str]:
    return [k for b in batches for k in b.keys]


def _nearest(mask: np.ndarray, size: int) -> np.ndarray:
    """Independent nearest-neighbour reference: the source pixel whose centre is nearest each output centre."""
    rows = np.floor((np.arange(size) + 0.5) * mask.shape[0] / size).astype(int)
    cols = np.floor((np.arange(size) + 0.5) * mask.shape[1] / size).astype(int)
    return mask[rows][:, cols] > 0


def test_dataset_api(root):
    ds = open_dataset(root)
    m = json.loads((root / MANIFEST).read_text())
    assert ds.root == Location.of(root) and ds.root.path == root and ds.fingerprint == m["fingerprint"]
    assert ds.manifest.to_dict() == m  # the typed manifest holds every field of index.json
    assert ds.kind == "contextual" and ds.splits == ["cc", "cs", "ic"] and ds.image_size == (32, 32)
    assert ds.parts("cc") == ["train", "val", "support", "test"]
    assert ds.count("cc", "test") == m["splits"]["cc"]["parts"]["test"]["samples"]
    assert ds.subjects("cc") == ["blue", "red", "yellow"]
    held = m["splits"]["cs"]["definition"]["held_out_subjects"]
    assert ds.subjects("cs", "test") == held and not set(ds.subjects("cs", "train")) & set(held)
    sides = ds.context_sides("cc")
    assert sides == {s: {k: v[k] for k in ("seen", "unseen", "val") if k in v}
                     for s, v in m["splits"]["cc"]["definition"]["context_sides"].items()}
    assert all(v["unseen"] == [] for v in ds.context_sides("ic").values())
    with pytest.raises(SplitError, match=rf"{root / MANIFEST}: split 'xx' is not stored here"):
        ds.count("xx", "test")
    with pytest.raises(SplitError, match="split cc has no part 'validation'"):
        ds.count("cc", "validation")


def test_batches_match_independent_references(root):
    ds = open_dataset(root)
    source = FakeContextual()
    specs = {s.key: s for s in source.specs()}
    batches = list(ds.batches("cc", "test", image_size=16, eval_size=24, batch_size=7))
    assert [len(b) for b in batches][:-1] == [7] * (len(batches) - 1)
    keys = _keys(batches)
    assert keys == sorted(keys) and len(keys) == ds.count("cc", "test")
    b = batches[0]
    assert b.images.shape == (7, 3, 16, 16) and b.images.dtype == torch.float32
    assert b.subject_masks.shape == (7, 16, 16) and b.subject_masks.dtype == torch.bool
    assert b.gt_masks.shape == (7, 24, 24) and b.labels.dtype == torch.int64
    assert 0.0 <= b.images.min() and b.images.max() <= 1.0
    for i, key in enumerate(b.keys):
        sample = source.load(specs[key])
        ref = np.asarray(Image.fromarray(sample.image).resize((16, 16), Image.BICUBIC), np.float32) / 255
        got = b.images[i].permute(1, 2, 0).numpy()
        assert np.abs(got - ref).mean() < 0.01
        assert np.array_equal(b.subject_masks[i].numpy(), _nearest(sample.mask, 16))
        want_gt = _nearest(sample.mask, 24) if sample.label else np.zeros((24, 24), bool)
        assert np.array_equal(b.gt_masks[i].numpy(), want_gt)
        assert (b.labels[i].item(), b.subjects[i], b.contexts[i]) == (sample.label, sample.subject, sample.context)
        assert b.metadata[i] == sample.metadata()
    assert set(b.labels.tolist()) == {0, 1} or len(set(b.labels.tolist())) == 1
    assert any(g.any() for g in b.gt_masks) or not b.labels.any()


def test_industrial_masks(industrial):
    ds = open_dataset(industrial)
    batch = next(iter(ds.batches("std", "test", image_size=16, batch_size=64)))
    assert ds.image_size == (24, 32) and batch.images.shape[1:] == (3, 16, 16)
    assert batch.subject_masks.all()
    assert batch.gt_masks.shape[1:] == (EVAL_RESOLUTION, EVAL_RESOLUTION)
    for i, label in enumerate(batch.labels.tolist()):
        assert batch.gt_masks[i].any() == bool(label)


@pytest.mark.parametrize("world_size", [2, 3, 5])
def test_ranks_read_disjoint_balanced_shares(root, world_size):
    ds = open_dataset(root)
    shares = [_keys(ds.batches("ic", "train", image_size=8, eval_size=8, batch_size=16, rank=r,
                                world_size=world_size)) for r in range(world_size)]
    flat = [k for s in shares for k in s]
    assert len(flat) == len(set(flat)) == ds.count("ic", "train")
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert shares[0] == _keys(ds.batches("ic", "train", image_size=8, eval_size=8, rank=0, world_size=world_size))


def test_workers_cover_the_part_deterministically(root):
    ds = open_dataset(root)
    kwargs = dict(image_size=8, eval_size=8, batch_size=8, workers=2)
    first = _keys(ds.batches("cc", "train", **kwargs))
    assert sorted(first) == _keys(ds.batches("cc", "train", image_size=8, eval_size=8))
    assert first == _keys(ds.batches("cc", "train", **kwargs))


def test_shuffle_is_seeded_per_epoch(root):
    ds = open_dataset(root)
    kw = dict(image_size=8, eval_size=8, batch_size=64, shuffle=True, seed=3)
    e0, e0_again, e1 = (_keys(ds.batches("cc", "train", epoch=e, **kw)) for e in (0, 0, 1))
    assert e0 == e0_again and e0 != e1 and sorted(e0) == sorted(e1)
    assert e0 != sorted(e0)
    ranks = [_keys(ds.batches("cc", "train", epoch=1, rank=r, world_size=2, **kw)) for r in range(2)]
    assert sorted(ranks[0] + ranks[1]) == sorted(e0) and not set(ranks[0]) & set(ranks[1])


def test_support_keys_and_filtered_batches(root):
    ds = open_dataset(root)
    for seed in (0, 1, 2):
        k1, k2 = ds.support_keys("cc", 1, seed), ds.support_keys("cc", 2, seed)
        assert set(k1) == set(ds.subjects("cc", "test"))
        assert all(k1[s] == k2[s][:1] for s in k1)
    wanted = {k for keys in ds.support_keys("cc", 2, 1).values() for k in keys}
    batches = list(ds.batches("cc", "support", image_size=8, eval_size=8, keys=wanted))
    assert set(_keys(batches)) == wanted and all(not b.labels.any() for b in batches)
    with pytest.raises(SplitError, match=r"2 requested key\(s\) not in split cc part support: 'nope-1', 'nope-2'"):
        next(ds.batches("cc", "support", image_size=8, keys=wanted | {"nope-1", "nope-2"}))
    with pytest.raises(SplitError, match=r"split cc: 3-shot support sets are not stored \(stored shots: 1, 2, 4, 8\)"):
        ds.support_keys("cc", 3, 0)
    with pytest.raises(SplitError, match=r"split cc: support seed 9 is not stored"):
        ds.support_keys("cc", 1, 9)


def test_support_set_too_small(tmp_path):
    build_shards(FakeContextual(per_pair=1), tmp_path / "small", splits=["cc"], workers=1, progress=False)
    ds = open_dataset(tmp_path / "small")
    ds.support_keys("cc", 1, 0)
    with pytest.raises(SplitError, match=r"split cc: support set of '\w+' has [12] images?, asked for 4"):
        ds.support_keys("cc", 4, 0)


def test_too_many_shots_say_which_fit(tmp_path):
    build_shards(FakeContextual(per_pair=1), tmp_path / "small", splits=["cc"], workers=1, progress=False)
    ds = open_dataset(tmp_path / "small")
    k = ds.fitting_shots("cc", 0)
    smallest = min(len(keys) for keys in ds.manifest.splits["cc"].support["8"]["0"].values())
    assert k == max(s for s in (1, 2, 4, 8) if s <= smallest) and k < 4
    ds.support_keys("cc", k, 0)  # what it names fits
    with pytest.raises(SplitError, match=rf"asked for 4; --shots {k} fits every subject$"):
        ds.support_keys("cc", 4, 0)
    with pytest.raises(SplitError, match=rf"stored shots: 1, 2, 4, 8\); --shots {k} fits every subject$"):
        ds.support_keys("cc", 16, 0)


def test_missing_or_foreign_manifest(root, tmp_path):
    with pytest.raises(ShardError, match=f"{tmp_path / 'nothing'}: shard directory not found; build it with "
                                         f"`caadbench build-shards --out {tmp_path / 'nothing'}`"):
        open_dataset(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ShardError, match=f"{tmp_path / 'empty' / MANIFEST}: missing: not a complete caadbench"):
        open_dataset(tmp_path / "empty")
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    (copy / MANIFEST).write_text("{not json")
    with pytest.raises(ShardError, match=f"{copy / MANIFEST}: unreadable manifest"):
        open_dataset(copy)
    m = json.loads((root / MANIFEST).read_text())
    (copy / MANIFEST).write_text(json.dumps(dict(m, format_version=99)))
    with pytest.raises(ShardError, match="manifest format version 99 is not supported"):
        open_dataset(copy)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
@pytest.mark.parametrize("workers", [0, 2])
def test_damaged_shard_fails_at_read_time(root, tmp_path, damage, workers):
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    m = json.loads((copy / MANIFEST).read_text())
    entry = next(e for e in m["shards"] if e["split"] == "cc" and e["part"] == "test")
    path = copy / entry["path"]
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(bytes(data[: len(data) // 2]))
        expected = rf"{path}: shard is truncated: \d+ bytes, index.json says {entry['bytes']}"
    else:
        data[len(data) // 3] ^= 0x10
        path.write_bytes(bytes(data))
        expected = rf"{path}: shard content altered"
    ds = open_dataset(copy)
    with pytest.raises(ShardError, match=expected):
        list(ds.batches("cc", "test", image_size=8, eval_size=8, workers=workers))
    with pytest.raises(ShardError, match=expected):
        open_dataset(copy, verify=True)


def test_unreadable_tar_with_matching_manifest_names_the_shard(root, tmp_path):
    """A shard replaced by garbage *and* re-listed in the manifest still fails as a tar error, not a crash."""
    import hashlib

    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    m = json.loads((copy / MANIFEST).read_text())
    entry = next(e for e in m["shards"] if e["split"] == "ic" and e["part"] == "test")
    garbage = b"\x00not a tar" * 300
    (copy / entry["path"]).write_bytes(garbage)
    entry.update(bytes=len(garbage), sha256=hashlib.sha256(garbage).hexdigest())
    (copy / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(ShardError, match=rf"{copy / entry['path']}: unreadable tar"):
        list(open_dataset(copy).batches("ic", "test", image_size=8))


def test_pipeline_pickles_for_spawned_workers(root):
    """DataLoader workers started with ``spawn`` (macOS, Windows) receive the pipeline pickled."""
    import pickle

    ds = open_dataset(root)
    kw = dict(image_size=8, eval_size=8, shuffle=True, seed=1, epoch=1, rank=1, world_size=2)
    pipe = ds.pipeline("ic", "test", **kw)
    again = pickle.loads(pickle.dumps(pipe))
    assert [s["key"] for s in again] == [s["key"] for s in pipe] == _keys(ds.batches("ic", "test", **kw))


def test_collate_stack_equals_torch_stack():
    import torch

    from caadbench.data.loader import stack

    for tensors in ([torch.rand(3, 8, 8) for _ in range(4)], [torch.rand(5, 5) > 0.5 for _ in range(3)]):
        out = stack(tensors)
        assert out.dtype == tensors[0].dtype and torch.equal(out, torch.stack(tensors))


def test_preparing_a_sample_single_threaded_gives_the_same_tensors():
    import torch

    from caadbench.data.loader import prepare_sample, single_threaded
    from caadbench.data.sources import get_source_class

    source = get_source_class("synthetic")(seed=0, size=4, image_size=96)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for sample in (source.load(spec) for spec in source.specs()[:2]):
            many = prepare_sample(sample, 64, 80)
            with single_threaded():
                one = prepare_sample(sample, 64, 80)
                assert torch.get_num_threads() == 1
            assert torch.get_num_threads() == 2
            for k in ("image", "subject_mask", "gt_mask"):
                assert torch.equal(many[k], one[k])
    finally:
        torch.set_num_threads(threads)
