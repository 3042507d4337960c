"""The one sample schema every source yields and every shard stores.

A sample is a key (no dots: WebDataset splits the key from the extension at the first dot), an RGB image,
a mask of the same size and its metadata. For contextual sets the mask is the *subject* mask; the pixel
ground truth is that mask when the image is anomalous and empty when it is normal (the incompatible subject
is the anomalous region). For industrial sets the mask is the defect mask and is the ground truth itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from caadbench.errors import DataError

KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
MaskKind = Literal["subject", "defect"]
BINARISED_PIXELS = "mask_binarised_pixels"
"""``Sample.extra`` key: how many pixels of the stored mask were intermediate (anti-aliased) and binarised at the
source's mask threshold; absent for a binary mask."""


def validate_key(key: str, where: str | None = None) -> str:
    """Return ``key`` if it is a valid WebDataset key (letters, digits, ``_`` and ``-``; no dots or slashes).

    Raises:
        DataError: naming ``where`` (or the key) and the offending key.
    """
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise DataError(where or key, f"invalid sample key {key!r}: use letters, digits, '_' and '-' only (no dots)")
    return key


@dataclass
class Sample:
    """One image with its mask and metadata.

    Attributes:
        key: unique id within a dataset, ``[A-Za-z0-9][A-Za-z0-9_-]*``.
        image: ``(H, W, 3)`` uint8 RGB.
        mask: ``(H, W)`` uint8 with values in {0, 255}: the subject mask (``mask_kind == "subject"``)
            or the defect mask (``mask_kind == "defect"``).
        subject: class name used in prompts (``"cow"``, ``"bottle"``).
        context: context name (``"highway"``); industrial sets use ``"-"``.
        label: 0 normal, 1 anomalous.
        source: dataset and original path (``"mvtec:bottle/test/broken_large/000.png"``).
        defect: defect type for industrial sets.
        mask_kind: what the mask holds.
        extra: further JSON-serialisable metadata (generator parameters, family, ...).
        mask_missing: an anomalous image whose dataset has no mask for it: ``mask`` is empty and is *not* its
            pixel ground truth (image metrics only; pixel metrics leave it out).
    """

    key: str
    image: np.ndarray
    mask: np.ndarray
    subject: str
    context: str
    label: int
    source: str
    defect: str | None = None
    mask_kind: MaskKind = "subject"
    extra: dict[str, Any] = field(default_factory=dict)
    mask_missing: bool = False

    def validate(self, where: str | None = None) -> Sample:
        """Check the invariants of the schema; return ``self``.

        Raises:
            DataError: naming ``where`` (default: the source) and the broken invariant.
        """
        where = where or self.source
        validate_key(self.key, where)
        img, mask = self.image, self.mask
        if not (isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3):
            raise DataError(where, f"image must be an (H, W, 3) uint8 array, got {getattr(img, 'shape', type(img))}")
        if not (isinstance(mask, np.ndarray) and mask.dtype == np.uint8 and mask.ndim == 2):
            raise DataError(where, f"mask must be an (H, W) uint8 array, got {getattr(mask, 'shape', type(mask))}")
        if mask.shape != img.shape[:2]:
            raise DataError(where, f"mask size {mask.shape[1]}x{mask.shape[0]} differs from image size "
                                   f"{img.shape[1]}x{img.shape[0]}")
        if not np.isin(mask, (0, 255)).all():
            raise DataError(where, "mask is not binary (values other than 0 and 255)")
        if self.label not in (0, 1):
            raise DataError(where, f"label must be 0 or 1, got {self.label!r}")
        if not self.subject:
            raise DataError(where, "empty subject name")
        if self.mask_kind not in ("subject", "defect"):
            raise DataError(where, f"unknown mask kind {self.mask_kind!r}")
        if self.mask_missing and (self.label != 1 or mask.any()):
            raise DataError(where, "only an anomalous image with an empty mask can be marked mask_missing")
        return self

    @property
    def gt_known(self) -> bool:
        """Whether :attr:`gt_mask` is the pixel ground truth (false only for ``mask_missing``)."""
        return not self.mask_missing

    @property
    def gt_mask(self) -> np.ndarray:
        """``(H, W)`` uint8 {0, 255} pixel ground truth (see module docstring)."""
        if self.mask_kind == "defect" or self.label == 1:
            return self.mask
        return np.zeros_like(self.mask)

    def metadata(self) -> dict[str, Any]:
        """The JSON record stored beside the image and mask in a shard."""
        meta: dict[str, Any] = {
            "key": self.key,
            "subject": self.subject,
            "context": self.context,
            "label": int(self.label),
            "source": self.source,
            "mask_kind": self.mask_kind,
            "height": int(self.image.shape[0]),
            "width": int(self.image.shape[1]),
        }
        if self.defect is not None:
            meta["defect"] = self.defect
        if self.mask_missing:
            meta["mask_missing"] = True
        if self.extra:
            meta["extra"] = self.extra
        return meta
