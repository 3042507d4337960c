"""The two-stage CoRe-CLIP trainer on a split's train part.

Stage 1 (text): the gated text adapters minimise ``w_o·orthogonality + w_c·consistency + w_g·grounding``; the
grounding targets are class means of the frozen global embeddings of normal train images (one partial pass that
gives every training subject the same quota, ``ceil(grounding_images / subjects)``, and stops only when every
quota is met or the pass ends; the per-subject counts go into the training log).
Stage 2 (image): the text is frozen (prototypes computed once); CSR adapters, fusion and temperature minimise
``w_bce·BCE(s(x), y) + w_pixel·pixel BCE + w_entropy·entropy band + w_cross_branch·cross-branch consistency``.

Both stages: AdamW, linear warm-up then cosine decay, gradients clipped, under the model's ``autocast("train")`` (its ``precision``). Under
``torchrun`` each rank reads its own part of the train shards (``FitData.train`` is the rank's reader), gradients
are averaged over ranks after every backward (the result equals one process on the global batch), an epoch ends
when any rank runs out of batches, and only rank 0 writes checkpoints and shows progress.

Checkpoints: ``<output_dir>/coreclip-last.safetensors`` (the trainable state, via :meth:`AnomalyModel.save`, with
the backbone identity, variant name and config) and a sidecar ``…safetensors.trainer.pt`` (stage, step, the epoch
being trained and the position in it, optimizer, scheduler, log so far, and the sha256 of the safetensors file it
belongs to). The trainer owns the epoch: ``FitData.train(epoch)`` must give the same batches for the same epoch,
so a resumed run re-reads the interrupted epoch, skips the batches already trained and continues bit for bit.
"""

from __future__ import annotations

import io
import math
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm import tqdm

from caadbench.data.batch import Batch
from caadbench.errors import ModelError
from caadbench.models.base import FitData
from caadbench.models.coreclip import losses as L
from caadbench.models.coreclip.crm import CRM
from caadbench.models.coreclip.masks import degrade_masks
from caadbench.utils import distributed as D
from caadbench.utils.atomic import atomic_write_bytes
from caadbench.utils.hashing import sha256_file

if TYPE_CHECKING:
    from caadbench.models.coreclip.model import CoreClip

CHECKPOINT_NAME = "coreclip-last.safetensors"
STATE_SUFFIX = ".trainer.pt"
GRAD_CLIP = 1.0
CURVE_POINTS = 100
GROUNDING_EPOCH = 0
"""The epoch whose order the stage-1 grounding pass reads (stage-2 epochs count from 0 on their own)."""


def warmup_cosine(total: int, warmup: float) -> Callable[[int], float]:
    """Learning-rate multiplier: linear warm-up over ``warmup·total`` steps, then cosine decay to 0 at ``total``."""
    warm = int(round(warmup * total))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        span = max(1, total - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warm) / span)))

    return factor


