"""Running a checkpoint's image tower at another input size: its positional embedding resized to the new patch grid.

A ViT checkpoint's positional embedding holds one vector per patch of the grid it was trained on (24 × 24 for
ViT-L/14 at 336 px) plus the class token's. At another input size (518 px: 37 × 37) the patch part is resized as
an image of ``C`` channels; the class token's vector is kept. How it is resized changes the network, so it
follows each method's official code (``docs/backbones.md``, "Positional-embedding resizing"):

* ``bicubic-antialias``: open_clip's ``resize_pos_embed`` (bicubic, antialiased, align_corners=False), which is
  what every open_clip user gets and what APRIL-GAN's open_clip fork does;
* ``bilinear``: bilinear, align_corners=False, no antialiasing, as AnomalyCLIP's official vision transformer
  resizes it when the input grid differs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from caadbench.errors import ModelError

POS_EMBED_RESIZES: dict[str, tuple[str, bool]] = {
    "bicubic-antialias": ("bicubic", True),
    "bilinear": ("bilinear", False),
}
"""``{name: (F.interpolate mode, antialias)}`` of every supported resizing."""
DEFAULT_POS_EMBED_RESIZE = "bicubic-antialias"


def check_resize(mode: str, where: str | None = None) -> str:
    """``mode`` when it names a resizing of :data:`POS_EMBED_RESIZES`.

    Raises:
        ModelError: naming ``where`` and the known names.
    """
    if mode not in POS_EMBED_RESIZES:
        raise ModelError(where, f"pos_embed_resize must be one of {', '.join(POS_EMBED_RESIZES)}, got {mode!r}")
    return mode


def resize_positions(positions: torch.Tensor, grid: tuple[int, int], mode: str) -> torch.Tensor:
    """``(1 + h·w, C)`` positional embedding (class token first, a square patch grid) → ``(1 + gh·gw, C)``.

    Args:
        positions: the checkpoint's embedding.
        grid: ``(gh, gw)`` the new patch grid.
        mode: a name of :data:`POS_EMBED_RESIZES`.
    """
    interpolation, antialias = POS_EMBED_RESIZES[check_resize(mode)]
    side = math.isqrt(positions.shape[0] - 1)
    if side * side != positions.shape[0] - 1:
        raise ModelError(None, f"a positional embedding of {positions.shape[0]} tokens is not [CLS] + a square grid")
    patches = positions[1:].reshape(1, side, side, -1).permute(0, 3, 1, 2).float()
    patches = F.interpolate(patches, size=grid, mode=interpolation, antialias=antialias, align_corners=False)
    patches = patches.permute(0, 2, 3, 1).reshape(grid[0] * grid[1], -1).to(positions.dtype)
    return torch.cat([positions[:1], patches])


def set_input_size(visual: nn.Module, image_size: int, mode: str) -> bool:
    """Make open_clip's ViT image tower take ``image_size``-pixel inputs, its positional embedding resized by ``mode``.

    The tower's forward adds ``positional_embedding`` to the patch tokens of whatever grid the input gives; its
    ``image_size`` and ``grid_size`` say which grid that is (what the adapter reads).

    Returns:
        whether the grid changed (``False``: the tower already takes that size).
    """
    grid = (image_size // int(visual.patch_size[0]), image_size // int(visual.patch_size[1]))
    if tuple(visual.grid_size) == grid:
        return False
    with torch.no_grad():
        resized = resize_positions(visual.positional_embedding.detach(), grid, mode)
    visual.positional_embedding = nn.Parameter(resized, requires_grad=visual.positional_embedding.requires_grad)
    visual.image_size, visual.grid_size = (image_size, image_size), grid
    return True


__all__ = ["DEFAULT_POS_EMBED_RESIZE", "POS_EMBED_RESIZES", "check_resize", "resize_positions", "set_input_size"]
