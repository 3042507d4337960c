"""What the file-based sources (``caad``, ``mvtec``, ``visa``, ``folder``) share.

Listing images by extension, pairing an image with its mask by stem, turning path parts into valid sample keys,
refusing duplicate keys and empty sources, and materialising an image + mask pair into a validated
:class:`Sample`. Every failure names the file at fault. A listed name that is not UTF-8 is refused (a shard set must
be portable; :mod:`caadbench.data.filenames`); a symbolic link that loops or points nowhere is skipped with a
warning naming it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from caadbench.data.filenames import link_problem, require_utf8, shown
from caadbench.data.imageio import DEFAULT_MASK_THRESHOLD, check_mask_threshold, read_mask, read_rgb
from caadbench.data.sample import BINARISED_PIXELS, Sample, validate_key
from caadbench.data.sources.base import SampleSpec, Source, check_specs  # noqa: F401 - sources import it here
from caadbench.errors import DataError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
"""File extensions (lower case) that count as images when a folder is listed."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
logger = logging.getLogger(__name__)


def require_dir(path: Path, what: str) -> Path:
    """Return ``path`` if it is a directory.

    Raises:
        DataError: naming ``path``; ``what`` says what the folder should hold; or a name that is not UTF-8.
    """
    if not path.is_dir():
        raise DataError(shown(path), f"{what} folder not found")
    return require_utf8(path)


def _listed(directory: Path, wanted) -> list[Path]:
    """The entries of ``directory`` that ``wanted`` keeps, sorted by name; hidden ones and links that cannot be
    followed (a warning names each) skipped.

    Raises:
        DataError: a kept name that is not UTF-8.
    """
    out = []
    for p in directory.iterdir():
        if p.name.startswith("."):
            continue
        problem = link_problem(p)
        if problem is not None:
            logger.warning(f"{shown(p)}: {problem} (skipped)")
        elif wanted(p):
            out.append(require_utf8(p))
    return sorted(out, key=lambda p: p.name)


