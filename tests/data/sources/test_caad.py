"""The ``caad`` source on a dummy COCO json: one polygon, compressed and uncompressed RLE, a union of two
annotations with a distractor, attributes on the record and in an ``attributes`` dict."""

from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pytest

from caadbench.data.sources import get_source_class
from caadbench.data.sources.caad import (
    LAYOUT_FILE,
    CaadLayout,
    CaadSource,
    check_segmentation,
    decode_segmentation,
    rle_string_counts,
)
from tests.data.sources.fixtures import (
    POLYGON,
    H,
    W,
    compressed_rle,
    expect_error,
    load_key,
    noise,
    polygon_mask,
    rect,
    save,
    truncate,
    uncompressed_rle,
    write_caad,
    write_json,
)


@pytest.fixture()
def caad(tmp_path):
    return tmp_path, write_caad(tmp_path)


def rewrite(root, data, change):
    data = copy.deepcopy(data)
    change(data)
    write_json(root, data)
    return CaadSource(root=root)


def test_specs_keys_and_metadata(caad):
    root, _ = caad
    specs = CaadSource(root=root).specs()
    assert [s.key for s in specs] == ["caad-car-pasture_01", "caad-car-road_01", "caad-cow-highway_01",
                                      "caad-cow-pasture_01"]  # sorted by file name, space sanitised
    got = {s.key: (s.subject, s.context, s.label, s.mask_kind, s.origin_split) for s in specs}
    assert got == {"caad-car-pasture_01": ("car", "pasture", 1, "subject", None),
                   "caad-car-road_01": ("car", "road", 0, "subject", None),
                   "caad-cow-highway_01": ("cow", "highway", 1, "subject", None),
                   "caad-cow-pasture_01": ("cow", "pasture", 0, "subject", None)}
    assert specs[0].source == "caad:images/car/pasture 01.png"
    assert get_source_class("caad") is CaadSource and CaadSource.kind == "contextual"


