"""CAAD-style contextual data: images plus COCO-style annotations carrying subject, context and label per image.

The CAAD-3K release layout is not published, so the accepted layout is declared once in :class:`CaadLayout`;
adapt a release by changing its fields (or by passing another ``CaadLayout``), not the reader. See
``docs/sources.md`` for the layout as a tree.
"""

from __future__ import annotations

import json
import warnings
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pycocotools import mask as mask_utils

from caadbench.data.imageio import read_rgb
from caadbench.data.rulebook import Rulebook
from caadbench.data.sample import Sample
from caadbench.data.sources.base import SampleSpec, register_source
from caadbench.data.sources.files import FileSource, build_sample, check_specs, make_key
from caadbench.errors import DataError


@dataclass(frozen=True)
class CaadLayout:
    """Where the ``caad`` source finds each piece of information. Every field is a name in the files.

    Attributes:
        annotations: the COCO-style json, relative to the root.
        images: folder the images' ``file_name`` is relative to, relative to the root.
        subject: image attribute naming the subject; when an image lacks it, the subject is the category of its
            annotations (which must then all share one category).
        context: image attribute naming the context.
        label: image attribute holding the label.
        family: optional image attribute naming the context's family (contexts alike in appearance); a context
            without one is its own family.
        attributes: optional dict on the image record that may hold the three attributes instead.
        labels: accepted label values (compared as lower-case strings) and what they mean.
        mask_from: ``"subject"``: the mask is the union of the image's annotations whose category is its subject;
            ``"all"``: the union of all its annotations.
    """

    annotations: str = "annotations.json"
    images: str = "images"
    subject: str = "subject"
    context: str = "context"
    label: str = "label"
    family: str = "family"
    attributes: str = "attributes"
    labels: Mapping[str, int] = field(default_factory=lambda: {"0": 0, "1": 1, "normal": 0, "anomalous": 1})
    mask_from: Literal["subject", "all"] = "subject"

    @classmethod
    def load(cls, path: Path) -> CaadLayout:
        """Read a layout from a JSON object of field overrides (``{"context": "scene", ...}``).

        Raises:
            DataError: naming ``path`` when it is not JSON, names an unknown field or gives a bad value.
        """
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(path, f"unreadable layout file ({exc})") from exc
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) - known:
            raise DataError(path, f"a layout is a JSON object with fields among {', '.join(sorted(known))}")
        labels = data.pop("labels", None)
        if labels is not None and not (isinstance(labels, dict) and all(v in (0, 1) for v in labels.values())):
            raise DataError(path, "'labels' must map each accepted value to 0 or 1")
        if not all(isinstance(v, str) for v in data.values()) or data.get("mask_from", "subject") not in (
                "subject", "all"):
            raise DataError(path, "every field but 'labels' is a string; 'mask_from' is 'subject' or 'all'")
        if labels is not None:
            data["labels"] = {str(k).lower(): int(v) for k, v in labels.items()}
        return cls(**data)


LAYOUT_FILE = "caadbench-layout.json"
"""Optional file in the dataset root that overrides :class:`CaadLayout` fields (used when no layout is passed)."""


RULE_NAMES = {0: "normal", 1: "anomalous"}


def rle_string_counts(counts: str) -> list[int]:
    """Decode the run lengths of a compressed COCO RLE string (LEB128-like, each count stored as a delta to the
    count two before it from the third on).

    Raises:
        ValueError: a character outside the alphabet or a string ending inside a number.
    """
    out: list[int] = []
    pos = 0
    while pos < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(counts):
                raise ValueError("RLE string ends inside a number")
            c = ord(counts[pos]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"invalid RLE character {counts[pos]!r}")
            value |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            pos, shift = pos + 1, shift + 5
            if not more and c & 0x10:
                value |= -1 << shift
        if len(out) > 2:
            value += out[-2]
        out.append(value)
    return out


