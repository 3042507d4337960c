"""Procedural subjects and distractor props, drawn side-on in PIL with random pose, shape and colour.

Every drawer takes ``(rng, unit)`` and draws in coordinates where the ground is ``y = 0`` and up is negative
``y``, with ``unit`` pixels per coordinate unit; :func:`draw_subject` picks the unit from the requested pixel
height and the subject's natural size, and flips half of the drawings left-right. A subject never sees the
context or the label it will be composited into.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from caadbench.data.compose import Layer
from caadbench.data.sources.synthetic.draw import Canvas, jitter, pick, scale, uniform

SubjectDrawer = Callable[[np.random.Generator, float], Layer]


def _canvas(unit: float, half_width: float = 1.7, top: float = 1.7) -> Canvas:
    """A canvas spanning x in [-half_width, half_width] and y in [-top, 0.1] units."""
    return Canvas(2 * half_width * unit + 2, (top + 0.1) * unit + 2, unit, (half_width * unit + 1, top * unit + 1))




# ---------------------------------------------------------------------------------------------- animals
def _quadruped_legs(c: Canvas, rng: np.random.Generator, xs: tuple[float, float, float, float], top: float,
                    thick: float, color: tuple, hoof: tuple | None) -> None:
    """Four legs from body height ``top`` to the ground; far legs darker and drawn first; walking stride."""
    stride = uniform(rng, 0.0, 0.3)
    angles = (stride, -stride, -stride, stride)
    for i in (1, 3, 0, 2):
        col = scale(color, 0.72) if i in (1, 3) else color
        length = -top / max(np.cos(angles[i]), 0.5)
        end = c.limb((xs[i], top), length, angles[i], thick, col)
        if hoof is not None:
            c.line([(end[0], end[1] - thick * 0.9), end], thick * 1.05, hoof, round_ends=False)


def draw_cow(rng: np.random.Generator, unit: float) -> Layer:
    c = _canvas(unit)
    style = pick(rng, ["holstein", "holstein", "brown", "black", "red"])
    base = {"holstein": (240, 238, 232), "brown": (130, 85, 50), "black": (40, 38, 38), "red": (150, 70, 40)}[style]
    body = jitter(rng, base, 10)
    rx, ry, cy = uniform(rng, 0.5, 0.6), uniform(rng, 0.16, 0.21), -0.62
    _quadruped_legs(c, rng, (-rx + 0.12, -rx + 0.22, rx - 0.2, rx - 0.1), cy + ry * 0.5, 0.085, body, (40, 35, 30))
    c.line([(-rx + 0.03, cy - ry * 0.7), (-rx - 0.04, cy + ry + 0.12)], 0.03, body)
    c.ellipse(-rx - 0.04, cy + ry + 0.14, 0.03, 0.05, (40, 35, 30))
    c.rounded_rect(-rx, cy - ry, rx, cy + ry, ry * 0.9, body)
    if style != "black":
        c.ellipse(-rx * 0.35, cy + ry * 0.95, 0.09, 0.06, (235, 170, 170))
    grazing = rng.random() < 0.3
    hx, hy = (rx + 0.2, -0.2) if grazing else (rx + 0.2, cy - ry - uniform(rng, 0.02, 0.15))
    c.polygon([(rx - 0.18, cy - ry), (hx - 0.04, hy - 0.08), (hx + 0.02, hy + 0.08), (rx - 0.05, cy + ry * 0.6)],
              body)
    c.polygon([(hx - 0.12, hy - 0.09), (hx + 0.11, hy - 0.05), (hx + 0.15, hy + 0.11), (hx - 0.08, hy + 0.08)], body)
    c.ellipse(hx + 0.13, hy + 0.07, 0.065, 0.055, jitter(rng, (225, 160, 150), 8))
    c.ellipse(hx - 0.13, hy - 0.08, 0.07, 0.03, scale(body, 0.85))
    if rng.random() < 0.6:
        c.line([(hx - 0.08, hy - 0.08), (hx - 0.1, hy - 0.18), (hx - 0.05, hy - 0.21)], 0.025, (235, 225, 200))
    if style == "holstein":
        for _ in range(int(rng.integers(3, 7))):
            px, py = uniform(rng, -rx, rx), cy + uniform(rng, -ry, ry)
            c.paint_ellipse(px, py, uniform(rng, 0.07, 0.18), uniform(rng, 0.06, 0.13), (30, 30, 30))
        if rng.random() < 0.5:
            c.paint_ellipse(hx - 0.03, hy - 0.03, 0.07, 0.06, (30, 30, 30))
    c.paint_ellipse(hx + 0.01, hy - 0.03, 0.014, 0.014, (10, 10, 10))
    return c.layer(rng)


def draw_sheep(rng: np.random.Generator, unit: float) -> Layer:
    c = _canvas(unit)
    wool = jitter(rng, pick(rng, [(236, 232, 218), (225, 220, 205), (200, 195, 185), (245, 240, 230)]), 8)
    face = jitter(rng, pick(rng, [(35, 30, 30), (60, 50, 45), (215, 205, 190)]), 8)
    rx, ry, cy = uniform(rng, 0.38, 0.48), uniform(rng, 0.2, 0.26), -0.55
    _quadruped_legs(c, rng, (-rx + 0.12, -rx + 0.2, rx - 0.18, rx - 0.1), cy + ry * 0.6, 0.055, face, None)
    c.ellipse(0, cy, rx, ry, wool)
    n = int(rng.integers(12, 18))
    for k in range(n):
        a = 2 * np.pi * k / n + uniform(rng, -0.1, 0.1)
        r = uniform(rng, 0.07, 0.1)
        c.ellipse(np.cos(a) * rx * 0.95, cy + np.sin(a) * ry * 0.92, r, r, scale(wool, uniform(rng, 0.92, 1.05)))
    down = uniform(rng, -0.05, 0.2)
    hx, hy = rx + 0.07, cy - ry * 0.5 + down
    c.polygon([(hx - 0.1, hy - 0.07), (hx + 0.1, hy + 0.0), (hx + 0.12, hy + 0.07), (hx - 0.04, hy + 0.1)], face)
    c.ellipse(hx - 0.02, hy - 0.0, 0.09, 0.075, face)
    c.ellipse(hx - 0.1, hy - 0.03, 0.07, 0.025, scale(face, 0.85))
    c.ellipse(hx - 0.05, hy - 0.09, 0.07, 0.055, wool)
    c.paint_ellipse(hx + 0.03, hy - 0.015, 0.012, 0.012, (250, 250, 250) if sum(face) < 300 else (10, 10, 10))
    return c.layer(rng, shading=0.2)


def draw_camel(rng: np.random.Generator, unit: float) -> Layer:
    c = _canvas(unit)
    body = jitter(rng, pick(rng, [(196, 156, 105), (180, 135, 85), (210, 180, 130)]), 10)
    rx, ry, cy = uniform(rng, 0.38, 0.45), uniform(rng, 0.13, 0.16), -0.95
    _quadruped_legs(c, rng, (-rx + 0.1, -rx + 0.2, rx - 0.15, rx - 0.06), cy + ry * 0.5, 0.06, body,
                    scale(body, 0.6))
    c.line([(-rx + 0.02, cy - ry * 0.5), (-rx - 0.04, cy + 0.25)], 0.025, body)
    c.ellipse(0, cy, rx, ry, body)
    humps = 2 if rng.random() < 0.5 else 1
    for k in range(humps):
        hx = (-0.12 + 0.22 * k) if humps == 2 else 0.0
        c.ellipse(hx, cy - ry * 0.8, 0.15 if humps == 1 else 0.11, uniform(rng, 0.14, 0.2), body)
    lift = uniform(rng, -0.1, 0.1)
    neck = [(rx - 0.06, cy - 0.02), (rx + 0.2, cy + 0.05), (rx + 0.3, cy - 0.25 + lift), (rx + 0.3, cy - 0.38 + lift)]
    c.line(neck, 0.1, body)
    hx, hy = rx + 0.38, cy - 0.42 + lift
    c.ellipse(hx, hy, 0.13, 0.06, body)
    c.polygon([(hx + 0.05, hy - 0.04), (hx + 0.2, hy + 0.02), (hx + 0.18, hy + 0.06), (hx + 0.05, hy + 0.05)], body)
    c.ellipse(hx - 0.1, hy - 0.06, 0.025, 0.035, scale(body, 0.8))
    c.paint_ellipse(hx, hy - 0.015, 0.012, 0.012, (20, 15, 10))
    return c.layer(rng)


def draw_penguin(rng: np.random.Generator, unit: float) -> Layer:
    c = _canvas(unit)
    back = jitter(rng, pick(rng, [(25, 28, 35), (40, 45, 60), (55, 55, 60)]), 6)
    belly = jitter(rng, (240, 240, 235), 8)
    accent = jitter(rng, pick(rng, [(250, 160, 30), (245, 200, 40), (230, 90, 40)]), 10)
    w, h = uniform(rng, 0.2, 0.26), uniform(rng, 0.36, 0.42)
    cy = -h - 0.04
    lean = uniform(rng, -0.05, 0.05)
    c.ellipse(-0.05, -0.02, 0.08, 0.03, accent)
    c.ellipse(0.07, -0.02, 0.08, 0.03, scale(accent, 0.85))
    c.ellipse(lean, cy, w, h, back)
    c.ellipse(lean + w * 0.28, cy + h * 0.08, w * 0.72, h * 0.85, belly)
    hx, hy = lean * 2 + 0.03, cy - h - 0.06
    c.ellipse(hx, hy, 0.13, 0.12, back)
    tilt = uniform(rng, -0.04, 0.04)
    c.polygon([(hx + 0.1, hy - 0.02 + tilt), (hx + 0.24, hy + 0.02 + tilt * 2), (hx + 0.1, hy + 0.04 + tilt)], accent)
    c.paint_ellipse(hx + 0.02, hy + 0.07, 0.07, 0.04, accent if rng.random() < 0.5 else belly)
    c.paint_ellipse(hx + 0.05, hy - 0.03, 0.018, 0.018, (245, 245, 245))
    c.paint_ellipse(hx + 0.055, hy - 0.03, 0.009, 0.009, (0, 0, 0))
    flap = uniform(rng, 0.15, 0.9)
    c.line([(lean - 0.05, cy - h * 0.45), (lean - 0.05 - 0.3 * np.sin(flap), cy - h * 0.45 + 0.3 * np.cos(flap))],
           0.07, scale(back, 0.8))
    return c.layer(rng, shading=0.15)


def draw_fish(rng: np.random.Generator, unit: float) -> Layer:
    c = _canvas(unit)
    kind = pick(rng, ["gold", "trout", "tropical", "clown"])
    body = jitter(rng, {"gold": (240, 130, 30), "trout": (150, 160, 165), "tropical": (245, 215, 40),
                        "clown": (240, 100, 20)}[kind], 10)
    fin = scale(body, 0.8)
    rx, ry = uniform(rng, 0.45, 0.6), uniform(rng, 0.17, 0.26)
    cy = -ry - 0.12
    c.polygon([(0.0, cy - ry * 0.9), (-rx * 0.35, cy - ry - 0.13), (-rx * 0.55, cy - ry * 0.6)], fin)
    c.polygon([(-0.1, cy + ry * 0.9), (-rx * 0.4, cy + ry + 0.1), (-rx * 0.5, cy + ry * 0.6)], fin)
    fork = uniform(rng, 0.0, 0.1)
    c.polygon([(-rx + 0.05, cy), (-rx - 0.28, cy - ry - 0.05), (-rx - 0.22 + fork, cy),
               (-rx - 0.28, cy + ry + 0.05)], fin)
    c.ellipse(0, cy, rx, ry, body)
    c.polygon([(rx * 0.55, cy - ry * 0.7), (rx + 0.06, cy - 0.01), (rx * 0.55, cy + ry * 0.5)], body)
    if kind == "tropical":
        for k in range(3):
            x = -rx * 0.6 + k * rx * 0.5
            c.paint_polygon([(x, cy - ry), (x + 0.08, cy - ry), (x + 0.02, cy + ry), (x - 0.06, cy + ry)], (25, 25, 25))
    elif kind == "clown":
        for x in (-rx * 0.55, rx * 0.35):
            c.paint_ellipse(x, cy, 0.05, ry, (250, 250, 250))
    elif kind == "trout":
        for _ in range(12):
            px, py = uniform(rng, -rx * 0.8, rx * 0.6), cy + uniform(rng, -ry * 0.7, ry * 0.3)
            c.paint_ellipse(px, py, 0.015, 0.015, (60, 60, 70))
        c.paint_line([(-rx * 0.8, cy + ry * 0.1), (rx * 0.7, cy + ry * 0.1)], 0.05, (210, 140, 150))
    c.paint_ellipse(rx * 0.62, cy - ry * 0.25, 0.045, 0.045, (250, 250, 250))
    c.paint_ellipse(rx * 0.64, cy - ry * 0.25, 0.022, 0.022, (0, 0, 0))
    c.paint_line([(rx * 0.35, cy - ry * 0.7), (rx * 0.25, cy), (rx * 0.35, cy + ry * 0.6)], 0.02, scale(body, 0.7))
    return c.layer(rng, shading=0.3)


# ---------------------------------------------------------------------------------------------- people
def draw_person(rng: np.random.Generator, unit: float) -> Layer:
    c = _canvas(unit)
    skin = jitter(rng, pick(rng, [(245, 205, 170), (220, 170, 130), (170, 115, 80), (110, 70, 45)]), 8)
    shirt = jitter(rng, pick(rng, [(200, 40, 40), (40, 90, 200), (40, 150, 70), (240, 200, 40), (230, 230, 230),
                                    (60, 60, 60), (150, 60, 160), (240, 120, 30)]), 15)
    legs = jitter(rng, pick(rng, [(40, 50, 90), (30, 30, 35), (110, 90, 70), (90, 100, 120), (170, 150, 120)]), 10)
    hair = jitter(rng, pick(rng, [(30, 20, 15), (90, 55, 25), (200, 160, 80), (150, 150, 150), (120, 40, 20)]), 8)
    shoe = (30, 25, 25)
    sw = uniform(rng, 0.09, 0.12)
    spread = uniform(rng, 0.03, 0.3)
    hip, knee_len, shin_len = -0.48, 0.24, 0.23
    for side in (-1, 1):
        a = side * spread * uniform(rng, 0.6, 1.0)
        end = c.limb((side * sw * 0.5, hip), knee_len + shin_len, a, 0.085, legs)
        c.ellipse(end[0] + 0.025, end[1] - 0.015, 0.06, 0.025, shoe)
    if rng.random() < 0.3:
        c.polygon([(-sw, hip - 0.05), (sw, hip - 0.05), (sw + 0.09, hip + 0.2), (-sw - 0.09, hip + 0.2)], shirt)
    else:
        c.rect(-sw, hip - 0.05, sw, hip + 0.04, legs)
    c.rounded_rect(-sw, -0.82, sw, hip + 0.02, 0.05, shirt)
    wave = rng.random() < 0.25
    for side in (-1, 1):
        if wave and side == 1:
            a = np.pi - uniform(rng, 0.2, 0.7)
        else:
            a = side * uniform(rng, 0.05, 0.6)
        elbow = c.limb((side * (sw - 0.01), -0.79), 0.17, a, 0.065, shirt)
        hand = c.limb(elbow, 0.16, a * uniform(rng, 0.7, 1.2), 0.055, skin)
        c.ellipse(hand[0], hand[1], 0.03, 0.03, skin)
    c.rect(-0.025, -0.87, 0.025, -0.8, skin)
    hx, hy = uniform(rng, -0.01, 0.01), -0.925
    c.ellipse(hx, hy, 0.068, 0.08, skin)
    style = pick(rng, ["short", "long", "cap", "bald"])
    if style == "short":
        c.ellipse(hx, hy - 0.04, 0.072, 0.05, hair)
    elif style == "long":
        c.ellipse(hx, hy - 0.035, 0.078, 0.055, hair)
        c.rect(hx - 0.078, hy - 0.03, hx - 0.05, hy + 0.11, hair)
        c.rect(hx + 0.05, hy - 0.03, hx + 0.078, hy + 0.11, hair)
    elif style == "cap":
        c.ellipse(hx, hy - 0.045, 0.072, 0.045, shirt if rng.random() < 0.5 else legs)
        c.rect(hx, hy - 0.05, hx + 0.11, hy - 0.03, scale(shirt, 0.8))
    for side in (-1, 1):
        c.paint_ellipse(hx + side * 0.025, hy - 0.005, 0.009, 0.009, (30, 20, 20))
    return c.layer(rng, shading=0.2)


# ---------------------------------------------------------------------------------------------- vehicles
WHEEL = (30, 30, 32)


def _wheel(c: Canvas, x: float, r: float, hub: tuple) -> None:
    c.ellipse(x, -r, r, r, WHEEL)
    c.ellipse(x, -r, r * 0.52, r * 0.52, hub)
    c.paint_ellipse(x, -r, r * 0.15, r * 0.15, scale(hub, 0.6))


def draw_car(rng: np.random.Generator, unit: float) -> Layer:
    c = _canvas(unit)
    paint = jitter(rng, pick(rng, [(200, 30, 30), (30, 70, 170), (235, 235, 235), (170, 175, 180), (25, 25, 30),
                                    (240, 200, 30), (30, 120, 60), (230, 110, 20)]), 12)
    glass = jitter(rng, (150, 190, 215), 10)
    kind = pick(rng, ["sedan", "hatch", "suv"])
    length = {"sedan": 1.25, "hatch": 1.05, "suv": 1.2}[kind] * uniform(rng, 0.95, 1.05)
    body_top = {"sedan": -0.33, "hatch": -0.36, "suv": -0.42}[kind]
    roof = {"sedan": -0.56, "hatch": -0.6, "suv": -0.72}[kind] * uniform(rng, 0.96, 1.04)
    r = 0.12 * uniform(rng, 0.95, 1.1)
    L = length / 2
    c.rounded_rect(-L, body_top, L, -0.07, 0.06, paint)
    if kind == "hatch":
        cabin = [(-L + 0.02, body_top), (-L + 0.06, roof), (L * 0.25, roof), (L * 0.6, body_top)]
    elif kind == "suv":
        cabin = [(-L + 0.02, body_top), (-L + 0.04, roof), (L * 0.4, roof), (L * 0.65, body_top)]
    else:
        cabin = [(-L * 0.72, body_top), (-L * 0.45, roof), (L * 0.2, roof), (L * 0.5, body_top)]
    c.polygon(cabin, paint)
    inset = [(x * 0.9 + (0.0), y * 0.93 + body_top * 0.07) for x, y in cabin]
    c.polygon(inset, glass)
    mid = (inset[1][0] + inset[2][0]) / 2
    c.line([(mid, roof), (mid - 0.02, body_top)], 0.035, paint)
    for x in (-L + 0.25, L - 0.24):
        c.ellipse(x, -r, r + 0.025, r + 0.04, (25, 25, 25))
        _wheel(c, x, r, (175, 175, 180))
    c.ellipse(L - 0.03, body_top + 0.05, 0.035, 0.025, (250, 245, 200))
    c.rect(-L, body_top + 0.03, -L + 0.035, body_top + 0.08, (200, 20, 20))
    c.paint_line([(-L * 0.2, body_top + 0.06), (-L * 0.12, body_top + 0.06)], 0.015, scale(paint, 0.6))
    c.paint_line([(-L + 0.02, -0.14), (L - 0.02, -0.14)], 0.02, scale(paint, 0.55))
    return c.layer(rng, shading=0.25)


def draw_bicycle(rng: np.random.Generator, unit: float) -> Layer:
    c = _canvas(unit)
    frame = jitter(rng, pick(rng, [(200, 30, 30), (30, 80, 190), (20, 20, 20), (230, 230, 230), (40, 150, 60),
                                    (240, 200, 40), (140, 60, 160)]), 12)
    r = uniform(rng, 0.3, 0.35)
    tyre = uniform(rng, 0.035, 0.06)
    base = uniform(rng, 1.0, 1.15)
    rear, front = (-base / 2, -r), (base / 2, -r)
    crank = (-base * 0.05, -r + 0.02)
    seat = (-base * 0.2, -r - uniform(rng, 0.42, 0.5))
    step = rng.random() < 0.25
    head = (base * 0.33, -r - 0.45)
    head_low = (base * 0.37, -r - 0.32)
    for x, y in (rear, front):
        c.ring(x, y, r, tyre, WHEEL)
        c.ring(x, y, r - tyre, 0.012, (170, 170, 175))
        for k in range(6):
            a = np.pi * k / 6 + uniform(rng, 0, 0.5)
            c.line([(x - np.cos(a) * r, y - np.sin(a) * r), (x + np.cos(a) * r, y + np.sin(a) * r)], 0.008,
                   (160, 160, 165), round_ends=False)
        c.ellipse(x, y, 0.03, 0.03, (120, 120, 125))
    t = 0.035
    c.line([rear, crank], t, frame)
    c.line([rear, seat], t * 0.8, frame)
    c.line([crank, seat], t, frame)
    c.line([head_low, crank] if step else [head_low, crank], t * 1.1, frame)
    c.line([seat if not step else (seat[0] * 0.6 + crank[0] * 0.4, seat[1] * 0.4 + crank[1] * 0.6), head], t, frame)
    c.line([head, head_low, front], t * 0.9, frame)
    c.line([seat, (seat[0] - 0.02, seat[1] - 0.07)], 0.025, (120, 120, 125))
    c.rounded_rect(seat[0] - 0.11, seat[1] - 0.1, seat[0] + 0.07, seat[1] - 0.06, 0.02, (25, 25, 25))
    bar = (head[0] - 0.03, head[1] - 0.1)
    c.line([head, bar, (bar[0] + uniform(rng, 0.05, 0.12), bar[1] + uniform(rng, -0.02, 0.04))], 0.03, (50, 50, 55))
    pedal = uniform(rng, 0, 2 * np.pi)
    for s in (1, -1):
        end = (crank[0] + s * 0.1 * np.cos(pedal), crank[1] + s * 0.1 * np.sin(pedal))
        c.line([crank, end], 0.02, (90, 90, 95))
        c.rect(end[0] - 0.04, end[1] - 0.012, end[0] + 0.04, end[1] + 0.012, (30, 30, 30))
    c.ellipse(crank[0], crank[1], 0.06, 0.06, (110, 110, 115))
    return c.layer(rng, shading=0.1, outline=0.8)


def draw_boat(rng: np.random.Generator, unit: float) -> Layer:
    kind = pick(rng, ["sail", "motor", "row"])
    c = _canvas(unit * {"sail": 1.0, "motor": 1.7, "row": 2.0}[kind])
    hull = jitter(rng, pick(rng, [(240, 240, 240), (190, 40, 40), (30, 60, 140), (140, 90, 50), (40, 110, 80)]), 10)
    stripe = jitter(rng, pick(rng, [(200, 30, 30), (30, 60, 160), (250, 200, 40), (240, 240, 240)]), 10)
    L = uniform(rng, 0.55, 0.7) * (0.8 if kind == "row" else 1.0)
    deck = -uniform(rng, 0.22, 0.28)
    c.polygon([(-L, deck), (L + 0.15, deck - 0.06), (L - 0.15, 0.0), (-L + 0.12, 0.0)], hull)
    c.paint_polygon([(-L, deck + 0.04), (L + 0.1, deck - 0.01), (L + 0.06, deck + 0.03), (-L + 0.01, deck + 0.08)],
                    stripe)
    if kind == "sail":
        mast = uniform(rng, 0.95, 1.2)
        mx = -L * 0.1
        c.line([(mx, deck), (mx, deck - mast)], 0.025, (120, 100, 80))
        sail = jitter(rng, pick(rng, [(250, 250, 245), (245, 235, 210), (230, 80, 60)]), 5)
        c.polygon([(mx - 0.02, deck - mast + 0.03), (mx - 0.02, deck - 0.09), (mx - L * 0.9, deck - 0.09)], sail)
        c.polygon([(mx + 0.02, deck - mast + 0.08), (mx + 0.02, deck - 0.09), (L + 0.05, deck - 0.1)],
                  scale(sail, 0.93))
    elif kind == "motor":
        cab = (-L * 0.5, L * 0.3)
        top = deck - uniform(rng, 0.2, 0.28)
        c.polygon([(cab[0], deck), (cab[0] + 0.04, top), (cab[1] - 0.06, top), (cab[1] + 0.06, deck)],
                  jitter(rng, (235, 235, 235), 8))
        c.paint_polygon([(cab[0] + 0.06, top + 0.04), (cab[1] - 0.07, top + 0.04), (cab[1] - 0.02, deck - 0.04),
                         (cab[0] + 0.05, deck - 0.04)], (60, 90, 120))
        c.rect(-L - 0.02, deck - 0.12, -L + 0.08, deck + 0.02, (50, 50, 55))
    else:
        a = uniform(rng, 0.4, 0.9)
        c.line([(-L * 0.1, deck - 0.04), (-L * 0.1 - 0.6 * np.sin(a), deck + 0.6 * np.cos(a) * 0.35)], 0.025,
               (160, 120, 70))
        c.ellipse(-L * 0.1 - 0.6 * np.sin(a), deck + 0.6 * np.cos(a) * 0.35, 0.06, 0.025, (160, 120, 70))
    return c.layer(rng, shading=0.2)


# ---------------------------------------------------------------------------------------------- furniture
def draw_chair(rng: np.random.Generator, unit: float) -> Layer:
    c = _canvas(unit)
    kind = pick(rng, ["wood", "wood", "plastic", "office"])
    col = jitter(rng, (145, 95, 55) if kind == "wood" else
                 pick(rng, [(220, 60, 50), (40, 110, 190), (240, 240, 240), (40, 160, 90), (35, 35, 40)]), 12)
    dark = scale(col, 0.7)
    seat_y, depth, shift = -uniform(rng, 0.42, 0.5), uniform(rng, 0.38, 0.46), uniform(rng, 0.1, 0.16)
    back_h = uniform(rng, 0.4, 0.55)
    lean = uniform(rng, 0.0, 0.08)
    x0, x1 = -depth / 2, depth / 2
    if kind == "office":
        base = (30, 30, 35)
        c.line([(0.0, seat_y), (0.0, -0.08)], 0.05, (90, 90, 95))
        for dx in (-0.28, -0.1, 0.1, 0.28):
            c.line([(0, -0.08), (dx, -0.05)], 0.035, base)
            c.ellipse(dx, -0.03, 0.03, 0.03, base)
        c.rounded_rect(x0, seat_y - 0.07, x1, seat_y + 0.02, 0.03, col)
        c.line([(x0 + 0.04, seat_y), (x0 - lean, seat_y - 0.12)], 0.04, (60, 60, 65))
        c.rounded_rect(x0 - lean - 0.06, seat_y - back_h, x0 - lean + 0.05, seat_y - 0.12, 0.04, col)
        if rng.random() < 0.6:
            c.line([(x0 + 0.02, seat_y - 0.2), (x1 - 0.06, seat_y - 0.2), (x1 - 0.06, seat_y - 0.05)], 0.03, base)
        return c.layer(rng, shading=0.2)
    leg = 0.04 if kind == "wood" else 0.05
    for x, far in ((x1 + shift, True), (x0 + shift, True), (x1, False), (x0, False)):
        c.line([(x, seat_y + (-0.05 if far else 0)), (x, -0.0 - (0.05 if far else 0))], leg, dark if far else col,
               round_ends=False)
    c.polygon([(x0, seat_y), (x1, seat_y), (x1 + shift, seat_y - 0.05), (x0 + shift, seat_y - 0.05)], scale(col, 1.1))
    c.rect(x0, seat_y, x1, seat_y + 0.04, dark)
    top = seat_y - back_h
    for bx in (x0 + shift * 0.5, x0):
        c.line([(bx, seat_y), (bx - lean, top)], leg, col if bx == x0 else dark, round_ends=False)
    if kind == "plastic":
        c.polygon([(x0 - 0.01, seat_y - 0.06), (x0 - lean - 0.01, top), (x0 - lean + shift * 0.5 + 0.01, top - 0.04),
                   (x0 + shift * 0.5 + 0.01, seat_y - 0.1)], col)
    else:
        for k in range(int(rng.integers(2, 4))):
            y = top + 0.03 + k * 0.09
            f = (y - seat_y) / (top - seat_y)
            c.line([(x0 - lean * f, y), (x0 + shift * 0.5 - lean * f, y - 0.03)], 0.035, col, round_ends=False)
    return c.layer(rng, shading=0.2)


# ---------------------------------------------------------------------------------------------- props
def draw_rock(rng: np.random.Generator, unit: float) -> Layer:
    c = _canvas(unit)
    n = int(rng.integers(7, 11))
    w = uniform(rng, 0.6, 1.1)
    pts = []
    for k in range(n + 1):
        a = np.pi * k / n
        r = uniform(rng, 0.8, 1.0)
        pts.append((-np.cos(a) * w * r, -np.sin(a) * 0.9 * r))
    c.polygon(pts, jitter(rng, pick(rng, [(120, 118, 112), (95, 90, 85), (140, 130, 115)]), 10))
    return c.layer(rng, shading=0.4, grain=0.12)


def draw_bush(rng: np.random.Generator, unit: float) -> Layer:
    c = _canvas(unit)
    green = jitter(rng, pick(rng, [(50, 110, 40), (70, 130, 50), (40, 90, 45)]), 12)
    for _ in range(int(rng.integers(6, 10))):
        r = uniform(rng, 0.25, 0.4)
        c.ellipse(uniform(rng, -0.5, 0.5), -uniform(rng, r, 1.0 - r * 0.5), r, r, scale(green, uniform(rng, 0.8, 1.15)))
    return c.layer(rng, shading=0.4, grain=0.15)


def draw_crate(rng: np.random.Generator, unit: float) -> Layer:
    c = _canvas(unit)
    wood = jitter(rng, (170, 120, 70), 15)
    w = uniform(rng, 0.45, 0.6)
    c.rect(-w, -1.0, w, 0.0, wood)
    for k in range(1, 4):
        c.paint_line([(-w, -k * 0.25), (w, -k * 0.25)], 0.03, scale(wood, 0.6))
    c.paint_line([(-w, 0), (w, -1.0)], 0.06, scale(wood, 0.75))
    return c.layer(rng, shading=0.3)


def draw_barrel(rng: np.random.Generator, unit: float) -> Layer:
    c = _canvas(unit)
    col = jitter(rng, pick(rng, [(40, 90, 160), (170, 50, 40), (60, 110, 60), (130, 90, 50)]), 12)
    w = uniform(rng, 0.3, 0.38)
    c.rounded_rect(-w, -1.0, w, 0.0, 0.08, col)
    for y in (-0.8, -0.2):
        c.paint_line([(-w, y), (w, y)], 0.05, scale(col, 0.55))
    return c.layer(rng, shading=0.3)


SUBJECTS: dict[str, tuple[SubjectDrawer, float]] = {
    # name: (drawer, drawn height in units of the requested reference height)
    "cow": (draw_cow, 0.9),
    "sheep": (draw_sheep, 0.95),
    "camel": (draw_camel, 0.8),
    "car": (draw_car, 1.15),
    "boat": (draw_boat, 0.75),
    "person": (draw_person, 1.0),
    "chair": (draw_chair, 0.9),
    "penguin": (draw_penguin, 0.9),
    "bicycle": (draw_bicycle, 0.85),
    "fish": (draw_fish, 0.9),
}

PROPS: tuple[SubjectDrawer, ...] = (draw_rock, draw_bush, draw_crate, draw_barrel)


def draw_subject(name: str, rng: np.random.Generator, height: int) -> Layer:
    """Draw one subject of about ``height`` pixels (its natural size relative to the others), flipped
    left-right half of the time.

    Raises:
        KeyError: ``name`` is not a drawable subject (see :data:`SUBJECTS`).
    """
    drawer, size = SUBJECTS[name]
    layer = drawer(rng, max(4.0, height * size))
    return layer.flipped() if rng.random() < 0.5 else layer


def draw_prop(height: int, rng: np.random.Generator) -> Layer:
    """A distractor (rock, bush, crate, barrel) about ``height`` pixels tall, to occlude a subject."""
    drawer = PROPS[int(rng.integers(len(PROPS)))]
    layer = drawer(rng, max(3.0, float(height)))
    return layer.flipped() if rng.random() < 0.5 else layer
