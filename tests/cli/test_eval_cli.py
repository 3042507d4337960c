"""`caadbench leaderboard`, `caadbench report` and `caadbench compare` through the click CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from caadbench.cli import main
from tests.eval.fakes import write_fake_run


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli") / "results"
    d.mkdir()
    write_fake_run(d / "coreclip.json", seeds=(0,), n_per_pair=1, examples=False, dataset="caad-3k",
                   random_init=False)
    return d


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_leaderboard_write_then_check(results_dir, tmp_path):
    out = tmp_path / "README.md"
    result = invoke("leaderboard", "--results", str(results_dir), "--out", str(out))
    assert result.exit_code == 0, result.output
    first = out.read_text()
    assert "coreclip.json" in first and "Δ coreclip − reported" in first
    result = invoke("leaderboard", "--results", str(results_dir), "--out", str(out), "--check")
    assert result.exit_code == 0 and "up to date" in result.output
    assert out.read_text() == first  # --check writes nothing


def test_leaderboard_check_fails_on_a_stale_file(results_dir, tmp_path):
    out = tmp_path / "README.md"
    assert invoke("leaderboard", "--results", str(results_dir), "--out", str(out)).exit_code == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke("leaderboard", "--results", str(empty), "--out", str(out), "--check")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {out}: leaderboard is stale")


def test_leaderboard_custom_references(results_dir, tmp_path):
    refs = tmp_path / "refs.json"
    refs.write_text('{"schema_version": 1, "unit": "percent", "citations": {}, "rows": []}')
    out = tmp_path / "README.md"
    result = invoke("leaderboard", "--results", str(results_dir), "--references", str(refs), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert f"in `{refs}`" in out.read_text() and "reported:" not in out.read_text()


def test_leaderboard_outside_the_repository_names_results(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("leaderboard")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: leaderboards/results: not found here")
    assert "--results DIR" in lines[0] and not (tmp_path / "leaderboards").exists()


def test_report_command(tmp_path):
    path = write_fake_run(tmp_path / "run.json", seeds=(0,), n_per_pair=1, examples=True)
    result = invoke("report", str(path))
    assert result.exit_code == 0, result.output
    report = tmp_path / "run-report" / "report.md"
    assert f"wrote {report}" in result.output and (report.parent / "examples.png").is_file()


def test_report_bad_input_is_one_line(tmp_path):
    result = invoke("report", str(tmp_path / "missing.json"))
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {tmp_path / 'missing.json'}: results file not found"
    bad = tmp_path / "old.json"
    bad.write_text('{"schema_version": 0, "model": "x"}')
    result = invoke("report", str(bad))
    assert result.exit_code == 2 and "schema version 0 is not supported" in result.output


def test_compare_prints_both_levels_and_refuses_other_test_images(tmp_path):
    a = write_fake_run(tmp_path / "a.json", seeds=(0,), n_per_pair=2, examples=False)
    b = write_fake_run(tmp_path / "b.json", seeds=(1,), n_per_pair=2, examples=False, model="coreclip.no_csr")
    result = invoke("compare", str(a), str(b))
    assert result.exit_code == 0, result.output
    assert "A = a.json: coreclip" in result.output and "B = b.json: coreclip.no_csr" in result.output
    assert "image level:" in result.output and "context level:" in result.output
    assert "| I-AUROC |" in result.output and "| Micro I-AUROC |" in result.output
    other = write_fake_run(tmp_path / "c.json", seeds=(0,), n_per_pair=1, examples=False)
    result = invoke("compare", str(a), str(other))
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1
    assert lines[0].startswith(f"error: {other}: cannot be compared with {a}: test keys differ")
