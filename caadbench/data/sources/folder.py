"""A generic industrial folder: ``normal/``, ``abnormal/``, ``mask/`` and optionally ``train/normal/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from caadbench.data.imageio import DEFAULT_MASK_THRESHOLD
from caadbench.data.sources.base import SampleSpec, register_source
from caadbench.data.sources.files import (
    FileSource,
    check_specs,
    index_by_stem,
    list_images,
    make_key,
    match_mask,
    relative,
)
from caadbench.errors import DataError

# (folder relative to root, origin_split, label)
PARTS = (("train/normal", "train", 0), ("normal", "test", 0), ("abnormal", "test", 1))


@register_source("folder")
class FolderSource(FileSource):
    """One category of images sorted into folders (files directly inside each folder; sub-folders are not read).

    ``normal/`` and ``abnormal/`` are the test images; ``mask/`` (optional) holds the masks of abnormal images,
    matched by stem (``x.png`` → ``mask/x.png`` or ``mask/x_mask.png``, any image extension); ``train/normal/``
    (optional) holds the train-side normal images. Without it every image is on the test side (zero-shot use
    only). ``context`` is ``"-"``, ``defect`` is ``"abnormal"`` for anomalous images.

    An abnormal image without a mask (no ``mask/`` folder, or no file of its stem there) is kept with
    ``Sample.mask_missing``: it counts for image metrics and is left out of pixel metrics, which are reported
    as unavailable (NaN, with a note) when no abnormal image of the set has a mask. The manifest counts them.

    Args:
        root: the dataset folder.
        subject: class name used in prompts (default: the name of ``root``).
        seed, size, image_size, mask_threshold: see :class:`FileSource`.
    """

    kind = "industrial"

    def __init__(self, root: str | Path, seed: int = 0, size: int | None = None, image_size: int = 256,
                 subject: str | None = None, mask_threshold: float = DEFAULT_MASK_THRESHOLD) -> None:
        super().__init__(root, seed=seed, size=size, image_size=image_size, mask_threshold=mask_threshold)
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
            masks = index_by_stem(self.root / "mask") if label and (self.root / "mask").is_dir() else {}
            for image in images:
                specs.append(SampleSpec(
                    key=make_key([self.name, self.subject, split, "abnormal" if label else "normal", image.stem],
                                 image),
                    subject=self.subject, context="-", label=label,
                    source=f"{self.name}:{relative(image, self.root)}", defect="abnormal" if label else None,
                    mask_kind="defect", origin_split=split,
                    payload=self.spec_payload(image, match_mask(masks, image, required=False) if label else None)))
        return check_specs(specs, self.root)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "subject": self.subject}
