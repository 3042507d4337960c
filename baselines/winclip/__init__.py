"""WinCLIP and WinCLIP+ (Jeong et al., CVPR 2023): windows, aggregation, and the registered model."""

from caadbench.baselines.winclip.aggregation import harmonic_aggregation, harmonic_mean
from caadbench.baselines.winclip.model import (
    PAPER_PRETRAINED,
    WINCLIP_LOGIT_SCALE,
    WinClip,
    WinClipConfig,
    WinClipFeatures,
)
from caadbench.baselines.winclip.windows import coverage_matrix, window_indices

__all__ = [
    "PAPER_PRETRAINED",
    "WINCLIP_LOGIT_SCALE",
    "WinClip",
    "WinClipConfig",
    "WinClipFeatures",
    "coverage_matrix",
    "harmonic_aggregation",
    "harmonic_mean",
    "window_indices",
]
