"""A generic industrial folder: ``normal/``, ``abnormal/``, ``mask/`` and optionally ``train/normal/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from caadbench.data.sources.base import SampleSpec, register_source
from caadbench.data.sources.files import (
    FileSource,
    check_specs,
    index_by_stem,
    list_images,
    make_key,
    match_mask,
    relative,
    require_dir,
)
from caadbench.errors import DataError

# (folder relative to root, origin_split, label)
PARTS = (("train/normal", "train", 0), ("normal", "test", 0), ("abnormal", "test", 1))


@register_source("folder")
class FolderSource(FileSource):
    """One category of images sorted into folders (files directly inside each folder; sub-folders are not read).

    ``normal/`` and ``abnormal/`` are the test images; ``mask/`` holds a mask for every abnormal image, matched by
    stem (``x.png`` → ``mask/x.png`` or ``mask/x_mask.png``, any image extension); ``train/normal/`` (optional)
    holds the train-side normal images. Without it every image is on the test side (zero-shot use only).
    ``context`` is ``"-"``, ``defect`` is ``"abnormal"`` for anomalous images.

    Args:
        root: the dataset folder.
        subject: class name used in prompts (default: the name of ``root``).
        seed, size, image_size: see :class:`FileSource`.
    """

    kind = "industrial"

    def __init__(self, root: str | Path, seed: int = 0, size: int | None = None, image_size: int = 256,
                 subject: str | None = None) -> None:
        super().__init__(root, seed=seed, size=size, image_size=image_size)
        self.subject = subject or self.root.resolve().name
        if not self.subject:
            raise DataError(self.root, "cannot name the subject after the folder; pass subject=")

    def specs(self) -> list[SampleSpec]:
        if not (self.root / "normal").is_dir() and not (self.root / "abnormal").is_dir():
            raise DataError(self.root, "neither a 'normal' nor an 'abnormal' folder found")
        specs: list[SampleSpec] = []
        for folder, split, label in PARTS:
            directory = self.root / folder
            if not directory.is_dir():
                continue
            images = list_images(directory)
            masks = index_by_stem(require_dir(self.root / "mask", "mask")) if label and images else None
            for image in images:
                specs.append(SampleSpec(
                    key=make_key([self.name, self.subject, split, "abnormal" if label else "normal", image.stem],
                                 image),
                    subject=self.subject, context="-", label=label,
                    source=f"{self.name}:{relative(image, self.root)}", defect="abnormal" if label else None,
                    mask_kind="defect", origin_split=split,
                    payload=self.spec_payload(image, None if masks is None else match_mask(masks, image))))
        return check_specs(specs, self.root)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "subject": self.subject}
