"""The one compositing path: a subject layer placed onto a background, optionally shadowed and occluded.

Normal and anomalous images of every contextual source built here (the procedural ``synthetic`` generator
and the ``composite`` source for user cutouts and photos) go through :func:`render_scene`. Nothing here takes
the label: what the subject looks like, where it stands, its shadow and its occluders depend only on the
subject layer, the background, the ground band of the context and the random stream of the sample.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

MIN_VISIBLE_FRACTION = 0.5


def sample_rng(seed: int, key: str, stream: str) -> np.random.Generator:
    """An independent random stream for one part (``stream``) of one sample, from ``(seed, key)`` only:
    never from global state or from the order in which samples are drawn."""
    digest = hashlib.sha256(f"{int(seed)}/{key}/{stream}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


@dataclass(frozen=True)
class Layer:
    """A drawn object: colour and the pixels it covers.

    Attributes:
        rgb: ``(h, w, 3)`` uint8.
        mask: ``(h, w)`` bool, True where the object is.
    """

    rgb: np.ndarray
    mask: np.ndarray

    @property
    def height(self) -> int:
        return int(self.mask.shape[0])

    @property
    def width(self) -> int:
        return int(self.mask.shape[1])

    def cropped(self) -> Layer:
        """The layer cut to the bounding box of its mask (unchanged when the mask is empty)."""
        rows, cols = np.flatnonzero(self.mask.any(1)), np.flatnonzero(self.mask.any(0))
        if rows.size == 0:
            return self
        sl = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        return Layer(np.ascontiguousarray(self.rgb[sl]), np.ascontiguousarray(self.mask[sl]))

    def flipped(self) -> Layer:
        """Mirrored left-right."""
        return Layer(np.ascontiguousarray(self.rgb[:, ::-1]), np.ascontiguousarray(self.mask[:, ::-1]))

    def resized(self, height: int, width: int | None = None) -> Layer:
        """Scaled to ``height`` pixels (width keeps the aspect unless given).

        Colour is resampled premultiplied by coverage (antialiased bilinear), so the pixels around the
        object never bleed into its edge; the mask is the resampled coverage thresholded at one half.
        """
        height = max(1, int(height))
        if width is None:
            width = max(1, round(self.width * height / self.height))
        if (height, width) == self.mask.shape:
            return self
        cov = self.mask.astype(np.float32)

        def resample(a: np.ndarray) -> np.ndarray:
            return np.asarray(Image.fromarray(a, "F").resize((width, height), Image.BILINEAR), dtype=np.float32)

        c = resample(cov)
        prem = np.stack([resample(self.rgb[..., k].astype(np.float32) * cov) for k in range(3)], axis=-1)
        rgb = np.clip(prem / np.maximum(c, 1e-6)[..., None] + 0.5, 0, 255).astype(np.uint8)
        mask = c > 0.5
        if not mask.any():  # a sliver that vanished: keep its best-covered pixel
            mask.flat[int(c.argmax())] = True
        return Layer(rgb, mask)


@dataclass(frozen=True)
class Ground:
    """Where a subject may stand in a scene, as fractions of the image height.

    The subject's bottom edge lands between ``top`` (far, near the horizon) and ``bottom`` (near the
    viewer); its height grows linearly from ``far`` at ``top`` to ``near`` at ``bottom`` (perspective),
    times a random factor in ``1 ± jitter``.
    """

    top: float = 0.6
    bottom: float = 0.97
    far: float = 0.3
    near: float = 0.55
    jitter: float = 0.15

    def to_json(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Scene:
    """A composited image.

    Attributes:
        image: ``(S, S, 3)`` uint8.
        mask: ``(S, S)`` uint8 {0, 255}: the *visible* subject (occluded pixels removed).
        params: JSON-serialisable placement record (position, size, shadow, occluders, visible fraction).
    """

    image: np.ndarray
    mask: np.ndarray
    params: dict[str, Any]


def _placed(shape: tuple[int, int], layer: Layer, x: int, y: int) -> np.ndarray:
    """``layer``'s mask in canvas coordinates (``(H, W)`` bool) with its top-left corner at ``(x, y)``;
    parts outside the canvas are dropped."""
    h, w = shape
    placed = np.zeros((h, w), bool)
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + layer.width, w), min(y + layer.height, h)
    if x0 < x1 and y0 < y1:
        placed[y0:y1, x0:x1] = layer.mask[y0 - y:y1 - y, x0 - x:x1 - x]
    return placed


def _paste(canvas: np.ndarray, layer: Layer, x: int, y: int) -> np.ndarray:
    """Paste ``layer`` into ``canvas`` in place at ``(x, y)``; returns the pasted pixels (``(H, W)`` bool)."""
    h, w = canvas.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + layer.width, w), min(y + layer.height, h)
    if x0 < x1 and y0 < y1:
        sub = layer.mask[y0 - y:y1 - y, x0 - x:x1 - x]
        canvas[y0:y1, x0:x1][sub] = layer.rgb[y0 - y:y1 - y, x0 - x:x1 - x][sub]
    return _placed((h, w), layer, x, y)


def cast_shadow(image: np.ndarray, x: int, bottom: int, width: int, height: int, strength: float) -> None:
    """Darken ``image`` in place under a flat, soft ellipse centred at ``(x, bottom)``.

    Args:
        image: ``(S, S, 3)`` uint8 background.
        x, bottom: centre of the shadow (the subject's foot point).
        width, height: the subject's size; the shadow is about as wide and an eighth as tall.
        strength: darkening at the shadow's core, in [0, 1].
    """
    rx, ry = max(2, int(width * 0.5)), max(1, int(height * 0.06))
    pad = max(2, ry * 2)
    box = (x - rx - pad, bottom - ry - pad, x + rx + pad, bottom + ry + pad)
    im = Image.new("L", (box[2] - box[0], box[3] - box[1]), 0)
    ImageDraw.Draw(im).ellipse((pad, pad, pad + 2 * rx, pad + 2 * ry), fill=255)
    im = im.filter(ImageFilter.BoxBlur(max(1, ry)))
    alpha = np.asarray(im, dtype=np.float32) * (strength / 255.0)
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(box[0], 0), max(box[1], 0), min(box[2], w), min(box[3], h)
    if x0 >= x1 or y0 >= y1:
        return
    a = alpha[y0 - box[1]:y1 - box[1], x0 - box[0]:x1 - box[0], None]
    region = image[y0:y1, x0:x1].astype(np.float32)
    image[y0:y1, x0:x1] = (region * (1.0 - a) + 0.5).astype(np.uint8)


def compose(background: np.ndarray, subject: Layer, x: int, y: int, *,
            occluders: tuple[tuple[Layer, int, int], ...] = (),
            shadow: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Composite one subject onto a background.

    Args:
        background: ``(S, S, 3)`` uint8 (not modified).
        subject: the subject layer; its top-left corner goes to ``(x, y)``.
        occluders: ``(layer, x, y)`` drawn in front of the subject, in order.
        shadow: darkening strength of a soft shadow at the subject's feet (0: none).

    Returns:
        ``(image (S, S, 3) uint8, mask (S, S) uint8 {0, 255})`` where the mask is the subject's *visible*
        pixels: exactly the pixels whose colour comes from the subject layer.
    """
    image = np.array(background, dtype=np.uint8, copy=True)
    if shadow > 0:
        cast_shadow(image, x + subject.width // 2, y + subject.height, subject.width, subject.height, shadow)
    visible = _paste(image, subject, x, y)
    for layer, ox, oy in occluders:
        visible &= ~_paste(image, layer, ox, oy)
    return image, np.where(visible, 255, 0).astype(np.uint8)


def render_scene(background: np.ndarray, ground: Ground, subject_at: Callable[[int], Layer],
                 rng: np.random.Generator, *, shadow: float = 0.6, occlusion: float = 0.3,
                 occluder_at: Callable[[int, np.random.Generator], Layer] | None = None) -> Scene:
    """Place a subject in a scene at a sampled position and scale and composite it (the one path).

    Args:
        background: ``(S, S, 3)`` uint8 scene.
        ground: where the subject may stand in this scene.
        subject_at: returns the subject layer drawn (or scaled) to a requested pixel height.
        rng: the sample's random stream; every random choice here is drawn from it, in a fixed order.
        shadow: probability of a shadow at the subject's feet.
        occlusion: probability of one or two distractors in front of the subject (needs ``occluder_at``).
        occluder_at: draws a distractor of a requested pixel height.

    Returns:
        The :class:`Scene`. At least half of the subject stays visible and the mask is never empty.
    """
    size = background.shape[0]
    t = rng.random()
    bottom = int(round(size * (ground.top + t * (ground.bottom - ground.top))))
    frac = (ground.far + t * (ground.near - ground.far)) * (1.0 + ground.jitter * (2 * rng.random() - 1))
    height = max(4, int(round(size * frac)))
    layer = subject_at(height)
    if layer.width > 0.95 * size or layer.height > 0.95 * size:
        f = 0.95 * size / max(layer.width, layer.height)
        layer = layer.resized(max(1, int(layer.height * f)), max(1, int(layer.width * f)))
    x = int(rng.integers(0, size - layer.width + 1))
    y = min(max(bottom - layer.height, 0), size - layer.height)
    shadow_strength = float(0.25 + 0.3 * rng.random()) if rng.random() < shadow else 0.0
    occluders: list[tuple[Layer, int, int]] = []
    if occluder_at is not None and rng.random() < occlusion:
        own = _placed((size, size), layer, x, y)
        area = own.sum()
        covered = np.zeros_like(own)
        for _ in range(1 + int(rng.random() < 0.35)):
            occ = occluder_at(max(3, int(layer.height * (0.3 + 0.35 * rng.random()))), rng)
            ox = int(x + layer.width * (0.1 + 0.8 * rng.random()) - occ.width / 2)
            oy = min(y + layer.height + int(size * 0.06 * rng.random()), size) - occ.height
            trial = covered | _placed((size, size), occ, ox, oy)
            if (own & ~trial).sum() >= MIN_VISIBLE_FRACTION * area:
                covered = trial
                occluders.append((occ, ox, oy))
    image, mask = compose(background, layer, x, y, occluders=tuple(occluders), shadow=shadow_strength)
    visible = int((mask > 0).sum())
    params = {
        "x": x, "y": y, "width": layer.width, "height": layer.height,
        "shadow": round(shadow_strength, 3), "occluders": len(occluders),
        "visible_fraction": round(visible / max(1, int(layer.mask.sum())), 3),
    }
    return Scene(image=image, mask=mask, params=params)