def test_masks_polygon_rle_and_union(caad):
    root, written = caad
    source = pickle.loads(pickle.dumps(CaadSource(root=root)))
    for spec in source.specs():
        sample = source.load(spec)
        file_name = spec.source.removeprefix("caad:images/")
        assert sample.image.shape == (H, W, 3)
        expected = written["masks"][file_name]
        if expected is None:  # polygon: pycocotools vs PIL rasterisation may differ along the edge only
            reference = polygon_mask(POLYGON)
            differ = int((sample.mask != reference).sum())
            perimeter = sum(np.hypot(POLYGON[i] - POLYGON[(i + 2) % 8], POLYGON[i + 1] - POLYGON[(i + 3) % 8])
                            for i in range(0, 8, 2))
            assert differ <= perimeter, (differ, perimeter)
            assert abs(int(sample.mask.sum()) // 255 - int(reference.sum()) // 255) <= perimeter / 2
            assert sample.mask.sum() // 255 > 400  # not an empty or tiny mask
        else:  # RLE: exact
            np.testing.assert_array_equal(sample.mask, expected)
        np.testing.assert_array_equal(sample.gt_mask, sample.mask if spec.label else np.zeros_like(sample.mask))
        assert sample.extra["family"] in {"grassland", "road"}


def test_rle_round_trip_random_masks():
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = (rng.random((H, W)) < rng.random()).astype(np.uint8)
        enc = compressed_rle(mask)
        assert rle_string_counts(enc["counts"]) == uncompressed_rle(mask)["counts"]
        check_segmentation(enc, H, W)
        check_segmentation(uncompressed_rle(mask), H, W)
        np.testing.assert_array_equal(decode_segmentation(enc, H, W), mask > 0)
        np.testing.assert_array_equal(decode_segmentation(uncompressed_rle(mask), H, W), mask > 0)


def test_rulebook_is_the_observed_table(caad):
    root, _ = caad
    book = CaadSource(root=root).rulebook()
    assert book["subjects"] == ["car", "cow"]
    assert book["contexts"] == {"highway": "road", "pasture": "grassland", "road": "road"}
    assert book["rules"] == {"car": {"normal": ["road"], "anomalous": ["pasture"]},
                             "cow": {"normal": ["pasture"], "anomalous": ["highway"]}}


def test_rulebook_refuses_a_pair_with_both_labels(caad):
    root, written = caad

    def add_conflict(data):
        data["images"].append({**data["images"][0], "id": 20, "file_name": "cow/pasture_02.png", "label": 1})
        data["annotations"].append({**data["annotations"][0], "id": 20, "image_id": 20})

    save(root / "images/cow/pasture_02.png", noise(9))
    source = rewrite(root, written["data"], add_conflict)
    assert len(source.specs()) == 5
    expect_error(lambda: source.rulebook(), "'cow' in context 'pasture' is anomalous here but normal",
                 "pasture_02.png", "pasture_01.png")


def test_subject_from_category_and_layout_mapping(caad):
    root, written = caad

    def rename(data):
        for rec in data["images"]:
            attrs = {k: rec.pop(k) for k in ("subject", "context", "label", "family", "attributes") if k in rec}
            attrs = attrs.pop("attributes", attrs)
            attrs.pop("subject", None)
            rec["meta"] = {"scene": attrs["context"], "is_anomaly": {0: "no", 1: "yes", "normal": "no",
                                                                     "anomalous": "yes"}[attrs["label"]]}
        data["annotations"] = [a for a in data["annotations"] if a["category_id"] != 3]

    rewrite(root, written["data"], rename)
    layout = CaadLayout(context="scene", label="is_anomaly", attributes="meta", labels={"no": 0, "yes": 1})
    specs = CaadSource(root=root, layout=layout).specs()
    assert [(s.subject, s.context, s.label) for s in specs] == [
        ("car", "pasture", 1), ("car", "road", 0), ("cow", "highway", 1), ("cow", "pasture", 0)]
    assert CaadSource(root=root, layout=layout).describe()["layout"]["context"] == "scene"
    (root / LAYOUT_FILE).write_text(json.dumps({"context": "scene", "label": "is_anomaly", "attributes": "meta",
                                                "labels": {"No": 0, "yes": 1}}))
    assert CaadSource(root=root).specs() == specs  # the layout file is read when no layout is passed
    (root / LAYOUT_FILE).write_text(json.dumps({"contxt": "scene"}))
    expect_error(lambda: CaadSource(root=root), "fields among", LAYOUT_FILE)


def test_mask_from_all_annotations(caad):
    root, written = caad
    source = CaadSource(root=root, layout=CaadLayout(mask_from="all"))
    spec = next(s for s in source.specs() if s.key == "caad-car-pasture_01")
    expected = np.maximum(written["masks"]["car/pasture 01.png"], rect(12, 18, 12, 20))
    np.testing.assert_array_equal(source.load(spec).mask, expected)


@pytest.mark.parametrize("change, message", [
    (lambda d: d["annotations"][0].update(image_id=99), "annotation 1: unknown image_id 99"),
    (lambda d: d["annotations"][0].update(category_id=7), "annotation 1: unknown category_id 7"),
    (lambda d: d["images"][0].update(label="maybe"), "label 'maybe' is not one of"),
    (lambda d: d["images"][0].update(label=2), "label 2 is not one of"),
    (lambda d: d["images"][0].pop("context"), "no 'context' attribute"),
    (lambda d: d["images"][1].update(height=H + 1), "RLE size 32x48 .h x w. differs from the image's 33x48"),
    (lambda d: d["annotations"][2]["segmentation"]["counts"].pop(), "RLE counts cover"),
    (lambda d: d["annotations"][1]["segmentation"].update(counts="P1"), "RLE counts cover"),
    (lambda d: d["annotations"][0].update(segmentation=[[1, 2, 3, 4]]), "at least 3 x, y pairs"),
    (lambda d: d["annotations"][0].update(segmentation={"bbox": 1}), "neither a polygon list nor an RLE"),
    (lambda d: d["annotations"].pop(0), "no subject annotation"),
    (lambda d: d["images"][1]["attributes"].update(subject="horse"), "no annotation of category 'horse'"),
    (lambda d: d["images"][2].update(id=10), "duplicate image id 10"),
    (lambda d: d["images"][0].update(width="48"), "'width' and 'height' must be positive integers"),
])
def test_bad_annotations_name_the_json(caad, change, message):
    root, written = caad
    expect_error(lambda: rewrite(root, written["data"], change).specs(), message, "annotations.json")


def test_invalid_json_and_missing_json(caad):
    root, _ = caad
    (root / "annotations.json").write_text("{")
    expect_error(CaadSource(root=root).specs, "not valid JSON", "annotations.json")
    (root / "annotations.json").unlink()
    expect_error(CaadSource(root=root).specs, "annotation file not found", "annotations.json")


def test_missing_image_file(caad):
    root, _ = caad
    (root / "images/car/road_01.png").unlink()
    expect_error(CaadSource(root=root).specs, "image file not found", "road_01.png")


def test_corrupt_image_and_size_mismatch_at_load(caad):
    root, _ = caad
    truncate(root / "images/cow/highway_01.png")
    expect_error(lambda: load_key(CaadSource(root=root), "caad-cow-highway_01"), "corrupt", "highway_01.png")
    save(root / "images/car/road_01.png", noise(1, h=H, w=W + 4))
    expect_error(lambda: load_key(CaadSource(root=root), "caad-car-road_01"),
                 "image is 52x32 but annotations.json says 48x32", "road_01.png")


def test_empty_subject_mask(caad):
    root, written = caad

    def shrink(data):
        data["annotations"][0]["segmentation"] = [[-10.0, -10.0, -5.0, -10.0, -5.0, -5.0]]  # outside the image

    source = rewrite(root, written["data"], shrink)
    expect_error(lambda: load_key(source, "caad-cow-pasture_01"), "subject mask is empty", "pasture_01.png")


def test_dotted_name_sanitised_and_collision_refused(caad):
    root, written = caad

    def twin(data):
        data["images"].append({**data["images"][2], "id": 30, "file_name": "car/road.01.png"})
        data["annotations"].append({**data["annotations"][2], "id": 30, "image_id": 30})

    save(root / "images/car/road.01.png", noise(5))
    source = rewrite(root, written["data"], twin)
    expect_error(lambda: source.specs(), "duplicate sample key 'caad-car-road_01'", "road.01.png", "road_01.png")
    (root / "images/car/road_01.png").rename(root / "images/car/road-01.png")
    data = json.loads((root / "annotations.json").read_text())
    data["images"][2]["file_name"] = "car/road-01.png"
    write_json(root, data)
    keys = [s.key for s in CaadSource(root=root).specs()]
    assert "caad-car-road_01" in keys and "caad-car-road-01" in keys


def test_empty_source(tmp_path):
    write_json(tmp_path, {"images": [], "annotations": [], "categories": []})
    expect_error(CaadSource(root=tmp_path).specs, "empty source", "annotations.json")
