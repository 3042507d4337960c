"""Shard directories read from URLs (HTTP on 127.0.0.1, ``pipe:``, fsspec) give what the folder gives, hash-checked;
and the shards open with plain webdataset."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from caadbench.data.loader import open_dataset
from caadbench.data.location import Location
from caadbench.data.manifest import MANIFEST
from caadbench.data.verify import verify_shards
from caadbench.errors import ShardError
from caadbench.utils.static_server import serve_directory
from tests.data.fake_sources import FakeContextual


@pytest.fixture(scope="module")
def root(fake_set) -> Path:
    return fake_set


@pytest.fixture(scope="module")
def url(root):
    with serve_directory(root) as base:
        yield base


def _read(ds, **kw) -> list:
    return list(ds.batches("cc", "test", image_size=16, eval_size=16, batch_size=8, **kw))


def _same_batches(a: list, b: list) -> None:
    assert [x.keys for x in a] == [y.keys for y in b]
    for x, y in zip(a, b):
        assert torch.equal(x.images, y.images) and torch.equal(x.gt_masks, y.gt_masks)
        assert torch.equal(x.subject_masks, y.subject_masks) and x.metadata == y.metadata


@pytest.mark.parametrize(("value", "scheme", "file", "name"), [
    ("data/set", "", "data/set/cc/test-000000.tar", "set"),
    ("file:///data/set", "", "/data/set/cc/test-000000.tar", "set"),
    ("http://host:8000/sets/set/", "http", "http://host:8000/sets/set/cc/test-000000.tar", "set"),
    ("https://host/set", "https", "https://host/set/cc/test-000000.tar", "set"),
    ("pipe:curl -sf https://host/set/{}", "pipe", "pipe:curl -sf https://host/set/cc/test-000000.tar", "set"),
    ("pipe:aws s3 cp s3://b/set/{} -", "pipe", "pipe:aws s3 cp s3://b/set/cc/test-000000.tar -", "set"),
    ("pipe:cat /data/set/", "pipe", "pipe:cat /data/set/cc/test-000000.tar", "set"),
    ("s3://bucket/set/", "s3", "s3://bucket/set/cc/test-000000.tar", "set"),
])
def test_locations_join_like_webdataset_urls(value, scheme, file, name):
    loc = Location.of(value)
    assert loc.scheme == scheme and loc.is_local == (scheme == "")
    assert str(loc / "cc/test-000000.tar") == file and loc.name == name
    assert (loc / "cc" / "test-000000.tar") == loc / "cc/test-000000.tar"


def test_pipe_paths_are_shell_quoted():
    assert str(Location.of("pipe:cat {}") / "a b;rm x") == "pipe:cat 'a b;rm x'"


def test_http_reads_what_the_folder_reads(root, url):
    local, remote = open_dataset(root), open_dataset(url)
    assert remote.manifest == local.manifest and str(remote.root) == url
    _same_batches(_read(remote), _read(local))
    _same_batches(_read(remote, workers=2), _read(local, workers=2))
    shuffled = dict(shuffle=True, seed=1, epoch=2, rank=1, world_size=2)
    _same_batches(_read(remote, **shuffled), _read(local, **shuffled))
    assert verify_shards(url).ok and verify_shards(url).samples == verify_shards(root).samples


def test_pipe_and_fsspec_read_what_the_folder_reads(root):
    local = _read(open_dataset(root))
    _same_batches(_read(open_dataset(f"pipe:cat {root}/{{}}")), local)
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    for path in root.rglob("*"):
        if path.is_file():
            fs.pipe(f"/caad-test/fake/{path.relative_to(root).as_posix()}", path.read_bytes())
    try:
        ds = open_dataset("memory://caad-test/fake")
        assert ds.root.name == "fake"
        _same_batches(_read(ds), local)
    finally:
        fs.rm("/caad-test", recursive=True)


def test_a_shard_altered_on_the_server_is_named(root, tmp_path):
    copy = tmp_path / "served"
    shutil.copytree(root, copy)
    entry = open_dataset(copy).manifest.part_shards("cc", "test")[1]
    data = bytearray((copy / entry.path).read_bytes())
    data[len(data) // 2] ^= 0x20
    (copy / entry.path).write_bytes(bytes(data))
    with serve_directory(copy) as base:
        shard = f"{base}{entry.path}"
        with pytest.raises(ShardError, match=rf"^{shard}: shard content altered: sha256 .* differs from index.json"):
            _read(open_dataset(base))
        with pytest.raises(ShardError, match=rf"^{shard}: shard content altered"):
            _read(open_dataset(base), workers=2)
        with pytest.raises(ShardError, match=rf"^{shard}: shard content altered"):
            verify_shards(base)
        (copy / entry.path).unlink()
        with pytest.raises(ShardError, match=rf"^{shard}: shard listed in index.json is missing"):
            _read(open_dataset(base))


def test_unreachable_or_empty_url_fails_at_once_in_one_line(tmp_path, closed_port):
    base = f"http://127.0.0.1:{closed_port}/sets/fake/"
    start = time.monotonic()
    with pytest.raises(ShardError) as err:
        open_dataset(base)
    assert time.monotonic() - start < 5
    assert str(err.value).startswith(f"{base}{MANIFEST}: cannot read the manifest (cannot reach the server")
    assert "\n" not in str(err.value)
    with serve_directory(tmp_path) as empty:
        with pytest.raises(ShardError, match=rf"^{empty}{MANIFEST}: missing: not a complete caadbench shard"):
            open_dataset(empty)
    with pytest.raises(ShardError, match=r"pipe command exited with status 1"):
        open_dataset("pipe:cat /no/such/dir/{}")


def test_unknown_scheme_is_one_line():
    with pytest.raises(ShardError, match=r"nosuch://x/index.json: cannot read the manifest \(unsupported URL "
                                         r"scheme nosuch://"):
        open_dataset("nosuch://x/")


def test_plain_webdataset_reads_the_shards(root, url):
    """The documented recipe: ``webdataset.WebDataset(urls)`` over a part's shards, local or over HTTP."""
    import webdataset as wds

    ds = open_dataset(root)
    want = [k for e in ds.manifest.part_shards("cc", "test") for k in e.keys]
    source = FakeContextual()
    specs = {s.key: s for s in source.specs()}
    sources = [ds.shard_urls("cc", "test")]
    if shutil.which("curl"):  # webdataset reads http(s) URLs with curl
        sources.append(open_dataset(url).shard_urls("cc", "test"))
    for urls in sources:
        plain = wds.WebDataset(urls, shardshuffle=False).decode("rgb8").to_tuple("__key__", "image.png", "mask.png",
                                                                                   "json")
        got = list(plain)
        assert [k for k, *_ in got] == want
        for key, image, mask, meta in got[:3]:
            sample = source.load(specs[key])
            assert np.array_equal(image, sample.image) and np.array_equal(mask[..., 0], sample.mask)
            assert meta == sample.metadata()
