"""APRIL-GAN (Chen, Han, Zhang: "A Zero-/Few-Shot Anomaly Classification and Segmentation Method for CVPR 2023
VAND Workshop Challenge", arXiv 2305.17382; github.com/ByChelsea/VAND-APRIL-GAN) on the shared backbone.

For an image of subject ``o`` with frozen text prototypes ``t_n, t_a`` (APRIL-GAN's prompt ensemble, 7 normal
and 5 anomalous states × 35 templates, each embedding L2-normalised, averaged per side, renormalised) and the raw
output tokens ``x_l`` (no final LayerNorm) of the image blocks ``l`` in ``feature_layers``:

* ``z_l = W_l x_l + b_l`` maps each patch token into the joint space (one learned linear map per block), then
  ``ẑ_l = z_l / ‖z_l‖``;
* logits ``s · [⟨ẑ_l, t_n⟩, ⟨ẑ_l, t_a⟩]`` per patch (``s = 100``), bilinearly upsampled from the patch grid
  (align_corners=True, as the official code) and softmaxed over the two classes: ``P_l = (p_n, p_a)`` per pixel;
* training loss ``Σ_l w_focal · Focal(P_l, g) + w_dice · Dice(p_a,l, g)`` against the ground-truth mask ``g``
  resized (nearest) to the input size, as the official code trains; only the linear maps train;
* map ``(1/L) Σ_l p_a,l`` at the input size (the official code sums; the mean ranks pixels identically);
* image score ``softmax(s · [⟨f, t_n⟩, ⟨f, t_a⟩])[1]`` with ``f`` the frozen, normalised image embedding — APRIL-GAN
  trains nothing for classification; ``image_score="map"`` (our addition) uses the map's maximum instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from caadbench.baselines.common import TextPrototypes, anomaly_probability
from caadbench.baselines.segmentation import dice_loss, focal_loss, grid_upsample, resize_mask, two_way_logits
from caadbench.baselines.trained import TrainedBaseline, TrainedConfig
from caadbench.models.api import AnomalyOutput, Batch, ClipBackbone, ModelError, get_prompt_set

IMAGE_SCORES = ("clip", "map")


@dataclass
class AprilGanConfig(TrainedConfig):
    """APRIL-GAN options (and those of :class:`~caadbench.baselines.trained.TrainedConfig`).

    Attributes:
        prompt_set: prompt set of the frozen text prototypes.
        logit_scale: the fixed inverse temperature ``s`` of maps and image score (100 in the official code).
        w_focal: weight of the pixel-level focal term.
        w_dice: weight of the pixel-level Dice term.
        image_score: ``clip`` (the paper: frozen CLIP zero-shot score) or ``map`` (max of the anomaly map).
    """

    prompt_set: str = "aprilgan"
    logit_scale: float = 100.0
    w_focal: float = 1.0
    w_dice: float = 1.0
    image_score: str = "clip"

    def __post_init__(self) -> None:
        super().__post_init__()
        get_prompt_set(self.prompt_set)
        if not self.logit_scale > 0 or min(self.w_focal, self.w_dice) < 0 or self.w_focal + self.w_dice == 0:
            raise ModelError("AprilGanConfig", "logit_scale must be positive and w_focal, w_dice >= 0, not both 0")
        if self.image_score not in IMAGE_SCORES:
            raise ModelError("AprilGanConfig", f"image_score must be one of {list(IMAGE_SCORES)}, got "
                                               f"{self.image_score!r}")


class AprilGan(TrainedBaseline):
    """APRIL-GAN zero-shot: learned linear maps from several blocks' patch tokens into the text space."""

    config_cls = AprilGanConfig
    checkpoint_name: ClassVar[str] = "aprilgan-last.safetensors"
    config: AprilGanConfig

    def __init__(self, config: AprilGanConfig, backbone: ClipBackbone | None = None) -> None:
        super().__init__(config, backbone)
        width, dim = self.backbone.width("image"), self.backbone.embed_dim
        self.maps = nn.ModuleList(nn.utils.skip_init(nn.Linear, width, dim) for _ in self.feature_blocks)
        self.prototypes = TextPrototypes(config.prompt_set)
        self.reset_trainable(config.init_seed)

    # ----------------------------------------------------------------- parameters
    def reset_trainable(self, seed: int) -> None:
        """``nn.Linear``'s default initialisation, ``U(−1/√C, 1/√C)`` for weights and biases, drawn from ``seed``."""
        generator = torch.Generator().manual_seed(int(seed) + 0xA921)
        with torch.no_grad():
            for layer in self.maps:
                bound = layer.in_features ** -0.5
                for p in (layer.weight, layer.bias):
                    p.copy_(torch.empty(p.shape).uniform_(-bound, bound, generator=generator))

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.maps.parameters())

    def text_prototypes(self, subjects: list[str]) -> torch.Tensor:
        """``(B, 2, D)`` frozen (normal, anomalous) prototypes of each subject."""
        return self.prototypes(self.backbone, subjects)

    # ----------------------------------------------------------------- maps
    def layer_logits(self, images: torch.Tensor, prototypes: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The frozen image embedding ``(B, D)`` and, per feature block, patch logits ``(B, N, 2)``."""
        with torch.no_grad():
            toks = self.backbone.image_tokens(images, layers=self.feature_blocks, project=False)
        logits = []
        for layer, block in zip(self.maps, self.feature_blocks):
            z = F.normalize(layer(toks.patches[block]), dim=-1)
            logits.append(two_way_logits(z, prototypes, self.config.logit_scale))
        return toks.embedding, logits

    def layer_probabilities(self, logits: torch.Tensor, size: int) -> torch.Tensor:
        """``(B, 2, size, size)`` class probabilities of one block's patch logits."""
        return grid_upsample(logits.float(), self.backbone.grid_size, size, align_corners=True).softmax(dim=1)

    def training_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.config
        prototypes = self.text_prototypes(batch.subjects)
        with self.autocast("train"):
            _, logits = self.layer_logits(batch.images, prototypes)
        size = batch.images.shape[-1]
        gt = resize_mask(batch.gt_masks, size)
        focal = dice = torch.zeros((), device=self.device)
        for layer in logits:
            probs = self.layer_probabilities(layer, size)
            if c.w_focal > 0:
                focal = focal + focal_loss(probs, gt)
            if c.w_dice > 0:
                dice = dice + dice_loss(probs[:, 1], gt)
        parts = {k: v for k, v in (("focal", focal), ("dice", dice)) if getattr(c, f"w_{k}") > 0}
        return c.w_focal * focal + c.w_dice * dice, parts

    def _predict(self, batch: Batch) -> AnomalyOutput:
        prototypes = self.text_prototypes(batch.subjects)
        with self.autocast():
            embedding, logits = self.layer_logits(batch.images, prototypes)
        size = batch.images.shape[-1]
        maps = torch.stack([self.layer_probabilities(layer, size)[:, 1] for layer in logits]).mean(dim=0)
        clip_score = anomaly_probability(F.normalize(embedding.float(), dim=-1), prototypes, self.config.logit_scale)
        scores = clip_score if self.config.image_score == "clip" else maps.flatten(1).amax(dim=1)
        return AnomalyOutput(scores=scores, maps=maps, extras={"clip_score": clip_score})
