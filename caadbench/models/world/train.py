"""World pretraining: contrastive image–caption training of an open_clip model on the captioned world.

The world (:func:`caadbench.data.world.build_world`) is drawn once into memory; step ``t`` then takes a fixed
function of ``(seed, t)`` of it (the patch-dropout draws are seeded per step as well): per view (full scene, close-up, cutout) the number of pairs the recipe's shares
give, each view read through its own seeded permutation per epoch, the caption variant of epoch ``e`` being
``e mod V``. Nothing else
is random (the architectures have no dropout), so a run is a function of its :class:`PretrainConfig`, and a
resumed run replays the same batches as an uninterrupted one.

Images: FLIP-style patch dropout (a seeded random share of each image's patch tokens is dropped, so a step
costs about half), switched off for the final ``unmasked_tail`` of the steps.

Loss: CLIP's symmetric cross-entropy with learnable temperature (clamped to 100), identical captions counting
as positives of each other (:mod:`caadbench.models.world.loss`). AdamW, linear warm-up, cosine decay,
gradient clipping. Under ``torchrun`` each rank encodes its slice of the global batch, embeddings are gathered
(with gradients) so the loss sees the whole batch, gradients are averaged: the same as one process.

Outputs, all beside ``out``:

* ``out`` — the weights (the open_clip state dict in fp16, safetensors, recipe in the metadata), written only
  when training is complete;
* ``out.json`` — the recipe, wall time, machine and the held-out zero-shot figures;
* ``out.log.csv`` — one row per step (loss, lr, temperature, pairs/s) and the held-out accuracies;
* ``out.state.pt`` — the resumable trainer state while training runs (removed when it completes).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import open_clip
import torch
from torch import nn

from caadbench.data.world import MONITOR_PREFIX, MONITOR_SEED, WorldSet, build_world, cached_world, world_specs
from caadbench.errors import ModelError
from caadbench.models.backbone import resolve_weights
from caadbench.models.world.config import PretrainConfig
from caadbench.models.world.loss import caption_targets, contrastive_loss
from caadbench.models.world.weights import WEIGHTS_FORMAT
from caadbench.models.world.zeroshot import ZeroShotReport, zero_shot
from caadbench.utils import distributed as D
from caadbench.utils.atomic import atomic_write_bytes, atomic_write_text
from caadbench.utils.progress import progress

log = logging.getLogger(__name__)

STATE_FORMAT = "caadbench-pretrain-state-1"
GRAD_CLIP = 1.0
MAX_SCALE = 100.0
LOG_EVERY = 50


def sidecar(out: Path, suffix: str) -> Path:
    """``out`` with ``suffix`` appended to its name (``world.safetensors.json``)."""
    return out.with_name(out.name + suffix)


def lr_factor(cfg: PretrainConfig, step: int) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up, then cosine from 1 to ``final_lr``."""
    warm = max(1, int(round(cfg.warmup * cfg.steps)))
    if step < warm:
        return (step + 1) / warm
    t = min(1.0, (step - warm) / max(1, cfg.steps - warm))
    return cfg.final_lr + (1.0 - cfg.final_lr) * 0.5 * (1.0 + math.cos(math.pi * t))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on weight matrices only (open_clip's rule: no decay on gains, biases, embeddings,
    positional embeddings, the class token and the temperature)."""
    decay, rest = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        exempt = p.ndim < 2 or "ln" in name or "bias" in name or "logit_scale" in name or "embedding" in name \
            or "class_embedding" in name
        (rest if exempt else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def create_trainable(cfg: PretrainConfig) -> torch.nn.Module:
    """A randomly initialised open_clip model of ``cfg.arch`` (seeded), in train mode.

    Raises:
        ModelError: unknown architecture, or one without a ViT image tower.
    """
    resolve_weights(cfg.arch, None)  # refuses unknown architectures with the list of known ones
    kwargs = {"force_image_size": cfg.image_size} if cfg.image_size else {}
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # open_clip announces random init on the root logger
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            model = open_clip.create_model(cfg.arch, **kwargs)
    finally:
        root.setLevel(level)
    if not hasattr(model, "visual") or not hasattr(model.visual, "transformer"):
        raise ModelError(cfg.arch, "world pretraining supports open_clip ViT image towers only")
    return model.train()


def input_size(model: torch.nn.Module) -> int:
    size = model.visual.image_size
    return int(size[0] if isinstance(size, tuple) else size)


class Encoders:
    """Normalised image and text encoders of a trainable open_clip model (what :func:`zero_shot` calls)."""

    def __init__(self, model: torch.nn.Module, arch: str, device: torch.device, precision: str) -> None:
        self.model, self.device, self.precision = model, device, precision
        cfg = model.visual.preprocess_cfg
        self.mean = torch.tensor(cfg["mean"], device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg["std"], device=device).view(1, 3, 1, 1)
        self.tokenizer = open_clip.get_tokenizer(arch)

    def autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def image(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` float in [0, 1] → ``(B, D)`` normalised."""
        with self.autocast():
            return self.model.encode_image((images.to(self.device) - self.mean) / self.std, normalize=True).float()

    def text(self, tokens: torch.Tensor | list[str]) -> torch.Tensor:
        """Token ids ``(B, L)`` (or strings) → ``(B, D)`` normalised."""
        if not isinstance(tokens, torch.Tensor):
            tokens = self.tokenizer(list(tokens))
        with self.autocast():
            return self.model.encode_text(tokens.to(self.device), normalize=True).float()


