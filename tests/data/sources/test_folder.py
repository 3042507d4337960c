"""The ``folder`` source on a dummy ``normal/ abnormal/ mask/ train/normal/`` set."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest

from caadbench.data.sources import get_source_class
from caadbench.data.sources.folder import FolderSource
from tests.data.sources.fixtures import (
    BAD_MASKS,
    H,
    W,
    expect_error,
    load_key,
    noise,
    rect,
    save,
    truncate,
    write_folder,
)


@pytest.fixture()
def folder(tmp_path):
    root = tmp_path / "hazelnut"
    return root, write_folder(root)


def test_specs_and_masks(folder):
    root, expected = folder
    source = pickle.loads(pickle.dumps(FolderSource(root=root)))
    specs = source.specs()
    assert [s.key for s in specs] == [
        "folder-hazelnut-train-normal-t1", "folder-hazelnut-train-normal-t2",
        "folder-hazelnut-test-normal-n1", "folder-hazelnut-test-normal-n2",
        "folder-hazelnut-test-abnormal-a1", "folder-hazelnut-test-abnormal-a2"]
    assert [s.origin_split for s in specs] == ["train"] * 2 + ["test"] * 4
    assert [s.label for s in specs] == [0, 0, 0, 0, 1, 1]
    assert {s.subject for s in specs} == {"hazelnut"} and {s.context for s in specs} == {"-"}
    assert [s.defect for s in specs] == [None] * 4 + ["abnormal"] * 2
    for spec in specs:
        sample = source.load(spec)
        assert sample.image.shape == (H, W, 3) and sample.mask_kind == "defect"
        np.testing.assert_array_equal(sample.mask, expected[spec.source.split(":", 1)[1]])


def test_subject_argument_and_no_train_folder(folder):
    root, _ = folder
    for p in (root / "train/normal").iterdir():
        p.unlink()
    specs = FolderSource(root=root, subject="metal nut").specs()
    assert {s.subject for s in specs} == {"metal nut"}
    assert {s.origin_split for s in specs} == {"test"}
    assert specs[0].key == "folder-metal_nut-test-normal-n1"
    assert FolderSource(root=root, subject="metal nut").describe()["subject"] == "metal nut"


def test_registered():
    assert get_source_class("folder") is FolderSource and FolderSource.kind == "industrial"


def test_missing_mask_is_kept_for_image_metrics(folder):
    root, expected = folder
    (root / "mask/a2.png").unlink()
    source = FolderSource(root=root)
    a1, a2 = (load_key(source, f"folder-hazelnut-test-abnormal-{s}") for s in ("a1", "a2"))
    assert not a1.mask_missing and a1.gt_known
    np.testing.assert_array_equal(a1.mask, expected["abnormal/a1.png"])
    assert a2.mask_missing and not a2.gt_known and not a2.mask.any() and a2.metadata()["mask_missing"] is True
    assert not load_key(source, "folder-hazelnut-test-normal-n1").mask_missing  # normal images need no mask


def test_no_mask_folder_means_every_abnormal_mask_is_missing(folder):
    root, _ = folder
    shutil.rmtree(root / "mask")
    source = FolderSource(root=root)
    samples = [source.load(s) for s in source.specs()]
    assert [s.mask_missing for s in samples] == [s.label == 1 for s in samples]


def test_ambiguous_mask(folder):
    root, _ = folder
    save(root / "mask/a1.png", rect(0, 3, 0, 3))
    expect_error(FolderSource(root=root).specs, "ambiguous mask: a1_mask.png, a1.png", "abnormal/a1.png")


@pytest.mark.parametrize("bad", [truncate, lambda p: p.write_text("not a png")], ids=["truncated", "text"])
def test_corrupt_image(folder, bad):
    root, _ = folder
    bad(root / "normal/n1.png")
    expect_error(lambda: load_key(FolderSource(root=root), "folder-hazelnut-test-normal-n1"), "corrupt",
                 "normal/n1.png")


@pytest.mark.parametrize("mask, message", BAD_MASKS)
def test_bad_mask(folder, mask, message):
    root, _ = folder
    save(root / "mask/a2.png", mask)
    expect_error(lambda: load_key(FolderSource(root=root), "folder-hazelnut-test-abnormal-a2"), message,
                 "mask/a2.png")


def test_dotted_and_spaced_names(folder):
    root, _ = folder
    save(root / "normal/img.final v2.png", noise(1))
    keys = [s.key for s in FolderSource(root=root).specs()]
    assert "folder-hazelnut-test-normal-img_final_v2" in keys
    assert all("." not in k and " " not in k for k in keys)


def test_duplicate_keys_after_sanitising(folder):
    root, _ = folder
    save(root / "normal/x.1.png", noise(1))
    save(root / "normal/x_1.png", noise(2))
    expect_error(FolderSource(root=root).specs, "duplicate sample key 'folder-hazelnut-test-normal-x_1'",
                 "x.1.png", "x_1.png")


def test_same_stem_twice_is_a_duplicate(folder):
    root, _ = folder
    save(root / "normal/n1.bmp", noise(3))
    expect_error(FolderSource(root=root).specs, "duplicate sample key", "n1.bmp", "n1.png")


def test_empty_source(tmp_path):
    for d in ("normal", "abnormal", "mask"):
        (tmp_path / d).mkdir()
    (tmp_path / "normal" / "notes.txt").write_text("no images here")
    (tmp_path / "normal" / ".DS_Store").write_bytes(b"\0")
    expect_error(FolderSource(root=tmp_path).specs, "empty source", str(tmp_path))


def test_no_folders(tmp_path):
    expect_error(FolderSource(root=tmp_path).specs, "neither a 'normal' nor an 'abnormal' folder", str(tmp_path))
