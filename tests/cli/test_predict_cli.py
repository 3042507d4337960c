"""``caadbench predict`` / ``calibrate`` on a folder of mixed-size, mixed-mode photos with unreadable files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from caadbench.cli import main
from tests.infer.photos import photos  # noqa: F401  (a fixture)
from tests.infer.probe import probe_checkpoint

TINY = ("--backbone", "caad-tiny")


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def predicted(photos, tmp_path_factory):
    root, _, _ = photos
    out = tmp_path_factory.mktemp("out")
    return invoke("predict", root, "--model", "clip", *TINY, "--out", out), out


def test_one_overlay_per_image_and_one_table(photos, predicted):
    root, sizes, bad = photos
    result, out = predicted
    assert result.exit_code == 1, result.output  # finished, with skipped inputs
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2 and all(any(b in e for e in errors) for b in bad)
    assert all(e.endswith("(skipped)") for e in errors)
    table = rows(out / "scores.csv")
    assert list(table[0]) == ["path", "subject", "score", "overlay"]  # no label without a threshold
    assert sorted(str(Path(r["path"]).relative_to(root)) for r in table) == sorted(sizes)
    overlays = sorted(p.relative_to(out).as_posix() for p in (out / "overlays").rglob("*.png"))
    assert overlays == sorted(r["overlay"] for r in table) and len(overlays) == len(sizes)
    for r in table:
        im = Image.open(out / r["overlay"])
        assert im.format == "PNG" and max(im.size) > 300 and float(r["score"]) >= 0
    assert {r["subject"] for r in table} == {"cow", "car"}
    meta = json.loads((out / "predict.json").read_text())
    assert meta["images"] == len(sizes) and len(meta["skipped"]) == 2 and meta["threshold"] is None
    assert meta["model"]["backbone"] == "caad-tiny" and meta["model"]["weights"] == "random-init"
    assert meta["model"]["precision"] == "fp32" and meta["git_commit"]
    assert not list(out.rglob(".*.tmp"))  # atomic writes leave no temporaries


def test_exif_rotated_photo_gets_a_portrait_overlay(predicted):
    _, out = predicted
    im = Image.open(out / "overlays/photos/car/rotated_exif.png")
    assert im.size[1] > im.size[0]


def test_calibrate_then_predict_with_the_threshold_file(photos, tmp_path):
    root, _, _ = photos
    thr = tmp_path / "thr.json"
    cal = invoke("calibrate", root / "cow" / "rgb.jpg", root / "cow" / "grey_L.png", root / "car" / "cmyk.jpg",
                 "--model", "clip", *TINY, "--quantile", "0.5", "--out", thr)
    assert cal.exit_code == 0, cal.output
    data = json.loads(thr.read_text())
    assert data["quantile"] == 0.5 and set(data["threshold"]) == {"all", "cow", "car"}
    out = tmp_path / "out"
    result = invoke("predict", root / "cow", root / "car" / "cmyk.jpg", "--model", "clip", *TINY, "--threshold",
                    thr, "--out", out, "--no-overlays")
    assert result.exit_code == 0, result.output
    table = rows(out / "scores.csv")
    assert list(table[0]) == ["path", "subject", "score", "threshold", "label"]
    for r in table:
        assert r["label"] == str(int(float(r["score"]) > float(r["threshold"])))
        assert float(r["threshold"]) == pytest.approx(data["threshold"][r["subject"]], rel=1e-5)
    assert not (out / "overlays").exists()


def test_a_model_without_maps_writes_scores_only(photos, tmp_path):
    root, sizes, _ = photos
    ckpt = probe_checkpoint(tmp_path / "probe.safetensors")
    out = tmp_path / "out"
    result = invoke("predict", root / "cow", "--checkpoint", ckpt, "--out", out)
    assert result.exit_code == 0, result.output
    assert "probe gives no anomaly maps: scores.csv only, no overlays" in result.output
    table = rows(out / "scores.csv")
    assert list(table[0]) == ["path", "subject", "score"] and len(table) == len(list((root / "cow").iterdir()))
    assert not (out / "overlays").exists()


def test_calibrate_refuses_unreadable_images(photos, tmp_path):
    root, _, bad = photos
    result = invoke("calibrate", root / bad[0], "--model", "clip", *TINY, "--out", tmp_path / "t.json")
    assert result.exit_code == 2 and "unreadable or corrupt image" in result.output
    assert not (tmp_path / "t.json").exists()


@pytest.mark.parametrize(("args", "words"), [
    (("--model", "clip", "--threshold", "thr.json"), "thr.json: threshold is neither a number nor a threshold file"),
    (("--model", "coreclip"), "coreclip: is a trained model: pass --checkpoint"),
    (("--model", "clip", "--device", "cuda:7"), "--device cuda:7:"),
    (("--checkpoint", "none.safetensors"), "none.safetensors: checkpoint file not found"),
    (("--model", "clip", "--image-size", "8"), "--image-size: must be at least 32, got 8"),
    (("--model", "clip", "--batch-size", "0"), "--batch-size: must be at least 1, got 0"),
])
def test_bad_input_is_one_line_and_exit_2(photos, tmp_path, monkeypatch, args, words):
    root, _, _ = photos
    monkeypatch.chdir(tmp_path)
    result = invoke("predict", root / "cow", *TINY, *args, "--out", tmp_path / "o")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and words in lines[0], result.output
    assert not (tmp_path / "o").exists()


def test_world_weights_on_photos_say_what_to_expect_once(photos, tmp_path):
    root, _, _ = photos
    result = invoke("predict", root / "cow", "--subject", "giraffe", "--model", "clip", *TINY, "--pretrained",
                    "world", "--no-overlays", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    notices = [line for line in result.output.splitlines() if "world weights" in line]
    assert notices == ["warning: world weights ◇ know only the synthetic world's drawings (10 subjects, 15 contexts): "
                       "on photos their scores say little; not one of its subjects: giraffe; for photos pass real "
                       "CLIP weights (--backbone ViT-B-16-plus-240 --pretrained FILE or TAG)"]
    assert json.loads((tmp_path / "o" / "predict.json").read_text())["model"]["notice"] == notices[0][9:]


def test_nothing_readable_writes_nothing(photos, tmp_path):
    root, _, bad = photos
    result = invoke("predict", *(root / b for b in bad), "--subject", "car", "--model", "clip", *TINY,
                    "--out", tmp_path / "o")
    assert result.exit_code == 2 and "no image could be read (2 skipped); nothing written" in result.output
    assert not (tmp_path / "o" / "scores.csv").exists()
