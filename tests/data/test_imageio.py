"""Mask binarisation as masks come in real datasets, against a reference written here."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from caadbench.data.imageio import MAX_INTERMEDIATE_SHARE, binarize_mask, read_mask
from caadbench.errors import DataError


def reference(values: np.ndarray, threshold: float) -> tuple[np.ndarray, int]:
    """Foreground at ``value / full >= threshold`` with full = 255 or 65535, computed in float64."""
    full = 255.0 if values.max() <= 255 else 65535.0
    frac = values.astype(np.float64) / full
    return np.where(frac >= threshold, 255, 0).astype(np.uint8), int(((frac > 0) & (frac < 1)).sum())


def soft_disc(h: int, w: int, full: int, seed: int = 0) -> np.ndarray:
    """A disc with a smooth (linear, 3 px wide) edge, as a resampled mask has; values 0..full."""
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - h / 2, xx - w / 3)
    frac = np.clip((h / 4 + 1.5 - r) / 3.0, 0.0, 1.0)
    dtype = np.uint8 if full == 255 else np.uint16
    return np.round(frac * full).astype(dtype)


@pytest.mark.parametrize("full", [255, 65535])
@pytest.mark.parametrize("threshold", [0.5, 0.25, 0.9])
def test_soft_masks_match_the_reference(full, threshold):
    arr = soft_disc(40, 64, full)
    got = binarize_mask(arr, "m.png", threshold)
    want, intermediate = reference(arr, threshold)
    np.testing.assert_array_equal(got.mask, want)
    assert got.intermediate == intermediate > 0


@pytest.mark.parametrize("values, fg", [((0, 1), 1), ((0, 255), 255), ((0, 65535), 65535), ((0, 7), 7)])
def test_two_level_masks_are_binary_whatever_the_value(values, fg):
    arr = np.full((8, 8), values[0], dtype=np.uint16 if max(values) > 255 else np.uint8)
    arr[2:5, 3:6] = fg
    got = binarize_mask(arr, "m.png")
    assert got.intermediate == 0 and set(np.unique(got.mask)) == {0, 255}
    np.testing.assert_array_equal(got.mask > 0, arr > 0)


def test_coloured_mask_counts_by_its_brightest_channel():
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[1:4, 1:4] = (255, 0, 0)  # red defect
    rgb[5:7, 5:7] = (0, 90, 0)  # dark green edge pixels: below 50 %
    got = binarize_mask(rgb, "m.png")
    np.testing.assert_array_equal(got.mask > 0, rgb.max(axis=2) >= 127.5)
    assert got.intermediate == 4


def test_alpha_is_dropped_and_grey_rgb_is_grey():
    grey = soft_disc(16, 16, 255)
    rgba = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    np.testing.assert_array_equal(binarize_mask(rgba, "m.png").mask, binarize_mask(grey, "m.png").mask)


def test_photo_is_refused():
    photo = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    with pytest.raises(DataError, match=r"photo\.png: not a mask: \d+ % of its pixels"):
        binarize_mask(photo, "photo.png")


def test_refusal_is_at_the_documented_share():
    arr = np.zeros((10, 10), np.uint8)
    arr[:, 0] = 255
    n = int(MAX_INTERMEDIATE_SHARE * arr.size)
    arr.flat[100 - n:] = 200  # exactly the share: accepted
    assert binarize_mask(arr, "m.png").intermediate == n
    arr.flat[100 - n - 1] = 200  # one more: refused
    with pytest.raises(DataError, match="not a mask"):
        binarize_mask(arr, "m.png")


def test_label_map_and_too_high_threshold_are_refused():
    labels = np.zeros((8, 8), np.uint8)
    labels[1:3, 1:3], labels[5:7, 5:7] = 1, 2
    with pytest.raises(DataError, match="a label map"):
        binarize_mask(labels, "m.png")
    soft = soft_disc(16, 16, 255)
    soft = np.minimum(soft, 200)
    with pytest.raises(DataError, match="lower --mask-threshold"):
        binarize_mask(soft, "m.png", 0.95)


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, "x"])
def test_threshold_out_of_range_is_refused(bad):
    with pytest.raises(DataError, match="mask threshold must be"):
        binarize_mask(np.zeros((4, 4), np.uint8), "m.png", bad)


def test_sixteen_bit_png_file_is_read_at_full_scale(tmp_path):
    arr = soft_disc(24, 32, 65535)
    path = tmp_path / "m16.png"
    Image.fromarray(arr).save(path)
    assert Image.open(path).mode.startswith("I")
    got = read_mask(path)
    np.testing.assert_array_equal(got.mask, reference(arr, 0.5)[0])
