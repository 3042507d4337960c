"""Progress where there is no terminal: a start line, a line per 10 % or 30 s, and an end line, through logging."""

from __future__ import annotations

import logging

import pytest
from click.testing import CliRunner
from tqdm import tqdm

from caadbench.cli import main
from caadbench.utils.progress import LogProgress, duration, progress


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def lines(caplog):
    caplog.set_level(logging.INFO, logger="caadbench.progress")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "caadbench.progress"]


def test_lines_at_start_every_ten_percent_after_silence_and_at_the_end(lines):
    clock = Clock()
    bar = LogProgress(total=200, desc="cc/test", unit="img", clock=clock)
    clock.now += 1
    bar.update(2)
    assert lines() == []  # a step shorter than QUIET_S says nothing
    clock.now += 3
    bar.update(6)  # 4 %
    assert lines() == ["cc/test: started 4.0 s ago, 8/200 img (4 %), 2.0 img/s, about 1 min 36 s left"]
    clock.now += 2
    bar.update(12)  # 10 %, but less than QUIET_S after the last line
    assert len(lines()) == 1
    clock.now += 2
    bar.update(2)  # 11 %
    assert lines()[-1] == "cc/test: 22/200 img (11 %), 2.8 img/s, about 1 min 5 s left"
    clock.now += 31  # silence: a line even without another 10 %
    bar.set_postfix({"loss": "0.1234"})
    bar.update(1)
    assert lines()[-1] == "cc/test: 23/200 img (11 %), 0.6 img/s, about 5 min 0 s left, loss 0.1234"
    bar.update(177)
    bar.close()
    bar.close()
    assert lines()[-1] == "cc/test: done, 200 img in 39.0 s (5.1 img/s), loss 0.1234" and len(lines()) == 4


def test_a_quick_step_says_nothing_and_a_resumed_one_says_so(lines):
    assert list(LogProgress(range(3), desc="verify", unit="shard")) == [0, 1, 2]
    assert lines() == []
    clock = Clock()
    bar = LogProgress(total=10, initial=4, desc="train", unit="step", clock=clock)
    clock.now += 5
    bar.update(1)
    assert lines() == ["train: started 5.0 s ago (resumed at 4), 5/10 step (50 %), 0.2 step/s, about 25.0 s left"]


def test_a_terminal_gets_a_bar_and_disabled_shows_nothing(lines, monkeypatch):
    assert isinstance(progress(total=3, desc="x"), LogProgress)  # pytest's stderr is no terminal
    quiet = progress(total=3, desc="y", enabled=False)
    assert isinstance(quiet, tqdm) and quiet.disable
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    assert isinstance(progress(total=3, desc="z"), tqdm)
    assert [line for line in lines() if not line.startswith("x:")] == []


def test_duration():
    assert (duration(4.24), duration(128), duration(3780)) == ("4.2 s", "2 min 8 s", "1 h 3 min")


def test_a_build_in_a_log_shows_its_progress(tmp_path, monkeypatch):
    monkeypatch.setattr("caadbench.utils.progress.QUIET_S", 0.0)  # as if every step were long
    result = CliRunner().invoke(main, ["build-shards", "--size", "40", "--image-size", "32", "--workers", "1",
                                       "--out", str(tmp_path / "set")])
    assert result.exit_code == 0, result.output
    for line in ("encode: started ", "encode: 8/40 img (20 %)", "encode: done, 40 img in ", "write: done, 140 img"):
        assert line in result.output