def _param_groups(params: list[torch.nn.Parameter], weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices only (not on biases, gates or the temperature)."""
    decay = [p for p in params if p.ndim >= 2]
    rest = [p for p in params if p.ndim < 2]
    return [g for g in ({"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0})
            if g["params"]]


class LossLog:
    """Per-step losses of one stage: first/last means, a thinned curve, running means for the progress bar."""

    def __init__(self, entries: list[dict[str, float]] | None = None) -> None:
        self.entries: list[dict[str, float]] = list(entries or [])

    def add(self, step: int, values: dict[str, float]) -> None:
        self.entries.append({"step": step, **values})

    def running(self, window: int = 20) -> dict[str, float]:
        return self._mean(self.entries[-window:])

    @staticmethod
    def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
        keys = [k for k in (rows[0] if rows else {}) if k != "step"]
        return {k: sum(r[k] for r in rows) / len(rows) for k in keys}

    def summary(self) -> dict[str, Any]:
        """``steps``, mean losses over the first and last 10 % of steps, and at most ``CURVE_POINTS`` rows."""
        n = len(self.entries)
        if n == 0:
            return {"steps": 0}
        k = max(1, n // 10)
        stride = max(1, math.ceil(n / CURVE_POINTS))
        return {"steps": n, "losses_first": self._mean(self.entries[:k]), "losses_last": self._mean(self.entries[-k:]),
                "curve": self.entries[::stride]}


class Trainer:
    """Runs both stages for one :class:`CoreClip` on one :class:`FitData`.

    Args:
        model: the model (moved to ``data.device``).
        data: ``train`` must be set; ``subjects`` names every class to refine text for.
    """

    def __init__(self, model: CoreClip, data: FitData) -> None:
        if data.train is None:
            raise ModelError(model.name or "coreclip", "training needs FitData.train (the split's train part)")
        if not data.subjects:
            raise ModelError(model.name or "coreclip", "training needs FitData.subjects (the class names)")
        self.model, self.data, self.cfg = model, data, model.config
        self.dist = D.context()
        self.device = torch.device(D.local_device(data.device))
        self.output_dir = Path(data.output_dir) if data.output_dir else None
        self.logs = {"stage1": LossLog(), "stage2": LossLog()}
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
        share = counts["trainable"] / counts["total"]
        self._print(f"{model.name or 'coreclip'}: {counts['trainable']:,} trainable parameters of "
                    f"{counts['total']:,} ({100 * share:.2f} %) on {self.device}, {self.dist.world_size} process(es)")
        stage = resumed["stage"] if resumed else 1
        if stage == 1:
            self.stage1()
        self.stage2(resumed if stage > 1 else None)
        model.eval()
        return {
            "trainable_params": counts["trainable"],
            "total_params": counts["total"],
            "trainable_share": share,
            "world_size": self.dist.world_size,
            "device": str(self.device),
            "precision": model.precision_for("train"),
            "seed": self.data.seed,
            "subjects": self.subjects,
            "grounding": self.grounding,
            "stage1": self.logs["stage1"].summary(),
            "stage2": self.logs["stage2"].summary(),
            "wall_s": time.perf_counter() - start,
        }

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
        opt = torch.optim.AdamW(_param_groups(params, c.weight_decay), lr=c.text_lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(c.text_steps, c.warmup))
        step = 0
        bar = self._bar(c.text_steps, step, "coreclip stage 1 (text)")
        while step < c.text_steps:
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
            self._record("stage1", step, total, parts, bar)
        bar.close()
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
        if not params:
            return
        model.prototypes_for(self.subjects)  # cache the frozen text once
        train_masks, mask_spec = c.uses_masks, c.mask_spec
        cross = c.w_cross_branch > 0 and train_masks and model.csr.blocks > 0 and bool(model.masked_branches())
        entropy = c.w_entropy > 0 and isinstance(model.fusion, CRM)
        total_steps = c.max_steps or c.epochs * self._steps_per_epoch()
        opt = torch.optim.AdamW(_param_groups(params, c.weight_decay), lr=c.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(total_steps, c.warmup))
        step, epoch, skip = 0, 0, 0
        if resumed and resumed["optimizer"] is not None:
            opt.load_state_dict(resumed["optimizer"])
            sched.load_state_dict(resumed["scheduler"])
            step, epoch, skip = resumed["step"], resumed["epoch"], resumed["batch_in_epoch"]
        bar = self._bar(total_steps, step, "coreclip stage 2 (image)")
        while step < total_steps:
            batches = self._rank_batches(epoch, skip)
            position, seen = skip, 0
            for batch in batches:
                seen += 1
                batch = batch.to(self.device)
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
                weights = {"bce": c.w_bce, "pixel": c.w_pixel, "entropy": c.w_entropy,
                           "cross_branch": c.w_cross_branch}
                total = sum(weights[k] * v for k, v in parts.items())
                self._step(opt, sched, params, total)
                step, position = step + 1, position + 1
                self._record("stage2", step, total, parts, bar)
                if c.checkpoint_every and step % c.checkpoint_every == 0 and step < total_steps:
                    self._checkpoint(2, step, opt, sched, epoch, position)
                if step >= total_steps:
                    break
            if seen == 0 and skip == 0:
                raise ModelError(self.model.name or "coreclip", "the train part yielded no batches")
            epoch, skip = epoch + 1, 0
        bar.close()
        self._checkpoint(3, step, opt, sched, epoch, 0)

    def _rank_batches(self, epoch: int, skip: int) -> Iterator[Batch]:
        """This rank's batches of stage-2 ``epoch``, after ``skip`` already-trained ones; stops when any rank
        runs out."""
        it = iter(self.data.train(epoch))
        for _ in range(skip):
            if next(it, None) is None:
                break
        while True:
            batch = next(it, None)
            if not D.all_ranks(batch is not None, self.device):
                return
            yield batch

    def _steps_per_epoch(self) -> int:
        """From ``train_size`` and the first batch's size; counted by one pass when the size is unknown."""
        first = next(iter(self.data.train(0)), None)
        if first is None:
            raise ModelError(self.model.name or "coreclip", "the train part yielded no batches")
        if self.data.train_size:
            return max(1, math.ceil(self.data.train_size / (len(first) * self.dist.world_size)))
        local = sum(1 for _ in self.data.train(0))
        t = torch.tensor([local], device=self.device)
        if D.is_distributed():
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MIN)
        return max(1, int(t.item()))

    # ----------------------------------------------------------------- helpers
    def _step(self, opt: torch.optim.Optimizer, sched: Any, params: list[torch.nn.Parameter],
              loss: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        D.average_gradients(params)
        torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
        opt.step()
        sched.step()

    def _record(self, stage: str, step: int, total: torch.Tensor, parts: dict[str, torch.Tensor], bar: tqdm) -> None:
        values = {"total": float(total.detach())} | {k: float(v.detach()) for k, v in parts.items()}
        self.logs[stage].add(step, values)
        bar.update(1)
        if not bar.disable:
            bar.set_postfix({k: f"{v:.4f}" for k, v in self.logs[stage].running().items()}, refresh=False)

    def _bar(self, total: int, initial: int, desc: str) -> tqdm:
        show = self.cfg.progress and self.dist.is_main
        return tqdm(total=total, initial=initial, desc=desc, unit="step", file=sys.stderr,
                    disable=None if show else True, dynamic_ncols=True)

    def _print(self, message: str) -> None:
        if self.dist.is_main:
            print(message, file=sys.stderr, flush=True)

    # ----------------------------------------------------------------- checkpoints
    def checkpoint_path(self) -> Path | None:
        return self.output_dir / CHECKPOINT_NAME if self.output_dir else None

    def _checkpoint(self, stage: int, step: int, opt: torch.optim.Optimizer | None, sched: Any | None,
                    epoch: int, batch_in_epoch: int) -> None:
        """Write the trainable state and the trainer state (rank 0 only, no collective: other ranks may have
        no ``output_dir``).

        ``stage`` is the stage to resume in: 2 after stage 1, 3 once training is complete.
        """
        path = self.checkpoint_path()
        if path is not None and self.dist.is_main:
            self.model.save(path)
            state = {
                "stage": stage, "step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch,
                "optimizer": opt.state_dict() if opt is not None else None,
                "scheduler": sched.state_dict() if sched is not None else None,
                "logs": {k: v.entries for k, v in self.logs.items()},
                "grounding": self.grounding,
                "checkpoint_sha256": sha256_file(path),
                "world_size": self.dist.world_size,
            }
            buffer = io.BytesIO()
            torch.save(state, buffer)
            atomic_write_bytes(path.with_name(path.name + STATE_SUFFIX), buffer.getvalue())

    def _resume_path(self) -> Path | None:
        """The checkpoint ``config.resume`` names, or ``None`` for a fresh start."""
        resume = self.cfg.resume
        if not resume:
            return None
        if resume == "auto":
            path = self.checkpoint_path()
            return path if path is not None and path.is_file() else None
        return Path(resume)

    def _resume(self) -> dict[str, Any] | None:
        """Load the checkpoint named by ``config.resume``; the trainer state to continue from, or ``None``.

        Rank 0 decides (only it may have an ``output_dir``); every rank then loads the same file.
        """
        path = D.broadcast_object(self._resume_path() if self.dist.is_main else None)
        if path is None:
            return None
        side = path.with_name(path.name + STATE_SUFFIX)
        if not side.is_file():
            raise ModelError(side, "trainer state of the checkpoint to resume from not found")
        self.model.load(path)
        try:
            state = torch.load(side, map_location=self.device, weights_only=True)
        except Exception as exc:  # torch raises several types for a bad pickle
            raise ModelError(side, f"unreadable trainer state ({exc})") from exc
        if state.get("checkpoint_sha256") != sha256_file(path):
            raise ModelError(side, f"trainer state does not belong to {path.name} (written by another save)")
        self.logs = {k: LossLog(v) for k, v in state["logs"].items()}
        self.grounding = state.get("grounding")
        return state