def check_segmentation(seg: Any, height: int, width: int) -> None:
    """Refuse a COCO segmentation that pycocotools would misread for an image of ``height`` x ``width``.

    Accepted: a list of polygons ``[[x1, y1, x2, y2, x3, y3, ...], ...]``, an uncompressed RLE
    ``{"size": [h, w], "counts": [int, ...]}`` or a compressed one ``{"size": [h, w], "counts": "str"}``.

    Raises:
        ValueError: what is wrong (a wrong size, a polygon under three points, counts that do not cover the image).
    """
    if isinstance(seg, list):
        if not seg:
            raise ValueError("empty polygon list")
        for poly in seg:
            if not (isinstance(poly, list) and len(poly) >= 6 and len(poly) % 2 == 0
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in poly)):
                raise ValueError("a polygon must be a flat list of at least 3 x, y pairs")
        return
    if not (isinstance(seg, dict) and "size" in seg and "counts" in seg):
        raise ValueError("segmentation is neither a polygon list nor an RLE dict with 'size' and 'counts'")
    size = seg["size"]
    if not (isinstance(size, (list, tuple)) and len(size) == 2):
        raise ValueError(f"RLE size must be [height, width], got {size!r}")
    if list(size) != [height, width]:
        raise ValueError(f"RLE size {seg['size'][0]}x{seg['size'][1]} (h x w) differs from the image's "
                         f"{height}x{width}")
    counts = seg["counts"]
    if isinstance(counts, str):
        counts = rle_string_counts(counts)
    elif not (isinstance(counts, list) and all(isinstance(c, int) and not isinstance(c, bool) for c in counts)):
        raise ValueError("RLE counts must be a string (compressed) or a list of integers (uncompressed)")
    if any(c < 0 for c in counts) or sum(counts) != height * width:
        raise ValueError(f"RLE counts cover {sum(counts)} pixels, the image has {height * width}")


