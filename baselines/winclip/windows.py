"""WinCLIP's sliding windows over the patch grid, as index tensors built once per grid.

A window of size ``s`` is an ``s × s`` block of patches; windows slide with stride 1 (the paper's setting) so
a ``gh × gw`` grid has ``(gh − s + 1)(gw − s + 1)`` of them. Windows are numbered row-major by their top-left
patch, and the patches inside a window are listed row-major, as row-major indices ``r · gw + c`` into the
grid (the order of :class:`~caadbench.models.backbone.ClipBackbone`'s patch tokens).
"""

from __future__ import annotations

import torch


def window_indices(grid: tuple[int, int], size: int, stride: int = 1) -> torch.Tensor:
    """Patch indices of every window of one size.

    Args:
        grid: ``(gh, gw)`` patch grid.
        size: window side ``s`` in patches.
        stride: step between windows in patches.

    Returns:
        ``(M, s * s)`` int64, ``M = (⌊(gh − s) / stride⌋ + 1)(⌊(gw − s) / stride⌋ + 1)``.

    Raises:
        ValueError: the window does not fit the grid, or a non-positive size/stride.
    """
    gh, gw = grid
    if size < 1 or stride < 1 or size > min(gh, gw):
        raise ValueError(f"window size {size} (stride {stride}) does not fit a {gh}x{gw} patch grid")
    rows = torch.arange(0, gh - size + 1, stride)
    cols = torch.arange(0, gw - size + 1, stride)
    top_left = (rows[:, None] * gw + cols[None, :]).reshape(-1)  # (M,)
    offsets = (torch.arange(size)[:, None] * gw + torch.arange(size)[None, :]).reshape(-1)  # (s*s,)
    return top_left[:, None] + offsets[None, :]


def coverage_matrix(indices: torch.Tensor, n_patches: int) -> torch.Tensor:
    """``(M, N)`` float32 0/1 matrix: entry ``(m, j)`` is 1 when window ``m`` covers patch ``j``."""
    cover = torch.zeros(indices.shape[0], n_patches)
    return cover.scatter_(1, indices, 1.0)
