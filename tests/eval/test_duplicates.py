"""Duplicate results files: byte-identical ones and two files of one run are flagged by ``caadbench leaderboard``."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from caadbench.cli import main
from caadbench.eval.duplicates import duplicate_groups
from caadbench.eval.leaderboard import read_results_dir
from tests.eval.fakes import write_fake_run


def test_identical_files_and_reruns_of_one_run_are_grouped(tmp_path):
    d = tmp_path / "results"
    d.mkdir()
    a = write_fake_run(d / "a.json", seeds=(0,), n_per_pair=1, examples=False)
    shutil.copy(a, d / "a-copy.json")
    rerun = json.loads(a.read_text())
    rerun["provenance"].update(git_commit="f" * 40, wall_time_s=99.0)  # another commit and machine, same run
    (d / "b-rerun.json").write_text(json.dumps(rerun))
    write_fake_run(d / "c-other-seeds.json", seeds=(0, 1), n_per_pair=1, examples=False)
    groups = duplicate_groups(read_results_dir(d))
    assert groups == [("identical files", [d / "a-copy.json", d / "a.json"]),
                      ("the same run", [d / "a-copy.json", d / "a.json", d / "b-rerun.json"])]
    result = CliRunner().invoke(main, ["leaderboard", "--results", str(d), "--out", str(tmp_path / "LB.md")])
    assert result.exit_code == 0, result.output
    assert (f"warning: {d / 'a-copy.json'}, {d / 'a.json'}: duplicate results (identical files): each is a row of "
            "the leaderboard; keep one") in result.output
    assert "c-other-seeds.json" not in result.output.split("wrote")[0]


def test_distinct_runs_are_not_flagged(tmp_path):
    d = tmp_path / "results"
    d.mkdir()
    write_fake_run(d / "a.json", seeds=(0,), n_per_pair=1, examples=False)
    write_fake_run(d / "b.json", seeds=(0,), n_per_pair=1, examples=False, model="winclip")
    assert duplicate_groups(read_results_dir(d)) == []
