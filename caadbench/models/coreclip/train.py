"""The two-stage CoRe-CLIP trainer on a split's train part.

Stage 1 (text): the gated text adapters minimise ``w_o·orthogonality + w_c·consistency + w_g·grounding``; the
grounding targets are class means of the frozen global embeddings of normal train images (one partial pass that
gives every training subject the same quota, ``ceil(grounding_images / subjects)``, and stops only when every
quota is met or the pass ends; the per-subject counts go into the training log and the trainer state).
Stage 2 (image): the text is frozen (prototypes computed once); CSR adapters, fusion and temperature minimise
``w_bce·BCE(s(x), y) + w_pixel·pixel BCE + w_entropy·entropy band + w_cross_branch·cross-branch consistency``.

Both stages: AdamW, linear warm-up then cosine decay, gradients clipped, under the model's ``autocast("train")``
(its ``precision``). The epoch loop,
distributed steps, checkpoints (``<output_dir>/coreclip-last.safetensors`` and its ``….trainer.pt`` sidecar) and
exact resume are :class:`~caadbench.models.training.TrainerBase`'s; the checkpoint's stage is 2 after stage 1
and 3 once training is complete.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from caadbench.data.batch import Batch
from caadbench.errors import ModelError
from caadbench.models.base import FitData
from caadbench.models.coreclip import losses as L
from caadbench.models.coreclip.crm import CRM
from caadbench.models.coreclip.masks import degrade_masks
from caadbench.models.training import STATE_SUFFIX, TrainerBase, param_groups, warmup_cosine
from caadbench.utils import distributed as D

if TYPE_CHECKING:
    from caadbench.models.coreclip.model import CoreClip

CHECKPOINT_NAME = "coreclip-last.safetensors"
GRAD_CLIP = 1.0
GROUNDING_EPOCH = 0
"""The epoch whose order the stage-1 grounding pass reads (stage-2 epochs count from 0 on their own)."""


class Trainer(TrainerBase):
    """Runs both stages for one :class:`CoreClip` on one :class:`FitData`.

    Args:
        model: the model (moved to ``data.device``).
        data: ``train`` must be set; ``subjects`` names every class to refine text for.
    """

    model: CoreClip

    def __init__(self, model: CoreClip, data: FitData) -> None:
        super().__init__(model, data, CHECKPOINT_NAME, stages=("stage1", "stage2"), grad_clip=GRAD_CLIP)
        if not data.subjects:
            raise ModelError(model.name or "coreclip", "training needs FitData.subjects (the class names)")
        self.subjects = sorted(set(data.subjects))
        self.grounding: dict[str, Any] | None = None

    # ----------------------------------------------------------------- entry
    def run(self) -> dict[str, Any]:
        """Train (or resume) both stages; return the training log (also kept as ``model.train_log``)."""
        start = time.perf_counter()
        model = self.model.to(self.device)
        model.train()
        model.invalidate_prototypes()
        resumed = self._resume()
        if resumed is None:
            model.init_trainable(self.data.seed)
        D.broadcast_parameters([*model.text_parameters(), *model.visual_parameters()])
        torch.manual_seed(self.data.seed)
        counts = model.parameter_counts()
        share = self._announce(counts)
        stage = resumed["stage"] if resumed else 1
        if stage == 1:
            self.stage1()
        self.stage2(resumed if stage > 1 else None)
        model.eval()
        return self.summary(counts, share, start)

    def summary(self, counts: dict[str, int], share: float, start: float) -> dict[str, Any]:
        """The base log plus the text-refined ``subjects`` and the grounding counts."""
        return {**super().summary(counts, share, start), "subjects": self.subjects, "grounding": self.grounding}

    def extra_state(self) -> dict[str, Any]:
        return {"grounding": self.grounding}

    def restore_extra(self, state: dict[str, Any]) -> None:
        self.grounding = state.get("grounding")

    # ----------------------------------------------------------------- stage 1
    def stage1_needed(self) -> bool:
        c = self.cfg
        weights = c.w_orthogonality + c.w_consistency + c.w_grounding
        return bool(self.model.text_parameters()) and c.text_steps > 0 and weights > 0

    def stage1(self) -> None:
        """Refine the text prototypes of every subject (checkpointed when it ends, not in between)."""
        model, c = self.model, self.cfg
        if not self.stage1_needed():
            return
        with torch.no_grad():
            frozen = model.frozen_prototypes(self.subjects)
            anchor = torch.nn.functional.normalize(frozen[:, 0] + frozen[:, 1], dim=-1)
        visual = present = None
        if c.w_grounding > 0:
            visual, present = self.visual_class_means()
        params = model.text_parameters()
        opt = torch.optim.AdamW(param_groups(params, c.weight_decay), lr=c.text_lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(c.text_steps, c.warmup))
        step = 0
        bar = self._bar(c.text_steps, step, "coreclip stage 1 (text)")
        steps = self.step_log("stage1")
        while step < c.text_steps:
            lr = float(opt.param_groups[0]["lr"])
            protos = model.refined_prototypes(self.subjects)
            t0, t1 = protos[:, 0], protos[:, 1]
            parts: dict[str, torch.Tensor] = {}
            if c.w_orthogonality > 0:
                parts["orthogonality"] = L.orthogonality_loss(t0, t1)
            if c.w_consistency > 0:
                parts["consistency"] = L.consistency_loss(t0, t1, anchor)
            if c.w_grounding > 0:
                parts["grounding"] = L.grounding_loss(t0, visual, present, c.grounding_temperature)
            weights = {"orthogonality": c.w_orthogonality, "consistency": c.w_consistency,
                       "grounding": c.w_grounding}
            total = sum(weights[k] * v for k, v in parts.items())
            self._step(opt, sched, params, total)
            step += 1
            values = self._record("stage1", step, total, parts, bar)
            values["cos_t0_t1"] = float(F.cosine_similarity(t0.detach(), t1.detach(), dim=-1).mean())
            self.logs["stage1"].entries[-1]["cos_t0_t1"] = values["cos_t0_t1"]  # monitored, not a loss
            steps.step(step, 0, lr, values)
        bar.close()
        steps.close()
        model.invalidate_prototypes()
        self._checkpoint(2, 0, opt=None, sched=None, epoch=0, batch_in_epoch=0)

    @torch.no_grad()
    def visual_class_means(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(S, D)`` mean frozen global embedding of the normal train images per subject, ``(S,)`` presence.

        Every training subject gets the same quota ``q = ceil(grounding_images / S)`` of normal images (each of
        ``W`` ranks takes at most ``ceil(q / W)`` of its share): the pass stops once every subject's quota is met
        or when it ends, so which subjects are grounded never depends on the shuffled order. Sums and counts are
        reduced over ranks; the counts are recorded in :attr:`grounding` (and the training log).
        """
        model, c = self.model, self.cfg
        index = {s: i for i, s in enumerate(self.subjects)}
        sums = torch.zeros(len(self.subjects), model.backbone.embed_dim, device=self.device)
        counts = torch.zeros(len(self.subjects), device=self.device)
        quota = math.ceil(c.grounding_images / len(self.subjects))
        local_quota = math.ceil(quota / self.dist.world_size)
        taken = [0] * len(self.subjects)
        for batch in self.data.train(GROUNDING_EPOCH):
            chosen = []
            for i, (y, subject) in enumerate(zip(batch.labels.tolist(), batch.subjects)):
                if y == 0 and subject in index and taken[index[subject]] < local_quota:
                    taken[index[subject]] += 1
                    chosen.append(i)
            if chosen:
                images = batch.images[chosen].to(self.device)
                with model.autocast("train"):
                    emb = model.backbone.encode_image(images).float()
                rows = torch.tensor([index[batch.subjects[i]] for i in chosen], device=self.device)
                sums.index_add_(0, rows, emb)
                counts.index_add_(0, rows, torch.ones(len(chosen), device=self.device))
            if min(taken) >= local_quota:
                break
        D.all_reduce_sum_(sums)
        D.all_reduce_sum_(counts)
        self.grounding = {"quota_per_subject": quota,
                          "images": {s: int(n) for s, n in zip(self.subjects, counts.tolist())}}
        return sums / counts.clamp_min(1).unsqueeze(1), counts > 0

    # ----------------------------------------------------------------- stage 2
    def stage2(self, resumed: dict[str, Any] | None) -> None:
        """Train the CSR adapters, fusion and temperature with the text frozen."""
        model, c = self.model, self.cfg
        params = [p for p in model.visual_parameters() if p.requires_grad]
        if not params:  # nothing to train in stage 2: stage 1's state is the finished model
            self._checkpoint(3, 0, opt=None, sched=None, epoch=0, batch_in_epoch=0)
            return
        model.prototypes_for(self.subjects)  # cache the frozen text once
        train_masks, mask_spec = c.uses_masks, c.mask_spec
        cross = c.w_cross_branch > 0 and train_masks and model.csr.blocks > 0 and bool(model.masked_branches())
        entropy = c.w_entropy > 0 and isinstance(model.fusion, CRM)
        total_steps = c.max_steps or c.epochs * self.steps_per_epoch()
        opt = torch.optim.AdamW(param_groups(params, c.weight_decay), lr=c.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(total_steps, c.warmup))
        weights = {"bce": c.w_bce, "pixel": c.w_pixel, "entropy": c.w_entropy, "cross_branch": c.w_cross_branch}

        def loss(batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            protos = model.prototypes_for(batch.subjects)
            views = None
            if train_masks:
                views = degrade_masks(batch.subject_masks, mask_spec, batch.keys, self.data.seed)
            with model.autocast("train"):
                feats, full = model.branch_features(batch.images, views, cross_branch=cross)
                out = model.head(feats, protos)
            parts = {"bce": L.image_bce(out.logits, batch.labels)}
            if c.w_pixel > 0:
                target = degrade_masks(batch.gt_masks, mask_spec, batch.keys, self.data.seed)
                parts["pixel"] = L.pixel_bce(out.patch_logits, target, model.backbone.grid_size)
            if entropy:
                parts["entropy"] = L.entropy_band_loss(out.alpha, c.entropy_low, c.entropy_high)
            if full is not None:
                masked = model.masked_branches()
                parts["cross_branch"] = L.cross_branch_loss(full.embeddings, feats.embeddings[:, masked])
            return sum(weights[k] * v for k, v in parts.items()), parts

        self.train_epochs(2, "stage2", params, opt, sched, total_steps, resumed, loss, "coreclip stage 2 (image)",
                          select=True)


__all__ = ["CHECKPOINT_NAME", "GROUNDING_EPOCH", "STATE_SUFFIX", "Trainer", "warmup_cosine"]
