"""Small drawing toolkit shared by the procedural subjects and contexts: a canvas in scaled units that
paints colour and coverage together, smooth noise textures and colour jitter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from caadbench.data.compose import Layer

RGB = tuple[int, int, int]
Point = tuple[float, float]
T = TypeVar("T")


def uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """One float drawn uniformly from ``[lo, hi)``."""
    return float(rng.uniform(lo, hi))


def pick(rng: np.random.Generator, options: Sequence[T]) -> T:
    """One of ``options``, uniformly."""
    return options[int(rng.integers(len(options)))]


def jitter(rng: np.random.Generator, color: Sequence[float], amount: float = 12.0) -> RGB:
    """``color`` with each channel moved by up to ``±amount`` (clipped to 0..255)."""
    out = np.asarray(color, np.float64) + rng.uniform(-amount, amount, 3)
    return tuple(int(v) for v in np.clip(out, 0, 255))  # type: ignore[return-value]


def scale(color: Sequence[float], factor: float) -> RGB:
    """``color`` brightened (factor > 1) or darkened (< 1)."""
    return tuple(int(v) for v in np.clip(np.asarray(color, np.float64) * factor, 0, 255))  # type: ignore[return-value]


def noise(rng: np.random.Generator, height: int, width: int, cells: float) -> np.ndarray:
    """Smooth value noise: ``(height, width)`` float32, about unit variance, ``cells`` blobs across the width."""
    gw = max(2, int(round(cells)))
    gh = max(2, int(round(cells * height / max(width, 1))))
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    return np.asarray(Image.fromarray(grid, "F").resize((width, height), Image.BICUBIC), dtype=np.float32)


def fbm(rng: np.random.Generator, height: int, width: int, cells: Sequence[float] = (4, 16, 48),
        weights: Sequence[float] = (1.0, 0.5, 0.3)) -> np.ndarray:
    """Sum of :func:`noise` octaves, ``(height, width)`` float32."""
    out = np.zeros((height, width), np.float32)
    for c, w in zip(cells, weights):
        out += w * noise(rng, height, width, c)
    return out


def fill(height: int, width: int, color: Sequence[float]) -> np.ndarray:
    """``(height, width, 3)`` float32 filled with ``color``."""
    return np.broadcast_to(np.asarray(color, np.float32), (height, width, 3)).copy()


def textured(height: int, width: int, color: Sequence[float], tex: np.ndarray, amount: float) -> np.ndarray:
    """``(height, width, 3)`` float32: ``color`` modulated by texture ``tex`` (``(height, width)``)."""
    return np.asarray(color, np.float32)[None, None, :] * (1.0 + amount * tex[..., None])


def vgradient(height: int, width: int, top: Sequence[float], bottom: Sequence[float]) -> np.ndarray:
    """``(height, width, 3)`` float32 vertical gradient from ``top`` to ``bottom``."""
    t = np.linspace(0.0, 1.0, max(height, 1), dtype=np.float32)[:, None, None]
    col = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
    return np.broadcast_to(col, (height, width, 3)).copy()


def to_uint8(arr: np.ndarray) -> np.ndarray:
    return np.clip(arr + 0.5, 0, 255).astype(np.uint8)


class Canvas:
    """Paints colour and coverage together, in units of ``unit`` pixels from an origin.

    A subject is drawn in its own coordinates (typically its height is 1 unit); :meth:`layer` returns the
    shaded, outlined, cropped :class:`Layer`.

    Args:
        width, height: canvas size in pixels.
        unit: pixels per unit.
        origin: pixel position of the unit origin.
    """

    def __init__(self, width: int, height: int, unit: float, origin: Point = (0.0, 0.0)) -> None:
        self.unit, self.origin = float(unit), origin
        self.rgb = Image.new("RGB", (max(1, int(width)), max(1, int(height))), (0, 0, 0))
        self.cover = Image.new("L", self.rgb.size, 0)
        self._draw_rgb = ImageDraw.Draw(self.rgb)
        self._draw_cov = ImageDraw.Draw(self.cover)

    def px(self, p: Point) -> tuple[float, float]:
        return (self.origin[0] + p[0] * self.unit, self.origin[1] + p[1] * self.unit)

    def polygon(self, pts: Sequence[Point], color: RGB) -> None:
        xy = [self.px(p) for p in pts]
        self._draw_rgb.polygon(xy, fill=color)
        self._draw_cov.polygon(xy, fill=255)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, color: RGB) -> None:
        x0, y0 = self.px((cx - rx, cy - ry))
        x1, y1 = self.px((cx + rx, cy + ry))
        box = (x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))
        self._draw_rgb.ellipse(box, fill=color)
        self._draw_cov.ellipse(box, fill=255)

    def rounded_rect(self, x0: float, y0: float, x1: float, y1: float, radius: float, color: RGB) -> None:
        a, b = self.px((x0, y0)), self.px((x1, y1))
        box = (a[0], a[1], max(b[0], a[0] + 1), max(b[1], a[1] + 1))
        r = max(0, int(radius * self.unit))
        self._draw_rgb.rounded_rectangle(box, r, fill=color)
        self._draw_cov.rounded_rectangle(box, r, fill=255)

    def paint_ellipse(self, cx: float, cy: float, rx: float, ry: float, color: RGB) -> None:
        """Colour only (no coverage): markings clipped to what is drawn."""
        x0, y0 = self.px((cx - rx, cy - ry))
        x1, y1 = self.px((cx + rx, cy + ry))
        self._draw_rgb.ellipse((x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)), fill=color)

    def paint_polygon(self, pts: Sequence[Point], color: RGB) -> None:
        """Colour only (no coverage)."""
        self._draw_rgb.polygon([self.px(p) for p in pts], fill=color)

    def paint_line(self, pts: Sequence[Point], thickness: float, color: RGB) -> None:
        """Colour only (no coverage)."""
        self._draw_rgb.line([self.px(p) for p in pts], fill=color, width=max(1, int(round(thickness * self.unit))))

    def ring(self, cx: float, cy: float, r: float, thickness: float, color: RGB) -> None:
        x0, y0 = self.px((cx - r, cy - r))
        x1, y1 = self.px((cx + r, cy + r))
        w = max(1, int(round(thickness * self.unit)))
        self._draw_rgb.ellipse((x0, y0, x1, y1), outline=color, width=w)
        self._draw_cov.ellipse((x0, y0, x1, y1), outline=255, width=w)

    def rect(self, x0: float, y0: float, x1: float, y1: float, color: RGB) -> None:
        self.polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], color)

    def line(self, pts: Sequence[Point], thickness: float, color: RGB, round_ends: bool = True) -> None:
        xy = [self.px(p) for p in pts]
        w = max(1, int(round(thickness * self.unit)))
        self._draw_rgb.line(xy, fill=color, width=w, joint="curve")
        self._draw_cov.line(xy, fill=255, width=w, joint="curve")
        if round_ends and w >= 3:
            for x, y in (xy[0], xy[-1]):
                r = w / 2 - 0.5
                self._draw_rgb.ellipse((x - r, y - r, x + r, y + r), fill=color)
                self._draw_cov.ellipse((x - r, y - r, x + r, y + r), fill=255)

    def limb(self, start: Point, length: float, angle: float, thickness: float, color: RGB) -> Point:
        """A straight segment from ``start`` at ``angle`` radians from straight down; returns its end."""
        end = (start[0] + length * np.sin(angle), start[1] + length * np.cos(angle))
        self.line([start, end], thickness, color)
        return end

    def layer(self, rng: np.random.Generator, shading: float = 0.25, grain: float = 0.05,
              outline: float = 0.55) -> Layer:
        """The drawing as a cropped :class:`Layer`, lit from above with smooth grain and a dark outline.

        Args:
            shading: brightness difference between the top and the bottom of the object.
            grain: amplitude of low-frequency brightness noise.
            outline: brightness factor of the one-pixel outline (1: no outline).
        """
        mask = np.asarray(self.cover) > 127
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if rows.size == 0:
            raise ValueError("nothing was drawn")
        sl = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        mask = np.ascontiguousarray(mask[sl])
        rgb = np.asarray(self.rgb, np.float32)[sl]
        h, w = mask.shape
        light = np.linspace(1.0 + shading / 2, 1.0 - shading / 2, h, dtype=np.float32)[:, None]
        light = light + grain * noise(rng, h, w, 3)
        rgb = rgb * light[..., None]
        if outline < 1 and h > 6 and w > 6:
            inner = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(3))) > 127
            rgb[mask & ~inner] *= outline
        return Layer(to_uint8(rgb), mask)
