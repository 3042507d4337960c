"""File names that are not UTF-8 and symbolic links that loop, in ``build-shards`` (folder sources) and ``predict``:
one line naming the file, no traceback, nothing half-written."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

from click.testing import CliRunner

from caadbench.cli import main
from tests.data.sources.fixtures import write_folder

LATIN1 = b"caf\xe9.png"  # "café.png" in Latin-1: not UTF-8


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "hazelnut"
    write_folder(root)
    return root


def test_build_refuses_a_name_that_is_not_utf8_in_one_line(tmp_path):
    root = _folder(tmp_path)
    shutil.copy(root / "normal" / "n1.png", os.path.join(os.fsencode(root / "normal"), LATIN1))
    result = invoke("build-shards", "--source", "folder", "--root", root, "--out", tmp_path / "out", "--workers", 1)
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (f"error: {root}/normal/caf\\xe9.png: file name is not valid UTF-8 (bytes shown "
                                     "as \\xNN); rename it to UTF-8, e.g. `convmv -f latin1 -t utf-8 --notest -r DIR`")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hazelnut"]  # nothing half-written


def test_build_reports_a_looping_symlink_as_skipped(tmp_path):
    root = _folder(tmp_path)
    (root / "normal" / "loop.png").symlink_to("loop.png")
    result = invoke("build-shards", "--source", "folder", "--root", root, "--out", tmp_path / "out", "--workers", 1)
    assert result.exit_code == 0, result.output
    assert f"warning: {root}/normal/loop.png: symbolic link loop (skipped)" in result.output
    assert "6 images" in result.output


def test_predict_scores_a_name_that_is_not_utf8_and_skips_a_loop(tmp_path):
    src = _folder(tmp_path)
    photos = tmp_path / "photos" / "cow"
    photos.mkdir(parents=True)
    shutil.copy(src / "normal" / "n1.png", photos / "plain.png")
    shutil.copy(src / "normal" / "n1.png", os.path.join(os.fsencode(photos), LATIN1))
    (photos / "loop.png").symlink_to("loop.png")
    out = tmp_path / "pred"
    result = invoke("predict", photos.parent, "--model", "clip", "--backbone", "caad-tiny", "--out", out)
    assert result.exit_code == 1, result.output  # finished, with a skipped input
    assert f"error: {photos}/loop.png: symbolic link loop (skipped)" in result.output
    assert "Traceback" not in result.output
    with open(out / "scores.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["path"] for r in rows] == [f"{photos}/caf\\xe9.png", f"{photos}/plain.png"]
    assert rows[0]["overlay"] == "overlays/photos/cow/caf\\xe9.png"
    assert (out / rows[0]["overlay"]).is_file()
