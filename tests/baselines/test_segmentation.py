"""The dense-map helpers and losses of the trained baselines against hand computations and SciPy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from caadbench.baselines.segmentation import (
    dice_loss,
    focal_loss,
    gaussian_smooth,
    grid_upsample,
    relative_sigma,
    resize_mask,
    two_way_logits,
)
from tests.baselines.reference import bilinear_reference


def test_focal_loss_equals_the_formula_pixel_by_pixel():
    probs_a = torch.tensor([[[0.9, 0.2], [0.5, 0.01]]])  # (1, 2, 2) anomalous probabilities
    probs = torch.stack([1 - probs_a, probs_a], dim=1)  # (1, 2, 2, 2)
    target = torch.tensor([[[1, 0], [1, 0]]])
    s = 1e-5
    expected = []
    for (i, j) in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        p = float(probs_a[0, i, j])
        y = [s, 1 - s] if target[0, i, j] else [1 - s, s]  # one-hot clamped to [s/(K-1), 1-s], K = 2
        pt = y[0] * (1 - p) + y[1] * p + s
        expected.append(-((1 - pt) ** 2) * math.log(pt))
    assert focal_loss(probs, target).item() == pytest.approx(sum(expected) / 4, rel=1e-5)
    assert focal_loss(probs, target.bool()).item() == pytest.approx(sum(expected) / 4, rel=1e-5)


def test_focal_loss_three_classes_and_perfect_prediction():
    probs = torch.tensor([0.7, 0.2, 0.1]).view(1, 3, 1, 1)
    s = 1e-5
    pt = (s / 2) * 0.7 + (1 - s) * 0.2 + (s / 2) * 0.1 + s  # target class 1
    assert focal_loss(probs, torch.tensor([[[1]]])).item() == pytest.approx(-((1 - pt) ** 2) * math.log(pt), rel=1e-5)
    perfect = torch.tensor([0.0, 1.0]).view(1, 2, 1, 1)
    assert focal_loss(perfect, torch.ones(1, 1, 1, dtype=torch.long)).item() < 1e-9


def test_dice_loss_per_image_then_mean():
    prob = torch.tensor([[[0.8, 0.1], [0.6, 0.0]], [[0.3, 0.3], [0.3, 0.3]]])
    gt = torch.tensor([[[1, 0], [1, 0]], [[0, 0], [0, 0]]], dtype=torch.bool)
    d0 = (2 * (0.8 + 0.6) + 1) / ((0.8 + 0.1 + 0.6) + 2 + 1)
    d1 = (0 + 1) / (1.2 + 0 + 1)
    assert dice_loss(prob, gt).item() == pytest.approx(1 - (d0 + d1) / 2, rel=1e-6)
    assert dice_loss(gt.float(), gt).item() == pytest.approx(0.0, abs=1e-7)


def test_two_way_logits_and_grid_upsample_against_loops():
    g = torch.Generator().manual_seed(0)
    tokens = torch.nn.functional.normalize(torch.randn(2, 12, 5, generator=g), dim=-1)
    text = torch.nn.functional.normalize(torch.randn(2, 2, 5, generator=g), dim=-1)
    logits = two_way_logits(tokens, text, 7.0)
    for b in range(2):
        for n in range(12):
            for k in range(2):
                assert logits[b, n, k].item() == pytest.approx(7.0 * float(tokens[b, n] @ text[b, k]), rel=1e-5)
    for align in (True, False):
        up = grid_upsample(logits, (3, 4), 9, align_corners=align)  # non-square grid, (B, 2, 9, 9)
        for b in range(2):
            for k in range(2):
                ref = bilinear_reference(logits[b, :, k].view(3, 4).numpy(), 9, 9, align)
                np.testing.assert_allclose(up[b, k].numpy(), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("sigma", [0.7, 1.0, 2.5])
def test_gaussian_smooth_matches_scipy(sigma):
    maps = torch.rand(2, 17, 13, generator=torch.Generator().manual_seed(1))
    got = gaussian_smooth(maps, sigma)
    for b in range(2):
        np.testing.assert_allclose(got[b].numpy(), gaussian_filter(maps[b].double().numpy(), sigma), atol=1e-5)
    assert torch.equal(gaussian_smooth(maps, 0.0), maps)


def test_relative_sigma_and_resize_mask():
    assert relative_sigma(4.0, 518, 518) == 4.0 and relative_sigma(4.0, 259, 518) == pytest.approx(2.0)
    mask = torch.zeros(1, 256, 256, dtype=torch.bool)
    mask[0, 64:128, 32:64] = True
    small = resize_mask(mask, 128)
    assert small.shape == (1, 128, 128) and small.dtype == torch.bool
    assert small.sum().item() == 32 * 16 and small[0, 32:64, 16:32].all()
    assert resize_mask(mask, 256) is not None and torch.equal(resize_mask(mask, 256), mask)
