"""Training-mask quality: the ``masks`` option of CoRe-CLIP and the controlled, seeded degradations behind the
paper's mask-quality ablation (ground-truth vs SAM masks), so that it runs without SAM.

``masks`` is one of

* ``gt``: the shards' subject masks as they are; ``none``: no masks (every view is the full image);
* ``bbox``: each mask replaced by its filled bounding box (a box prompt, no segmentation);
* ``dilate:N`` / ``erode:N``: each mask grown / shrunk by ``N`` pixels (square structuring element of side
  ``2r + 1``; outside the image counts as background), ``N`` measured at the evaluation resolution
  (:data:`~caadbench.data.batch.EVAL_RESOLUTION` = 256 px) and scaled to each mask's side: ``r = round(N·H/256)``;
* ``drop:P``: the mask's bounding box is cut into a 4 × 4 grid and every cell is dropped with probability
  ``P`` (at least one cell holding mask pixels is always kept): missing parts, as an under-segmentation.

Degradation is seeded per image by ``(seed, key)``, so an image gets the same degraded mask in every epoch, at
every resolution (the subject mask at the input size and the pixel-loss target at the evaluation size share the
cell draws) and whatever the batch it lands in. Only *training* reads these masks: prediction reads none, and
the evaluator's ground truth is the exact test mask.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from caadbench.data.batch import EVAL_RESOLUTION
from caadbench.errors import ModelError

PLAIN = ("gt", "none", "bbox")
DEGRADED = ("bbox", "dilate", "erode", "drop")
DROP_GRID = 4
"""Cells per side of the bounding-box grid of ``drop``."""


@dataclass(frozen=True)
class MaskSpec:
    """A parsed ``masks`` option: ``kind`` in ``gt``/``none``/``bbox``/``dilate``/``erode``/``drop``."""

    kind: str
    amount: float = 0.0

    @property
    def degraded(self) -> bool:
        return self.kind in DEGRADED


def parse_masks(value: str) -> MaskSpec:
    """``"gt"``, ``"none"``, ``"bbox"``, ``"dilate:N"``, ``"erode:N"`` (N ≥ 1 pixels) or ``"drop:P"`` (0 ≤ P < 1).

    Raises:
        ModelError: anything else, naming the accepted forms.
    """
    kind, sep, amount = str(value).partition(":")
    try:
        if not sep and kind in PLAIN:
            return MaskSpec(kind)
        if sep and kind in ("dilate", "erode") and int(amount) >= 1 and str(int(amount)) == amount:
            return MaskSpec(kind, int(amount))
        if sep and kind == "drop" and 0.0 <= float(amount) < 1.0:
            return MaskSpec(kind, float(amount))
    except ValueError:
        pass
    raise ModelError("CoreClipConfig.masks", f"{value!r} is not one of gt, none, bbox, dilate:N, erode:N (N ≥ 1 "
                                             "pixels at 256 px), drop:P (0 ≤ P < 1)")


def image_generator(seed: int, key: str) -> torch.Generator:
    """A generator seeded by ``(seed, key)`` only (not by Python's randomised ``hash``)."""
    digest = hashlib.sha256(f"{int(seed)}\x1f{key}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "big") & (2**63 - 1))


def bounding_boxes(masks: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)`` bool → ``(B, H, W)`` bool: each mask's filled bounding box (empty stays empty)."""
    rows, cols = masks.any(dim=2), masks.any(dim=1)  # (B, H), (B, W)
    return _span(rows).unsqueeze(2) & _span(cols).unsqueeze(1)


def _span(hits: torch.Tensor) -> torch.Tensor:
    """``(B, L)`` bool → ``(B, L)``: true from each row's first to its last hit."""
    seen_before = hits.cumsum(dim=1) > 0
    seen_after = hits.flip(1).cumsum(dim=1).flip(1) > 0
    return seen_before & seen_after


def dilate(masks: torch.Tensor, radius: int) -> torch.Tensor:
    """``(B, H, W)`` bool grown by a ``(2r+1)²`` square (pixels outside the image are background)."""
    if radius <= 0:
        return masks.clone()
    return F.max_pool2d(masks.float().unsqueeze(1), 2 * radius + 1, stride=1, padding=radius)[:, 0] > 0.5


def erode(masks: torch.Tensor, radius: int) -> torch.Tensor:
    """``(B, H, W)`` bool shrunk by a ``(2r+1)²`` square; pixels outside the image count as background."""
    if radius <= 0:
        return masks.clone()
    outside = F.pad((~masks).float().unsqueeze(1), (radius,) * 4, value=1.0)
    return F.max_pool2d(outside, 2 * radius + 1, stride=1)[:, 0] < 0.5


def drop_parts(masks: torch.Tensor, probability: float, generators: list[torch.Generator]) -> torch.Tensor:
    """``(B, H, W)`` bool with cells of each mask's bounding-box grid removed (one generator per image)."""
    out = masks.clone()
    g = DROP_GRID
    for i, gen in enumerate(generators):
        drop = torch.rand(g * g, generator=gen) < probability  # drawn whatever the mask, so resolutions agree
        ys, xs = torch.nonzero(masks[i], as_tuple=True)
        if len(ys) == 0 or not drop.any():
            continue
        y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
        cell = (torch.clamp((ys - y0) * g // (y1 - y0), max=g - 1) * g
                + torch.clamp((xs - x0) * g // (x1 - x0), max=g - 1))
        filled = torch.bincount(cell, minlength=g * g)
        drop &= filled > 0
        if bool((drop | (filled == 0)).all()):  # would remove the whole subject: keep its largest cell
            drop[int(torch.argmax(filled))] = False
        gone = drop[cell]
        out[i, ys[gone], xs[gone]] = False
    return out


def degrade_masks(masks: torch.Tensor, spec: MaskSpec, keys: list[str], seed: int) -> torch.Tensor:
    """Apply ``spec`` to ``(B, H, W)`` bool masks of the images ``keys`` (seeded by ``(seed, key)``).

    ``gt`` and ``none`` return the masks unchanged (``none`` is handled by the caller: no views at all).
    """
    if not spec.degraded:
        return masks
    masks = masks.bool()
    if spec.kind == "bbox":
        return bounding_boxes(masks)
    if spec.kind in ("dilate", "erode"):
        radius = int(round(spec.amount * masks.shape[-2] / EVAL_RESOLUTION))
        return dilate(masks, radius) if spec.kind == "dilate" else erode(masks, radius)
    return drop_parts(masks.cpu(), spec.amount, [image_generator(seed, k) for k in keys]).to(masks.device)


__all__ = ["DROP_GRID", "MaskSpec", "bounding_boxes", "degrade_masks", "dilate", "drop_parts", "erode",
           "image_generator", "parse_masks"]
