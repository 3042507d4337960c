"""WinCLIP and WinCLIP+ (Jeong et al., "WinCLIP: Zero-/Few-Shot Anomaly Classification and Segmentation",
CVPR 2023, arXiv 2303.14814), on the shared open_clip backbone.

Notation: image ``x`` of subject ``o``; ``f`` the L2-normalised image embedding; ``t_n, t_a`` the subject's
prototypes (compositional prompt ensemble: 7 normal × 22 and 4 anomalous × 22 prompts, each embedding
L2-normalised, averaged per side, renormalised); ``ascore_0(g) = softmax(s · [⟨g, t_n⟩, ⟨g, t_a⟩])[1]`` with
``s`` the inverse temperature.

Zero-shot (WinCLIP):

1. windows of ``k × k`` patches for ``k`` in ``scales`` (2 and 3), stride 1, over the ``gh × gw`` grid (15 × 15
   for ViT-B-16-plus-240 at 240 px); each window is encoded by the *full* image encoder on the class token and
   the window's patch tokens only (token masking, their positional embeddings kept): ``g_u``, L2-normalised;
2. per scale, each patch's score is the harmonic mean of ``ascore_0(g_u)`` over the windows ``u`` covering it;
3. the zero-shot map is the harmonic mean, per patch, of the per-scale maps and of the image-level score
   ``ascore_0(f)`` (the whole image as the largest window): ``M_0 = (1 + K) / (1/ascore_0(f) + Σ_k 1/M_k)``;
4. the image score is ``ascore_0(f)``.

Few-shot (WinCLIP+): the memory of subject ``o`` holds, for its k normal support images, every window embedding
of each scale (``R_k``) and every patch feature (``R_p``: the paper's "penultimate" patch features, read as the
last block's patch tokens after the final LayerNorm, before the projection, as anomalib does; ``patch_layer``
and ``patch_features`` change this). For a query, ``a(g, R) = ½ (1 − max_{r ∈ R} ⟨g, r⟩)``; the window scores of a scale are
harmonically aggregated to patches as in 2., the patch scores are used as they are, and the few-shot map is
their mean ``M_W = (a_p + Σ_k M_k^W) / (1 + K)``. Final map ``½ (M_0 + M_W)``; image score
``½ (ascore_0(f) + max_j M_W(j))``.

Maps are computed on the patch grid and upsampled bilinearly (align_corners=False) to the input size; the
max for the image score is taken on the grid. All windows of all images of a batch go through the encoder in
one call per scale (chunked by ``max_sequences``). See ``docs/baselines.md`` for every choice the paper leaves
open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from caadbench.baselines.common import PromptedBaseline, PromptedConfig, anomaly_probability, upsample_map, visual_association
from caadbench.baselines.winclip.aggregation import harmonic_aggregation, harmonic_mean
from caadbench.baselines.winclip.windows import coverage_matrix, window_indices
from caadbench.models.api import AnomalyOutput, Batch, ClipBackbone, Learning, ModelError, Variant, register_model

PAPER_PRETRAINED = "laion400m_e31"
"""The OpenCLIP tag to pass as ``pretrained`` for the paper's setting (ViT-B-16-plus-240, LAION-400M)."""


@dataclass
class WinClipConfig(PromptedConfig):
    """WinCLIP options (and those of :class:`~caadbench.baselines.common.PromptedConfig`).

    Attributes:
        scales: window sides in patches (the paper: 2 and 3, "small" and "mid").
        patch_layer: image block whose patch tokens form WinCLIP+'s patch memory (-1: the last).
        patch_features: ``"penultimate"`` (final LayerNorm, no projection, width C) or ``"joint"``
            (projected into the joint space, D).
        max_sequences: at most this many (image, window) sequences per encoder call (memory bound).
    """

    prompt_set: str = "winclip"
    scales: tuple[int, ...] = (2, 3)
    patch_layer: int = -1
    patch_features: str = "penultimate"
    max_sequences: int = 4096

    PATCH_FEATURES: ClassVar[tuple[str, ...]] = ("penultimate", "joint")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.scales = tuple(int(k) for k in self.scales)
        if not self.scales or len(set(self.scales)) != len(self.scales) or min(self.scales) < 1:
            raise ModelError("WinClipConfig", f"scales must be distinct positive window sides, got {list(self.scales)}")
        if self.patch_features not in self.PATCH_FEATURES:
            raise ModelError("WinClipConfig", f"patch_features must be one of {list(self.PATCH_FEATURES)}, "
                                              f"got {self.patch_features!r}")
        if self.max_sequences < 1:
            raise ModelError("WinClipConfig", f"max_sequences must be positive, got {self.max_sequences}")


@dataclass
class WinClipFeatures:
    """What WinCLIP reads from a batch of images.

    Attributes:
        image: ``(B, D)`` L2-normalised image embeddings.
        windows: per window side ``k``, ``(B, M_k, D)`` L2-normalised window embeddings.
        patches: ``(B, N, C)`` L2-normalised patch features for the few-shot memory, or ``None``.
    """

    image: torch.Tensor
    windows: dict[int, torch.Tensor]
    patches: torch.Tensor | None = None


