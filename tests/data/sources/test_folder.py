"""The ``folder`` source on a dummy ``normal/ abnormal/ mask/ train/normal/`` set."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from caadbench.data.sources import get_source_class
from caadbench.data.sources.folder import FolderSource
from caadbench.errors import DataError
from tests.data.sources.fixtures import H, W, noise, rect, save, truncate, write_folder


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


def test_missing_mask(folder):
    root, _ = folder
    (root / "mask/a2.png").unlink()
    with pytest.raises(DataError, match="missing mask") as err:
        FolderSource(root=root).specs()
    assert "a2.png" in str(err.value)


def test_missing_mask_folder(folder):
    root, _ = folder
    for p in (root / "mask").iterdir():
        p.unlink()
    (root / "mask").rmdir()
    with pytest.raises(DataError, match="mask folder not found") as err:
        FolderSource(root=root).specs()
    assert "mask" in str(err.value)


def test_ambiguous_mask(folder):
    root, _ = folder
    save(root / "mask/a1.png", rect(0, 3, 0, 3))
    with pytest.raises(DataError, match="ambiguous mask: a1_mask.png, a1.png") as err:
        FolderSource(root=root).specs()
    assert "abnormal/a1.png" in str(err.value)


def test_corrupt_image(folder):
    root, _ = folder
    truncate(root / "normal/n1.png")
    source = FolderSource(root=root)
    spec = next(s for s in source.specs() if s.key.endswith("-n1"))
    with pytest.raises(DataError, match="corrupt") as err:
        source.load(spec)
    assert "n1.png" in str(err.value)


def test_not_an_image(folder):
    root, _ = folder
    (root / "normal/n3.png").write_text("not a png")
    source = FolderSource(root=root)
    spec = next(s for s in source.specs() if s.key.endswith("-n3"))
    with pytest.raises(DataError, match="corrupt") as err:
        source.load(spec)
    assert "n3.png" in str(err.value)


def test_mask_size_differs(folder):
    root, _ = folder
    save(root / "mask/a2.png", rect(0, 3, 0, 3, h=W, w=H))  # transposed
    source = FolderSource(root=root)
    spec = next(s for s in source.specs() if s.key.endswith("-a2"))
    with pytest.raises(DataError, match="mask size 32x48 differs from image a2.png size 48x32") as err:
        source.load(spec)
    assert "mask/a2.png" in str(err.value)


def test_non_binary_mask(folder):
    root, _ = folder
    mask = rect(0, 10, 0, 10)
    mask[0:3, 0:3] = 128  # 0 / 128 / 255
    save(root / "mask/a2.png", mask)
    source = FolderSource(root=root)
    spec = next(s for s in source.specs() if s.key.endswith("-a2"))
    with pytest.raises(DataError, match=r"not binary \(values 0, 128, 255\)") as err:
        source.load(spec)
    assert "mask/a2.png" in str(err.value)


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
    with pytest.raises(DataError, match="duplicate sample key 'folder-hazelnut-test-normal-x_1'") as err:
        FolderSource(root=root).specs()
    assert "x.1.png" in str(err.value) and "x_1.png" in str(err.value)


def test_same_stem_twice_is_a_duplicate(folder):
    root, _ = folder
    save(root / "normal/n1.bmp", noise(3))
    with pytest.raises(DataError, match="duplicate sample key") as err:
        FolderSource(root=root).specs()
    assert "n1.bmp" in str(err.value) and "n1.png" in str(err.value)


def test_empty_source(tmp_path):
    for d in ("normal", "abnormal", "mask"):
        (tmp_path / d).mkdir()
    (tmp_path / "normal" / "notes.txt").write_text("no images here")
    (tmp_path / "normal" / ".DS_Store").write_bytes(b"\0")
    with pytest.raises(DataError, match="empty source") as err:
        FolderSource(root=tmp_path).specs()
    assert str(tmp_path) in str(err.value)


def test_no_folders(tmp_path):
    with pytest.raises(DataError, match="neither a 'normal' nor an 'abnormal' folder") as err:
        FolderSource(root=tmp_path).specs()
    assert str(tmp_path) in str(err.value)
