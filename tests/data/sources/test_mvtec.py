"""The ``mvtec`` source on a dummy MVTec-AD tree with two categories."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from caadbench.data.sources import get_source_class
from caadbench.data.sources.mvtec import MVTecSource
from caadbench.errors import DataError
from tests.data.sources.fixtures import H, W, noise, rect, save, truncate, write_mvtec


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
    with pytest.raises(DataError, match="unknown category zipper"):
        MVTecSource(root=root, categories=["zipper"]).specs()


def test_registered():
    assert get_source_class("mvtec") is MVTecSource and MVTecSource.kind == "industrial"


def test_missing_mask_names_the_image(tree):
    root, _ = tree
    (root / "bottle/ground_truth/contamination/001_mask.png").unlink()
    with pytest.raises(DataError, match="missing mask") as err:
        MVTecSource(root=root).specs()
    assert "contamination/001.png" in str(err.value)


def test_corrupt_image_fails_at_load(tree):
    root, _ = tree
    truncate(root / "bottle/test/good/000.png")
    source = MVTecSource(root=root)
    spec = next(s for s in source.specs() if s.key == "mvtec-bottle-test-good-000")
    with pytest.raises(DataError, match="corrupt") as err:
        source.load(spec)
    assert "good/000.png" in str(err.value)


def test_mask_of_other_size(tree):
    root, _ = tree
    save(root / "metal_nut/ground_truth/scratch/000_mask.png", rect(0, 4, 0, 4, h=H, w=W + 2))
    source = MVTecSource(root=root)
    spec = next(s for s in source.specs() if s.key == "mvtec-metal_nut-test-scratch-000")
    with pytest.raises(DataError, match="differs from image") as err:
        source.load(spec)
    assert "000_mask.png" in str(err.value)


def test_non_binary_mask(tree):
    root, _ = tree
    mask = rect(0, 10, 0, 10)
    mask[0:5, 0:5] = 128
    save(root / "bottle/ground_truth/broken_large/000_mask.png", mask)
    source = MVTecSource(root=root)
    spec = next(s for s in source.specs() if s.key == "mvtec-bottle-test-broken_large-000")
    with pytest.raises(DataError, match="not binary") as err:
        source.load(spec)
    assert "000_mask.png" in str(err.value)


def test_dotted_names_are_sanitised_and_collisions_refused(tree):
    root, _ = tree
    save(root / "bottle/train/good/img.v2.png", noise(1))
    keys = [s.key for s in MVTecSource(root=root).specs()]
    assert "mvtec-bottle-train-good-img_v2" in keys
    save(root / "bottle/train/good/img_v2.png", noise(2))
    with pytest.raises(DataError, match="duplicate sample key") as err:
        MVTecSource(root=root).specs()
    assert "img.v2.png" in str(err.value) and "img_v2.png" in str(err.value)


def test_train_defect_folder_refused(tree):
    root, _ = tree
    save(root / "bottle/train/scratch/000.png", noise(3))
    with pytest.raises(DataError, match="only 'good'") as err:
        MVTecSource(root=root).specs()
    assert "train/scratch" in str(err.value)


def test_empty_source(tmp_path):
    (tmp_path / "bottle/train/good").mkdir(parents=True)
    with pytest.raises(DataError, match="empty source") as err:
        MVTecSource(root=tmp_path).specs()
    assert str(tmp_path) in str(err.value)


def test_missing_root(tmp_path):
    with pytest.raises(DataError, match="not found") as err:
        MVTecSource(root=tmp_path / "nope")
    assert "nope" in str(err.value)
