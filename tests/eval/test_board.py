"""``caadbench board``: a spec of rows runs every row once per commit, resumes, and regenerates the tables."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from caadbench.cli import main
from caadbench.errors import CaadError
from caadbench.eval.board import board_configs, run_board


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from caadbench.data.shards import build_shards
    from caadbench.data.sources import get_source_class

    root = tmp_path_factory.mktemp("board") / "synth"
    build_shards(get_source_class("synthetic")(seed=0, size=60, image_size=64), root, splits=["cc"], workers=1,
                 progress=False)
    return root


def _spec(tmp_path: Path, data: Path) -> Path:
    spec = tmp_path / "board.yaml"
    spec.write_text(f"defaults: {{data: {data}, split: cc, backbone: caad-tiny, image_size: 64}}\n"
                    "rows:\n  - {model: clip}\n  - {model: clip.few_shot, shots: 1, seeds: [0, 1]}\n")
    return spec


def test_a_board_runs_every_row_once_per_commit(data, tmp_path, monkeypatch):
    import caadbench.eval.board as board
    import caadbench.eval.provenance as provenance

    monkeypatch.setattr(provenance, "git_state", lambda directory=None: ("c0ffee", False))
    monkeypatch.setattr(board, "git_state", lambda directory=None: ("c0ffee", False))
    configs = board_configs(_spec(tmp_path, data), tmp_path / "results")
    assert [(c.model, c.shots, c.seeds) for c in configs] == [("clip", 0, (0,)), ("clip.few_shot", 1, (0, 1))]
    first = run_board(configs, echo=lambda line: None)
    assert [t.ran for t in first] == [True, True] and all(t.cpu_s > 0 for t in first)
    again = run_board(configs, echo=lambda line: None)  # done at this commit: skipped, nothing rewritten
    assert [t.ran for t in again] == [False, False] and [t.path for t in again] == [t.path for t in first]
    monkeypatch.setattr(board, "git_state", lambda directory=None: ("beef", False))  # another commit: rerun
    assert [t.ran for t in run_board(configs[:1], echo=lambda line: None)] == [True]


def test_the_command_writes_the_tables_and_prints_the_cpu_time(data, tmp_path):
    out = tmp_path / "BOARD.md"
    result = CliRunner().invoke(main, ["board", str(_spec(tmp_path, data)), "--results", str(tmp_path / "r"),
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 of 2 rows run:" in result.output and "s CPU; wrote" in result.output
    assert "clip.few_shot" in out.read_text()


def test_a_bad_spec_fails_before_any_run(data, tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(f"defaults: {{data: {data}}}\nrows:\n  - {{model: clip, split: cc}}\n  - {{model: clip, shot: 1}}\n")
    with pytest.raises(CaadError, match=r"row 2: clip.*unknown run setting 'shot'"):
        board_configs(spec, tmp_path / "r")
    spec.write_text("rows: []\n")
    with pytest.raises(CaadError, match="a board spec is a mapping with 'rows'"):
        board_configs(spec, tmp_path / "r")


def test_row_labels_say_how_a_model_is_fitted(tmp_path, monkeypatch):
    from caadbench.eval import board
    from caadbench.eval.runner import RunConfig

    monkeypatch.setattr(board, "git_state", lambda directory=None: ("beef", False))
    monkeypatch.setattr(board, "_done", lambda cfg, commit: tmp_path / "done.json")  # every row done: skipped
    lines: list[str] = []
    run_board([RunConfig(model="aprilgan", split="cc", data=tmp_path),
               RunConfig(model="winclip.plus", split="cc", data=tmp_path, shots=4)], echo=lines.append)
    assert lines[0].startswith("[1/2] aprilgan (cc, trained, seeds [0]): done at this commit")
    assert lines[1].startswith("[2/2] winclip.plus (cc, 4-shot, seeds [0]): done")
