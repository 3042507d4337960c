"""``caadbench build-shards / info / verify``: summaries, and one error line with exit 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from caadbench.cli import main
from caadbench.data.sources import base
from tests.data.fake_sources import FakeContextual


class CrashingSource(FakeContextual):
    def __init__(self, seed: int = 0, **kwargs) -> None:
        super().__init__(seed=seed, fail_at="red-road-002")


class DuplicateSource(FakeContextual):
    def __init__(self, seed: int = 0, **kwargs) -> None:
        super().__init__(seed=seed, extra_specs=FakeContextual().specs()[-1:])


class NeedsRoot(FakeContextual):
    def __init__(self, root: str, seed: int = 0) -> None:
        super().__init__(seed=seed)


@pytest.fixture(autouse=True)
def fakes(monkeypatch):
    for name, cls in (("fake", FakeContextual), ("crashing", CrashingSource), ("dup", DuplicateSource),
                      ("needs-root", NeedsRoot)):
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


def test_interrupted_build_via_cli(tmp_path):
    out = tmp_path / "out"
    line = _error_line(_run("build-shards", "--source", "crashing", "--out", str(out), "--workers", "2"))
    assert line == ("error: fake:red-road-002: loading sample 'red-road-002' failed: RuntimeError: simulated "
                    "crash while loading")
    assert list(tmp_path.iterdir()) == []
