"""Webdataset shard URLs as ``--data``: braces expanded as webdataset expands them; whole parts of one set only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from caadbench.cli import main
from caadbench.data.loader import open_dataset
from caadbench.data.location import Location
from caadbench.data.selection import shard_urls
from caadbench.data.verify import verify_shards
from caadbench.errors import ShardError


def _pattern(root: Path, split: str, part: str, last: int | None = None) -> str:
    shards = json.loads((root / "index.json").read_text())["splits"][split]["parts"][part]["shards"]
    last = len(shards) - 1 if last is None else last
    return f"{root}/{split}/{part}-{{000000..{last:06d}}}.tar"


def test_brace_urls_expand_as_webdataset_does(fake_set):
    pattern = _pattern(fake_set, "cc", "test")
    urls = shard_urls(pattern)
    assert urls == open_dataset(fake_set).shard_urls("cc", "test") and len(urls) > 1
    assert shard_urls(fake_set) is None and shard_urls(str(fake_set)) is None


def test_a_pattern_of_whole_parts_reads_those_parts_of_its_set(fake_set):
    whole = open_dataset(fake_set)
    ds = open_dataset(_pattern(fake_set, "cc", "test") + "::" + _pattern(fake_set, "cc", "train"))
    assert ds.root == Location.of(f"{fake_set}/") and ds.fingerprint == whole.fingerprint
    assert ds.splits == ["cc"] and ds.parts("cc") == ["train", "test"]
    assert ds.count("cc", "test") == whole.count("cc", "test")
    keys = [k for b in ds.batches("cc", "test", image_size=8, batch_size=7) for k in b.keys]
    assert keys == [k for b in whole.batches("cc", "test", image_size=8, batch_size=7) for k in b.keys]
    assert verify_shards(_pattern(fake_set, "cc", "test")).shards == len(whole.manifest.part_shards("cc", "test"))


def test_a_pattern_naming_part_of_a_part_says_the_whole_pattern(fake_set):
    partial = _pattern(fake_set, "cc", "test", last=0)
    n = len(open_dataset(fake_set).manifest.part_shards("cc", "test"))
    with pytest.raises(ShardError) as info:
        open_dataset(partial)
    assert str(info.value) == (f"{partial}: names 1 of the {n} shards of cc/test; caadbench reads whole parts: "
                               f"name them all ({fake_set}/cc/test-{{000000..{n - 1:06d}}}.tar) or pass the set "
                               f"directory {fake_set}")
    with pytest.raises(ShardError, match=rf"cc/test-{n:06d}\.tar is not a shard listed in .*index\.json \(and"):
        open_dataset(_pattern(fake_set, "cc", "test", last=99))


def test_run_reads_a_brace_url_like_the_directory(tmp_path):
    from caadbench.data.shards import build_shards
    from caadbench.eval.results import read_results
    from tests.data.fake_sources import FakeContextual

    data = tmp_path / "set"
    build_shards(FakeContextual(), data, splits=["cc"], workers=1, max_shard_samples=10, progress=False)
    metrics = []
    for i, where in enumerate((str(data), _pattern(data, "cc", "test"))):
        out = tmp_path / f"out{i}"
        result = CliRunner().invoke(main, ["run", "--model", "clip", "--split", "cc", "--data", where,
                                           "--backbone", "caad-tiny", "--image-size", "32", "--out", str(out)])
        assert result.exit_code == 0, result.output
        (path,) = out.glob("*_clip_*.json")
        metrics.append(read_results(path).metrics)
    assert metrics[0] == metrics[1]
