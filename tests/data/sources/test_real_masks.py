"""Masks as they come in real datasets, in the real on-disk layouts (MVTec-AD tree, folder set):
anti-aliased edges, 16-bit and RGB masks, missing masks — read, counted in the manifest and ``info``, evaluated."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from caadbench.cli import main
from caadbench.data.sample import BINARISED_PIXELS
from caadbench.data.shards import build_shards
from caadbench.data.sources.folder import FolderSource
from caadbench.data.sources.mvtec import MVTecSource
from tests.data.sources.fixtures import (
    antialiased,
    antialiased_expected,
    expect_error,
    load_key,
    rect,
    save,
    write_folder,
    write_mvtec,
)

BOX = (8, 20, 10, 30)  # y0, y1, x0, x1 of the anti-aliased rectangle
RING = int(antialiased(*BOX).astype(bool).sum() - rect(*BOX).astype(bool).sum())  # its intermediate pixels


def _rgb(mask: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    return (mask[..., None].astype(np.float64) / 255 * np.array(colour)).round().astype(np.uint8)


@pytest.fixture()
def mvtec(tmp_path):
    """The dummy MVTec-AD tree with its masks replaced as a real one arrives: anti-aliased 8-bit, anti-aliased
    16-bit, anti-aliased red-on-black RGB."""
    write_mvtec(tmp_path)
    gt = tmp_path / "bottle/ground_truth"
    save(gt / "broken_large/000_mask.png", antialiased(*BOX))
    save(gt / "broken_large/001_mask.png", antialiased(*BOX).astype(np.uint16) * 257)  # 16-bit, same fractions
    save(gt / "contamination/000_mask.png", _rgb(antialiased(*BOX), (255, 0, 0)))
    return tmp_path


def test_mvtec_tree_with_antialiased_16bit_and_rgb_masks(mvtec):
    source = MVTecSource(root=mvtec)
    assert source.describe()["mask_threshold"] == 0.5
    for key in ("broken_large-000", "broken_large-001", "contamination-000"):
        sample = load_key(source, f"mvtec-bottle-test-{key}")
        np.testing.assert_array_equal(sample.mask, antialiased_expected(*BOX))
        assert sample.extra[BINARISED_PIXELS] == RING
    assert Image.open(mvtec / "bottle/ground_truth/broken_large/001_mask.png").mode.startswith("I")
    binary = load_key(source, "mvtec-bottle-test-contamination-001")
    assert BINARISED_PIXELS not in binary.extra  # a binary mask is not counted


def test_threshold_changes_the_binarisation_and_the_fingerprint(mvtec):
    strict = MVTecSource(root=mvtec, mask_threshold=0.8)
    sample = load_key(strict, "mvtec-bottle-test-broken_large-000")
    np.testing.assert_array_equal(sample.mask, rect(*BOX))  # 191/255 = 0.75 < 0.8: the ring is background
    assert strict.fingerprint() != MVTecSource(root=mvtec).fingerprint()
    expect_error(lambda: MVTecSource(root=mvtec, mask_threshold=0), "mask threshold must be in")


def test_mvtec_missing_mask_is_still_an_error(mvtec):
    (mvtec / "bottle/ground_truth/broken_large/000_mask.png").unlink()
    expect_error(MVTecSource(root=mvtec).specs, "missing mask", "broken_large/000.png")


def test_photo_as_mask_is_refused_in_one_line(mvtec):
    save(mvtec / "bottle/ground_truth/broken_large/000_mask.png",
         np.random.default_rng(3).integers(0, 256, (32, 48, 3), dtype=np.uint8))
    err = expect_error(lambda: load_key(MVTecSource(root=mvtec), "mvtec-bottle-test-broken_large-000"),
                       "not a mask", "broken_large/000_mask.png")
    assert "\n" not in str(err)


def test_manifest_and_info_count_binarised_masks(mvtec, tmp_path):
    out = tmp_path / "shards"
    result = CliRunner().invoke(main, ["build-shards", "--source", "mvtec", "--root", str(mvtec), "--out", str(out),
                                       "--workers", "1", "--mask-threshold", "0.5"])
    assert result.exit_code == 0, result.output
    masks = json.loads((out / "index.json").read_text())["masks"]
    assert masks == {"binarised": 3, "binarised_pixels": 3 * RING, "missing": 0, "threshold": 0.5}
    info = CliRunner().invoke(main, ["info", str(out)])
    assert info.exit_code == 0, info.output
    assert f"masks: 3 with intermediate values, binarised at 50 % of full scale ({3 * RING} pixels)" in info.output


def test_mask_threshold_refused_for_a_source_without_mask_files(tmp_path):
    result = CliRunner().invoke(main, ["build-shards", "--size", "20", "--out", str(tmp_path / "s"),
                                       "--mask-threshold", "0.4"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: --source synthetic: reads no mask files; --mask-threshold does not apply"


def test_folder_layout_with_antialiased_rgb_and_16bit_masks(tmp_path):
    root = tmp_path / "hazelnut"
    write_folder(root)
    save(root / "mask/a1_mask.png", _rgb(antialiased(*BOX), (0, 255, 0)))  # green on black, anti-aliased
    save(root / "mask/a2.png", antialiased(*BOX).astype(np.uint16) * 257)
    source = FolderSource(root=root, mask_threshold=0.3)  # 64/255 = 0.25 < 0.3 <= 191/255: the 191 ring is in
    for stem in ("a1", "a2"):
        sample = load_key(source, f"folder-hazelnut-test-abnormal-{stem}")
        np.testing.assert_array_equal(sample.mask, antialiased_expected(*BOX))
        assert sample.extra[BINARISED_PIXELS] == RING and not sample.mask_missing
    loose = FolderSource(root=root, mask_threshold=0.2)  # the 64 ring joins too
    np.testing.assert_array_equal(load_key(loose, "folder-hazelnut-test-abnormal-a2").mask,
                                  rect(BOX[0] - 2, BOX[1] + 2, BOX[2] - 2, BOX[3] + 2))


@pytest.fixture()
def folder_without_masks(tmp_path):
    root = tmp_path / "hazelnut"
    write_folder(root)
    shutil.rmtree(root / "mask")
    return root


def test_folder_without_masks_builds_and_evaluates_image_metrics_only(folder_without_masks, tmp_path):
    from caadbench.eval.results import read_results
    from caadbench.eval.runner import RunConfig, run

    out = tmp_path / "shards"
    manifest = build_shards(FolderSource(root=folder_without_masks), out, workers=1, progress=False)
    assert manifest.masks["missing"] == 2
    info = CliRunner().invoke(main, ["info", str(out)])
    assert "2 anomalous image(s) without a mask (image metrics only)" in info.output
    results = read_results(run(RunConfig(model="clip", split="std", data=out, backbone="caad-tiny",
                                         out=tmp_path / "runs", progress=False)))
    assert not math.isnan(results.metrics["i_auroc"].mean)
    for m in ("p_auroc", "p_f1max", "aupro"):
        assert math.isnan(results.metrics[m].mean), m  # unavailable, never 0
    assert any("unavailable (no pixel ground truth: 2 anomalous image(s) without a mask)" in n for n in results.notes)


def test_folder_with_some_masks_reports_pixel_metrics_over_those(tmp_path):
    from caadbench.eval.results import read_results
    from caadbench.eval.runner import RunConfig, run

    root = tmp_path / "hazelnut"
    write_folder(root)
    (root / "mask/a2.png").unlink()
    out = tmp_path / "shards"
    build_shards(FolderSource(root=root), out, workers=1, progress=False)
    results = read_results(run(RunConfig(model="clip", split="std", data=out, backbone="caad-tiny",
                                         out=tmp_path / "runs", progress=False)))
    assert not math.isnan(results.metrics["p_auroc"].mean)
    assert any("pixel metrics over the images with pixel ground truth only (1 anomalous" in n for n in results.notes)