def list_images(directory: Path) -> list[Path]:
    """Image files directly inside ``directory``, sorted by name; hidden files (``.DS_Store``, ``._x.png``) skipped."""
    return _listed(directory, lambda p: p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def list_dirs(directory: Path) -> list[Path]:
    """Sub-folders of ``directory``, sorted by name, hidden ones skipped."""
    return _listed(directory, lambda p: p.is_dir())


def sanitize(part: str) -> str:
    """Map every character outside ``[A-Za-z0-9_-]`` (dots, spaces, slashes, accents) to ``_``."""
    return _UNSAFE.sub("_", part)


def make_key(parts: Iterable[str], where: str | Path) -> str:
    """Join sanitised ``parts`` with ``-`` into a sample key.

    Raises:
        DataError: naming ``where`` when the result is still not a valid key (e.g. an empty first part).
    """
    return validate_key("-".join(sanitize(str(p)) for p in parts), str(where))


def index_by_stem(directory: Path) -> dict[str, Path]:
    """Map each image file's stem in ``directory`` to its path.

    Raises:
        DataError: naming both files when two images share a stem (``x.png`` and ``x.bmp``).
    """
    index: dict[str, Path] = {}
    for path in list_images(directory):
        if path.stem in index:
            raise DataError(path, f"same stem as {index[path.stem].name}; cannot tell which one is meant")
        index[path.stem] = path
    return index


def match_mask(masks: dict[str, Path], image: Path, suffixes: tuple[str, ...] = ("_mask", ""),
               required: bool = True) -> Path | None:
    """The mask of ``image``: the entry of ``masks`` (see :func:`index_by_stem`) named ``<stem><suffix>``.

    Args:
        required: refuse an image without a mask (else return ``None`` for it).

    Raises:
        DataError: naming ``image`` when no mask matches (and one is required), or when several do
            (``x.png`` and ``x_mask.png``).
    """
    found = [masks[image.stem + s] for s in suffixes if image.stem + s in masks]
    if not found and not required:
        return None
    if not found:
        names = " or ".join(f"{image.stem}{s}.*" for s in suffixes)
        raise DataError(image, f"missing mask (expected {names})")
    if len(found) > 1:
        raise DataError(image, f"ambiguous mask: {', '.join(p.name for p in found)}")
    return found[0]


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form (how payloads and ``source`` strings store paths)."""
    return path.relative_to(root).as_posix()


def build_sample(spec: SampleSpec, image: np.ndarray, mask: np.ndarray, where: str | Path,
                 extra: dict[str, Any] | None = None, mask_missing: bool = False) -> Sample:
    """A validated :class:`Sample` from ``spec``'s metadata and the given pixels.

    Args:
        spec: the sample's metadata.
        image: ``(H, W, 3)`` uint8.
        mask: ``(H, W)`` uint8 {0, 255}.
        where: the file named if validation fails.
        extra: further metadata; ``origin_split`` is added when the spec has one.
        mask_missing: see :attr:`Sample.mask_missing`.
    """
    extra = dict(extra or {})
    if spec.origin_split is not None:
        extra["origin_split"] = spec.origin_split
    return Sample(key=spec.key, image=image, mask=mask, subject=spec.subject, context=spec.context,
                  label=spec.label, source=spec.source, defect=spec.defect, mask_kind=spec.mask_kind,
                  extra=extra, mask_missing=mask_missing).validate(str(where))


def load_image_and_mask(spec: SampleSpec, image_path: Path, mask_path: Path | None,
                        mask_threshold: float = DEFAULT_MASK_THRESHOLD) -> Sample:
    """Read ``image_path`` and ``mask_path`` into a validated sample.

    Without a mask file the mask is empty: the ground truth of a normal image, and for an anomalous image a
    *missing* mask (``Sample.mask_missing``: image metrics only). A mask with intermediate values is binarised at
    ``mask_threshold`` (:func:`~caadbench.data.imageio.binarize_mask`) and the count of such pixels is recorded
    in ``extra`` under :data:`~caadbench.data.sample.BINARISED_PIXELS`.

    Raises:
        DataError: naming the image (unreadable, corrupt) or the mask (unreadable, not a mask, other size).
    """
    image = read_rgb(image_path)
    extra: dict[str, Any] = {}
    if mask_path is None:
        mask = np.zeros(image.shape[:2], dtype=np.uint8)
    else:
        reading = read_mask(mask_path, mask_threshold)
        mask = reading.mask
        if mask.shape != image.shape[:2]:
            raise DataError(mask_path, f"mask size {mask.shape[1]}x{mask.shape[0]} differs from image "
                                       f"{image_path.name} size {image.shape[1]}x{image.shape[0]}")
        if reading.intermediate:
            extra[BINARISED_PIXELS] = reading.intermediate
    return build_sample(spec, image, mask, image_path, extra, mask_missing=mask_path is None and spec.label == 1)


class FileSource(Source):
    """A source reading a dataset folder. Specs carry ``payload = {"image": rel, "mask": rel | None}``.

    Args:
        root: the dataset folder.
        seed: unused (the files fix the content); kept for the common source signature.
        size: unused (every file is read); kept for the common source signature.
        image_size: unused (images keep their stored resolution); kept for the common source signature.
        mask_threshold: a mask pixel with intermediate values is foreground at ``>=`` this fraction of full scale
            (:func:`~caadbench.data.imageio.binarize_mask`); recorded in :meth:`describe` (and so in the
            fingerprint) by sources that read mask files.

    Raises:
        DataError: ``root`` is not a folder, or ``mask_threshold`` is not in (0, 1].
    """

    reads_mask_files: ClassVar[bool] = True
    """False for sources whose masks are not image files (COCO annotations): no threshold applies."""

    def __init__(self, root: str | Path, seed: int = 0, size: int | None = None, image_size: int = 256,
                 mask_threshold: float = DEFAULT_MASK_THRESHOLD) -> None:
        self.root = require_dir(Path(root).expanduser(), f"{self.name} dataset")
        self.seed, self.size, self.image_size = seed, size, image_size
        self.mask_threshold = check_mask_threshold(mask_threshold)

    def spec_payload(self, image: Path, mask: Path | None) -> dict[str, Any]:
        return {"image": relative(image, self.root), "mask": None if mask is None else relative(mask, self.root)}

    def load(self, spec: SampleSpec) -> Sample:
        mask = spec.payload.get("mask")
        return load_image_and_mask(spec, self.root / spec.payload["image"],
                                   None if mask is None else self.root / mask, self.mask_threshold)

    def describe(self) -> dict[str, Any]:
        out = {**super().describe(), "root": str(self.root)}
        if self.reads_mask_files:
            out["mask_threshold"] = self.mask_threshold
        return out


class CategorisedSource(FileSource):
    """A :class:`FileSource` whose samples fall into categories (MVTec categories, VisA objects) the user may filter.

    Args:
        categories: keep only these categories (default: all found).
        mask_threshold: see :class:`FileSource`.
    """

    def __init__(self, root: str | Path, seed: int = 0, size: int | None = None, image_size: int = 256,
                 categories: Iterable[str] | None = None, mask_threshold: float = DEFAULT_MASK_THRESHOLD) -> None:
        super().__init__(root, seed=seed, size=size, image_size=image_size, mask_threshold=mask_threshold)
        self.categories = None if categories is None else tuple(categories)

    def keep(self, found: Iterable[str], where: str | Path) -> set[str]:
        """The categories to read out of those ``found``.

        Raises:
            DataError: naming ``where`` when the filter names a category that is not there.
        """
        found = set(found)
        unknown = [c for c in self.categories or () if c not in found]
        if unknown:
            raise DataError(where, f"unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)} "
                                   f"(found: {', '.join(sorted(found)) or 'none'})")
        return found if self.categories is None else set(self.categories)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "categories": None if self.categories is None else list(self.categories)}
