"""CoRe-CLIP's losses. Every one is a mean over samples (or classes), so that averaging gradients over DDP ranks
equals one process on the whole global batch. Formulas (t's and z's are L2-normalised; see docs/coreclip.md):

* orthogonality  ``mean_s (t0_s · t1_s)²``
* consistency    ``mean_s 1 − cos(t0_s + t1_s, c_s)``, ``c_s`` the frozen encoder's ``t0_s + t1_s``
* grounding      ``mean_s 1 − cos(t0_s, v_s)``
  + (with ≥ 2 classes) ``mean_s CE(softmax_s'(cos(v_s, t0_s')/τ_g), s)``, ``v_s`` the mean frozen global
  embedding of the normal train images of class ``s``
* entropy band   ``mean_i relu(h_lo − H(α_i)/log n) + relu(H(α_i)/log n − h_hi)``
* cross-branch   ``mean_{i,b} 1 − cos(z_b(full image_i), stopgrad z_b(view_b(image_i)))`` over the masked branches
* image BCE      ``BCE(logit_i, y_i)``; pixel BCE ``BCE(patch logit, fraction of the patch inside the gt mask)``
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def orthogonality_loss(t0: torch.Tensor, t1: torch.Tensor) -> torch.Tensor:
    """``(S, D)`` normal and anomalous prototypes → scalar ``mean_s (t0_s·t1_s)²``."""
    return (t0 * t1).sum(dim=-1).pow(2).mean()


def consistency_loss(t0: torch.Tensor, t1: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
    """Keep the class identity: the pair's mean direction stays at the frozen one. ``anchor`` ``(S, D)``."""
    return (1.0 - F.cosine_similarity(t0 + t1, anchor, dim=-1)).mean()


def grounding_loss(t0: torch.Tensor, visual: torch.Tensor, present: torch.Tensor,
                   temperature: float = 0.07) -> torch.Tensor:
    """Align each class's normal prototype with the visual class mean, and tell classes apart by it.

    Args:
        t0: ``(S, D)`` normal prototypes.
        visual: ``(S, D)`` mean image embedding of the normal train images of each class (any row for classes
            without images).
        present: ``(S,)`` bool, classes that have images.
        temperature: τ_g of the contrastive term.

    Returns:
        Scalar (0 when no class has images).
    """
    idx = present.nonzero().flatten()
    if idx.numel() == 0:
        return t0.sum() * 0.0
    v = F.normalize(visual[idx], dim=-1)
    t = F.normalize(t0, dim=-1)
    loss = (1.0 - (v * t[idx]).sum(dim=-1)).mean()
    if t0.shape[0] >= 2:
        logits = v @ t.T / temperature
        loss = loss + F.cross_entropy(logits, idx)
    return loss


def normalized_entropy(alpha: torch.Tensor) -> torch.Tensor:
    """``(B, n)`` weights → ``(B,)`` entropy divided by log n (0 one-hot … 1 uniform; 0 when n == 1)."""
    n = alpha.shape[-1]
    if n < 2:
        return alpha.new_zeros(alpha.shape[0])
    h = -(alpha * alpha.clamp_min(1e-12).log()).sum(dim=-1)
    return h / math.log(n)


def entropy_band_loss(alpha: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Penalise per-image α entropies outside ``[low, high]`` (fractions of log n): neither uniform nor one-hot."""
    h = normalized_entropy(alpha.float())
    return (F.relu(low - h) + F.relu(h - high)).mean()


def cross_branch_loss(full: torch.Tensor, view: torch.Tensor) -> torch.Tensor:
    """``(B, m, D)`` branch embeddings of the full image vs of the branch's own view (the target, no gradient)."""
    return (1.0 - F.cosine_similarity(full, view.detach(), dim=-1)).mean()


def image_bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``(B,)`` score logits vs ``(B,)`` 0/1 labels."""
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


def patch_targets(gt_masks: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """``(B, R, R)`` bool ground truth → ``(B, gh·gw)`` fraction of each patch inside it."""
    frac = F.adaptive_avg_pool2d(gt_masks.unsqueeze(1).float(), grid)
    return frac.flatten(1)


def pixel_bce(patch_logits: torch.Tensor, gt_masks: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """``(B, N)`` patch logits vs the ground truth's patch coverage (soft targets)."""
    targets = patch_targets(gt_masks, grid).to(patch_logits.device)
    return F.binary_cross_entropy_with_logits(patch_logits.float(), targets)
