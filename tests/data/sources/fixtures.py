"""Tiny dummy datasets written in the real on-disk formats (MVTec-AD tree, VisA csv, folder set, COCO json).

Images are ``H x W = 32 x 48`` (not square, so a transposed mask cannot pass) random noise; masks are
rectangles. Each writer returns what a reader should find, for the tests to compare against.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils

from caadbench.data.sample import Sample
from caadbench.data.sources.base import Source
from caadbench.errors import DataError

H, W = 32, 48


def noise(seed: int, h: int = H, w: int = W) -> np.ndarray:
    """``(h, w, 3)`` uint8 random image."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def rect(y0: int, y1: int, x0: int, x1: int, h: int = H, w: int = W, value: int = 255) -> np.ndarray:
    """``(h, w)`` uint8 mask with ``value`` on rows ``y0:y1`` and columns ``x0:x1``."""
    m = np.zeros((h, w), dtype=np.uint8)
    m[y0:y1, x0:x1] = value
    return m


def with_values(*values: int) -> np.ndarray:
    """A mask holding 0 and each of ``values`` (a non-binary mask when more than one value is given)."""
    m = np.zeros((H, W), dtype=np.uint8)
    for i, v in enumerate(values):
        m[2 + 4 * i: 6 + 4 * i, 2:20] = v
    return m


BAD_MASKS = [
    pytest.param(rect(0, 3, 0, 3, h=W, w=H), r"mask size 32x48 differs from image \S+ size 48x32", id="transposed"),
    pytest.param(with_values(1, 2), r"no mask pixel reaches the threshold 50 % of 255 \(values 0, 1, 2\): a label map",
                 id="label-map"),
    pytest.param(np.random.default_rng(7).integers(0, 256, (H, W, 3), dtype=np.uint8),
                 r"not a mask: \d+ % of its pixels are neither 0 nor 255 \(a photo\?\)", id="photo"),
]
"""``(stored mask, expected error)`` for masks every source must refuse at load time (clearly not masks)."""


