"""Procedural contexts: one scene drawer per context, with random horizon, colours, textures and furniture.

Contexts of one family share a look (grassland: sky over green-to-golden grass; road: grey asphalt with
markings; water: blue surfaces; indoor: a wall over a floor; snow: white slopes; sand: tan ground) while
each context keeps its own colour and texture statistics. A drawer returns the ``(S, S, 3)`` uint8 scene and
the :class:`Ground` band where a subject may stand. Scenes never contain any subject class.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

from caadbench.data.compose import Ground
from caadbench.data.sources.synthetic.draw import (
    fbm, jitter, noise, pick, scale, textured, to_uint8, uniform, vgradient,
)

ContextDrawer = Callable[[np.random.Generator, int], tuple[np.ndarray, Ground]]



def _sky(rng: np.random.Generator, s: int, horizon: int, top: tuple, bottom: tuple, clouds: float = 0.5) -> np.ndarray:
    """``(horizon, s, 3)`` float32 sky gradient with soft clouds covering about ``clouds`` of it."""
    h = max(horizon, 1)
    sky = vgradient(h, s, jitter(rng, top, 10), jitter(rng, bottom, 10))
    if clouds > 0:
        n = fbm(rng, h, s, (3, 8, 20), (1.0, 0.5, 0.25))
        cover = np.clip((n - (1.2 - 1.6 * clouds * uniform(rng, 0.3, 1.0))) * 1.2, 0, 1)[..., None]
        sky = sky * (1 - cover) + np.float32(245) * cover
    return sky


def _ground(rng: np.random.Generator, h: int, s: int, color: tuple, amount: float,
            cells: tuple = (4, 16, 64), far: float = 0.85) -> np.ndarray:
    """``(h, s, 3)`` float32 textured ground, a little paler towards the horizon (``far`` factor at the top)."""
    tex = fbm(rng, h, s, cells, (1.0, 0.6, 0.5))
    g = textured(h, s, jitter(rng, color, 12), tex, amount)
    fade = np.linspace(far, 1.0, max(h, 1), dtype=np.float32)[:, None, None]
    return g * fade + (1 - fade) * np.float32(200)


def _stack(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts, axis=0)


def _horizon(rng: np.random.Generator, s: int, lo: float, hi: float) -> int:
    return int(s * uniform(rng, lo, hi))


def _outdoor_ground(s: int, horizon: int, far: float = 0.2, near: float = 0.5) -> Ground:
    top = min(horizon / s + 0.1, 0.8)
    return Ground(top=top, bottom=0.97, far=far, near=near)


def _treeline(d: ImageDraw.ImageDraw, rng: np.random.Generator, s: int, y: int, color: tuple, height: float) -> None:
    x = -10.0
    while x < s + 10:
        r = s * uniform(rng, 0.015, 0.04) * height
        d.ellipse((x - r, y - r * uniform(rng, 1.0, 2.2), x + r, y + r * 0.5), fill=jitter(rng, color, 12))
        x += r * uniform(rng, 0.8, 1.4)


def _mountains(d: ImageDraw.ImageDraw, rng: np.random.Generator, s: int, y: int, color: tuple, snow: bool) -> None:
    x = -s * 0.2
    while x < s * 1.1:
        w, h = s * uniform(rng, 0.2, 0.45), s * uniform(rng, 0.08, 0.22)
        col = jitter(rng, color, 10)
        d.polygon([(x, y), (x + w / 2, y - h), (x + w, y)], fill=col)
        if snow:
            d.polygon([(x + w / 2 - w * 0.12, y - h * 0.76), (x + w / 2, y - h), (x + w / 2 + w * 0.12, y - h * 0.76)],
                      fill=(245, 245, 250))
        x += w * uniform(rng, 0.4, 0.8)


def _landscape(rng: np.random.Generator, s: int, hz: int, sky: tuple[tuple, tuple, float], ground: tuple,
               amount: float) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    """Sky ``(top, bottom, clouds)`` above a textured ground of colour ``ground`` below row ``hz``."""
    arr = _stack(_sky(rng, s, hz, *sky), _ground(rng, s - hz, s, jitter(rng, ground, 12), amount))
    im = Image.fromarray(to_uint8(arr))
    return im, ImageDraw.Draw(im)


def _finish(arr: np.ndarray, rng: np.random.Generator, grain: float = 3.0) -> np.ndarray:
    s = arr.shape[0]
    return to_uint8(arr + grain * noise(rng, s, s, s / 2)[..., None])


# ---------------------------------------------------------------------------------------------- grassland
def pasture(rng: np.random.Generator, s: int) -> tuple[np.ndarray, Ground]:
    hz = _horizon(rng, s, 0.3, 0.45)
    im, d = _landscape(rng, s, hz, ((90, 145, 215), (185, 210, 235), 0.5), (70, 140, 45), 0.18)
    _treeline(d, rng, s, hz, (40, 80, 35), 1.0)
    if rng.random() < 0.75:
        fy = hz + int(s * uniform(rng, 0.04, 0.1))
        wood = jitter(rng, (120, 90, 60), 10)
        step = s * uniform(rng, 0.08, 0.12)
        for k in range(int(s / step) + 2):
            d.line([(k * step, fy), (k * step, fy - s * 0.05)], fill=wood, width=max(1, s // 128))
        for dy in (0.015, 0.035):
            d.line([(0, fy - s * dy), (s, fy - s * dy)], fill=wood, width=max(1, s // 160))
    return _finish(np.asarray(im, np.float32), rng), _outdoor_ground(s, hz)


def meadow(rng: np.random.Generator, s: int) -> tuple[np.ndarray, Ground]:
    hz = _horizon(rng, s, 0.35, 0.5)
    im, d = _landscape(rng, s, hz, ((120, 170, 225), (210, 225, 240), 0.3), (135, 175, 70), 0.14)
    amp, phase, freq = s * uniform(rng, 0.02, 0.06), uniform(rng, 0, 6.28), uniform(rng, 1.0, 2.5)
    xs = np.linspace(0, s, 33)
    hill = [(float(x), float(hz - amp - amp * np.sin(phase + freq * 6.28 * x / s))) for x in xs]
    d.polygon([(0, hz + 2)] + hill + [(s, hz + 2)], fill=jitter(rng, (105, 150, 70), 10))
    palette = [(250, 250, 250), (250, 215, 40), (170, 90, 200), (230, 60, 70), (250, 150, 200)]
    for _ in range(int(s * uniform(rng, 1.0, 2.0))):
        y = hz + (s - hz) * rng.random() ** 0.7
        r = max(1.0, s / 256 * (1 + 2.5 * (y - hz) / (s - hz)))
        x = rng.random() * s
        d.ellipse((x - r, y - r, x + r, y + r), fill=palette[int(rng.integers(len(palette)))])
    return _finish(np.asarray(im, np.float32), rng), _outdoor_ground(s, hz)


def savanna(rng: np.random.Generator, s: int) -> tuple[np.ndarray, Ground]:
    hz = _horizon(rng, s, 0.35, 0.5)
    grass = jitter(rng, (200, 165, 85), 12)
    ground = _ground(rng, s - hz, s, grass, 0.16, cells=(4, 24, 100))
    streak = noise(rng, s - hz, s, s / 3)
    ground *= 1 + 0.08 * np.repeat(streak[::4], 4, axis=0)[: s - hz, :, None]
    arr = _stack(_sky(rng, s, hz, (150, 185, 220), (235, 220, 185), 0.15), ground)
    im = Image.fromarray(to_uint8(arr))
    d = ImageDraw.Draw(im)
    _mountains(d, rng, s, hz, (175, 165, 160), False)
    for _ in range(int(rng.integers(1, 4))):
        x, y = rng.random() * s, hz + s * uniform(rng, 0.0, 0.06)
        th = s * uniform(rng, 0.08, 0.16)
        trunk = (70, 50, 35)
        d.line([(x, y), (x + th * 0.1, y - th)], fill=trunk, width=max(1, s // 100))
        cw = th * uniform(rng, 0.8, 1.2)
        d.ellipse((x - cw, y - th - th * 0.18, x + cw, y - th + th * 0.08), fill=jitter(rng, (85, 95, 40), 10))
    return _finish(np.asarray(im, np.float32), rng), _outdoor_ground(s, hz)


# ---------------------------------------------------------------------------------------------- road
def highway(rng: np.random.Generator, s: int) -> tuple[np.ndarray, Ground]:
    hz = _horizon(rng, s, 0.3, 0.42)
    arr = _stack(_sky(rng, s, hz, (110, 150, 205), (200, 210, 225), 0.4),
                 _ground(rng, s - hz, s, (95, 130, 60), 0.15))
    asphalt = _ground(rng, s - hz, s, (75, 75, 80), 0.12, cells=(4, 32, 128), far=0.95)
    vx = s * uniform(rng, 0.35, 0.65)
    yy, xx = np.mgrid[0:s - hz, 0:s].astype(np.float32)
    t = (yy + 1) / (s - hz)
    half = (0.05 + 0.9 * t) * s * uniform(rng, 0.9, 1.2)
    road = np.abs(xx - vx) < half
    arr[hz:][road] = asphalt[road]
    im = Image.fromarray(to_uint8(arr))
    d = ImageDraw.Draw(im)
    lanes = int(rng.integers(3, 5))
    w0, w1 = s * 0.05 * uniform(rng, 0.9, 1.2), s * 0.95 * uniform(rng, 0.9, 1.2)
    for k in range(lanes + 1):
        f = -1 + 2 * k / lanes
        x0, x1 = vx + f * w0, vx + f * w1
        edge = k in (0, lanes)
        col = (245, 245, 240) if not (edge and k == 0 and rng.random() < 0.5) else (240, 200, 40)
        if edge:
            d.line([(x0, hz), (x1, s)], fill=col, width=max(1, s // 90))
        else:
            for a in np.arange(0, 1, 0.12):
                p0, p1 = a ** 1.8, (a + 0.06) ** 1.8
                d.line([(x0 + (x1 - x0) * p0, hz + (s - hz) * p0), (x0 + (x1 - x0) * p1, hz + (s - hz) * p1)],
                       fill=col, width=max(1, int(s / 110 * (0.3 + p1))))
    rail = jitter(rng, (170, 170, 175), 8)
    side = 1 if rng.random() < 0.5 else -1
    x0, x1 = vx + side * w0 * 1.15, vx + side * w1 * 1.15
    d.line([(x0, hz - s * 0.005), (x1, s - s * 0.12)], fill=rail, width=max(2, s // 60))
    return _finish(np.asarray(im, np.float32), rng), Ground(top=min(hz / s + 0.12, 0.8), bottom=0.97, far=0.2, near=0.5)


def street(rng: np.random.Generator, s: int) -> tuple[np.ndarray, Ground]:
    hz = _horizon(rng, s, 0.42, 0.55)
    walk = int(s * uniform(rng, 0.06, 0.1))
    arr = _stack(_sky(rng, s, hz, (120, 160, 210), (210, 215, 225), 0.3),
                 _ground(rng, walk, s, (175, 170, 165), 0.08, cells=(4, 16, 32), far=1.0),
                 _ground(rng, s - hz - walk, s, (85, 85, 90), 0.1, cells=(4, 32, 128), far=0.95))
    im = Image.fromarray(to_uint8(arr))
    d = ImageDraw.Draw(im)
    x = -s * uniform(rng, 0, 0.1)
    facades = [(190, 90, 70), (220, 200, 160), (150, 160, 170), (200, 170, 120), (120, 100, 90), (230, 225, 215)]
    while x < s:
        w, h = s * uniform(rng, 0.15, 0.3), s * uniform(rng, 0.2, 0.4)
        col = jitter(rng, facades[int(rng.integers(len(facades)))], 12)
        d.rectangle((x, hz - h, x + w, hz), fill=col)
        win = jitter(rng, (70, 95, 120), 15)
        ww, wh = s * 0.025, s * 0.035
        yy = hz - h + s * 0.03
        while yy + wh < hz - s * 0.05:
            xx = x + s * 0.025
            while xx + ww < x + w - s * 0.015:
                d.rectangle((xx, yy, xx + ww, yy + wh), fill=win)
                xx += ww * 2
            yy += wh * 1.8
        d.rectangle((x + w * 0.4, hz - s * 0.06, x + w * 0.4 + s * 0.035, hz), fill=scale(col, 0.45))
        x += w
    d.line([(0, hz), (s, hz)], fill=(140, 140, 140), width=max(1, s // 120))
    d.line([(0, hz + walk), (s, hz + walk)], fill=(200, 200, 195), width=max(1, s // 80))
    cy = hz + walk + (s - hz - walk) * uniform(rng, 0.4, 0.6)
    dash, col = s * uniform(rng, 0.06, 0.1), (240, 200, 40) if rng.random() < 0.5 else (240, 240, 235)
    off = rng.random() * dash
    for k in range(-1, int(s / dash) + 1):
        x0 = k * dash * 2 + off
        d.line([(x0, cy), (x0 + dash, cy)], fill=col, width=max(1, s // 90))
    return _finish(np.asarray(im, np.float32), rng), Ground(top=(hz + walk) / s + 0.08, bottom=0.97, far=0.3,
                                                            near=0.5)


def parking_lot(rng: np.random.Generator, s: int) -> tuple[np.ndarray, Ground]:
    hz = _horizon(rng, s, 0.25, 0.38)
    arr = _stack(_sky(rng, s, hz, (130, 165, 210), (215, 220, 228), 0.35),
                 _ground(rng, s - hz, s, (115, 115, 118), 0.1, cells=(3, 24, 96), far=0.95))
    stains = fbm(rng, s - hz, s, (6, 20), (1.0, 0.5))
    arr[hz:] *= 1 - 0.15 * np.clip(stains - 1.0, 0, 1)[..., None]
    im = Image.fromarray(to_uint8(arr))
    d = ImageDraw.Draw(im)
    _treeline(d, rng, s, hz, (60, 90, 55), 0.7)
    d.rectangle((s * uniform(rng, 0, 0.4), hz - s * uniform(rng, 0.08, 0.14), s * uniform(rng, 0.6, 1.0), hz),
                fill=jitter(rng, (200, 195, 185), 10))
    line = jitter(rng, (240, 240, 235), 5)
    lw = max(1, s // 110)
    for row in (uniform(rng, 0.15, 0.3), uniform(rng, 0.6, 0.75)):
        y0 = hz + (s - hz) * row
        depth = (s - hz) * 0.18 * (0.5 + row)
        d.line([(0, y0), (s, y0)], fill=line, width=lw)
        slant = s * uniform(rng, -0.08, 0.08)
        pitch = s * (0.09 + 0.08 * row)
        off = rng.random() * pitch
        for k in range(-1, int(s / pitch) + 2):
            x = k * pitch + off
            d.line([(x, y0), (x + slant, y0 + depth)], fill=line, width=lw)
    for _ in range(int(rng.integers(1, 3))):
        x = s * rng.random()
        d.line([(x, hz + s * 0.05), (x, hz - s * 0.18)], fill=(90, 90, 95), width=max(1, s // 100))
        d.line([(x, hz - s * 0.18), (x + s * 0.04, hz - s * 0.18)], fill=(90, 90, 95), width=max(1, s // 100))
    return _finish(np.asarray(im, np.float32), rng), _outdoor_ground(s, hz, 0.22, 0.5)


# ---------------------------------------------------------------------------------------------- water
def _water(rng: np.random.Generator, h: int, s: int, far: tuple, near: tuple, streaks: float) -> np.ndarray:
    w = vgradient(h, s, jitter(rng, far, 10), jitter(rng, near, 10))
    ripple = noise(rng, max(h // 6, 2), s // 2, s / 6)
    ripple = np.asarray(Image.fromarray(ripple, "F").resize((s, h), Image.BILINEAR))
    return w * (1 + streaks * ripple[..., None])


def lake(rng: np.random.Generator, s: int) -> tuple[np.ndarray, Ground]:
    hz = _horizon(rng, s, 0.3, 0.45)
    shore = int(s * uniform(rng, 0.04, 0.08))
    arr = _stack(_sky(rng, s, hz, (110, 150, 200), (200, 215, 225), 0.45),
                 _ground(rng, shore, s, (55, 85, 45), 0.2, far=1.0),
                 _water(rng, s - hz - shore, s, (70, 110, 105), (45, 85, 95), 0.08))
    ref = arr[hz:hz + shore][::-1]
    ry = min(shore * 2, s - hz - shore)
    arr[hz + shore:hz + shore + ry] = 0.55 * arr[hz + shore:hz + shore + ry] + 0.45 * np.repeat(ref, 2, 0)[:ry] * 0.8
    im = Image.fromarray(to_uint8(arr))
    d = ImageDraw.Draw(im)
    _treeline(d, rng, s, hz + shore // 2, (35, 70, 35), 1.3)
    for _ in range(int(s * 0.15)):
        y = hz + shore + (s - hz - shore) * rng.random() ** 0.8
        x, l = rng.random() * s, s * uniform(rng, 0.03, 0.1)
        d.line([(x, y), (x + l, y)], fill=jitter(rng, (120, 160, 165), 10), width=1)
    return _finish(np.asarray(im, np.float32), rng), _outdoor_ground(s, hz + shore, 0.2, 0.5)


def sea(rng: np.random.Generator, s: int) -> tuple[np.ndarray, Ground]:
    hz = _horizon(rng, s, 0.3, 0.48)
    arr = _stack(_sky(rng, s, hz, (70, 130, 210), (190, 215, 240), 0.35),
                 _water(rng, s - hz, s, (25, 70, 140), (30, 100, 165), 0.12))
    im = Image.fromarray(to_uint8(arr))
    d = ImageDraw.Draw(im)
    if rng.random() < 0.4:
        x, w = s * rng.random(), s * uniform(rng, 0.1, 0.3)
        d.ellipse((x, hz - s * 0.03, x + w, hz + s * 0.01), fill=jitter(rng, (90, 110, 100), 10))
        d.rectangle((0, hz, s, hz + s * 0.01), fill=tuple(int(v) for v in arr[hz + 1, 0]))
    for _ in range(int(s * uniform(rng, 0.3, 0.6))):
        f = rng.random() ** 0.8
        y = hz + 2 + (s - hz - 2) * f
        x, l = rng.random() * s, s * (0.01 + 0.06 * f)
        d.arc((x, y - l * 0.25, x + l, y + l * 0.25), 200, 340, fill=jitter(rng, (235, 240, 245), 8),
              width=max(1, int(1 + 2 * f * s / 256)))
    return _finish(np.asarray(im, np.float32), rng), _outdoor_ground(s, hz, 0.2, 0.5)


# ---------------------------------------------------------------------------------------------- indoor
def _room(rng: np.random.Generator, s: int, wall: tuple, floor: tuple, wall_tex: float, floor_tex: float,
          lo: float = 0.52, hi: float = 0.64) -> tuple[np.ndarray, int]:
    fy = _horizon(rng, s, lo, hi)
    w = _ground(rng, fy, s, wall, wall_tex, cells=(2, 6, 12), far=1.0)
    w *= np.linspace(0.9, 1.05, fy, dtype=np.float32)[:, None, None]
    f = _ground(rng, s - fy, s, floor, floor_tex, cells=(4, 32, 128), far=0.95)
    return _stack(w, f), fy


def office(rng: np.random.Generator, s: int) -> tuple[np.ndarray, Ground]:
    arr, fy = _room(rng, s, (205, 205, 200), (85, 95, 115), 0.03, 0.12)
    im = Image.fromarray(to_uint8(arr))
    d = ImageDraw.Draw(im)
    wx, ww = s * uniform(rng, 0.05, 0.5), s * uniform(rng, 0.3, 0.45)
    wy0, wy1 = fy * 0.12, fy * uniform(rng, 0.6, 0.75)
    d.rectangle((wx, wy0, wx + ww, wy1), fill=jitter(rng, (175, 205, 230), 10))
    for y in np.arange(wy0, wy1, max(2, s / 64)):
        d.line([(wx, y), (wx + ww, y)], fill=(225, 225, 220), width=max(1, s // 256))
    d.rectangle((wx, wy0, wx + ww, wy1), outline=(120, 120, 125), width=max(1, s // 128))
    d.rectangle((0, fy - s * 0.015, s, fy), fill=(90, 90, 95))
    dx, dw = s * uniform(rng, 0.0, 0.6), s * uniform(rng, 0.3, 0.45)
    top = fy - s * uniform(rng, 0.12, 0.16)
    desk = jitter(rng, pick(rng, [(235, 235, 230), (160, 120, 80), (90, 90, 95)]), 8)
    d.rectangle((dx, top, dx + dw, top + s * 0.02), fill=desk)
    for lx in (dx + s * 0.01, dx + dw - s * 0.03):
        d.rectangle((lx, top, lx + s * 0.02, fy + s * 0.02), fill=scale(desk, 0.7))
    mx = dx + dw * uniform(rng, 0.2, 0.5)
    d.rectangle((mx, top - s * 0.1, mx + s * 0.12, top - s * 0.015), fill=(30, 30, 35))
    d.rectangle((mx + s * 0.05, top - s * 0.015, mx + s * 0.07, top), fill=(60, 60, 65))
    if rng.random() < 0.6:
        px = s * rng.random()
        d.rectangle((px, fy - s * 0.06, px + s * 0.05, fy + s * 0.01), fill=(170, 90, 60))
        for _ in range(6):
            r = s * 0.03
            cx, cy = px + s * 0.025 + uniform(rng, -1, 1) * r, fy - s * 0.09 - uniform(rng, 0, 1) * r * 2
            d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=jitter(rng, (50, 120, 50), 15))
    return _finish(np.asarray(im, np.float32), rng), Ground(top=fy / s + 0.08, bottom=0.97, far=0.35, near=0.6)


def kitchen(rng: np.random.Generator, s: int) -> tuple[np.ndarray, Ground]:
    tile = jitter(rng, pick(rng, [(235, 235, 225), (200, 225, 225), (240, 225, 200)]), 8)
    arr, fy = _room(rng, s, tile, (200, 195, 185), 0.02, 0.05, 0.56, 0.66)
    im = Image.fromarray(to_uint8(arr))
    d = ImageDraw.Draw(im)
    step = s / uniform(rng, 12, 18)
    grout = scale(tile, 0.8)
    for k in np.arange(0, s, step):
        d.line([(k, 0), (k, fy)], fill=grout, width=1)
        d.line([(0, k), (s, k)], fill=grout, width=1) if k < fy else None
    wood = jitter(rng, pick(rng, [(170, 120, 70), (240, 240, 235), (60, 90, 120), (120, 140, 100)]), 10)
    d.rectangle((0, 0, s, fy * uniform(rng, 0.25, 0.35)), fill=wood)
    ctop = fy - s * uniform(rng, 0.16, 0.2)
    d.rectangle((0, ctop, s, fy), fill=scale(wood, 0.95))
    d.rectangle((0, ctop - s * 0.02, s, ctop + s * 0.01), fill=jitter(rng, (60, 60, 65), 10))
    n = int(rng.integers(4, 7))
    for k in range(n + 1):
        x = k * s / n
        d.line([(x, 0), (x, fy * 0.3)], fill=scale(wood, 0.7), width=max(1, s // 200))
        d.line([(x, ctop + s * 0.01), (x, fy)], fill=scale(wood, 0.7), width=max(1, s // 200))
        d.rectangle((x + s * 0.02, ctop + s * 0.03, x + s * 0.06, ctop + s * 0.04), fill=(190, 190, 195))
    fl = np.asarray(im, np.float32).copy()
    fs = s / uniform(rng, 6, 10)
    yy, xx = np.mgrid[fy:s, 0:s]
    checker = ((yy // (fs * 0.6)).astype(int) + (xx // fs).astype(int)) % 2 == 1
    fl[fy:][checker] *= uniform(rng, 0.45, 0.7)
    return _finish(fl, rng), Ground(top=fy / s + 0.08, bottom=0.97, far=0.35, near=0.6)


def living_room(rng: np.random.Generator, s: int) -> tuple[np.ndarray, Ground]:
    paper = jitter(rng, pick(rng, [(200, 160, 120), (160, 180, 150), (190, 140, 150), (220, 205, 170)]), 10)
    arr, fy = _room(rng, s, paper, (150, 100, 60), 0.04, 0.08, 0.58, 0.68)
    stripes = (np.arange(s) // max(2, int(s / uniform(rng, 20, 32)))) % 2 == 0
    arr[:fy, stripes] *= 0.92
    plank = max(2, int(s / uniform(rng, 12, 18)))
    for y in range(fy, s, plank):
        arr[y] *= 0.7
    im = Image.fromarray(to_uint8(arr))
    d = ImageDraw.Draw(im)
    sx, sw = s * uniform(rng, -0.1, 0.4), s * uniform(rng, 0.45, 0.65)
    sofa = jitter(rng, pick(rng, [(120, 40, 40), (60, 80, 120), (110, 110, 100), (80, 110, 80)]), 10)
    d.rounded_rectangle((sx, fy - s * 0.2, sx + sw, fy - s * 0.02), radius=int(s * 0.03), fill=sofa)
    d.rounded_rectangle((sx - s * 0.03, fy - s * 0.12, sx + s * 0.05, fy), radius=int(s * 0.02), fill=scale(sofa, 0.85))
    d.rounded_rectangle((sx + sw - s * 0.05, fy - s * 0.12, sx + sw + s * 0.03, fy), radius=int(s * 0.02),
                        fill=scale(sofa, 0.85))
    px, py = s * uniform(rng, 0.1, 0.7), fy * uniform(rng, 0.15, 0.35)
    d.rectangle((px, py, px + s * 0.16, py + s * 0.12), fill=(110, 80, 40))
    d.rectangle((px + s * 0.015, py + s * 0.015, px + s * 0.145, py + s * 0.105), fill=jitter(rng, (120, 160, 190), 40))
    rug = jitter(rng, pick(rng, [(170, 50, 50), (60, 70, 130), (200, 180, 120)]), 10)
    ry = fy + (s - fy) * uniform(rng, 0.3, 0.5)
    d.ellipse((s * uniform(rng, -0.1, 0.3), ry, s * uniform(rng, 0.7, 1.1), ry + (s - fy) * 0.4), fill=rug)
    return _finish(np.asarray(im, np.float32), rng), Ground(top=fy / s + 0.08, bottom=0.97, far=0.35, near=0.6)



# ---------------------------------------------------------------------------------------------- snow
def ski_slope(rng: np.random.Generator, s: int) -> tuple[np.ndarray, Ground]:
    hz = _horizon(rng, s, 0.22, 0.35)
    arr = _stack(_sky(rng, s, hz, (40, 100, 200), (150, 190, 235), 0.15),
                 _ground(rng, s - hz, s, (238, 242, 250), 0.04, far=1.0))
    tilt = uniform(rng, -0.25, 0.25)
    yy, xx = np.mgrid[hz:s, 0:s].astype(np.float32)
    shade = 0.93 + 0.07 * np.sin((xx * tilt + yy) / s * uniform(rng, 3, 6))
    arr[hz:] *= shade[..., None]
    arr[hz:, :, 2] += 6
    im = Image.fromarray(to_uint8(arr))
    d = ImageDraw.Draw(im)
    _mountains(d, rng, s, hz, (120, 125, 140), True)
    for _ in range(int(rng.integers(5, 12))):
        x, y = s * rng.random(), hz + (s - hz) * 0.35 * rng.random()
        h = s * (0.04 + 0.1 * (y - hz) / (s - hz + 1)) * uniform(rng, 0.8, 1.3)
        d.polygon([(x - h * 0.3, y), (x, y - h), (x + h * 0.3, y)], fill=jitter(rng, (30, 65, 40), 10))
    for _ in range(int(rng.integers(3, 7))):
        x0, x1 = s * rng.random(), s * rng.random()
        pts = [(x0 + (x1 - x0) * t + s * 0.05 * np.sin(t * 9), hz + (s - hz) * t) for t in np.linspace(0, 1, 16)]
        d.line(pts, fill=(200, 205, 220), width=max(1, s // 200))
    return _finish(np.asarray(im, np.float32), rng, 2.0), _outdoor_ground(s, hz, 0.2, 0.5)


def glacier(rng: np.random.Generator, s: int) -> tuple[np.ndarray, Ground]:
    hz = _horizon(rng, s, 0.3, 0.45)
    ice = jitter(rng, (195, 228, 238), 8)
    facets = np.floor(fbm(rng, s - hz, s, (3, 8, 24), (1.0, 0.6, 0.3)) * 2.5) / 2.5  # blocky, faceted ice
    ground = textured(s - hz, s, ice, facets, 0.07)
    arr = _stack(_sky(rng, s, hz, (150, 170, 190), (220, 225, 230), 0.7), ground)
    im = Image.fromarray(to_uint8(arr))
    d = ImageDraw.Draw(im)
    _mountains(d, rng, s, hz, (95, 95, 105), True)
    slant = uniform(rng, -0.35, 0.35)
    for _ in range(int(rng.integers(6, 12))):
        f = rng.random() ** 0.8
        y, x = hz + (s - hz) * f, s * uniform(rng, -0.2, 1.0)
        length, gap = s * uniform(rng, 0.25, 0.6) * (0.5 + f), s * 0.02 * (0.4 + 2 * f)
        ts = np.linspace(0, 1, 11)
        top = [(x + length * t, y + length * t * slant + s * 0.008 * uniform(rng, -1, 1)) for t in ts]
        bottom = [(px, py + gap * np.sin(np.pi * t) ** 0.7) for (px, py), t in zip(top, ts)]
        d.polygon(top + bottom[::-1], fill=jitter(rng, (30, 85, 145), 10))
        d.line(bottom, fill=(120, 190, 220), width=max(1, s // 160))
        d.line(top, fill=(240, 250, 253), width=max(1, s // 160))
    return _finish(np.asarray(im, np.float32), rng, 2.0), _outdoor_ground(s, hz, 0.2, 0.5)


# ---------------------------------------------------------------------------------------------- sand
def beach(rng: np.random.Generator, s: int) -> tuple[np.ndarray, Ground]:
    hz = _horizon(rng, s, 0.3, 0.42)
    water = int(s * uniform(rng, 0.08, 0.16))
    sand = jitter(rng, (225, 200, 150), 10)
    arr = _stack(_sky(rng, s, hz, (60, 140, 215), (185, 220, 240), 0.25),
                 _water(rng, water, s, (30, 110, 170), (60, 160, 180), 0.08),
                 _ground(rng, s - hz - water, s, sand, 0.06, cells=(4, 32, 128), far=1.0))
    wet = int(s * 0.05)
    arr[hz + water:hz + water + wet] *= 0.85
    im = Image.fromarray(to_uint8(arr))
    d = ImageDraw.Draw(im)
    y0 = hz + water
    freq, phase = uniform(rng, 10, 20), uniform(rng, 0, 6)
    pts = [(float(x), y0 + s * 0.008 * np.sin(x / s * freq + phase)) for x in np.linspace(0, s, 40)]
    d.line(pts, fill=(245, 248, 250), width=max(1, s // 64))
    if rng.random() < 0.5:
        x = s * rng.choice([uniform(rng, 0.0, 0.15), uniform(rng, 0.85, 1.0)])
        top = (x + s * uniform(rng, -0.1, 0.1), hz - s * uniform(rng, 0.05, 0.15))
        d.line([(x, y0 + s * 0.08), top], fill=(120, 90, 60), width=max(2, s // 64))
        for a in np.linspace(0.3, 2.8, 6):
            d.line([top, (top[0] + np.cos(a) * s * 0.1, top[1] - np.sin(a) * s * 0.05 + s * 0.04)],
                   fill=(50, 120, 50), width=max(1, s // 90))
    return _finish(np.asarray(im, np.float32), rng), _outdoor_ground(s, hz + water, 0.2, 0.5)


def desert(rng: np.random.Generator, s: int) -> tuple[np.ndarray, Ground]:
    hz = _horizon(rng, s, 0.3, 0.45)
    sand = jitter(rng, (220, 160, 95), 12)
    arr = _stack(_sky(rng, s, hz, (110, 160, 215), (235, 225, 200), 0.05),
                 _ground(rng, s - hz, s, sand, 0.05, far=0.95))
    yy, xx = np.mgrid[hz:s, 0:s].astype(np.float32)
    freq, ph = uniform(rng, 2, 4), uniform(rng, 0, 6.28)
    ridge = np.sin(xx / s * freq * 6.28 + ph + yy / s * 5)
    arr[hz:] *= (1 + 0.12 * ridge)[..., None]
    ripples = np.sin((yy * 1.0 + xx * 0.3) / max(2.0, s / 90))
    arr[hz:] *= (1 + 0.03 * ripples)[..., None]
    im = Image.fromarray(to_uint8(arr))
    d = ImageDraw.Draw(im)
    for k in range(2):
        amp, ph2, f2 = s * uniform(rng, 0.02, 0.06), uniform(rng, 0, 6.28), 6.28 * uniform(rng, 0.8, 1.5)
        base = hz + s * 0.02 * k
        pts = [(float(x), base - amp * (1 + np.sin(x / s * f2 + ph2))) for x in np.linspace(0, s, 32)]
        d.polygon([(0, base + 1)] + pts + [(s, base + 1)], fill=scale(sand, 0.92 + 0.06 * k))
    return _finish(np.asarray(im, np.float32), rng), _outdoor_ground(s, hz, 0.2, 0.5)


CONTEXTS: dict[str, ContextDrawer] = {
    "pasture": pasture,
    "meadow": meadow,
    "savanna": savanna,
    "highway": highway,
    "street": street,
    "parking_lot": parking_lot,
    "lake": lake,
    "sea": sea,
    "office": office,
    "kitchen": kitchen,
    "living_room": living_room,
    "ski_slope": ski_slope,
    "glacier": glacier,
    "beach": beach,
    "desert": desert,
}


def draw_context(name: str, rng: np.random.Generator, size: int) -> tuple[np.ndarray, Ground]:
    """Draw one context scene: ``((size, size, 3) uint8, Ground)``.

    Raises:
        KeyError: ``name`` is not a drawable context (see :data:`CONTEXTS`).
    """
    return CONTEXTS[name](rng, size)
