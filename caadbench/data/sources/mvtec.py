"""The MVTec-AD tree: ``<category>/train/good``, ``<category>/test/<defect>``, ``<category>/ground_truth/<defect>``."""

from __future__ import annotations

from pathlib import Path

from caadbench.data.sources.base import SampleSpec, register_source
from caadbench.data.sources.files import (
    CategorisedSource,
    check_specs,
    index_by_stem,
    list_dirs,
    list_images,
    make_key,
    match_mask,
    relative,
    require_dir,
)
from caadbench.errors import DataError

GOOD = "good"


@register_source("mvtec")
class MVTecSource(CategorisedSource):
    """MVTec-AD (and any dataset laid out like it).

    ``subject`` is the category folder name (``metal_nut``; prompts replace ``_`` by a space), ``context`` is
    ``"-"``, ``defect`` the defect folder name, ``origin_split`` ``train``/``test``. ``test/good`` images are
    normal with an empty mask; every other test image is anomalous and must have
    ``ground_truth/<defect>/<stem>_mask.png``.

    Args:
        root: the folder holding the category folders.
        categories: keep only these categories (default: every folder with a ``train`` or ``test`` folder).
        seed, size, image_size, mask_threshold: see :class:`~caadbench.data.sources.files.FileSource`.
    """

    kind = "industrial"

    def _category_dirs(self) -> list[Path]:
        found = [d for d in list_dirs(self.root) if (d / "train").is_dir() or (d / "test").is_dir()]
        keep = self.keep((d.name for d in found), self.root)
        return [d for d in found if d.name in keep]

    def specs(self) -> list[SampleSpec]:
        specs: list[SampleSpec] = []
        for cat in self._category_dirs():
            for split in ("train", "test"):
                if not (cat / split).is_dir():
                    continue
                for defect_dir in list_dirs(cat / split):
                    specs.extend(self._defect_specs(cat, split, defect_dir))
        return check_specs(specs, self.root)

    def _defect_specs(self, cat: Path, split: str, defect_dir: Path) -> list[SampleSpec]:
        defect = defect_dir.name
        if split == "train" and defect != GOOD:
            raise DataError(defect_dir, f"MVTec-AD train folders hold only '{GOOD}' images")
        masks = None
        if defect != GOOD:
            masks = index_by_stem(require_dir(cat / "ground_truth" / defect, f"mask folder for {defect_dir}"))
        out = []
        for image in list_images(defect_dir):
            mask = None if masks is None else match_mask(masks, image, suffixes=("_mask",))
            out.append(SampleSpec(
                key=make_key([self.name, cat.name, split, defect, image.stem], image),
                subject=cat.name, context="-", label=int(defect != GOOD),
                source=f"{self.name}:{relative(image, self.root)}", defect=defect, mask_kind="defect",
                origin_split=split, payload=self.spec_payload(image, mask)))
        return out
