"""The CLIP baseline: zero-shot (normal, anomalous) prompts per subject, an optional k-shot image memory.

For an image ``x`` of subject ``o`` with L2-normalised image embedding ``f`` and prototypes ``t_n, t_a``
(the mean of the normalised prompt embeddings of each side, renormalised):

* image score ``p(x) = softmax(s · [⟨f, t_n⟩, ⟨f, t_a⟩])[1]`` with ``s`` the config's ``logit_scale`` or the
  backbone's learned one;
* anomaly map: the last block's patch tokens, through the final LayerNorm and the projection into the joint
  space, L2-normalised, scored the same way per patch, then upsampled bilinearly (align_corners=False) from
  the ``gh × gw`` grid to the input size;
* ``clip.few_shot``: the memory ``R_o`` holds the embeddings of the k support images of ``o``; the image score
  becomes ``½ p(x) + ½ · ½ (1 − max_{r ∈ R_o} ⟨f, r⟩)`` (zero-shot probability and WinCLIP+'s visual association
  to the nearest normal support image, both in [0, 1], weighted equally). The map stays the zero-shot map.

Variants: ``clip`` (two prompts "a photo of a normal {o}." / "a photo of an anomalous {o}."), ``clip.ensemble``
(WinCLIP's compositional prompt ensemble), ``clip.few_shot`` (two prompts + the support memory). The default
backbone is ViT-B-16-plus-240 at 240 px, WinCLIP's, so CLIP and WinCLIP differ only by method.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from caadbench.baselines.common import PromptedBaseline, PromptedConfig, anomaly_probability, upsample_map, visual_association
from caadbench.models.api import AnomalyOutput, Batch, Learning, Variant, register_model


@dataclass
class ClipConfig(PromptedConfig):
    """CLIP baseline options (see :class:`~caadbench.baselines.common.PromptedConfig`); defaults: two prompts, zero-shot."""

    prompt_set: str = "two"


@register_model("clip", variants={
    "default": Variant(Learning.ZERO_SHOT, {},
                       "zero-shot CLIP: 'a photo of a normal / an anomalous {subject}.', patch-token map"),
    "ensemble": Variant(Learning.ZERO_SHOT, {"prompt_set": "winclip"},
                        "zero-shot CLIP with WinCLIP's compositional prompt ensemble (7x22 / 4x22 prompts)"),
    "few_shot": Variant(Learning.FEW_SHOT, {"few_shot": True},
                        "CLIP two-prompt score averaged with 1/2(1 - max cos) to the k support image embeddings"),
})
class ClipBaseline(PromptedBaseline):
    """Zero-/few-shot CLIP: image score and patch-level map against per-subject text prototypes."""

    config_cls = ClipConfig
    memory_kinds = ("image",)

    def memory_features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"image": (B, 1, D)}`` L2-normalised image embeddings."""
        return {"image": self.backbone.encode_image(images).unsqueeze(1)}

    def _predict(self, batch: Batch) -> AnomalyOutput:
        images = batch.images
        B, S = images.shape[0], images.shape[-1]
        last = len(self.backbone.image_blocks) - 1
        toks = self.backbone.image_tokens(images, layers=[last], project=True)
        image = F.normalize(toks.embedding, dim=-1)  # (B, D)
        patches = F.normalize(toks.patches[last], dim=-1)  # (B, N, D)
        protos = self.text_prototypes(batch.subjects)  # (B, 2, D)
        zero_shot = anomaly_probability(image, protos, self.logit_scale)  # (B,)
        gh, gw = self.backbone.grid_size
        patch_scores = anomaly_probability(patches, protos, self.logit_scale).view(B, gh, gw)
        maps = upsample_map(patch_scores, S)
        extras = {"zero_shot_score": zero_shot}
        scores = zero_shot
        if self.config.few_shot:
            few_shot = torch.empty_like(zero_shot)
            for subject, idx in self._subject_groups(batch.subjects).items():
                few_shot[idx] = visual_association(image[idx], self.memory.get(subject, "image"))
            scores = 0.5 * (zero_shot + few_shot)
            extras["few_shot_score"] = few_shot
        return AnomalyOutput(scores=scores, maps=maps, extras=extras)
