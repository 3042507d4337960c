"""`caadbench run`, `verify` and `info` on a shard set served over HTTP on 127.0.0.1 give what the folder gives."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from caadbench.cli import main
from caadbench.eval.results import read_results
from caadbench.utils.static_server import serve_directory
from tests.cli.test_run_cli import without_plan


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from caadbench.data.shards import build_shards
    from caadbench.data.sources import get_source_class

    root = tmp_path_factory.mktemp("cli-remote") / "synth"
    build_shards(get_source_class("synthetic")(seed=0, size=60, image_size=64), root, workers=1,
                 max_shard_samples=12, progress=False)
    return root


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def one_error_line(result) -> str:
    lines = without_plan(result.output)
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_run_verify_and_info_by_url_equal_the_folder(data, tmp_path):
    run = ("run", "--model", "clip", "--split", "cc", "--backbone", "caad-tiny", "--batch-size", "16")
    folder = invoke(*run, "--data", str(data), "--out", str(tmp_path / "folder"))
    assert folder.exit_code == 0, folder.output
    with serve_directory(data) as url:
        remote = invoke(*run, "--data", url, "--out", str(tmp_path / "url"))
        assert remote.exit_code == 0, remote.output
        verified = invoke("verify", url)
        info = invoke("info", url)
    name = "caad-synth-n60-64px_cc_clip_zeroshot_caad-tiny-random-init.json"
    a, b = read_results(tmp_path / "folder" / name), read_results(tmp_path / "url" / name)
    assert {m: s.per_seed for m, s in a.metrics.items()} == {m: s.per_seed for m, s in b.metrics.items()}
    assert [s.scores for s in a.samples] == [s.scores for s in b.samples]
    assert b.provenance.dataset_path == url and b.provenance.dataset_fingerprint == a.provenance.dataset_fingerprint
    local = invoke("verify", str(data))
    assert verified.exit_code == local.exit_code == 0
    assert verified.output.split(" match ")[0] == local.output.split(" match ")[0]
    assert f"match {url}index.json" in verified.output
    assert info.exit_code == 0 and info.output.split("\n", 1)[1] == invoke("info", str(data)).output.split("\n", 1)[1]


def test_altered_shard_and_unreachable_url_are_one_line(data, tmp_path, closed_port):
    copy = tmp_path / "served"
    shutil.copytree(data, copy)
    shard = copy / "cc" / "test-000001.tar"
    raw = bytearray(shard.read_bytes())
    raw[3000] ^= 0x01
    shard.write_bytes(bytes(raw))
    with serve_directory(copy) as url:
        line = one_error_line(invoke("verify", url))
        assert line.startswith(f"error: {url}cc/test-000001.tar: shard content altered")
        line = one_error_line(invoke("run", "--model", "clip", "--split", "cc", "--backbone", "caad-tiny",
                                     "--data", url, "--out", str(tmp_path / "o")))
        assert line.startswith(f"error: {url}cc/test-000001.tar: shard content altered")
    port = closed_port
    start = time.monotonic()
    line = one_error_line(invoke("run", "--model", "clip", "--split", "cc", "--backbone", "caad-tiny", "--data",
                                 f"http://127.0.0.1:{port}/synth/", "--out", str(tmp_path / "o")))
    assert time.monotonic() - start < 10
    assert line.startswith(f"error: http://127.0.0.1:{port}/synth/index.json: cannot read the manifest (cannot "
                           "reach the server")
    assert not (tmp_path / "o").exists()
