"""What the file-based sources (``caad``, ``mvtec``, ``visa``, ``folder``) share.

Listing images by extension, pairing an image with its mask by stem, turning path parts into valid sample keys,
refusing duplicate keys and empty sources, and materialising an image + mask pair into a validated
:class:`Sample`. Every failure names the file at fault.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from caadbench.data.imageio import read_mask, read_rgb
from caadbench.data.sample import Sample, validate_key
from caadbench.data.sources.base import SampleSpec, Source, check_specs  # noqa: F401 - sources import it here
from caadbench.errors import DataError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
"""File extensions (lower case) that count as images when a folder is listed."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def require_dir(path: Path, what: str) -> Path:
    """Return ``path`` if it is a directory.

    Raises:
        DataError: naming ``path``; ``what`` says what the folder should hold.
    """
    if not path.is_dir():
        raise DataError(path, f"{what} folder not found")
    return path


def list_images(directory: Path) -> list[Path]:
    """Image files directly inside ``directory``, sorted by name; hidden files (``.DS_Store``, ``._x.png``) skipped."""
    return sorted(
        (p for p in directory.iterdir()
         if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: p.name,
    )


def list_dirs(directory: Path) -> list[Path]:
    """Sub-folders of ``directory``, sorted by name, hidden ones skipped."""
    return sorted((p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


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


def match_mask(masks: dict[str, Path], image: Path, suffixes: tuple[str, ...] = ("_mask", "")) -> Path:
    """The mask of ``image``: the entry of ``masks`` (see :func:`index_by_stem`) named ``<stem><suffix>``.

    Raises:
        DataError: naming ``image`` when no mask matches, or when several do (``x.png`` and ``x_mask.png``).
    """
    found = [masks[image.stem + s] for s in suffixes if image.stem + s in masks]
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
                 extra: dict[str, Any] | None = None) -> Sample:
    """A validated :class:`Sample` from ``spec``'s metadata and the given pixels.

    Args:
        spec: the sample's metadata.
        image: ``(H, W, 3)`` uint8.
        mask: ``(H, W)`` uint8 {0, 255}.
        where: the file named if validation fails.
        extra: further metadata; ``origin_split`` is added when the spec has one.
    """
    extra = dict(extra or {})
    if spec.origin_split is not None:
        extra["origin_split"] = spec.origin_split
    return Sample(key=spec.key, image=image, mask=mask, subject=spec.subject, context=spec.context,
                  label=spec.label, source=spec.source, defect=spec.defect, mask_kind=spec.mask_kind,
                  extra=extra).validate(str(where))


def load_image_and_mask(spec: SampleSpec, image_path: Path, mask_path: Path | None) -> Sample:
    """Read ``image_path`` and ``mask_path`` (``None``: an empty mask) into a validated sample.

    Raises:
        DataError: naming the image (unreadable, corrupt) or the mask (unreadable, not binary, other size).
    """
    image = read_rgb(image_path)
    if mask_path is None:
        mask = np.zeros(image.shape[:2], dtype=np.uint8)
    else:
        mask = read_mask(mask_path)
        if mask.shape != image.shape[:2]:
            raise DataError(mask_path, f"mask size {mask.shape[1]}x{mask.shape[0]} differs from image "
                                       f"{image_path.name} size {image.shape[1]}x{image.shape[0]}")
    return build_sample(spec, image, mask, image_path)


class FileSource(Source):
    """A source reading a dataset folder. Specs carry ``payload = {"image": rel, "mask": rel | None}``.

    Args:
        root: the dataset folder.
        seed: unused (the files fix the content); kept for the common source signature.
        size: unused (every file is read); kept for the common source signature.
        image_size: unused (images keep their stored resolution); kept for the common source signature.

    Raises:
        DataError: ``root`` is not a folder.
    """

    def __init__(self, root: str | Path, seed: int = 0, size: int | None = None, image_size: int = 256) -> None:
        self.root = require_dir(Path(root).expanduser(), f"{self.name} dataset")
        self.seed, self.size, self.image_size = seed, size, image_size

    def spec_payload(self, image: Path, mask: Path | None) -> dict[str, Any]:
        return {"image": relative(image, self.root), "mask": None if mask is None else relative(mask, self.root)}

    def load(self, spec: SampleSpec) -> Sample:
        mask = spec.payload.get("mask")
        return load_image_and_mask(spec, self.root / spec.payload["image"], None if mask is None else self.root / mask)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "root": str(self.root)}


class CategorisedSource(FileSource):
    """A :class:`FileSource` whose samples fall into categories (MVTec categories, VisA objects) the user may filter.

    Args:
        categories: keep only these categories (default: all found).
    """

    def __init__(self, root: str | Path, seed: int = 0, size: int | None = None, image_size: int = 256,
                 categories: Iterable[str] | None = None) -> None:
        super().__init__(root, seed=seed, size=size, image_size=image_size)
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
