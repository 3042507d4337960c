"""Training-mask degradations of the mask-quality ablation: each against an independent reference, seeded per
image, consistent across resolutions, used by training only (the evaluation's ground truth stays exact)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from caadbench.errors import ModelError
from caadbench.models import FitData, create_model
from caadbench.models.coreclip.masks import (
    DROP_GRID,
    MaskSpec,
    bounding_boxes,
    degrade_masks,
    dilate,
    drop_parts,
    erode,
    image_generator,
    parse_masks,
)
from tests.models.coreclip.toy import toy_loader


def blobs(n: int = 6, size: int = 64, seed: int = 0) -> torch.Tensor:
    """``(n, size, size)`` masks: unions of random discs, one empty, one touching the border."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    out = np.zeros((n, size, size), dtype=bool)
    for i in range(1, n):
        for _ in range(3):
            cx, cy, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(4, 14)
            out[i] |= (xx - cx) ** 2 + (yy - cy) ** 2 < r**2
    out[-1, :, :5] = True  # touches the border
    return torch.from_numpy(out)


def test_parse_masks_accepts_the_documented_forms_only():
    assert parse_masks("gt") == MaskSpec("gt") and parse_masks("dilate:8") == MaskSpec("dilate", 8)
    assert parse_masks("drop:0.25") == MaskSpec("drop", 0.25) and not parse_masks("none").degraded
    for bad in ("sam", "dilate:0", "erode:-2", "dilate:2.5", "drop:1", "drop:x", "bbox:3"):
        with pytest.raises(ModelError, match="is not one of gt, none, bbox"):
            parse_masks(bad)
    with pytest.raises(ModelError, match="masks"):
        create_model("coreclip", backbone="caad-tiny", masks="dilate:0")


def test_bounding_boxes_against_numpy():
    masks = blobs()
    boxes = bounding_boxes(masks)
    for m, b in zip(masks.numpy(), boxes.numpy()):
        want = np.zeros_like(m)
        if m.any():
            rows, cols = np.nonzero(m.any(1))[0], np.nonzero(m.any(0))[0]
            want[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = True
        assert np.array_equal(b, want)


@pytest.mark.parametrize("radius", [1, 3, 6])
def test_dilate_and_erode_against_scipy(radius):
    masks = blobs()
    square = np.ones((2 * radius + 1,) * 2, dtype=bool)
    for m, d, e in zip(masks.numpy(), dilate(masks, radius).numpy(), erode(masks, radius).numpy()):
        assert np.array_equal(d, ndimage.binary_dilation(m, square, border_value=0))
        assert np.array_equal(e, ndimage.binary_erosion(m, square, border_value=0))


def test_pixels_are_measured_at_the_evaluation_resolution():
    masks = blobs(size=128)
    spec = parse_masks("dilate:8")  # 8 px at 256 px = 4 px at 128 px
    assert torch.equal(degrade_masks(masks, spec, ["k"] * len(masks), 0), dilate(masks, 4))
    assert torch.equal(degrade_masks(blobs(size=256), spec, ["k"] * 6, 0), dilate(blobs(size=256), 8))


def test_drop_is_seeded_per_image_and_keeps_part_of_every_subject():
    masks = blobs(n=40, seed=3)
    keys = [f"img{i}" for i in range(len(masks))]
    spec = parse_masks("drop:0.5")
    out = degrade_masks(masks, spec, keys, seed=1)
    assert not (out & ~masks).any()  # only removes
    assert all(o.any() for o, m in zip(out, masks) if m.any())  # never the whole subject
    assert (out != masks).any()
    # the same image gets the same mask whatever its batch, and another seed changes it
    alone = degrade_masks(masks[7:8], spec, keys[7:8], seed=1)
    assert torch.equal(alone[0], out[7])
    assert not torch.equal(degrade_masks(masks, spec, keys, seed=2), out)
    assert torch.equal(degrade_masks(masks, parse_masks("drop:0.0"), keys, 1), masks)
    # the share of dropped cells follows p (over 40 images × 16 cells)
    dropped = [torch.rand(DROP_GRID**2, generator=image_generator(1, k)) < 0.5 for k in keys]
    assert 0.4 < float(torch.stack(dropped).float().mean()) < 0.6


def test_drop_removes_the_same_parts_at_two_resolutions():
    big = blobs(n=8, size=256, seed=5)
    small = torch.nn.functional.interpolate(big[:, None].float(), size=64, mode="nearest")[:, 0] > 0.5
    keys = [f"k{i}" for i in range(8)]
    gens = lambda: [image_generator(0, k) for k in keys]  # noqa: E731
    a = drop_parts(big, 0.5, gens())
    b = drop_parts(small, 0.5, gens())
    a_small = torch.nn.functional.interpolate(a[:, None].float(), size=64, mode="nearest")[:, 0] > 0.5
    agree = (a_small == b).float().mean()
    assert agree > 0.97  # cells are relative to each mask's box: the same parts go at both sizes


def test_training_reads_degraded_masks_and_prediction_reads_none(tiny_backbone, monkeypatch):
    """The views and the pixel-loss target of a mask-quality variant are the degraded masks of the batch."""
    model = create_model("coreclip.masks_bbox", backbone=tiny_backbone, text_steps=1, max_steps=1,
                         grounding_images=4, progress=False, prompts="two", w_cross_branch=0.0)
    seen_views, seen_targets = [], []
    original = model.branch_features

    def spy(images, subject_masks=None, cross_branch=False):
        seen_views.append(subject_masks)
        return original(images, subject_masks, cross_branch)

    from caadbench.models.coreclip import losses

    pixel = losses.pixel_bce

    def spy_pixel(logits, target, grid):
        seen_targets.append(target)
        return pixel(logits, target, grid)

    monkeypatch.setattr(model, "branch_features", spy)
    monkeypatch.setattr(losses, "pixel_bce", spy_pixel)
    loader = toy_loader(1, 4)
    model.fit(FitData(subjects=["cow", "car"], train=loader, seed=0))
    batch = next(iter(loader(0)))
    assert torch.equal(seen_views[0], bounding_boxes(batch.subject_masks))
    assert torch.equal(seen_targets[0], bounding_boxes(batch.gt_masks))
    seen_views.clear()
    model.predict(batch)
    assert seen_views == [None]
