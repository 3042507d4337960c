"""CoRe-CLIP: frozen CLIP ViT + CSR branches + refined text prototypes + CRM fusion (arXiv 2601.22868).

``s(x) = σ((cos(z, t1) − cos(z, t0)) / τ)`` with ``z`` the CRM-fused branch embedding and ``(t0, t1)`` the
refined prototypes of the image's subject; the pixel map compares the α-fused patch tokens with ``(t0, t1)`` the
same way and is upsampled bilinearly to the input size. Prediction reads no mask.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from caadbench.data.batch import Batch
from caadbench.errors import ModelError
from caadbench.models.backbone import ClipBackbone
from caadbench.models.base import DIAGNOSTIC_EXTRAS, AnomalyModel, AnomalyOutput, FitData
from caadbench.models.coreclip.config import BRANCHES, CoreClipConfig
from caadbench.models.coreclip.crm import make_fusion
from caadbench.models.coreclip.csr import CSR, BranchFeatures, branch_views
from caadbench.models.coreclip.text import TextRefiner
from caadbench.models.prompts import get_prompt_set
from caadbench.models.text_cache import frozen_prototypes

MAX_LOGIT_SCALE = 100.0


def _block_width(block: nn.Module) -> int:
    """Token width of an open_clip residual block (from its first LayerNorm)."""
    return int(block.ln_1.normalized_shape[0])


@dataclass
class HeadOutput:
    """Scores of a batch before the sigmoid.

    Attributes:
        logits: ``(B,)`` image logits ``(cos(z,t1) − cos(z,t0)) / τ``.
        patch_logits: ``(B, N)`` the same for the fused patch tokens.
        branch_logits: ``(B, n)`` the same for each branch's own embedding.
        alpha: ``(B, n)`` fusion weights.
        embedding: ``(B, D)`` the fused embedding z, L2-normalised (what ``logits`` compares with the prototypes).
    """

    logits: torch.Tensor
    patch_logits: torch.Tensor
    branch_logits: torch.Tensor
    alpha: torch.Tensor
    embedding: torch.Tensor


class CoreClip(AnomalyModel):
    """CoRe-CLIP on a :class:`ClipBackbone`; every ablation is a :class:`CoreClipConfig`."""

    config_cls = CoreClipConfig
    config: CoreClipConfig

    def __init__(self, config: CoreClipConfig, backbone: ClipBackbone | None = None) -> None:
        super().__init__(config, backbone)
        bb = self.backbone
        self.branch_names = config.branch_names
        n_image, n_text = len(bb.image_blocks), len(bb.text_blocks)
        if config.csr_blocks > n_image:
            raise ModelError(bb.identity.arch,
                             f"csr_blocks={config.csr_blocks} but the image tower has {n_image} blocks")
        text_blocks = config.text_blocks if config.text_refine else 0
        if text_blocks > n_text:
            raise ModelError(bb.identity.arch, f"text_blocks={text_blocks} but the text tower has {n_text} blocks")
        self.prompts = get_prompt_set(config.prompts)
        self.csr = CSR(_block_width(bb.image_blocks[0]), len(self.branch_names), config.csr_blocks,
                       config.csr_bottleneck, config.csr_scale)
        self.text = TextRefiner(_block_width(bb.text_blocks[0]), text_blocks, config.text_bottleneck)
        self.fusion = make_fusion(config.fusion, bb.embed_dim, len(self.branch_names), config.crm_dim)
        self.logit_scale = nn.Parameter(torch.zeros(()), requires_grad=config.learn_temperature)
        self.train_log: dict | None = None
        self._prototypes: dict[str, torch.Tensor] = {}
        self.init_trainable(config.init_seed)

    # ----------------------------------------------------------------- parameters
    def init_trainable(self, seed: int) -> None:
        """(Re-)initialise every trainable part from ``seed`` (independent of the global RNG)."""
        generator = torch.Generator().manual_seed(int(seed) + 0x5EED)
        self.csr.reset_parameters(generator)
        self.text.reset_parameters(generator)
        self.fusion.reset_parameters(generator)
        with torch.no_grad():
            self.logit_scale.fill_(math.log(1.0 / self.config.temperature))
        self.invalidate_prototypes()

    def visual_parameters(self) -> list[nn.Parameter]:
        """What stage 2 trains: CSR adapters, fusion and (optionally) the temperature."""
        params = [*self.csr.parameters(), *self.fusion.parameters()]
        if self.logit_scale.requires_grad:
            params.append(self.logit_scale)
        return params

    def text_parameters(self) -> list[nn.Parameter]:
        """What stage 1 trains: the gated text adapters."""
        return list(self.text.parameters())

    @property
    def scale(self) -> torch.Tensor:
        """``1/τ``, clamped to at most 100 as in CLIP."""
        return self.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    # ----------------------------------------------------------------- text
    def invalidate_prototypes(self) -> None:
        """Forget cached prototypes (after the text adapters changed)."""
        self._prototypes = {}

    def frozen_prototypes(self, subjects: Sequence[str]) -> torch.Tensor:
        """``(S, 2, D)`` prototypes of the frozen text encoder (no adapters), encoded once per process."""
        return frozen_prototypes(self.backbone, self.prompts, subjects).float()

    def refined_prototypes(self, subjects: Sequence[str]) -> torch.Tensor:
        """``(S, 2, D)`` prototypes through the text adapters, with gradients to them."""
        return self.text.prototypes(self.backbone, self.prompts, subjects)

    @torch.no_grad()
    def prototypes_for(self, subjects: Sequence[str]) -> torch.Tensor:
        """``(len(subjects), 2, D)`` (t0, t1) per entry, cached per subject name (any subject, seen or not)."""
        missing = sorted({s for s in subjects if s not in self._prototypes})
        if missing:
            protos = self.refined_prototypes(missing)
            self._prototypes.update({s: p for s, p in zip(missing, protos)})
        return torch.stack([self._prototypes[s].to(self.device) for s in subjects])

    # ----------------------------------------------------------------- image
    def masked_branches(self) -> list[int]:
        """Indices of the branches whose training view is masked (subject, context)."""
        return [i for i, b in enumerate(self.branch_names) if b != "global"]

    def branch_features(self, images: torch.Tensor, subject_masks: torch.Tensor | None = None,
                        cross_branch: bool = False) -> tuple[BranchFeatures, BranchFeatures | None]:
        """Run every branch in one encoder forward.

        Args:
            images: ``(B, 3, S, S)`` in [0, 1].
            subject_masks: ``(B, S, S)`` bool for training views; ``None`` (inference): every branch sees the image.
            cross_branch: also encode the full image through the masked branches (for the cross-branch loss).

        Returns:
            ``(features of the n branches, features of the full image through the masked branches or None)``.
        """
        n = len(self.branch_names)
        if subject_masks is None and self.csr.blocks == 0:
            feats = self.csr(self.backbone, images.unsqueeze(0), index=[0])
            return BranchFeatures(feats.embeddings.expand(-1, n, -1),
                                  feats.patches.expand(-1, n, -1, -1)), None
        views = branch_views(images, subject_masks, self.backbone.mean, self.branch_names)
        index = list(range(n))
        extra = self.masked_branches() if cross_branch and subject_masks is not None and self.csr.blocks else []
        if extra:
            views = torch.cat([views, images.unsqueeze(0).expand(len(extra), *images.shape)])
            index += extra
        feats = self.csr(self.backbone, views, index=index)
        main = BranchFeatures(feats.embeddings[:, :n], feats.patches[:, :n])
        full = BranchFeatures(feats.embeddings[:, n:], feats.patches[:, n:]) if extra else None
        return main, full

    def head(self, feats: BranchFeatures, prototypes: torch.Tensor) -> HeadOutput:
        """Fuse the branches and score image, patches and branches against ``prototypes`` ``(B, 2, D)``.

        Runs in float32 even under autocast: scores in bf16 would tie and blur the rankings metrics are made of.
        """
        with torch.autocast(device_type=self.device.type, enabled=False):
            t0, t1 = prototypes[:, 0].float(), prototypes[:, 1].float()
            emb, patches = feats.embeddings.float(), feats.patches.float()
            fused = self.fusion(t1, emb, patches)
            direction = t1 - t0  # cos(x, t1) − cos(x, t0) = x̂·(t1 − t0) for unit t0, t1
            scale = self.scale
            embedding = F.normalize(fused.embedding, dim=-1)
            logits = scale * (embedding * direction).sum(-1)
            patch_logits = scale * torch.einsum("bpd,bd->bp", F.normalize(fused.patches, dim=-1), direction)
            branch_logits = scale * torch.einsum("bnd,bd->bn", emb, direction)
        return HeadOutput(logits, patch_logits, branch_logits, fused.alpha.float(), embedding)

    def _full_width(self, values: torch.Tensor, fill: float) -> torch.Tensor:
        """``(B, n)`` per active branch → ``(B, 3)`` in the order of ``BRANCHES``, ``fill`` for inactive ones."""
        out = values.new_full((values.shape[0], len(BRANCHES)), fill)
        for j, name in enumerate(self.branch_names):
            out[:, BRANCHES.index(name)] = values[:, j]
        return out

    def _predict(self, batch: Batch) -> AnomalyOutput:
        protos = self.prototypes_for(batch.subjects)
        feats, _ = self.branch_features(batch.images)  # under the base class's predict autocast
        out = self.head(feats, protos)
        B, S = len(batch), batch.images.shape[-1]
        gh, gw = self.backbone.grid_size
        maps = torch.sigmoid(out.patch_logits).view(B, 1, gh, gw)
        maps = F.interpolate(maps, size=(batch.images.shape[-2], S), mode="bilinear", align_corners=False)[:, 0]
        extras = {
            "alpha": self._full_width(out.alpha, 0.0),
            "branch_scores": self._full_width(torch.sigmoid(out.branch_logits), float("nan")),
            "embedding": out.embedding,
        }
        return AnomalyOutput(scores=torch.sigmoid(out.logits), maps=maps, extras=extras)

    @property
    def extras_spec(self) -> dict[str, str]:
        """``alpha`` and ``branch_scores`` ``(B, 3)`` (columns :data:`BRANCHES`), ``embedding`` ``(B, D)``, and with
        diagnostics ``frozen_embedding`` ``(B, D)`` (see :data:`~caadbench.models.base.DIAGNOSTIC_EXTRAS`)."""
        return dict(DIAGNOSTIC_EXTRAS)

    @property
    def extras_columns(self) -> dict[str, tuple[str, ...]]:
        return {"alpha": BRANCHES, "branch_scores": BRANCHES}

    def _diagnostics(self, batch: Batch, output: AnomalyOutput) -> dict[str, torch.Tensor]:
        """``frozen_embedding`` ``(B, D)``: the backbone's own embedding of the image (no adapter), one more image
        forward; scores and maps are untouched."""
        frozen = self.backbone.encode_image(batch.images, normalize=False)
        return {"frozen_embedding": F.normalize(frozen.float(), dim=-1)}

    # ----------------------------------------------------------------- learning and state
    def fit(self, data: FitData) -> None:
        """Two-stage training on ``data.train`` (see :mod:`caadbench.models.coreclip.train`)."""
        from caadbench.models.coreclip.train import Trainer

        self.train_log = Trainer(self, data).run()
        self.is_fitted = True

    def load_fitted_state(self, tensors: dict[str, torch.Tensor]) -> None:
        super().load_fitted_state(tensors)
        self.invalidate_prototypes()
