"""Heat-map overlays: the image, its anomaly map blended over it, a colour bar, and the score in the title.

Rendering decisions (``docs/predict.md``):

* the image is shown at its own aspect ratio, its longer side scaled into [:data:`MIN_SIDE`, :data:`MAX_SIDE`]
  pixels (large photos are reduced, thumbnails enlarged), so an overlay stays small and readable;
* the map (the model's, at its input size) is resized bilinearly to the shown image, coloured with the
  ``inferno`` colour map and blended at :data:`ALPHA` opacity (one image pixel per PNG pixel);
* the colour scale is [0, 1] when the map lies in it (every built-in model's maps are probabilities), so
  overlays of one run compare by colour; otherwise the map's own range, which the colour bar shows.
"""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from PIL import Image

MIN_SIDE = 320
MAX_SIDE = 1024
ALPHA = 0.5
CMAP = "inferno"
DPI = 100


def display_size(height: int, width: int) -> tuple[int, int]:
    """``(h, w)`` of the shown image: the aspect ratio kept, the longer side in [MIN_SIDE, MAX_SIDE]."""
    side = max(height, width)
    scale = min(max(side, MIN_SIDE), MAX_SIDE) / side
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_map(amap: np.ndarray | torch.Tensor, height: int, width: int) -> np.ndarray:
    """``(S, S)`` map → ``(height, width)`` float32, bilinear (align_corners=False), as evaluation resizes maps."""
    t = torch.as_tensor(amap, dtype=torch.float32)
    if tuple(t.shape) != (height, width):
        t = F.interpolate(t[None, None], size=(height, width), mode="bilinear", align_corners=False)[0, 0]
    return t.numpy()


def color_range(amap: np.ndarray) -> tuple[float, float]:
    """The colour scale of a map: (0, 1) when it lies in [0, 1], else its own (min, max)."""
    lo, hi = float(np.min(amap)), float(np.max(amap))
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    return lo, hi if hi > lo else lo + 1e-6


def blend(rgb: np.ndarray, heat: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """``(h, w, 3)`` uint8: ``(1 - ALPHA) · rgb + ALPHA · CMAP(heat)`` with ``heat`` scaled from [vmin, vmax]."""
    colours = colormaps[CMAP](np.clip((heat - vmin) / (vmax - vmin), 0.0, 1.0))[..., :3] * 255.0
    return np.round((1.0 - ALPHA) * rgb.astype(np.float64) + ALPHA * colours).astype(np.uint8)


def render_overlay(rgb: np.ndarray, amap: np.ndarray | torch.Tensor, title: str) -> bytes:
    """PNG bytes of the overlay (the blend is computed here at the shown size; matplotlib only lays it out with
    the title and the colour bar, one image pixel per PNG pixel).

    Args:
        rgb: ``(H, W, 3)`` uint8 image (EXIF-oriented).
        amap: ``(S, S)`` anomaly map at the model's input size (higher is more anomalous).
        title: the line above the image (subject, score, label).
    """
    h, w = display_size(*rgb.shape[:2])
    enlarge = h > rgb.shape[0]
    shown = rgb if rgb.shape[:2] == (h, w) else np.asarray(
        Image.fromarray(rgb).resize((w, h), Image.NEAREST if enlarge else Image.LANCZOS))
    heat = resize_map(amap, h, w)
    vmin, vmax = color_range(heat)
    pad, bar, top = 8, 70, 30  # pixels: margin, colour bar column, title row
    fig_w, fig_h = w + 2 * pad + bar, h + 2 * pad + top
    fig = Figure(figsize=(fig_w / DPI, fig_h / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((pad / fig_w, pad / fig_h, w / fig_w, h / fig_h))
    ax.imshow(blend(shown, heat, vmin, vmax), interpolation="none", aspect="auto")
    ax.set_axis_off()
    fig.text(pad / fig_w, 1 - 8 / fig_h, title, fontsize=9, va="top", ha="left")
    cax = fig.add_axes(((w + 2 * pad + 8) / fig_w, pad / fig_h, 12 / fig_w, h / fig_h))
    colorbar = fig.colorbar(ScalarMappable(Normalize(vmin, vmax), CMAP), cax=cax)
    colorbar.ax.tick_params(labelsize=7)
    colorbar.set_label("anomaly map", fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None}, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


__all__ = ["blend", "color_range", "display_size", "render_overlay", "resize_map"]