def decode_segmentation(seg: Any, height: int, width: int) -> np.ndarray:
    """Rasterise a checked COCO segmentation (see :func:`check_segmentation`) with pycocotools.

    Returns:
        ``(height, width)`` bool mask.
    """
    if isinstance(seg, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
    elif isinstance(seg["counts"], list):
        rle = mask_utils.frPyObjects(seg, height, width)
    else:
        rle = {"size": [height, width], "counts": seg["counts"].encode("ascii")}
    with warnings.catch_warnings():  # pycocotools' __array__ predates numpy 2's copy keyword
        warnings.filterwarnings("ignore", message=".*copy keyword", category=DeprecationWarning)
        return mask_utils.decode(rle).astype(bool)


@register_source("caad")
class CaadSource(FileSource):
    """Images plus a COCO-style annotation file with subject, context and label per image (kind ``contextual``).

    The sample mask is the subject mask: the union of the image's subject annotations. Keys are
    ``caad-<file_name without extension, path parts joined by '-'>``.

    Args:
        root: the dataset folder.
        layout: where each field is found (default: ``root/caadbench-layout.json`` if present, else
            :class:`CaadLayout`).
        seed, size, image_size: see :class:`FileSource`.
    """

    kind = "contextual"
    reads_mask_files = False

    def __init__(self, root: str | Path, seed: int = 0, size: int | None = None, image_size: int = 256,
                 layout: CaadLayout | None = None) -> None:
        super().__init__(root, seed=seed, size=size, image_size=image_size)
        if layout is None:
            layout_file = self.root / LAYOUT_FILE
            layout = CaadLayout.load(layout_file) if layout_file.is_file() else CaadLayout()
        self.layout = layout

    @property
    def annotations_path(self) -> Path:
        return self.root / self.layout.annotations

    def _read(self) -> dict[str, Any]:
        path = self.annotations_path
        if not path.is_file():
            raise DataError(path, "annotation file not found")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(path, f"not valid JSON ({exc})") from exc
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise DataError(path, "expected a COCO-style object with an 'images' list")
        for name in ("annotations", "categories"):
            if not isinstance(data.get(name, []), list):
                raise DataError(path, f"'{name}' must be a list")
        return data

    def specs(self) -> list[SampleSpec]:
        where = self.annotations_path
        data = self._read()
        images = self._images(data["images"])
        categories = {c.get("id"): str(c.get("name")) for c in data.get("categories", []) if isinstance(c, dict)}
        by_image: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for ann in data.get("annotations", []):
            ann_id = ann.get("id") if isinstance(ann, dict) else None
            if not isinstance(ann, dict) or ann.get("image_id") not in images:
                raise DataError(where, f"annotation {ann_id}: unknown image_id "
                                       f"{ann.get('image_id') if isinstance(ann, dict) else ann!r}")
            if ann.get("category_id") not in categories:
                raise DataError(where, f"annotation {ann_id}: unknown category_id {ann.get('category_id')!r}")
            record = images[ann["image_id"]]
            try:
                check_segmentation(ann.get("segmentation"), record["height"], record["width"])
            except ValueError as exc:
                raise DataError(where, f"annotation {ann_id} (image {record['file_name']}): {exc}") from exc
            by_image[ann["image_id"]].append(ann)
        specs = [self._spec(record, by_image[image_id], categories)
                 for image_id, record in sorted(images.items(), key=lambda item: item[1]["file_name"])]
        return check_specs(specs, where)

    def _images(self, records: list[Any]) -> dict[Any, dict[str, Any]]:
        where = self.annotations_path
        images: dict[Any, dict[str, Any]] = {}
        for rec in records:
            if not (isinstance(rec, dict) and isinstance(rec.get("file_name"), str) and rec.get("id") is not None):
                raise DataError(where, f"image record without 'id' or 'file_name': {str(rec)[:80]}")
            if not all(isinstance(rec.get(k), int) and rec[k] > 0 for k in ("width", "height")):
                raise DataError(where, f"image {rec['file_name']}: 'width' and 'height' must be positive integers")
            if rec["id"] in images:
                raise DataError(where, f"image {rec['file_name']}: duplicate image id {rec['id']!r}")
            images[rec["id"]] = rec
        return images

    def _attribute(self, record: dict[str, Any], name: str) -> Any:
        if name in record:
            return record[name]
        attrs = record.get(self.layout.attributes)
        return attrs.get(name) if isinstance(attrs, dict) else None

    def _spec(self, record: dict[str, Any], anns: list[dict[str, Any]], categories: dict[Any, str]) -> SampleSpec:
        lay, file_name = self.layout, record["file_name"]
        where = f"{self.annotations_path} (image {file_name})"
        subject = self._attribute(record, lay.subject)
        if subject is None:
            names = sorted({categories[a["category_id"]] for a in anns})
            if len(names) != 1:
                raise DataError(where, f"no '{lay.subject}' attribute and annotations of "
                                       f"{len(names)} categories to take it from")
            subject = names[0]
        context = self._attribute(record, lay.context)
        if context is None or str(context) == "":
            raise DataError(where, f"no '{lay.context}' attribute")
        raw_label = self._attribute(record, lay.label)
        labels = {str(k).lower(): v for k, v in lay.labels.items()}
        label = labels.get(str(raw_label).strip().lower()) if raw_label is not None else None
        if label is None:
            raise DataError(where, f"label {raw_label!r} is not one of {', '.join(lay.labels)}")
        segs = [a["segmentation"] for a in anns if lay.mask_from == "all" or categories[a["category_id"]] == subject]
        if not segs:
            raise DataError(where, f"no subject annotation (no annotation of category {subject!r})")
        family = self._attribute(record, lay.family)
        image = self.root / lay.images / file_name
        if not image.is_file():
            raise DataError(image, f"image file not found (listed in {self.annotations_path.name})")
        rel_image = Path(lay.images, file_name).as_posix()
        return SampleSpec(
            key=make_key([self.name, *Path(file_name).with_suffix("").parts], image),
            subject=str(subject), context=str(context), label=label, source=f"{self.name}:{rel_image}",
            mask_kind="subject",
            payload={"image": rel_image, "image_id": record["id"], "height": record["height"],
                     "width": record["width"], "family": str(family or context), "segmentations": segs})

    def load(self, spec: SampleSpec) -> Sample:
        path = self.root / spec.payload["image"]
        height, width = spec.payload["height"], spec.payload["width"]
        image = read_rgb(path)
        if image.shape[:2] != (height, width):
            raise DataError(path, f"image is {image.shape[1]}x{image.shape[0]} but {self.annotations_path.name} "
                                  f"says {width}x{height}")
        mask = np.zeros((height, width), dtype=bool)
        for seg in spec.payload["segmentations"]:
            mask |= decode_segmentation(seg, height, width)
        if not mask.any():
            raise DataError(path, "subject mask is empty (its annotations cover no pixel)")
        return build_sample(spec, image, np.where(mask, 255, 0).astype(np.uint8), path,
                            extra={"image_id": spec.payload["image_id"], "family": spec.payload["family"]})

    def rulebook(self) -> dict[str, Any]:
        """The observed subject × context → label table, in the shared rulebook format.

        Returns:
            :meth:`Rulebook.to_json` of the pairs seen in the annotations (pairs never seen are excluded);
            subjects and contexts sorted by name.

        Raises:
            DataError: a pair seen with both labels (naming one image of each), a context given two families,
                or a subject without a normal or without an anomalous context.
        """
        first: dict[tuple[str, str], SampleSpec] = {}
        families: dict[str, str] = {}
        for spec in self.specs():
            other = first.setdefault((spec.subject, spec.context), spec)
            if other.label != spec.label:
                raise DataError(spec.source, f"subject {spec.subject!r} in context {spec.context!r} is "
                                             f"{RULE_NAMES[spec.label]} here but {RULE_NAMES[other.label]} in "
                                             f"{other.source}; the label must depend on the pair only")
            family = families.setdefault(spec.context, spec.payload["family"])
            if family != spec.payload["family"]:
                raise DataError(spec.source, f"context {spec.context!r} is in family {spec.payload['family']!r} "
                                             f"here but in {family!r} elsewhere")
        rules = [(s, c, RULE_NAMES[spec.label]) for (s, c), spec in sorted(first.items())]
        return Rulebook.from_rules(sorted({s for s, _ in first}), sorted(families.items()), rules,
                                   self.annotations_path).to_json()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "layout": {**asdict(self.layout), "labels": dict(self.layout.labels)}}