def antialiased(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """A rectangle mask as a resampling tool writes it: 255 inside, a one-pixel ramp of 64/191 on its border.

    The expected binarisation at 50 % is the rectangle grown by the 191 ring: :func:`rect` of ``y0 - 1 .. y1 + 1``
    minus the 64 pixels, see :func:`antialiased_expected`."""
    m = np.zeros((H, W), np.uint8)
    m[y0 - 2:y1 + 2, x0 - 2:x1 + 2] = 64
    m[y0 - 1:y1 + 1, x0 - 1:x1 + 1] = 191
    m[y0:y1, x0:x1] = 255
    return m


def antialiased_expected(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """What :func:`antialiased` binarises to at the default 50 % threshold (191 ≥ 127.5 > 64)."""
    return rect(y0 - 1, y1 + 1, x0 - 1, x1 + 1)


def save(path: Path, arr: np.ndarray, **kwargs: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kwargs)
    return path


def save_palette_mask(path: Path, mask01: np.ndarray) -> Path:
    """A palette PNG whose index 1 (coloured red in the palette) marks the foreground, as VisA stores some masks."""
    im = Image.fromarray(mask01.astype(np.uint8)).convert("P")
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)
    return path


def truncate(path: Path) -> Path:
    """Cut an image file to half its bytes (a corrupt download)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


# ------------------------------------------------------------------ MVTec-AD
MVTEC_DEFECTS = {"bottle": ("broken_large", "contamination"), "metal_nut": ("scratch",)}


def write_mvtec(root: Path) -> dict[str, np.ndarray]:
    """Two categories: 2 train/good, 1 test/good and 2 images per defect, each with ``<stem>_mask.png``.

    Returns:
        ``{relative image path: expected mask (H, W) uint8 {0, 255}}``.
    """
    expected: dict[str, np.ndarray] = {}
    seed = 0
    for cat, defects in MVTEC_DEFECTS.items():
        for split, defect, n in [("train", "good", 2), ("test", "good", 1)] + [("test", d, 2) for d in defects]:
            for i in range(n):
                seed += 1
                rel = f"{cat}/{split}/{defect}/{i:03d}.png"
                save(root / rel, noise(seed))
                mask = np.zeros((H, W), np.uint8)
                if defect != "good":
                    mask = rect(2 + i, 10 + i, 3 + seed % 7, 20)
                    save(root / cat / "ground_truth" / defect / f"{i:03d}_mask.png", mask)
                expected[rel] = mask
    (root / "license.txt").write_text("dummy")
    return expected


# ------------------------------------------------------------------ VisA
def write_visa(root: Path) -> dict[str, tuple[str, str, int, np.ndarray]]:
    """Two objects (``candle``, ``pipe_fryum``): 2 train normal, 1 test normal, 2 test anomalies each; JPEG
    images as VisA ships them; masks as 0/255 PNG (candle) and palette 0/1 PNG (pipe_fryum).

    Returns:
        ``{relative image path: (object, split, label, expected mask)}``.
    """
    rows, expected, seed = [], {}, 100
    for obj in ("candle", "pipe_fryum"):
        for split, label, name in [("train", "normal", "0000"), ("train", "normal", "0001"),
                                   ("test", "normal", "0002"), ("test", "anomaly", "000"), ("test", "anomaly", "001")]:
            seed += 1
            folder = "Normal" if label == "normal" else "Anomaly"
            image = f"{obj}/Data/Images/{folder}/{name}.JPG"
            save(root / image, noise(seed), format="JPEG", quality=90)
            mask_rel, mask = "", np.zeros((H, W), np.uint8)
            if label == "anomaly":
                mask_rel = f"{obj}/Data/Masks/Anomaly/{name}.png"
                mask = rect(4, 12 + seed % 5, 6, 30)
                if obj == "candle":
                    save(root / mask_rel, mask)
                else:
                    save_palette_mask(root / mask_rel, mask // 255)
            rows.append({"object": obj, "split": split, "label": label, "image": image, "mask": mask_rel})
            expected[image] = (obj, split, int(label == "anomaly"), mask)
    write_visa_csv(root, rows)
    return expected


def write_visa_csv(root: Path, rows: list[dict[str, str]], columns: tuple[str, ...] = (
        "object", "split", "label", "image", "mask")) -> Path:
    path = root / "split_csv" / "1cls.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


# ------------------------------------------------------------------ folder
def write_folder(root: Path) -> dict[str, np.ndarray]:
    """``train/normal`` (2), ``normal`` (2), ``abnormal`` (2) with masks ``mask/a1_mask.png`` and ``mask/a2.png``.

    Returns:
        ``{relative image path: expected mask}``.
    """
    expected: dict[str, np.ndarray] = {}
    for i, rel in enumerate(["train/normal/t1.png", "train/normal/t2.png", "normal/n1.png", "normal/n2.jpg"]):
        save(root / rel, noise(200 + i))
        expected[rel] = np.zeros((H, W), np.uint8)
    for i, (rel, mask_rel) in enumerate([("abnormal/a1.png", "mask/a1_mask.png"), ("abnormal/a2.png", "mask/a2.png")]):
        save(root / rel, noise(210 + i))
        expected[rel] = save_mask = rect(3, 9 + 5 * i, 4, 14 + 10 * i)
        save(root / mask_rel, save_mask // 255)  # stored 0/1, as many tools write them
    return expected


# ------------------------------------------------------------------ CAAD (COCO style)
def uncompressed_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO uncompressed RLE of a 0/1 mask, written here (not by pycocotools): column-major run lengths
    starting with a run of zeros."""
    flat = (mask.T.reshape(-1) > 0).astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0] == 1:
        counts = [0, *counts]
    return {"size": list(mask.shape), "counts": counts}