@register_model("winclip", variants={
    "default": Variant(Learning.ZERO_SHOT, {},
                       "WinCLIP zero-shot: prompt ensemble, 2x2/3x3 windows, harmonic aggregation (Jeong et al. 2023)"),
    "context": Variant(Learning.ZERO_SHOT, {"prompt_set": "winclip+context"},
                       "WinCLIP zero-shot with the context-aware prompts added to the ensemble"),
    "plus": Variant(Learning.FEW_SHOT, {"few_shot": True},
                    "WinCLIP+ k-shot: patch and window memories of the normal support images"),
})
class WinClip(PromptedBaseline):
    """WinCLIP (zero-shot) and WinCLIP+ (few-shot, ``config.few_shot``)."""

    config_cls = WinClipConfig

    def __init__(self, config: WinClipConfig, backbone: ClipBackbone | None = None) -> None:
        super().__init__(config, backbone)
        grid = self.backbone.grid_size
        n_patches = grid[0] * grid[1]
        for k in config.scales:
            try:
                idx = window_indices(grid, k)
            except ValueError as exc:
                raise ModelError(config.backbone, str(exc)) from exc
            self.register_buffer(f"windows_{k}", idx, persistent=False)
            self.register_buffer(f"coverage_{k}", coverage_matrix(idx, n_patches), persistent=False)
        self.patch_block = config.patch_layer % len(self.backbone.image_blocks)

    @classmethod
    def memory_kinds_of(cls, config: WinClipConfig) -> tuple[str, ...]:
        return ("patch", *(f"window{k}" for k in config.scales))

    def window_index(self, k: int) -> torch.Tensor:
        """``(M_k, k * k)`` patch indices of the windows of side ``k`` (row-major windows and patches)."""
        return getattr(self, f"windows_{k}")

    def coverage(self, k: int) -> torch.Tensor:
        """``(M_k, N)`` 0/1 coverage of the patches by the windows of side ``k``."""
        return getattr(self, f"coverage_{k}")

    # ----------------------------------------------------------------- features
    def encode(self, images: torch.Tensor, patches: bool = False) -> WinClipFeatures:
        """Image, window (and optionally patch) features of ``(B, 3, S, S)`` images in [0, 1]."""
        if patches:
            toks = self.backbone.image_tokens(images, layers=[self.patch_block], project=False)
            image = F.normalize(toks.embedding, dim=-1)
            projection = self.config.patch_features == "joint"
            patch_feats = F.normalize(self.backbone.project_tokens(toks.patches[self.patch_block], projection), dim=-1)
        else:
            image, patch_feats = self.backbone.encode_image(images), None
        windows = {
            k: self.backbone.encode_token_subsets(images, self.window_index(k), max_sequences=self.config.max_sequences)
            for k in self.config.scales
        }
        return WinClipFeatures(image=image, windows=windows, patches=patch_feats)

    def memory_features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"patch": (B, N, C), "window<k>": (B, M_k, D)}`` of support images."""
        feats = self.encode(images, patches=True)
        return {"patch": feats.patches, **{f"window{k}": w for k, w in feats.windows.items()}}

    # ----------------------------------------------------------------- scores
    def zero_shot(self, feats: WinClipFeatures, prototypes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """WinCLIP's zero-shot image score ``(B,)`` and patch map ``(B, N)``.

        Args:
            feats: the batch's features.
            prototypes: ``(B, 2, D)`` text prototypes of each image's subject.
        """
        image_score = anomaly_probability(feats.image, prototypes, self.logit_scale)  # (B,)
        scale_maps = [
            harmonic_aggregation(anomaly_probability(feats.windows[k], prototypes, self.logit_scale), self.coverage(k))
            for k in self.config.scales
        ]
        n_patches = scale_maps[0].shape[1]
        zero_map = harmonic_mean([image_score[:, None].expand(-1, n_patches), *scale_maps])
        return image_score, zero_map

    def few_shot_map(self, feats: WinClipFeatures, subjects: list[str]) -> torch.Tensor:
        """WinCLIP+'s reference-association map ``(B, N)`` against each image's subject memory."""
        B, N = feats.patches.shape[:2]
        out = torch.empty(B, N, device=feats.image.device)
        for subject, idx in self._subject_groups(subjects).items():
            maps = [visual_association(feats.patches[idx], self.memory.get(subject, "patch"))]
            for k in self.config.scales:
                scores = visual_association(feats.windows[k][idx], self.memory.get(subject, f"window{k}"))
                maps.append(harmonic_aggregation(scores, self.coverage(k)))
            out[idx] = torch.stack(maps).mean(dim=0)
        return out

    def _predict(self, batch: Batch) -> AnomalyOutput:
        images = batch.images
        B, S = images.shape[0], images.shape[-1]
        gh, gw = self.backbone.grid_size
        feats = self.encode(images, patches=self.config.few_shot)
        image_score, grid_map = self.zero_shot(feats, self.text_prototypes(batch.subjects))
        scores, extras = image_score, {"zero_shot_score": image_score}
        if self.config.few_shot:
            few_map = self.few_shot_map(feats, batch.subjects)
            grid_map = 0.5 * (grid_map + few_map)
            few_score = few_map.amax(dim=-1)
            scores = 0.5 * (image_score + few_score)
            extras["few_shot_score"] = few_score
        return AnomalyOutput(scores=scores, maps=upsample_map(grid_map.view(B, gh, gw), S), extras=extras)
