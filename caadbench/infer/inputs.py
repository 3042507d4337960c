"""A user's images as predict inputs: files, folders and globs expanded; PIL images, arrays and tensors converted.

Subjects of files found on disk (unless a subject is given for every image):

* a **folder** argument whose images all lie in sub-folders holds one sub-folder per subject:
  ``photos/cow/a.jpg`` and ``photos/cow/day2/b.jpg`` are ``cow`` (the first level below the folder names it);
* a folder argument with images directly inside is one subject, the folder's own name, for every image below it
  (``predict photos/cow`` scores ``cow`` images, ``photos/cow/day2/b.jpg`` included);
* a **file** or a **glob** match is named after the folder that holds it (``shots/cow/a.jpg`` → ``cow``).

``caadbench predict`` prints the subjects it found with their counts before scoring, so a wrong guess shows.
A name that is not UTF-8 is scored and shown with ``\\xNN`` for its odd bytes (in messages, ``scores.csv`` and the
overlay's name, :func:`caadbench.data.filenames.shown`); an image file that is a symbolic link looping or pointing
nowhere is kept as an input that cannot be read, so ``predict`` names it and skips it like any unreadable file.

Underscores in subject names are spaces in prompts (``metal_nut`` → "metal nut"), as everywhere.
Pixels are read once here (any size; modes L, LA, P, RGBA, I;16, CMYK, ... to RGB; EXIF orientation applied) by
:mod:`caadbench.data.imageio`; a file that cannot be read is a :class:`~caadbench.errors.DataError` naming it.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from caadbench.data.filenames import link_problem, shown
from caadbench.data.imageio import open_image, to_rgb
from caadbench.data.sources.files import IMAGE_SUFFIXES
from caadbench.errors import CaadError, DataError

_MAGIC = set("*?[")


@dataclass(frozen=True)
class ImageRef:
    """One input before its pixels are read.

    Attributes:
        name: the path as found (or ``image-<i>`` for in-memory images): the ``path`` column of ``scores.csv``.
        subject: the subject the prompts name (``None`` while unknown).
        rel: path of its overlay below the output folder, without suffix (``cow/a``).
        path: the file, or ``None`` for an in-memory image.
        data: the in-memory image (PIL image, array or tensor), or ``None`` for a file.
    """

    name: str
    subject: str | None
    rel: str
    path: Path | None = None
    data: Any = None

    def read(self) -> np.ndarray:
        """``(H, W, 3)`` uint8 RGB.

        Raises:
            DataError: naming the file (missing, unreadable, corrupt) or the in-memory input (bad shape/type).
        """
        if self.path is not None:
            return to_rgb(open_image(self.path))
        return as_rgb(self.data, self.name)


def as_rgb(image: Any, where: str) -> np.ndarray:
    """A PIL image, an array (``(H, W)``, ``(H, W, 3|4)``, uint8 or float in [0, 1]) or a tensor (``(3, H, W)``,
    ``(1, H, W)`` or ``(H, W)``, uint8 or float in [0, 1]) as ``(H, W, 3)`` uint8 RGB.

    Raises:
        DataError: naming ``where`` for any other type or shape.
    """
    if isinstance(image, Image.Image):
        return to_rgb(ImageOps.exif_transpose(image))
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.ndim == 3 and t.shape[0] in (1, 3, 4):
            t = t.permute(1, 2, 0)
        image = t.numpy()
    if not isinstance(image, np.ndarray):
        raise DataError(where, f"not an image: {type(image).__name__} (give a path, a PIL image, an array or a tensor)")
    arr = image
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise DataError(where, f"image array must be (H, W), (H, W, 3) or (H, W, 4), got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(arr.dtype, np.integer):
            raise DataError(where, f"image array of dtype {arr.dtype} is not an image")
        floating = np.issubdtype(arr.dtype, np.floating)
        arr = arr.astype(np.float64)
        if floating:
            if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
                raise DataError(where, "float image values must be finite and in [0, 1]")
            arr = arr * 255.0
        elif arr.max() > 255:  # 16-bit, as to_rgb reads 16-bit files
            arr = arr / 65535.0 * 255.0
        arr = np.clip(np.round(arr), 0, 255).astype(np.uint8)
    return to_rgb(Image.fromarray(np.ascontiguousarray(arr)))


def _images_below(folder: Path) -> list[Path]:
    """Image files anywhere below ``folder`` (by extension, links that cannot be followed included: reading them
    names the problem), sorted; hidden files and folders skipped."""
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if ((p.is_file() or link_problem(p)) and p.suffix.lower() in IMAGE_SUFFIXES
                and not any(s.startswith(".") for s in rel.parts)):
            out.append(p)
    return out


def _strip(rel: Path) -> str:
    return shown(rel.with_suffix("").as_posix())


def expand_paths(args: Iterable[str | Path], subject: str | None = None) -> list[ImageRef]:
    """Files, folders and globs → image references with their subjects (see the module docstring).

    Args:
        args: paths of files or folders, or glob patterns (``shots/*.jpg``, ``photos/**/*.png``).
        subject: the subject of every image (otherwise derived from the folders).

    Raises:
        CaadError: a path that does not exist, a pattern or folder without images, an image without a subject.
    """
    refs: list[ImageRef] = []
    for arg in args:
        text = str(arg)
        path = Path(text).expanduser()
        if path.is_dir():
            found = _images_below(path)
            if not found:
                raise DataError(path, f"no image files in this folder (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
            one_subject = any(f.parent == path for f in found)
            for f in found:
                rel = f.relative_to(path)
                name = subject or shown(path.resolve().name if one_subject else rel.parts[0])
                refs.append(ImageRef(shown(f), name, _strip(Path(path.resolve().name) / rel), path=f))
        elif path.is_file() or link_problem(path):
            refs.append(ImageRef(shown(text), subject or _parent_subject(path), _strip(Path(path.name)), path=path))
        elif _MAGIC & set(text):
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True) if Path(m).is_file())
            if not matches:
                raise DataError(text, "no file matches this pattern")
            base = _glob_base(text)
            for f in matches:
                try:
                    rel = f.relative_to(base)
                except ValueError:
                    rel = Path(f.name)
                refs.append(ImageRef(shown(f), subject or _parent_subject(f), _strip(rel), path=f))
        else:
            raise DataError(shown(path), "no such file or folder")
    return refs


def _parent_subject(path: Path) -> str:
    name = path.absolute().parent.name
    if not name:
        raise DataError(shown(path), "no subject: pass --subject NAME")
    return shown(name)


def _glob_base(pattern: str) -> Path:
    """The folder part of ``pattern`` before its first wildcard."""
    parts = Path(pattern).parts
    base = []
    for part in parts:
        if _MAGIC & set(part):
            break
        base.append(part)
    return Path(*base) if base else Path(".")


def as_refs(images: Any, subjects: str | Sequence[str] | None = None) -> list[ImageRef]:
    """Whatever :func:`caadbench.predict` takes as images → references, each with a subject.

    Args:
        images: a path / folder / glob (str or Path), a PIL image, an array, a tensor (``(3, H, W)``, or a
            ``(B, 3, H, W)`` batch), or a sequence of these.
        subjects: one subject for all, one per input (expanded folders share their argument's), or ``None``
            (paths only: from the folders).

    Raises:
        CaadError: unknown paths, images without a subject, or a subjects list of the wrong length.
    """
    if isinstance(images, torch.Tensor) and images.ndim == 4:
        images = list(images)
    if isinstance(images, (str, Path, Image.Image, np.ndarray, torch.Tensor)):
        images = [images]
    items = list(images)
    if isinstance(subjects, str) or subjects is None:
        per_item: list[str | None] = [subjects] * len(items)
    else:
        per_item = list(subjects)
        if len(per_item) != len(items):
            raise CaadError("subjects", f"{len(per_item)} subjects for {len(items)} inputs")
    refs: list[ImageRef] = []
    for i, (item, subject) in enumerate(zip(items, per_item)):
        if isinstance(item, (str, Path)):
            refs += expand_paths([item], subject)
            continue
        name = f"image-{i}"
        if subject is None:
            raise CaadError(name, "in-memory images need subjects= (one name, or one per image)")
        refs.append(ImageRef(name, subject, name, data=item))
    if not refs:
        raise CaadError("images", "no image given")
    return refs


__all__ = ["ImageRef", "as_refs", "as_rgb", "expand_paths"]