def compressed_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE (``counts`` a string, as it appears in json) encoded by pycocotools."""
    rle = mask_utils.encode(np.asfortranarray((mask > 0).astype(np.uint8)))
    return {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}


def polygon_mask(polygon: list[float], h: int = H, w: int = W) -> np.ndarray:
    """Reference rasterisation of one polygon with PIL (not pycocotools), 0/255."""
    im = Image.new("L", (w, h), 0)
    ImageDraw.Draw(im).polygon(list(zip(polygon[0::2], polygon[1::2])), fill=255)
    return np.asarray(im)


POLYGON = [4.0, 3.0, 40.0, 5.0, 30.0, 28.0, 8.0, 22.0]


def write_caad(root: Path) -> dict[str, Any]:
    """A COCO json with four images (2 subjects x 2 contexts) and their masks:

    - ``cow/pasture_01.png``: one polygon, attributes on the record, label ``"normal"``;
    - ``cow/highway_01.png``: compressed RLE, attributes in an ``attributes`` dict, label ``1``;
    - ``car/road_01.png``: uncompressed RLE, label ``0``;
    - ``car/pasture 01.png``: two subject annotations (union) plus a ``person`` distractor that is not part of
      the mask, label ``"anomalous"``.

    Returns:
        ``{"json": path, "data": the json dict, "masks": {file_name: expected mask, None for the polygon}}``.
    """
    cats = [{"id": 1, "name": "cow"}, {"id": 2, "name": "car"}, {"id": 3, "name": "person"}]
    rle_mask = rect(5, 20, 10, 30)
    rle_mask[8:12, 15:18] = 0  # a hole, so the RLE has more than one run per column
    unc_mask = rect(0, 32, 40, 48)  # touches the image border: the RLE starts inside the subject
    part_a, part_b, distractor = rect(2, 8, 2, 10), rect(20, 30, 30, 46), rect(12, 18, 12, 20)
    images = [
        {"id": 10, "file_name": "cow/pasture_01.png", "width": W, "height": H,
         "subject": "cow", "context": "pasture", "label": "normal", "family": "grassland"},
        {"id": 11, "file_name": "cow/highway_01.png", "width": W, "height": H,
         "attributes": {"subject": "cow", "context": "highway", "label": 1, "family": "road"}},
        {"id": 12, "file_name": "car/road_01.png", "width": W, "height": H,
         "subject": "car", "context": "road", "label": 0, "family": "road"},
        {"id": 13, "file_name": "car/pasture 01.png", "width": W, "height": H,
         "subject": "car", "context": "pasture", "label": "anomalous", "family": "grassland"},
    ]
    anns = [
        {"id": 1, "image_id": 10, "category_id": 1, "segmentation": [POLYGON], "iscrowd": 0},
        {"id": 2, "image_id": 11, "category_id": 1, "segmentation": compressed_rle(rle_mask), "iscrowd": 1},
        {"id": 3, "image_id": 12, "category_id": 2, "segmentation": uncompressed_rle(unc_mask), "iscrowd": 1},
        {"id": 4, "image_id": 13, "category_id": 2, "segmentation": compressed_rle(part_a), "iscrowd": 1},
        {"id": 5, "image_id": 13, "category_id": 2, "segmentation": uncompressed_rle(part_b), "iscrowd": 1},
        {"id": 6, "image_id": 13, "category_id": 3, "segmentation": compressed_rle(distractor), "iscrowd": 1},
    ]
    for i, rec in enumerate(images):
        save(root / "images" / rec["file_name"], noise(300 + i))
    data = {"images": images, "annotations": anns, "categories": cats}
    path = write_json(root, data)
    return {"json": path, "data": data,
            "masks": {"cow/pasture_01.png": None, "cow/highway_01.png": rle_mask, "car/road_01.png": unc_mask,
                      "car/pasture 01.png": np.maximum(part_a, part_b)}}


def write_json(root: Path, data: dict[str, Any]) -> Path:
    path = root / "annotations.json"
    path.write_text(json.dumps(data))
    return path


# ------------------------------------------------------------------ assertions
def expect_error(call: Callable[[], Any], match: str, *names: str) -> DataError:
    """Run ``call``; it must raise a :class:`DataError` matching ``match`` whose message names every one of
    ``names`` (file names, usually)."""
    with pytest.raises(DataError, match=match) as err:
        call()
    for name in names:
        assert name in str(err.value), f"{name!r} not named in {str(err.value)!r}"
    return err.value


def load_key(source: Source, key: str) -> Sample:
    """Load the sample of ``source`` whose key is ``key``."""
    return source.load(next(s for s in source.specs() if s.key == key))
