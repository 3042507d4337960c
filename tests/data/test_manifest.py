"""The typed manifest: every field of index.json read with its type, shard paths that could leave the directory
refused, one-line errors naming the field."""

from __future__ import annotations

import copy
import json

import pytest

from caadbench.data.manifest import MANIFEST, LabelCounts, Manifest, ShardEntry
from caadbench.data.shards import build_shards
from caadbench.errors import ShardError
from tests.data.fake_sources import FakeContextual


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("manifest") / "fake"
    build_shards(FakeContextual(), out, workers=1, max_shard_samples=16, progress=False)
    return json.loads((out / MANIFEST).read_text())


def test_round_trip_and_typed_access(raw):
    m = Manifest.from_dict(raw, "index.json")
    assert m.to_dict() == raw
    assert isinstance(m.shards[0], ShardEntry) and m.shards[0].keys == tuple(raw["shards"][0]["keys"])
    assert m.counts["cc"]["test"].label == LabelCounts(**raw["counts"]["cc"]["test"]["label"])
    assert [e.path for e in m.part_shards("cc", "test")] == raw["splits"]["cc"]["parts"]["test"]["shards"]
    assert m.total_bytes == sum(e["bytes"] for e in raw["shards"])


def _broken(raw: dict, edit) -> dict:
    data = copy.deepcopy(raw)
    edit(data)
    return data


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.pop("kind"), "manifest lacks the field 'kind'"),
    (lambda d: d["shards"][0].update(bytes="12"), 'manifest field shards[0].bytes should be an integer, got "12"'),
    (lambda d: d["shards"][0].update(samples=True), "manifest field shards[0].samples should be an integer"),
    (lambda d: d["shards"][1].update(keys=[1, 2]), "manifest field shards[1].keys should be a list of strings"),
    (lambda d: d["counts"]["cc"]["test"]["label"].pop("normal"), "lacks the field counts.cc.test.label.'normal'"),
    (lambda d: d.update(image_size=[32]), "manifest field image_size should be [height, width]"),
    (lambda d: d["splits"]["cc"]["parts"]["test"]["shards"].append("cc/nope-000000.tar"),
     "split cc part test lists shard 'cc/nope-000000.tar', which is not in the manifest's shards"),
    (lambda d: d.update(format_version=2), "manifest format version 2 is not supported"),
])
def test_bad_fields_are_one_line_naming_the_field(raw, edit, message):
    with pytest.raises(ShardError) as err:
        Manifest.from_dict(_broken(raw, edit), "set/index.json")
    assert str(err.value).startswith("set/index.json: ") and message in str(err.value)


@pytest.mark.parametrize("path", ["../outside.tar", "/etc/x.tar", "cc/../../x.tar", "cc/a b.tar", "cc/$(rm).tar",
                                  "cc/x.tar.gz", "cc\\x.tar"])
def test_shard_paths_cannot_leave_the_directory(raw, path):
    with pytest.raises(ShardError, match=r"manifest field shards\[0\]\.path .* is not a relative path of plain names"):
        Manifest.from_dict(_broken(raw, lambda d: d["shards"][0].update(path=path)), "index.json")