@dataclass
class BatchPlan:
    """Which world items step ``t`` trains on: per view, scene indices ``(n_v,)`` and caption variants ``(n_v,)``."""

    step: int
    index: dict[str, torch.Tensor]
    variant: dict[str, torch.Tensor]


class Pretrainer:
    """Runs (or resumes) one world pretraining (see the module docstring).

    Args:
        cfg: the recipe.
        out: the weights file to write.
        device: ``cpu``, ``cuda`` or ``cuda:i`` (the local device under ``torchrun``).
        resume: continue from ``out.state.pt``.
        force: start over even if ``out`` or its state exist.
        progress: progress with the running loss (rank 0; a bar on a terminal, log lines elsewhere).
        cache: a folder where the drawn world is kept between runs (``None``: draw it every time).
        command: the command line that started the run, recorded in the recipe.
    """

    def __init__(self, cfg: PretrainConfig, out: str | Path, *, device: str = "cpu", resume: bool = False,
                 force: bool = False, progress: bool = True, cache: str | Path | None = None,
                 command: str | None = None) -> None:
        self.cfg, self.out, self.cache, self.command = cfg, Path(out), cache, command
        self.state_path = sidecar(self.out, ".state.pt")
        self.dist = D.context()
        self.device = torch.device(D.local_device(device))
        self.resume, self.force, self.progress = resume, force, progress
        self._perms: dict[tuple[str, int], torch.Tensor] = {}

    # ----------------------------------------------------------------- checks
    def check_output(self) -> None:
        """Refuse to overwrite or to resume what cannot be resumed, before any work.

        Raises:
            ModelError: naming the file.
        """
        if self.force:
            return
        if self.resume:
            if not self.state_path.is_file() and not self.out.is_file():
                raise ModelError(self.state_path, "nothing to resume: no trainer state and no finished weights")
            return
        for path in (self.out, self.state_path):
            if path.exists():
                raise ModelError(path, "already exists; pass --resume to continue it or --force to start over")
        if not self.out.parent.exists():
            self.out.parent.mkdir(parents=True, exist_ok=True)

    def load_state(self) -> dict[str, Any] | None:
        """The resumable state, or ``None`` to start fresh.

        Raises:
            ModelError: an unreadable or foreign state file, or one of another recipe.
        """
        if self.force or not self.resume or not self.state_path.is_file():
            return None
        try:
            state = torch.load(self.state_path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for a truncated or foreign file
            raise ModelError(self.state_path, f"unreadable trainer state ({type(exc).__name__}: {exc})") from exc
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ModelError(self.state_path, f"not a caadbench pretraining state (expected format {STATE_FORMAT})")
        theirs = PretrainConfig.from_dict(json.loads(state["config"]))
        differ = self.cfg.same_run(theirs)
        if differ:
            raise ModelError(self.state_path, f"was written by another recipe (differs in {', '.join(differ)}); "
                                              "pass the same options or --force to start over")
        return state

    # ----------------------------------------------------------------- batches
    def _perm(self, kind: str, epoch: int, n: int) -> torch.Tensor:
        key = (kind, epoch)
        if key not in self._perms:
            if len(self._perms) > 8:
                self._perms.clear()
            g = torch.Generator().manual_seed(hash_seed(self.cfg.seed, kind, epoch))
            self._perms[key] = torch.randperm(n, generator=g)
        return self._perms[key]

    def _take(self, kind: str, start: int, count: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        positions = torch.arange(start, start + count)
        epochs = positions // n
        index = torch.empty(count, dtype=torch.int64)
        for e in epochs.unique().tolist():
            sel = epochs == e
            index[sel] = self._perm(kind, e, n)[positions[sel] % n]
        return index, epochs % self.cfg.caption_variants

    def plan(self, step: int, n: int) -> BatchPlan:
        """The global batch of ``step`` over a world of ``n`` scenes: each view read through its own permutations."""
        index, variant = {}, {}
        for view, count in self.cfg.view_counts().items():
            index[view], variant[view] = self._take(view, step * count, count, n)
        return BatchPlan(step, index, variant)

    def _rank_slice(self, count: int) -> slice:
        r, w = self.dist.rank, self.dist.world_size
        return slice(count * r // w, count * (r + 1) // w)

    # ----------------------------------------------------------------- entry
    def run(self) -> Path:
        """Train to ``cfg.steps`` (or finish a resumed run); returns the weights path."""
        cfg = self.cfg
        self.check_output()
        if self.resume and not self.force and self.out.is_file() and not self.state_path.is_file():
            log.info("%s is complete; nothing to resume", self.out)
            return self.out
        state = self.load_state()
        if cfg.batch_size < self.dist.world_size:
            raise ModelError("pretrain", f"--batch-size {cfg.batch_size} is smaller than the {self.dist.world_size} "
                                         "processes")
        model = create_trainable(cfg).to(self.device)
        enc = Encoders(model, cfg.arch, self.device, cfg.precision)
        size = input_size(model)
        tokenizer = enc.tokenizer
        world = cached_world(world_specs(cfg.scenes, cfg.world_seed), size, self.cache, variants=cfg.caption_variants,
                             workers=cfg.workers, progress=self.progress and self.dist.is_main)
        tokens = {view: tokenize_all(tokenizer, captions) for view, captions in world.captions.items()}
        held_out = self._held_out(size) if cfg.eval_every else None
        opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(cfg, s))
        step, wall, rows = 0, 0.0, []
        if state is not None:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            step, wall, rows = int(state["step"]), float(state["wall_s"]), list(state["rows"])
            log.info("resuming %s at step %d of %d", self.out, step, cfg.steps)
        D.broadcast_parameters(list(model.parameters()))
        params = [p for p in model.parameters() if p.requires_grad]
        bar = progress(total=cfg.steps, initial=step, desc=f"pretrain {cfg.arch}", unit="step",
                       enabled=self.progress and self.dist.is_main)
        started = time.perf_counter()
        while step < cfg.steps:
            t0 = time.perf_counter()
            plan = self.plan(step, len(world))
            loss, scale = self._step(model, enc, opt, sched, params, world, tokens, plan)
            step += 1
            row = {"step": step, "loss": round(loss, 5), "lr": opt.param_groups[0]["lr"], "scale": round(scale, 3),
                   "pairs_per_s": round(cfg.batch_size / (time.perf_counter() - t0), 2)}
            if held_out is not None and (step % cfg.eval_every == 0 or step == cfg.steps):
                report = self._evaluate(enc, held_out)
                row |= {"subject_acc": round(report.subject_accuracy, 4), "context_acc": round(report.context_accuracy, 4)}
                log.info("step %d: held-out subject accuracy %.1f %%, context accuracy %.1f %%", step,
                         100 * report.subject_accuracy, 100 * report.context_accuracy)
            rows.append(row)
            if step % LOG_EVERY == 0 and self.dist.is_main:
                recent = rows[-LOG_EVERY:]
                log.info("step %d/%d: loss %.4f, temperature 1/%.1f, %.1f pairs/s", step, cfg.steps,
                         sum(r["loss"] for r in recent) / len(recent), row["scale"],
                         sum(r["pairs_per_s"] for r in recent) / len(recent))
            bar.update(1)
            bar.set_postfix({k: row[k] for k in ("loss", "scale", "subject_acc", "context_acc") if k in row},
                            refresh=False)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps:
                self._save_state(model, opt, sched, step, wall + time.perf_counter() - started, rows)
        bar.close()
        wall += time.perf_counter() - started
        final = self._evaluate(enc, held_out) if held_out is not None else None
        if self.dist.is_main:
            self._write_outputs(model, wall, rows, final)
        D.barrier()
        return self.out

    # ----------------------------------------------------------------- pieces
    def _step(self, model, enc: Encoders, opt, sched, params, world: WorldSet, view_tokens: dict[str, torch.Tensor],
              plan: BatchPlan) -> tuple[float, float]:
        images = torch.cat([world.views[v][i] for v, i in plan.index.items()])
        tokens = torch.cat([view_tokens[v][i, plan.variant[v]] for v, i in plan.index.items()])
        mine = self._rank_slice(len(images))
        keep = kept_patches(self.cfg, plan.step, len(images), model.visual.grid_size)
        model.visual.patch_dropout = KeepPatches(keep[mine]) if keep is not None else torch.nn.Identity()
        try:
            img = enc.image(images[mine].float().div_(255.0))
        finally:
            model.visual.patch_dropout = torch.nn.Identity()
        txt = enc.text(tokens[mine])
        img, txt = gather_with_grad(img), gather_with_grad(txt)
        scale = model.logit_scale.exp().clamp(max=MAX_SCALE)
        loss = contrastive_loss(img, txt, scale, caption_targets(tokens.to(self.device)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        D.average_gradients(params)
        torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
        opt.step()
        sched.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(MAX_SCALE))
        return float(loss.detach()), float(scale.detach())

    def _held_out(self, size: int) -> WorldSet:
        specs = world_specs(self.cfg.eval_scenes, MONITOR_SEED, prefix=MONITOR_PREFIX)
        return build_world(specs, size, variants=1, workers=self.cfg.workers, progress=False)

    def _evaluate(self, enc: Encoders, held_out: WorldSet) -> ZeroShotReport:
        from caadbench.data.sources.synthetic.contexts import CONTEXTS
        from caadbench.data.sources.synthetic.subjects import SUBJECTS

        enc.model.eval()
        try:
            return zero_shot(enc.image, enc.text, held_out.scenes, [s.subject for s in held_out.specs],
                             [s.context for s in held_out.specs], subject_names=list(SUBJECTS),
                             context_names=list(CONTEXTS), device=self.device)
        finally:
            enc.model.train()

    def _save_state(self, model, opt, sched, step: int, wall: float, rows: list[dict]) -> None:
        if not self.dist.is_main:
            return
        state = {"format": STATE_FORMAT, "config": json.dumps(self.cfg.to_dict(), sort_keys=True), "step": step,
                 "wall_s": wall, "rows": rows, "model": model.state_dict(), "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict()}
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write_bytes(self.state_path, buffer.getvalue())

    def _write_outputs(self, model, wall: float, rows: list[dict], final: ZeroShotReport | None) -> None:
        from safetensors.torch import save

        recipe = {
            "format": WEIGHTS_FORMAT,
            "command": self.command,
            "arch": self.cfg.arch,
            "image_size": input_size(model),
            "config": self.cfg.to_dict(),
            "seed": self.cfg.seed,
            "steps": self.cfg.steps,
            "wall_s": round(wall, 1),
            "machine": machine(self.device, self.dist.world_size),
            "held_out": final.to_dict() if final is not None else None,
        }
        tensors = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in model.state_dict().items()}
        meta = {"format": WEIGHTS_FORMAT, "arch": self.cfg.arch, "recipe": json.dumps(recipe, sort_keys=True)}
        write_log_csv(sidecar(self.out, ".log.csv"), rows)
        atomic_write_text(sidecar(self.out, ".json"), json.dumps(recipe, indent=2, sort_keys=True) + "\n")
        atomic_write_bytes(self.out, save(tensors, metadata=meta))
        with contextlib.suppress(FileNotFoundError):
            self.state_path.unlink()


class KeepPatches(nn.Module):
    """Patch dropout with fixed draws: keeps the class token and, per image, the listed patch tokens.

    Sits where open_clip's ``VisionTransformer`` applies its ``patch_dropout`` (after the positional embedding),
    so the kept tokens carry their own positions.

    Args:
        keep: ``(B, k)`` int64 patch indices to keep, per image.
    """

    def __init__(self, keep: torch.Tensor) -> None:
        super().__init__()
        self.keep = keep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1 + N, C)`` → ``(B, 1 + k, C)``."""
        idx = self.keep.to(x.device).unsqueeze(-1).expand(-1, -1, x.shape[-1])
        return torch.cat([x[:, :1], x[:, 1:].gather(1, idx)], dim=1)


def kept_patches(cfg: PretrainConfig, step: int, batch: int, grid: tuple[int, int]) -> torch.Tensor | None:
    """``(batch, k)`` patch indices kept at ``step`` for the *global* batch (``None`` without dropout).

    Drawn from ``(seed, step)`` only, so every process cuts its rows from the same draw and a resumed run draws
    what an uninterrupted one did.
    """
    rate = cfg.patch_dropout_at(step)
    if rate <= 0:
        return None
    n = int(grid[0]) * int(grid[1])
    k = max(1, int(round(n * (1.0 - rate))))
    g = torch.Generator().manual_seed(hash_seed(cfg.seed, "patch-dropout", step))
    return torch.rand(batch, n, generator=g).topk(k, dim=1).indices.sort(dim=1).values


def hash_seed(*parts: object) -> int:
    """A 63-bit seed from its arguments only."""
    import hashlib

    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "big") >> 1


def tokenize_all(tokenizer, captions: list[list[str]]) -> torch.Tensor:
    """``(N, V, L)`` token ids of ``N`` items with ``V`` caption variants each (one tokenizer call per variant)."""
    variants = len(captions[0])
    return torch.stack([tokenizer([c[v] for c in captions]) for v in range(variants)], dim=1)


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``(b, D)`` slice into the global ``(B, D)``, keeping gradients to this rank's."""
    if not D.is_distributed():
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x))


def machine(device: torch.device, world_size: int) -> dict[str, Any]:
    """Where a recipe ran: device, processes, CPU, threads, torch version."""
    info = {"device": str(device), "processes": world_size, "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def write_log_csv(path: Path, rows: list[dict]) -> None:
    """The per-step log as CSV (columns: the union of the rows' keys, in first-seen order)."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())
