"""The ``composite`` source: user cutouts composited onto user background photos under a user rulebook.

Layout (documented in ``docs/generator.md``)::

    root/rulebook.json                (or rulebook.csv)
    root/subjects/<subject>/*.png     RGBA cutouts, or <stem>.<ext> + <stem>_mask.<ext> pairs
    root/contexts/<context>/*         background photos (any size, mode, EXIF orientation)

Images go through the same compositing path as the synthetic generator
(:func:`caadbench.data.compose.render_scene`): backgrounds are resized and centre-cropped to ``image_size``,
cutouts cropped to their mask's bounding box and scaled to a sampled height. Which cutout and which photo an
image uses, and how it is placed, follow from ``(seed, key)`` alone.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from caadbench.data.compose import Ground, Layer, render_scene, sample_rng
from caadbench.data.imageio import read_alpha_cutout, read_mask, read_rgb
from caadbench.data.rulebook import Rulebook
from caadbench.data.batch import MIN_IMAGE_SIZE
from caadbench.data.sample import Sample
from caadbench.data.sources.base import SampleSpec, Source, register_source
from caadbench.data.sources.files import index_by_stem, list_dirs, list_images, relative, require_dir
from caadbench.data.sources.synthetic.source import numbered_pairs
from caadbench.data.sources.synthetic.subjects import draw_prop
from caadbench.errors import DataError, check_at_least

MASK_SUFFIX = "_mask"
PER_PAIR = 40
MAX_DEFAULT_SIZE = 3000
# Photos carry no horizon: subjects stand in the lower part of the frame with mild perspective.
PHOTO_GROUND = Ground(top=0.6, bottom=0.97, far=0.3, near=0.55)
_ROTATED = {5, 6, 7, 8}


def probe(path: Path) -> tuple[int, int, bool]:
    """``(width, height, has_alpha)`` of an image from its header, after EXIF orientation.

    Raises:
        DataError: naming ``path`` when it is not a readable image.
    """
    try:
        with Image.open(path) as im:
            w, h = im.size
            alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info)
            if im.getexif().get(0x0112) in _ROTATED:
                w, h = h, w
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(path, f"unreadable or corrupt image ({exc})") from exc
    return w, h, alpha


@functools.lru_cache(maxsize=256)
def background(path: str, size: int) -> np.ndarray:
    """A photo as a ``(size, size, 3)`` uint8 background: shorter side resized to ``size``, centre-cropped."""
    im = Image.fromarray(read_rgb(path))
    w, h = im.size
    f = size / min(w, h)
    nw, nh = max(size, round(w * f)), max(size, round(h * f))
    im = im.resize((nw, nh), Image.BICUBIC, reducing_gap=3.0)
    x0, y0 = (nw - size) // 2, (nh - size) // 2
    out = np.asarray(im.crop((x0, y0, x0 + size, y0 + size)))
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=64)
def cutout(path: str, mask_path: str | None, max_height: int) -> Layer:
    """A cutout as a :class:`Layer` cropped to its mask, at most ``max_height`` pixels tall.

    Raises:
        DataError: naming the file: unreadable image, unreadable or non-binary mask, mask of another size,
            empty mask or fully transparent cutout.
    """
    if mask_path is None:
        rgb, mask = read_alpha_cutout(path)
    else:
        rgb, mask = read_rgb(path), read_mask(mask_path).mask  # binarised at the default 50 %
        if mask.shape != rgb.shape[:2]:
            raise DataError(mask_path, f"mask size {mask.shape[1]}x{mask.shape[0]} differs from image "
                                       f"{Path(path).name} size {rgb.shape[1]}x{rgb.shape[0]}")
        if not mask.any():
            raise DataError(mask_path, "mask is empty (no subject pixel)")
    layer = Layer(rgb, mask > 0).cropped()
    if layer.height > max_height:
        layer = layer.resized(max_height)
    return layer


def _scan_cutouts(folder: Path, root: Path) -> list[tuple[str, str | None]]:
    """``[(cutout, mask or None)]`` relative to ``root`` for one subject folder, checked from headers."""
    by_stem = index_by_stem(folder)
    files = list(by_stem.values())
    masks = {p.stem[: -len(MASK_SUFFIX)]: p for p in files if p.stem.endswith(MASK_SUFFIX)}
    out: list[tuple[str, str | None]] = []
    for stem, mask in masks.items():
        if stem not in by_stem:
            raise DataError(mask, f"mask without its image (expected {stem}.<ext> beside it)")
    for path in files:
        if path.stem.endswith(MASK_SUFFIX) and path.stem[: -len(MASK_SUFFIX)] in by_stem:
            continue
        w, h, alpha = probe(path)
        mask = masks.get(path.stem)
        if mask is None:
            if not alpha:
                raise DataError(path, f"cutout has no alpha channel and no mask {path.stem}{MASK_SUFFIX}.png "
                                      "beside it")
            out.append((relative(path, root), None))
            continue
        mw, mh, _ = probe(mask)
        if (mw, mh) != (w, h):
            raise DataError(mask, f"mask size {mw}x{mh} differs from image {path.name} size {w}x{h}")
        out.append((relative(path, root), relative(mask, root)))
    if not out:
        raise DataError(folder, "no cutouts in this subject folder (RGBA PNGs or image + _mask pairs)")
    return out


def _scan_backgrounds(folder: Path, root: Path) -> list[str]:
    out = []
    for path in list_images(folder):
        probe(path)
        out.append(relative(path, root))
    if not out:
        raise DataError(folder, "no background photos in this context folder")
    return out


@register_source("composite")
class CompositeSource(Source):
    """User cutouts on user photos, labelled by a user rulebook (see the module docstring for the layout).

    Args:
        root: the asset folder.
        seed: the dataset seed; every image is a function of ``(seed, key)``.
        size: number of images (default: 40 per allowed pair, at most 3,000).
        image_size: side of the square images in pixels.
        occlusion: probability of procedural distractors in front of the subject (default 0: photos).
        shadow: probability of a soft shadow at the subject's feet.

    Raises:
        DataError: naming the file or folder: missing root/rulebook/folder, a rulebook subject or context
            without its folder, an empty folder, an unreadable image, a cutout with neither alpha nor mask,
            a mask without its image, a mask of another size than its image.
    """

    def __init__(self, root: str | Path | None = None, seed: int = 0, size: int | None = None,
                 image_size: int = 256, *, occlusion: float = 0.0, shadow: float = 0.5) -> None:
        if root is None:
            raise DataError("composite", "needs --root: a folder with rulebook.json, subjects/ and contexts/")
        self.root = require_dir(Path(root).expanduser(), "composite asset")
        self.seed = int(seed)
        self.image_size = check_at_least(image_size, "--image-size", MIN_IMAGE_SIZE, DataError)
        self.occlusion, self.shadow = float(occlusion), float(shadow)
        rb = next((self.root / n for n in ("rulebook.json", "rulebook.csv") if (self.root / n).is_file()),
                  self.root / "rulebook.json")
        self._rules = Rulebook.load(rb)
        subjects_dir = require_dir(self.root / "subjects", "subjects")
        contexts_dir = require_dir(self.root / "contexts", "contexts")
        self.cutouts: dict[str, list[tuple[str, str | None]]] = {}
        for subject in self._rules.subjects:
            folder = subjects_dir / subject
            if not folder.is_dir():
                raise DataError(folder, f"no folder for subject {subject!r} named in {rb.name}")
            self.cutouts[subject] = _scan_cutouts(folder, self.root)
        self.backgrounds: dict[str, list[str]] = {}
        for context in self._rules.context_names:
            folder = contexts_dir / context
            if not folder.is_dir():
                raise DataError(folder, f"no folder for context {context!r} named in {rb.name}")
            self.backgrounds[context] = _scan_backgrounds(folder, self.root)
        self.unused_folders = sorted(
            [relative(p, self.root) for p in list_dirs(subjects_dir) if p.name not in self.cutouts]
            + [relative(p, self.root) for p in list_dirs(contexts_dir) if p.name not in self.backgrounds])
        n_pairs = len(self._rules.allowed_pairs())
        self.size = min(PER_PAIR * n_pairs, MAX_DEFAULT_SIZE) if size is None else check_at_least(size, "--size", error=DataError)
        self._assets_sha256: str | None = None

    @property
    def rules(self) -> Rulebook:
        return self._rules

    def rulebook(self) -> dict[str, Any]:
        return self._rules.to_json()

    def assets_sha256(self) -> str:
        """sha256 over every used asset file's relative path and content (computed once)."""
        if self._assets_sha256 is None:
            digest = hashlib.sha256()
            files = sorted({f for pairs in self.cutouts.values() for p in pairs for f in p if f}
                           | {f for fs in self.backgrounds.values() for f in fs})
            for rel in files:
                digest.update(rel.encode() + b"\0" + hashlib.sha256((self.root / rel).read_bytes()).digest())
            self._assets_sha256 = digest.hexdigest()
        return self._assets_sha256

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "root": str(self.root), "seed": self.seed, "size": self.size,
            "image_size": self.image_size, "occlusion": self.occlusion, "shadow": self.shadow,
            "assets_sha256": self.assets_sha256(), "unused_folders": self.unused_folders,
        }

    def specs(self) -> list[SampleSpec]:
        out = []
        for key, _, subject, context, label in numbered_pairs(self._rules, self.size, self.seed, "cmp"):
            rng = sample_rng(self.seed, key, "assets")
            cut, mask = self.cutouts[subject][int(rng.integers(len(self.cutouts[subject])))]
            bg = self.backgrounds[context][int(rng.integers(len(self.backgrounds[context])))]
            out.append(SampleSpec(key=key, subject=subject, context=context, label=label,
                                  source=f"composite:{cut}+{bg}",
                                  payload={"cutout": cut, "mask": mask, "background": bg,
                                           "family": self._rules.family(context)}))
        return out

    def load(self, spec: SampleSpec) -> Sample:
        p = spec.payload
        scene_bg = background(str(self.root / p["background"]), self.image_size)
        layer = cutout(str(self.root / p["cutout"]), None if p["mask"] is None else str(self.root / p["mask"]),
                       2 * self.image_size)
        rng = sample_rng(self.seed, spec.key, "place")
        if rng.random() < 0.5:
            layer = layer.flipped()
        scene = render_scene(scene_bg, PHOTO_GROUND, layer.resized, rng, shadow=self.shadow,
                             occlusion=self.occlusion, occluder_at=draw_prop)
        extra = {"family": p.get("family"), "cutout": p["cutout"], "background": p["background"],
                 "generator": scene.params}
        return Sample(key=spec.key, image=scene.image, mask=scene.mask, subject=spec.subject, context=spec.context,
                      label=spec.label, source=spec.source, extra=extra).validate()
