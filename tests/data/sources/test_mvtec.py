"""The ``mvtec`` source on a dummy MVTec-AD tree with two categories."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from caadbench.data.sources import get_source_class
from caadbench.data.sources.mvtec import MVTecSource
from tests.data.sources.fixtures import (
    BAD_MASKS,
    H,
    W,
    expect_error,
    load_key,
    noise,
    save,
    truncate,
    write_mvtec,
)


@pytest.fixture()
def tree(tmp_path):
    return tmp_path, write_mvtec(tmp_path)


def test_specs_keys_labels_and_splits(tree):
    root, expected = tree
    specs = MVTecSource(root=root).specs()
    assert len(specs) == len(expected) == 12
    by_key = {s.key: s for s in specs}
    spec = by_key["mvtec-bottle-test-broken_large-001"]
    assert (spec.subject, spec.context, spec.label, spec.defect, spec.mask_kind, spec.origin_split) == (
        "bottle", "-", 1, "broken_large", "defect", "test")
    assert spec.source == "mvtec:bottle/test/broken_large/001.png"
    good = by_key["mvtec-metal_nut-train-good-000"]
    assert (good.label, good.origin_split, good.defect, good.subject) == (0, "train", "good", "metal_nut")
    assert {s.origin_split for s in specs if s.label == 1} == {"test"}
    assert sum(s.origin_split == "train" for s in specs) == 4
    assert [s.key for s in specs] == [s.key for s in MVTecSource(root=root).specs()]  # deterministic


def test_load_masks_match_the_files(tree):
    root, expected = tree
    source = pickle.loads(pickle.dumps(MVTecSource(root=root)))  # loads run in worker processes
    for spec in source.specs():
        sample = source.load(spec)
        assert sample.image.shape == (H, W, 3)
        np.testing.assert_array_equal(sample.mask, expected[spec.source.split(":", 1)[1]])
        np.testing.assert_array_equal(sample.gt_mask, sample.mask)
        assert sample.extra["origin_split"] == spec.origin_split
        assert sample.mask.any() == bool(spec.label)


def test_category_filter(tree):
    root, _ = tree
    specs = MVTecSource(root=root, categories=["metal_nut"]).specs()
    assert {s.subject for s in specs} == {"metal_nut"} and len(specs) == 5
    expect_error(MVTecSource(root=root, categories=["zipper"]).specs, "unknown category zipper", str(root))


def test_registered():
    assert get_source_class("mvtec") is MVTecSource and MVTecSource.kind == "industrial"


def test_missing_mask_names_the_image(tree):
    root, _ = tree
    (root / "bottle/ground_truth/contamination/001_mask.png").unlink()
    expect_error(MVTecSource(root=root).specs, "missing mask", "contamination/001.png")


def test_corrupt_image_fails_at_load(tree):
    root, _ = tree
    truncate(root / "bottle/test/good/000.png")
    expect_error(lambda: load_key(MVTecSource(root=root), "mvtec-bottle-test-good-000"), "corrupt", "good/000.png")


@pytest.mark.parametrize("mask, message", BAD_MASKS)
def test_bad_mask(tree, mask, message):
    root, _ = tree
    save(root / "metal_nut/ground_truth/scratch/000_mask.png", mask)
    expect_error(lambda: load_key(MVTecSource(root=root), "mvtec-metal_nut-test-scratch-000"), message,
                 "scratch/000_mask.png")


def test_dotted_names_are_sanitised_and_collisions_refused(tree):
    root, _ = tree
    save(root / "bottle/train/good/img.v2.png", noise(1))
    keys = [s.key for s in MVTecSource(root=root).specs()]
    assert "mvtec-bottle-train-good-img_v2" in keys
    save(root / "bottle/train/good/img_v2.png", noise(2))
    expect_error(MVTecSource(root=root).specs, "duplicate sample key", "img.v2.png", "img_v2.png")


def test_train_defect_folder_refused(tree):
    root, _ = tree
    save(root / "bottle/train/scratch/000.png", noise(3))
    expect_error(MVTecSource(root=root).specs, "only 'good'", "train/scratch")


def test_empty_source(tmp_path):
    (tmp_path / "bottle/train/good").mkdir(parents=True)
    expect_error(MVTecSource(root=tmp_path).specs, "empty source", str(tmp_path))


def test_missing_root(tmp_path):
    expect_error(lambda: MVTecSource(root=tmp_path / "nope"), "not found", "nope")
