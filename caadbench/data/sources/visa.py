"""VisA through its split file ``split_csv/1cls.csv`` (columns ``object,split,label,image,mask``)."""

from __future__ import annotations

import csv
from pathlib import Path

from caadbench.data.sources.base import SampleSpec, register_source
from caadbench.data.sources.files import CategorisedSource, check_specs, make_key
from caadbench.errors import DataError

SPLIT_FILE = "split_csv/1cls.csv"
COLUMNS = ("object", "split", "label", "image", "mask")
LABELS = {"normal": 0, "anomaly": 1}
SPLITS = ("train", "test")


@register_source("visa")
class VisASource(CategorisedSource):
    """VisA (and any dataset described by a csv of the same shape).

    Paths in the csv are relative to ``root``. ``subject`` is the ``object`` column, ``context`` ``"-"``,
    ``origin_split`` the ``split`` column, ``label`` ``normal`` → 0 / ``anomaly`` → 1. Anomalous rows must name
    a mask (0/1, 0/255 or palette PNG); normal rows get an empty mask and their ``mask`` cell is ignored.
    ``defect`` is left unset: ``1cls.csv`` does not carry the defect type.

    Args:
        root: the VisA folder (the one holding ``split_csv/``).
        categories: keep only these objects (default: all).
        seed, size, image_size, mask_threshold: see :class:`~caadbench.data.sources.files.FileSource`.
    """

    kind = "industrial"

    def _rows(self) -> list[tuple[int, dict[str, str]]]:
        path = self.root / SPLIT_FILE
        if not path.is_file():
            raise DataError(path, "VisA split file not found")
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(path, f"missing column(s) {', '.join(missing)} (expected {','.join(COLUMNS)})")
            return [(i, {k: (row[k] or "").strip() for k in COLUMNS}) for i, row in enumerate(reader, start=2)]

    def specs(self) -> list[SampleSpec]:
        csv_path = self.root / SPLIT_FILE
        rows = self._rows()
        keep = self.keep((row["object"] for _, row in rows), csv_path)
        specs = [self._spec(csv_path, line, row) for line, row in rows if row["object"] in keep]
        return check_specs(specs, csv_path)

    def _spec(self, csv_path: Path, line: int, row: dict[str, str]) -> SampleSpec:
        where = f"{csv_path}:{line}"
        if row["label"] not in LABELS:
            raise DataError(where, f"label {row['label']!r} is not one of {', '.join(LABELS)}")
        if row["split"] not in SPLITS:
            raise DataError(where, f"split {row['split']!r} is not one of {', '.join(SPLITS)}")
        if not row["object"]:
            raise DataError(where, "empty object name")
        label = LABELS[row["label"]]
        image = self._existing(row["image"], where, "image")
        mask = self._existing(row["mask"], where, "mask") if label == 1 else None
        return SampleSpec(
            key=make_key([self.name, row["object"], row["split"], row["label"], image.stem], image),
            subject=row["object"], context="-", label=label, source=f"{self.name}:{row['image']}",
            defect=None, mask_kind="defect", origin_split=row["split"], payload=self.spec_payload(image, mask))

    def _existing(self, rel: str, where: str, what: str) -> Path:
        if not rel:
            raise DataError(where, f"missing {what} path")
        path = self.root / rel
        if not path.is_file():
            raise DataError(path, f"{what} file not found (named in {where})")
        return path
