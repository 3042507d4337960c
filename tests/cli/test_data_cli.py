"""``caadbench build-shards / info / verify``: summaries, and one error line with exit 2 on bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from caadbench.cli import main
from caadbench.data.sources import base
from caadbench.data.sources.base import SampleSpec
from tests.data.fake_sources import RULES, FakeContextual


class CrashingSource(FakeContextual):
    def __init__(self, seed: int = 0, **kwargs) -> None:
        super().__init__(seed=seed, fail_at="red-road-002")


class DuplicateSource(FakeContextual):
    def __init__(self, seed: int = 0, **kwargs) -> None:
        super().__init__(seed=seed, extra_specs=FakeContextual().specs()[-1:])


class DottedKey(FakeContextual):
    def __init__(self, seed: int = 0, **kwargs) -> None:
        extra = [SampleSpec("red.grass.9", "red", "grass", 0, "fake:red.grass.9.png")]
        super().__init__(seed=seed, extra_specs=extra)


class OneAnomalousContext(FakeContextual):
    def __init__(self, seed: int = 0, **kwargs) -> None:
        super().__init__(seed=seed, rules=dict(RULES, red=(["grass", "sand"], ["road"])))


class Empty(FakeContextual):
    def __init__(self, seed: int = 0, **kwargs) -> None:
        super().__init__(seed=seed, rules={})


class NeedsRoot(FakeContextual):
    def __init__(self, root: str, seed: int = 0) -> None:
        super().__init__(seed=seed)


@pytest.fixture(autouse=True)
def fakes(monkeypatch):
    for name, cls in (("fake", FakeContextual), ("crashing", CrashingSource), ("dup", DuplicateSource),
                      ("needs-root", NeedsRoot), ("dotted", DottedKey), ("one-anomalous", OneAnomalousContext),
                      ("empty", Empty)):
        monkeypatch.setitem(base._SOURCES, name, cls)


def _run(*args: str):
    return CliRunner().invoke(main, list(args))


def _error_line(result) -> str:
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "set"
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(base._SOURCES, "fake", FakeContextual)
        result = _run("build-shards", "--source", "fake", "--out", str(out), "--workers", "1", "--seed", "2")
    assert result.exit_code == 0, result.output
    assert "| cc      | test" in result.output and "fingerprint" in result.output
    return out


def test_info_and_verify(built):
    info = _run("info", str(built))
    assert info.exit_code == 0, info.output
    for text in ("## split cc (cross-context)", "seen contexts", "held-out subjects:", "support: shots 1, 2, 4, 8"):
        assert text in info.output
    ok = _run("verify", str(built))
    assert ok.exit_code == 0 and ok.output.startswith("ok: ")


def test_info_shows_the_validation_part(built, tmp_path):
    import shutil

    info = _run("info", str(built))
    assert "| val contexts" in info.output and "validation: whole seen contexts held out from train" in info.output
    assert "validation: held-out train subjects" in info.output  # cs
    old = tmp_path / "old"  # built before validation parts: says what to do
    shutil.copytree(built, old)
    manifest = json.loads((built / "index.json").read_text())
    for split in manifest["splits"].values():
        split["parts"].pop("val")
        split["definition"].pop("validation")
    manifest["counts"] = {k: {p: c for p, c in v.items() if p != "val"} for k, v in manifest["counts"].items()}
    (old / "index.json").write_text(json.dumps(manifest))
    info = _run("info", str(old))
    assert info.exit_code == 0, info.output
    assert "validation: none stored (shards built before validation parts): rebuild with `caadbench build-shards`" \
        in info.output


def test_info_columns_say_normal_and_anomalous(built):
    info = _run("info", str(built))
    assert "| train normal/anomalous" in info.output and "test normal/anomalous" in info.output
    assert "n/a" not in info.output


def test_info_shows_the_seen_test_counts(built, tmp_path):
    import shutil

    manifest = json.loads((built / "index.json").read_text())
    seen = manifest["splits"]["cc"]["definition"]["seen_test_counts"]
    total = sum(c["normal"] + c["anomalous"] for c in seen.values())
    info = _run("info", str(built))
    assert "of which seen test normal/anomalous" in info.output and f"seen test images: {total} (a seeded 20 % share" in info.output
    assert total > 0
    old = tmp_path / "old"  # shards built before the seen hold-out: the gap is unavailable, and info says so
    shutil.copytree(built, old)
    for key in ("seen_test_counts", "seen_test_fraction"):
        del manifest["splits"]["cc"]["definition"][key]
    (old / "index.json").write_text(json.dumps(manifest))
    info = _run("info", str(old))
    assert info.exit_code == 0 and "no seen test images" in info.output and "gap is unavailable" in info.output


def test_verify_flipped_byte(built, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    shard = copy / json.loads((copy / "index.json").read_text())["shards"][-1]["path"]
    data = bytearray(shard.read_bytes())
    data[-2000] ^= 0xFF
    shard.write_bytes(bytes(data))
    line = _error_line(_run("verify", str(copy)))
    assert line.startswith(f"error: {shard}: shard content altered")


def test_bad_inputs_exit_2_with_one_line(built, tmp_path):
    assert _error_line(_run("info", str(tmp_path))) == (
        f"error: {tmp_path / 'index.json'}: missing: not a complete caadbench shard directory "
        "(build it with `caadbench build-shards`)")
    assert "output already exists" in _error_line(_run("build-shards", "--source", "fake", "--out", str(built)))
    assert "unknown source" in _error_line(_run("build-shards", "--source", "nope", "--out", str(tmp_path / "x")))
    assert _error_line(_run("build-shards", "--source", "needs-root", "--out", str(tmp_path / "y"))) == (
        "error: --source needs-root: needs --root DIR (the dataset's directory)")
    assert "duplicate sample key" in _error_line(_run("build-shards", "--source", "dup", "--out",
                                                      str(tmp_path / "d")))
    assert "split 'std' does not apply" in _error_line(_run("build-shards", "--source", "fake", "--splits", "std",
                                                            "--out", str(tmp_path / "s")))
    assert not any(p.name in {"x", "y", "d", "s"} for p in tmp_path.iterdir())


def test_build_checks_workers_before_any_work(tmp_path):
    assert _error_line(_run("build-shards", "--source", "fake", "--workers", "0", "--out", str(tmp_path / "o"))) == (
        "error: --workers: must be at least 1, got 0")
    assert _error_line(_run("build-shards", "--image-size", "16", "--size", "20", "--out", str(tmp_path / "o"))) == (
        "error: --image-size: must be at least 32, got 16")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_build_via_cli(tmp_path):
    out = tmp_path / "out"
    line = _error_line(_run("build-shards", "--source", "crashing", "--out", str(out), "--workers", "2"))
    assert line == ("error: fake:red-road-002: loading sample 'red-road-002' failed: RuntimeError: simulated "
                    "crash while loading")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name,expected", [
    ("dotted", "error: fake:red.grass.9.png: invalid sample key 'red.grass.9': use letters, digits, '_' and '-' "
               "only (no dots)"),
    ("one-anomalous", "error: source fake-contextual: subject 'red' has no anomalous context on the test side of "
                      "split cc (needs at least 2 anomalous contexts, has 1: 'road')"),
    ("empty", "error: source fake-contextual: empty source: no samples found"),
])
def test_bad_sources_via_cli(tmp_path, name, expected):
    assert _error_line(_run("build-shards", "--source", name, "--out", str(tmp_path / "o"))) == expected
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_via_cli(tmp_path):
    (tmp_path / "file").write_text("x")
    line = _error_line(_run("build-shards", "--source", "fake", "--out", str(tmp_path / "file" / "o")))
    assert line.startswith(f"error: {tmp_path / 'file'}: cannot create output directory")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if not os.access(ro, os.W_OK):
            assert _error_line(_run("build-shards", "--source", "fake", "--out", str(ro / "o"))) == (
                f"error: {ro}: output directory is not writable")
    finally:
        ro.chmod(0o755)


def test_verify_truncated_shard_via_cli(built, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    entry = json.loads((copy / "index.json").read_text())["shards"][0]
    shard = copy / entry["path"]
    shard.write_bytes(shard.read_bytes()[:4096])
    assert _error_line(_run("verify", str(copy))) == (
        f"error: {shard}: shard is truncated: 4096 bytes, index.json says {entry['bytes']}")
