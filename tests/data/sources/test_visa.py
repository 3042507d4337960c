"""The ``visa`` source on a dummy VisA folder with ``split_csv/1cls.csv``, JPEG images and 0/255 + palette masks."""

from __future__ import annotations

import csv
import pickle

import numpy as np
import pytest

from caadbench.data.sources import get_source_class
from caadbench.data.sources.visa import VisASource
from tests.data.sources.fixtures import (
    BAD_MASKS,
    H,
    W,
    expect_error,
    load_key,
    save,
    truncate,
    write_visa,
    write_visa_csv,
)


@pytest.fixture()
def visa(tmp_path):
    return tmp_path, write_visa(tmp_path)


def rows(root):
    with (root / "split_csv/1cls.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_specs_follow_the_csv(visa):
    root, expected = visa
    specs = VisASource(root=root).specs()
    assert len(specs) == len(expected) == 10
    by_key = {s.key: s for s in specs}
    spec = by_key["visa-pipe_fryum-test-anomaly-001"]
    assert (spec.subject, spec.context, spec.label, spec.origin_split, spec.mask_kind, spec.defect) == (
        "pipe_fryum", "-", 1, "test", "defect", None)
    assert spec.source == "visa:pipe_fryum/Data/Images/Anomaly/001.JPG"
    assert by_key["visa-candle-train-normal-0001"].origin_split == "train"
    for s in specs:
        obj, split, label, _ = expected[s.source.split(":", 1)[1]]
        assert (s.subject, s.origin_split, s.label) == (obj, split, label)


def test_load_reads_jpeg_and_palette_masks(visa):
    root, expected = visa
    source = pickle.loads(pickle.dumps(VisASource(root=root)))
    for spec in source.specs():
        sample = source.load(spec)
        assert sample.image.shape == (H, W, 3)
        np.testing.assert_array_equal(sample.mask, expected[spec.source.split(":", 1)[1]][3])
        assert set(np.unique(sample.mask)) <= {0, 255}


def test_category_filter(visa):
    root, _ = visa
    assert {s.subject for s in VisASource(root=root, categories=["candle"]).specs()} == {"candle"}
    expect_error(VisASource(root=root, categories=["pcb9"]).specs, "unknown category pcb9", "1cls.csv")


def test_registered():
    assert get_source_class("visa") is VisASource and VisASource.kind == "industrial"


@pytest.mark.parametrize("field, value, message", [
    ("label", "bad", "label 'bad' is not one of normal, anomaly"),
    ("split", "val", "split 'val' is not one of train, test"),
])
def test_bad_cells_name_the_csv_line(visa, field, value, message):
    root, _ = visa
    table = rows(root)
    table[3][field] = value
    write_visa_csv(root, table)
    expect_error(VisASource(root=root).specs, message, "1cls.csv:5")


def test_missing_column(visa):
    root, _ = visa
    write_visa_csv(root, rows(root), columns=("object", "split", "label", "image"))
    expect_error(VisASource(root=root).specs, "missing column", "1cls.csv")


def test_missing_mask(visa):
    root, _ = visa
    table = rows(root)
    anomaly = next(r for r in table if r["label"] == "anomaly")
    anomaly["mask"] = ""
    write_visa_csv(root, table)
    expect_error(VisASource(root=root).specs, "missing mask path", "1cls.csv:5")  # header is line 1


def test_missing_mask_file(visa):
    root, _ = visa
    (root / "candle/Data/Masks/Anomaly/001.png").unlink()
    expect_error(VisASource(root=root).specs, "mask file not found", "candle/Data/Masks/Anomaly/001.png")


def test_missing_image_file(visa):
    root, _ = visa
    (root / "candle/Data/Images/Normal/0002.JPG").unlink()
    expect_error(VisASource(root=root).specs, "image file not found", "candle/Data/Images/Normal/0002.JPG")


def test_corrupt_image(visa):
    root, _ = visa
    truncate(root / "candle/Data/Images/Anomaly/000.JPG")
    expect_error(lambda: load_key(VisASource(root=root), "visa-candle-test-anomaly-000"), "corrupt",
                 "candle/Data/Images/Anomaly/000.JPG")


@pytest.mark.parametrize("mask, message", BAD_MASKS)
def test_bad_mask(visa, mask, message):
    root, _ = visa
    save(root / "pipe_fryum/Data/Masks/Anomaly/000.png", mask)
    expect_error(lambda: load_key(VisASource(root=root), "visa-pipe_fryum-test-anomaly-000"), message,
                 "pipe_fryum/Data/Masks/Anomaly/000.png")


def test_duplicate_keys_after_sanitising(visa):
    root, _ = visa
    table = rows(root)
    save(root / "candle/Data/Images/Normal/00 02.JPG", np.zeros((H, W, 3), np.uint8), format="JPEG")
    table.append({**table[2], "image": "candle/Data/Images/Normal/00 02.JPG"})
    table.append({**table[2], "image": "candle/Data/Images/Normal/00_02.JPG"})
    save(root / "candle/Data/Images/Normal/00_02.JPG", np.zeros((H, W, 3), np.uint8), format="JPEG")
    write_visa_csv(root, table)
    expect_error(VisASource(root=root).specs, "duplicate sample key 'visa-candle-test-normal-00_02'",
                 "00_02.JPG", "00 02.JPG")


def test_empty_csv_and_missing_csv(tmp_path):
    expect_error(VisASource(root=tmp_path).specs, "split file not found", "1cls.csv")
    write_visa_csv(tmp_path, [])
    expect_error(VisASource(root=tmp_path).specs, "empty source", "1cls.csv")
