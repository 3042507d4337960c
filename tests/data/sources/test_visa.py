"""The ``visa`` source on a dummy VisA folder with ``split_csv/1cls.csv``, JPEG images and 0/255 + palette masks."""

from __future__ import annotations

import csv
import pickle

import numpy as np
import pytest

from caadbench.data.sources import get_source_class
from caadbench.data.sources.visa import VisASource
from caadbench.errors import DataError
from tests.data.sources.fixtures import H, W, rect, save, truncate, write_visa, write_visa_csv


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
    with pytest.raises(DataError, match="unknown category pcb9") as err:
        VisASource(root=root, categories=["pcb9"]).specs()
    assert "1cls.csv" in str(err.value)


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
    with pytest.raises(DataError, match=message) as err:
        VisASource(root=root).specs()
    assert "1cls.csv:5" in str(err.value)


def test_missing_column(visa):
    root, _ = visa
    write_visa_csv(root, rows(root), columns=("object", "split", "label", "image"))
    with pytest.raises(DataError, match="missing column") as err:
        VisASource(root=root).specs()
    assert "1cls.csv" in str(err.value)


def test_missing_mask(visa):
    root, _ = visa
    table = rows(root)
    anomaly = next(r for r in table if r["label"] == "anomaly")
    anomaly["mask"] = ""
    write_visa_csv(root, table)
    with pytest.raises(DataError, match="missing mask path") as err:
        VisASource(root=root).specs()
    assert "1cls.csv:5" in str(err.value)  # header is line 1, the first anomaly row is line 5


def test_missing_mask_file(visa):
    root, _ = visa
    (root / "candle/Data/Masks/Anomaly/001.png").unlink()
    with pytest.raises(DataError, match="mask file not found") as err:
        VisASource(root=root).specs()
    assert "Masks/Anomaly/001.png" in str(err.value)


def test_missing_image_file(visa):
    root, _ = visa
    (root / "candle/Data/Images/Normal/0002.JPG").unlink()
    with pytest.raises(DataError, match="image file not found") as err:
        VisASource(root=root).specs()
    assert "Normal/0002.JPG" in str(err.value)


def test_corrupt_image_mask_size_and_non_binary_mask(visa):
    root, _ = visa
    source = VisASource(root=root)
    specs = {s.key: s for s in source.specs()}
    truncate(root / "candle/Data/Images/Anomaly/000.JPG")
    with pytest.raises(DataError, match="corrupt") as err:
        source.load(specs["visa-candle-test-anomaly-000"])
    assert "Anomaly/000.JPG" in str(err.value)
    save(root / "candle/Data/Masks/Anomaly/001.png", rect(0, 4, 0, 4, h=H + 1))
    with pytest.raises(DataError, match="differs from image") as err:
        source.load(specs["visa-candle-test-anomaly-001"])
    assert "Masks/Anomaly/001.png" in str(err.value)
    mask = rect(0, 4, 0, 4, value=1)
    mask[10, 10] = 2  # two labels in one mask
    save(root / "pipe_fryum/Data/Masks/Anomaly/000.png", mask)
    with pytest.raises(DataError, match="not binary") as err:
        source.load(specs["visa-pipe_fryum-test-anomaly-000"])
    assert "pipe_fryum/Data/Masks/Anomaly/000.png" in str(err.value)


def test_duplicate_keys_after_sanitising(visa):
    root, _ = visa
    table = rows(root)
    save(root / "candle/Data/Images/Normal/00 02.JPG", np.zeros((H, W, 3), np.uint8), format="JPEG")
    table.append({**table[2], "image": "candle/Data/Images/Normal/00 02.JPG"})
    table.append({**table[2], "image": "candle/Data/Images/Normal/00_02.JPG"})
    save(root / "candle/Data/Images/Normal/00_02.JPG", np.zeros((H, W, 3), np.uint8), format="JPEG")
    write_visa_csv(root, table)
    with pytest.raises(DataError, match="duplicate sample key 'visa-candle-test-normal-00_02'") as err:
        VisASource(root=root).specs()
    assert "00_02.JPG" in str(err.value) and "00 02.JPG" in str(err.value)


def test_empty_csv_and_missing_csv(tmp_path):
    with pytest.raises(DataError, match="split file not found") as err:
        VisASource(root=tmp_path).specs()
    assert "1cls.csv" in str(err.value)
    write_visa_csv(tmp_path, [])
    with pytest.raises(DataError, match="empty source") as err:
        VisASource(root=tmp_path).specs()
    assert "1cls.csv" in str(err.value)
