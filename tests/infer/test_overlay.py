"""Overlays: shown size, colour scale and blend (against the formula written here), PNG layout."""

from __future__ import annotations

import io

import numpy as np
from matplotlib import colormaps
from PIL import Image

from caadbench.infer.overlay import ALPHA, CMAP, MAX_SIDE, MIN_SIDE, blend, color_range, display_size, render_overlay


def test_display_size_keeps_the_aspect_and_bounds_the_longer_side():
    assert display_size(3000, 4000) == (768, MAX_SIDE)
    assert display_size(5, 7) == (229, MIN_SIDE)
    assert display_size(400, 500) == (400, 500)
    assert display_size(6000, 50) == (MAX_SIDE, 9)


def test_color_range_is_unit_for_probability_maps():
    assert color_range(np.array([[0.2, 0.7]])) == (0.0, 1.0)
    assert color_range(np.array([[-1.0, 3.0]])) == (-1.0, 3.0)
    lo, hi = color_range(np.array([[2.0, 2.0]]))
    assert lo == 2.0 and hi > lo


def test_blend_is_the_documented_formula():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    heat = rng.random((6, 9))
    expected = (1 - ALPHA) * rgb + ALPHA * np.asarray(colormaps[CMAP](heat))[..., :3] * 255
    np.testing.assert_allclose(blend(rgb, heat, 0.0, 1.0).astype(float), expected, atol=0.51)


def test_overlay_png_holds_the_image_at_its_shown_size():
    rgb = np.random.default_rng(1).integers(0, 256, (300, 800, 3), dtype=np.uint8)
    png = render_overlay(rgb, np.random.default_rng(2).random((32, 32)).astype(np.float32), "cow — score 0.5")
    im = Image.open(io.BytesIO(png))
    h, w = display_size(300, 800)
    assert im.format == "PNG" and im.size == (w + 2 * 8 + 70, h + 2 * 8 + 30)
