"""WinCLIP's aggregation of window scores into patch scores, and of several maps into one.

Harmonic averaging (the paper's harmonic aggregation of windows): the score of patch ``j`` at one scale is the harmonic mean of the scores of
the windows ``u`` that cover it, ``M_j = |U_j| / Σ_{u ∈ U_j} 1 / score(u)``. It weights low (normal) window
scores most, so a patch is called anomalous only when every window around it is. Scores are clamped at
``EPS`` from below before inverting, which changes nothing for any probability float32 can tell from zero
and gives the right limit (≈ 0) when one is exactly 0.
"""

from __future__ import annotations

import torch

EPS = 1e-12


def harmonic_aggregation(window_scores: torch.Tensor, coverage: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Per-patch harmonic mean of the scores of the windows covering the patch.

    Args:
        window_scores: ``(B, M)`` positive scores of the ``M`` windows.
        coverage: ``(M, N)`` 0/1 coverage matrix (:func:`~caadbench.baselines.winclip.windows.coverage_matrix`); every
            patch must be covered by at least one window.
        eps: lower clamp of the scores before inverting.

    Returns:
        ``(B, N)`` patch scores.
    """
    with torch.autocast(window_scores.device.type, enabled=False):  # reciprocals need float32, not bf16
        coverage = coverage.float()
        inverse_sum = (1.0 / window_scores.float().clamp_min(eps)) @ coverage  # (B, N)
        return coverage.sum(dim=0) / inverse_sum


def harmonic_mean(maps: list[torch.Tensor], eps: float = EPS) -> torch.Tensor:
    """Element-wise harmonic mean of equally shaped tensors: ``n / Σ_i 1 / x_i``."""
    stacked = torch.stack(maps).float()
    return len(maps) / (1.0 / stacked.clamp_min(eps)).sum(dim=0)
