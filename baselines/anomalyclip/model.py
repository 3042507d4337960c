"""AnomalyCLIP (Zhou, Pang, Tian, He, Chen: "AnomalyCLIP: Object-agnostic Prompt Learning for Zero-shot Anomaly
Detection", ICLR 2024, arXiv 2310.18961; github.com/zqhang/AnomalyCLIP) on the shared backbone.

Text: learnable object-agnostic prompts ``[V] object`` / ``[W] damaged object`` with learnable tokens in the
first text blocks (:mod:`~caadbench.baselines.anomalyclip.prompts`) give ``t_n, t_a`` (L2-normalised), the same
for every image. Image: the frozen embedding ``f`` (the last class token projected without ``ln_post``, as the
official code) and, per block ``l`` in ``feature_layers`` (the top block, as released), the DPAM patch features
``z_l`` of the V-V stream from the first quarter block (:mod:`~caadbench.baselines.anomalyclip.dpam`), all
L2-normalised; ``τ = 0.07``.

* image probabilities ``softmax([⟨f, t_n⟩, ⟨f, t_a⟩] / τ)``; the image score is the anomalous one;
* per block, patch probabilities ``P_l = softmax([⟨z_l, t_n⟩, ⟨z_l, t_a⟩] / τ)``, bilinearly upsampled from the
  patch grid (align_corners=False, as the official code);
* loss ``w_global · CE(image logits, y) + w_local · Σ_l [Focal(P_l, g) + Dice(p_a,l, g) + Dice(p_n,l, 1 − g)]``
  (``w_local = 4`` in the official code), with ``g`` the ground truth at the input size; only the prompts train;
* map ``(1/L) Σ_l p_a,l`` at the input size, smoothed by a Gaussian of ``σ = 4`` pixels per 518 pixels of input
  (the official test: σ = 4 at 518 px, on the sum over layers, which ranks pixels identically).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F

from caadbench.baselines.anomalyclip.dpam import dpam_features, plain_features
from caadbench.baselines.anomalyclip.prompts import OBJECT, LearnablePrompts
from caadbench.baselines.segmentation import (
    dice_loss,
    focal_loss,
    gaussian_smooth,
    grid_upsample,
    relative_sigma,
    resize_mask,
    two_way_logits,
)
from caadbench.baselines.trained import PAPER_IMAGE_SIZE, TrainedBaseline, TrainedConfig, quarter_layers
from caadbench.models.api import AnomalyOutput, Batch, ClipBackbone, ModelError


@dataclass
class AnomalyClipConfig(TrainedConfig):
    """AnomalyCLIP options (and those of :class:`~caadbench.baselines.trained.TrainedConfig`).

    ``feature_layers=None`` is the top block (the released ``--features_list 24``); ``pos_embed_resize`` is
    ``bilinear`` (the official vision transformer's resizing).

    Attributes:
        prompt_length: ``E`` learnable context vectors per prompt (12).
        text_tokens: ``T`` learnable tokens per text block (4).
        text_depth: the first ``depth`` text blocks see learnable tokens (``None``: ¾ of the text encoder,
            rounded: 9 of 12 as in the paper; 1 disables the in-encoder tokens).
        dpam: patch features from the DPAM (value-value) stream; off: the original encoder's.
        dpam_start: first block of the DPAM stream, 0-based (``None``: the first quarter block, block 6 of 24 counted
            from 1 as the official ``DPAM_layer = 20``), whatever blocks make the maps.
        embedding_ln_post: the image embedding's class token goes through the final LayerNorm before the
            projection (CLIP's standard embedding); off: projected as it is, as the official code.
        object_agnostic: prompts say ``object``; off: the subject's name (object-aware prompts).
        temperature: ``τ`` of every softmax.
        w_global: weight of the image-level cross-entropy term.
        w_local: weight of the pixel-level focal + Dice terms.
        map_sigma: Gaussian smoothing of the map, in pixels of a 518-px input (scaled with the input side; 0: off).
    """

    prompt_length: int = 12
    text_tokens: int = 4
    text_depth: int | None = None
    dpam: bool = True
    dpam_start: int | None = None
    embedding_ln_post: bool = False
    object_agnostic: bool = True
    temperature: float = 0.07
    w_global: float = 1.0
    w_local: float = 4.0
    map_sigma: float = 4.0
    pos_embed_resize: str = "bilinear"

    DEFAULT_BLOCKS: ClassVar[Literal["quarters", "top"]] = "top"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.temperature > 0 or min(self.w_global, self.w_local) < 0 or self.w_global + self.w_local == 0:
            raise ModelError("AnomalyClipConfig", "temperature must be positive and w_global, w_local >= 0, "
                                                  "not both 0")
        if self.map_sigma < 0:
            raise ModelError("AnomalyClipConfig", f"map_sigma must be >= 0, got {self.map_sigma}")


class AnomalyClip(TrainedBaseline):
    """AnomalyCLIP: object-agnostic learnable prompts against DPAM patch features of several blocks."""

    config_cls = AnomalyClipConfig
    checkpoint_name: ClassVar[str] = "anomalyclip-last.safetensors"
    config: AnomalyClipConfig

    def __init__(self, config: AnomalyClipConfig, backbone: ClipBackbone | None = None) -> None:
        super().__init__(config, backbone)
        n_text = len(self.backbone.text_blocks)
        depth = config.text_depth if config.text_depth is not None else max(1, round(0.75 * n_text))
        self.prompts = LearnablePrompts(self.backbone, config.prompt_length, config.text_tokens, depth)
        first_quarter = quarter_layers(len(self.backbone.image_blocks))[0]
        self.dpam_start = config.dpam_start if config.dpam_start is not None else first_quarter
        if config.dpam and not 1 <= self.dpam_start < len(self.backbone.image_blocks):
            raise ModelError(self.backbone.identity.arch, f"dpam_start must lie in [1, "
                                                          f"{len(self.backbone.image_blocks)}), got {self.dpam_start}")
        self._text: dict[str, torch.Tensor] = {}
        self.reset_trainable(config.init_seed)

    # ----------------------------------------------------------------- parameters
    def reset_trainable(self, seed: int) -> None:
        self.prompts.reset_parameters(torch.Generator().manual_seed(int(seed) + 0xA11C))
        self.forget_cache()

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return list(self.prompts.parameters())

    def forget_cache(self) -> None:
        self._text = {}

    # ----------------------------------------------------------------- features
    def object_words(self, subjects: list[str]) -> list[str]:
        """The word each image's prompts name: ``object``, or the subject (object-aware)."""
        if self.config.object_agnostic:
            return [OBJECT] * len(subjects)
        return [s.replace("_", " ") for s in subjects]

    def text_features(self, subjects: list[str]) -> torch.Tensor:
        """``(B, 2, D)`` (normal, anomalous) text embeddings of each image, with gradients to the prompts."""
        words = self.object_words(subjects)
        distinct = list(dict.fromkeys(words))
        encoded = self.prompts.encode(self.backbone, distinct)
        index = torch.tensor([distinct.index(w) for w in words], device=encoded.device)
        return encoded[index]

    @torch.no_grad()
    def cached_text(self, subjects: list[str]) -> torch.Tensor:
        """:meth:`text_features` without gradients, cached per word until the prompts change."""
        words = self.object_words(subjects)
        missing = [w for w in dict.fromkeys(words) if w not in self._text]
        if missing:
            self._text.update(zip(missing, self.prompts.encode(self.backbone, missing)))
        return torch.stack([self._text[w] for w in words])

    @torch.no_grad()
    def image_features(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """L2-normalised ``(B, D)`` embedding and, per feature block, ``(B, N, D)`` patch features."""
        ln_post = self.config.embedding_ln_post
        if self.config.dpam:
            embedding, patches = dpam_features(self.backbone, images, self.feature_blocks, self.dpam_start, ln_post)
        else:
            embedding, patches = plain_features(self.backbone, images, self.feature_blocks, ln_post)
        return (F.normalize(embedding.float(), dim=-1),
                [F.normalize(patches[i].float(), dim=-1) for i in self.feature_blocks])

    def patch_probabilities(self, patches: torch.Tensor, text: torch.Tensor, size: int) -> torch.Tensor:
        """``(B, 2, size, size)`` upsampled (normal, anomalous) probabilities of one block's patch features."""
        probs = two_way_logits(patches, text, 1.0 / self.config.temperature).softmax(dim=-1)
        return grid_upsample(probs, self.backbone.grid_size, size, align_corners=False)

    # ----------------------------------------------------------------- learning
    def training_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.config
        with self.autocast("train"):
            embedding, patches = self.image_features(batch.images)
            text = self.text_features(batch.subjects).float()
        parts: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=self.device)
        if c.w_global > 0:
            logits = torch.einsum("bd,bkd->bk", embedding, text) / c.temperature
            parts["global"] = F.cross_entropy(logits, batch.labels)
            total = total + c.w_global * parts["global"]
        if c.w_local > 0:
            size = batch.images.shape[-1]
            gt = resize_mask(batch.gt_masks, size)
            focal = dice = torch.zeros((), device=self.device)
            for p in patches:
                probs = self.patch_probabilities(p, text, size)
                focal = focal + focal_loss(probs, gt)
                dice = dice + dice_loss(probs[:, 1], gt) + dice_loss(probs[:, 0], ~gt)
            parts["focal"], parts["dice"] = focal, dice
            total = total + c.w_local * (focal + dice)
        return total, parts

    def _predict(self, batch: Batch) -> AnomalyOutput:
        with self.autocast():
            embedding, patches = self.image_features(batch.images)
        text = self.cached_text(batch.subjects)
        size = batch.images.shape[-1]
        logits = torch.einsum("bd,bkd->bk", embedding, text) / self.config.temperature
        maps = torch.stack([self.patch_probabilities(p, text, size)[:, 1] for p in patches]).mean(dim=0)
        maps = gaussian_smooth(maps, relative_sigma(self.config.map_sigma, size, PAPER_IMAGE_SIZE))
        return AnomalyOutput(scores=logits.softmax(dim=-1)[:, 1], maps=maps)
