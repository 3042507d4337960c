"""Dense two-way (normal, anomalous) maps and the segmentation losses APRIL-GAN and AnomalyCLIP train them with.

* :func:`two_way_logits`: ``scale · [⟨z, t_n⟩, ⟨z, t_a⟩]`` per patch token against each image's text pair;
* :func:`grid_upsample`: patch-grid values ``(B, N, K)`` → ``(B, K, size, size)`` by bilinear interpolation;
* :func:`resize_mask`: ground truth to the size the losses are computed at (both official scripts: the input
  size; ``Batch.gt_masks`` come at ``EVAL_RESOLUTION``);
* :func:`focal_loss`: the focal loss on class probabilities with the label smoothing both official
  implementations use (a one-hot target clamped to ``[s / (K − 1), 1 − s]``, ``p_t = Σ_k y_k p_k + s``,
  ``s = 1e-5``; ``α = 1``, ``γ = 2``), mean over pixels;
* :func:`dice_loss`: ``1 − mean_b (2 Σ p·g + 1) / (Σ p + Σ g + 1)`` per image, smoothing 1;
* :func:`gaussian_smooth`: a Gaussian filter of maps with SciPy's ``gaussian_filter`` defaults (kernel radius
  ``⌊4σ + 0.5⌋``, edges reflected with the edge pixel repeated), as AnomalyCLIP smooths its test maps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

FOCAL_GAMMA = 2.0
FOCAL_SMOOTH = 1e-5
DICE_SMOOTH = 1.0


def two_way_logits(tokens: torch.Tensor, text: torch.Tensor, scale: float) -> torch.Tensor:
    """``scale · ⟨z, t_k⟩`` for the normal (k = 0) and anomalous (k = 1) text embedding.

    Args:
        tokens: ``(B, N, D)`` L2-normalised patch features.
        text: ``(B, 2, D)`` L2-normalised (normal, anomalous) text embeddings of each image.
        scale: inverse temperature.

    Returns:
        ``(B, N, 2)``.
    """
    return scale * torch.einsum("bnd,bkd->bnk", tokens, text.to(tokens.dtype))


def grid_upsample(values: torch.Tensor, grid: tuple[int, int], size: int, align_corners: bool) -> torch.Tensor:
    """``(B, N, K)`` per-patch values in row-major grid order → ``(B, K, size, size)`` (bilinear)."""
    B, N, K = values.shape
    maps = values.transpose(1, 2).reshape(B, K, *grid)
    return F.interpolate(maps.float(), size=(size, size), mode="bilinear", align_corners=align_corners)


def resize_mask(mask: torch.Tensor, size: int) -> torch.Tensor:
    """``(B, R, R)`` bool mask → ``(B, size, size)`` bool (nearest, pixel-centre exact); unchanged at ``R = size``."""
    if mask.shape[-1] == size and mask.shape[-2] == size:
        return mask.bool()
    return F.interpolate(mask[:, None].float(), size=(size, size), mode="nearest-exact")[:, 0] > 0.5


def focal_loss(probs: torch.Tensor, target: torch.Tensor, gamma: float = FOCAL_GAMMA,
               smooth: float = FOCAL_SMOOTH) -> torch.Tensor:
    """Focal loss ``mean(−(1 − p_t)^γ log p_t)`` over every pixel.

    Args:
        probs: ``(B, K, H, W)`` class probabilities (summing to 1 over ``K``).
        target: ``(B, H, W)`` class indices (bool or int: 0 normal, 1 anomalous for ``K = 2``).
        gamma: focusing exponent.
        smooth: label smoothing and the offset added to ``p_t`` before the log.

    Returns:
        A scalar.
    """
    K = probs.shape[1]
    onehot = F.one_hot(target.long(), K).permute(0, 3, 1, 2).to(probs.dtype)  # (B, K, H, W)
    onehot = onehot.clamp(smooth / (K - 1), 1.0 - smooth)
    pt = (onehot * probs).sum(dim=1) + smooth
    return (-(1.0 - pt).pow(gamma) * pt.log()).mean()


def dice_loss(prob: torch.Tensor, target: torch.Tensor, smooth: float = DICE_SMOOTH) -> torch.Tensor:
    """Binary Dice loss, per image then averaged over the batch.

    Args:
        prob: ``(B, H, W)`` foreground probabilities.
        target: ``(B, H, W)`` foreground mask (bool or 0/1).

    Returns:
        A scalar.
    """
    p = prob.reshape(prob.shape[0], -1)
    g = target.reshape(target.shape[0], -1).to(p.dtype)
    dice = (2.0 * (p * g).sum(dim=1) + smooth) / (p.sum(dim=1) + g.sum(dim=1) + smooth)
    return 1.0 - dice.mean()


def _reflect_index(n: int, radius: int, device: torch.device) -> torch.Tensor:
    """Indices ``-radius … n + radius − 1`` folded back into ``[0, n)`` with the edge repeated (d c b a | a b c d)."""
    idx = torch.arange(-radius, n + radius, device=device)
    period = 2 * n
    idx = torch.remainder(idx, period)
    return torch.where(idx >= n, period - 1 - idx, idx)


def gaussian_smooth(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian filter of ``(B, H, W)`` maps (SciPy ``gaussian_filter`` with its defaults).

    ``sigma <= 0`` returns the maps unchanged.
    """
    if sigma <= 0:
        return maps
    radius = int(4.0 * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, device=maps.device, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(torch.float32)
    out = maps.float()
    H, W = out.shape[-2:]
    out = out[:, _reflect_index(H, radius, maps.device)][:, :, _reflect_index(W, radius, maps.device)]
    out = F.conv2d(out.unsqueeze(1), kernel.view(1, 1, -1, 1))  # along H
    out = F.conv2d(out, kernel.view(1, 1, 1, -1))  # along W
    return out[:, 0]


def relative_sigma(sigma: float, size: int, reference: int) -> float:
    """``sigma`` given in pixels of a ``reference``-pixel input, for an input of ``size`` pixels."""
    return sigma * size / reference if reference > 0 and math.isfinite(sigma) else 0.0
