"""Results as flat rows: one row per run / subject / context, the three formats, the CLI and the DataFrame agree."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from caadbench.cli import main
from caadbench.errors import CaadError, ResultsError
from caadbench.eval.flatten import RUN_COLUMNS, flatten, format_rows, result_files, results_frame, results_rows
from caadbench.eval.metrics import METRIC_NAMES
from caadbench.eval.results import read_results
from tests.eval.fakes import fake_results, write_fake_run

COMMITTED = Path(__file__).resolve().parents[2] / "leaderboards" / "results"


def test_one_row_per_run_holds_identity_and_every_metric_mean_and_std():
    results, _ = fake_results(seeds=(0, 1))
    (row,) = flatten(results, path="runs/x.json")
    assert list(row)[:len(RUN_COLUMNS)] == list(RUN_COLUMNS)
    assert row["file"] == "x.json" and row["seeds"] == "0,1" and row["n_seeds"] == 2
    for m in METRIC_NAMES:
        assert row[m] == results.metrics[m].mean and row[f"{m}_std"] == results.metrics[m].std
        assert row[f"seen_{m}"] == results.seen.metrics[m].mean and row[f"gap_{m}"] == results.gap[m].mean
    assert row["headline_images"] + row["seen_images"] == row["test_images"] == len(results.samples)
    for m in [*METRIC_NAMES, "micro_i_auroc"]:
        stat = results.micro_i_auroc if m == "micro_i_auroc" else results.metrics[m]
        for level in ("image", "context"):
            assert [row[f"{m}_ci_{level}_low"], row[f"{m}_ci_{level}_high"]] == stat.interval(level)
    assert row["micro_i_auroc"] == results.micro_i_auroc.mean


def test_run_without_seen_images_has_the_same_columns_with_none():
    with_seen, _ = fake_results(seeds=(0,))
    without, _ = fake_results(seeds=(0,), seen=False)
    a, b = flatten(with_seen)[0], flatten(without)[0]
    assert list(a) == list(b) and b["seen_i_auroc"] is None and b["gap_i_auroc"] is None


def test_by_subject_and_by_context_rows():
    results, _ = fake_results(seeds=(0, 1))
    subjects = flatten(results, by="subject")
    assert [r["subject"] for r in subjects] == sorted(results.per_subject)
    for r in subjects:
        entry = results.per_subject[r["subject"]]
        assert r["n"] == entry.n and r["i_auroc"] == entry.metrics["i_auroc"].mean
        theirs = results.seen.per_subject.get(r["subject"])
        if theirs is not None:
            assert r["gap_i_auroc"] == pytest.approx(theirs.metrics["i_auroc"].mean - r["i_auroc"])
    contexts = flatten(results, by="context")
    assert len(contexts) == len(results.per_context)
    assert {(r["subject"], r["context"]) for r in contexts} == {(c.subject, c.context) for c in results.per_context}
    assert {r["role"] for r in contexts} == {"seen", "unseen"}
    assert all([r["auroc_ci_image_low"], r["auroc_ci_image_high"]] == c.auroc.ci_image
               for r, c in zip(contexts, results.per_context))
    with pytest.raises(CaadError, match="expected one of"):
        flatten(results, by="seed")


def test_formats_round_trip_the_raw_values(tmp_path):
    write_fake_run(tmp_path / "a.json", examples=False, seeds=(0,))
    write_fake_run(tmp_path / "b.json", examples=False, seeds=(0, 1), seen=False, model="clip")
    rows = results_rows(tmp_path)
    assert [r["file"] for r in rows] == ["a.json", "b.json"]
    parsed = json.loads(format_rows(rows, "json"))
    assert parsed[1]["gap_i_auroc"] is None and parsed[0]["i_auroc"] == rows[0]["i_auroc"]
    table = list(csv.DictReader(io.StringIO(format_rows(rows, "csv"))))
    assert float(table[0]["i_auroc"]) == pytest.approx(rows[0]["i_auroc"]) and table[1]["gap_i_auroc"] == ""
    md = format_rows(rows, "md").splitlines()
    assert len(md) == 2 + len(rows) and md[0].startswith("| file | model |")
    assert f"| {100 * rows[0]['i_auroc']:.1f} |" in md[2]  # fractions in percent
    assert f"| {100 * rows[0]['aupro']:.1f} |" in md[2] and f"| {100 * rows[0]['micro_i_auroc']:.1f} |" in md[2]


def test_cli_on_the_committed_leaderboard_results_equals_the_dataframe():
    runner = CliRunner()
    for by in (None, "subject", "context"):
        args = ["results", str(COMMITTED), "--format", "json"] + (["--by", by] if by else [])
        out = runner.invoke(main, args)
        assert out.exit_code == 0, out.output
        cli_rows = json.loads(out.output)
        files = result_files(COMMITTED)
        if by is None:
            assert len(cli_rows) == len(files)
        else:
            key = "per_subject" if by == "subject" else "per_context"
            assert len(cli_rows) == sum(len(getattr(read_results(p), key)) for p in files)
        frame = results_frame(COMMITTED, by=by)
        assert list(frame.columns) == list(cli_rows[0])
        assert len(frame) == len(cli_rows)
        for record, row in zip(frame.to_dict("records"), cli_rows):
            for k, v in row.items():
                got = record[k]
                if v is None:
                    assert got is None or (isinstance(got, float) and math.isnan(got)), k
                elif isinstance(v, float):
                    assert got == pytest.approx(v, nan_ok=True), k
                else:
                    assert got == v, k
    md = runner.invoke(main, ["results", str(COMMITTED)])
    assert md.exit_code == 0 and md.output.count("\n") == 2 + len(result_files(COMMITTED))


def test_cli_in_a_terminal_shows_a_short_table_and_every_column_on_request(tmp_path, monkeypatch):
    from caadbench.eval.flatten import SHORT_COLUMNS

    write_fake_run(tmp_path / "a.json", examples=False, seeds=(0,))
    runner = CliRunner()
    monkeypatch.setattr("caadbench.cli.eval_commands.stdout_is_terminal", lambda: True)
    short = runner.invoke(main, ["results", str(tmp_path)]).output.splitlines()
    assert short[0] == "| " + " | ".join(SHORT_COLUMNS[None]) + " |" and len(SHORT_COLUMNS[None]) == 16
    by_subject = runner.invoke(main, ["results", str(tmp_path), "--by", "subject"]).output.splitlines()
    assert by_subject[0].startswith("| model | dataset | split | weights_label | subject | n |")
    every = runner.invoke(main, ["results", str(tmp_path), "--columns", "all"]).output.splitlines()
    assert every[0].startswith("| file | model | learning |") and every[0].count("|") > 60
    picked = runner.invoke(main, ["results", str(tmp_path), "--columns", "model,aupro"]).output.splitlines()
    aupro = read_results(tmp_path / "a.json").metrics["aupro"].mean
    assert picked[0] == "| model | aupro |" and picked[2] == f"| coreclip | {100 * aupro:.1f} |"  # in percent
    bad = runner.invoke(main, ["results", str(tmp_path), "--columns", "model,iauroc"])
    assert bad.exit_code == 2 and "error: --columns: unknown column 'iauroc' (did you mean 'i_auroc'?)" in bad.output
    monkeypatch.setattr("caadbench.cli.eval_commands.stdout_is_terminal", lambda: False)
    assert runner.invoke(main, ["results", str(tmp_path)]).output.splitlines()[0] == every[0]  # a pipe: all


def test_cli_writes_a_file_and_refuses_a_missing_path(tmp_path):
    runner = CliRunner()
    out = tmp_path / "table.csv"
    res = runner.invoke(main, ["results", str(COMMITTED), "--format", "csv", "--out", str(out)])
    assert res.exit_code == 0 and pd.read_csv(out).shape[0] == len(result_files(COMMITTED))
    missing = runner.invoke(main, ["results", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "no such results file or directory" in missing.output
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsError, match="no results files"):
        results_rows(tmp_path / "empty")


def test_results_frame_is_exported_lazily():
    import caadbench

    frame = caadbench.results_frame(COMMITTED / "caad-synth_cc_clip_zeroshot_caad-tiny-world.json", by="subject")
    assert set(frame["model"]) == {"clip"} and frame["subject"].is_unique
