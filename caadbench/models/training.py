"""What every trained method shares: schedules, parameter groups, loss logs and a trainer base that owns the
epoch loop, distributed steps, checkpoints and exact resume.

A trainer reads ``FitData.train(epoch)`` (this rank's batches of one epoch; the same epoch always gives the same
batches), so it can stop anywhere and resume at the same batch of the same epoch. Under ``torchrun`` gradients
are averaged over ranks after every backward (the result equals one process on the global batch), an epoch ends
when any rank runs out of batches, and only rank 0 writes checkpoints and shows progress.

Checkpoints: ``<output_dir>/<checkpoint_name>`` (the fitted state, written by :meth:`AnomalyModel.save` with the
backbone identity and config) and a sidecar ``…safetensors.trainer.pt`` with the stage to resume in, step,
optimizer, scheduler, position in the epoch, the loss logs so far and the sha256 of the safetensors file it
belongs to, and ``FitData.train_identity`` (the data trained on: resuming on other data is refused). A checkpoint
written before training ends says so in its metadata (``AnomalyModel.save(in_progress=...)``), so only a resume, never
``--checkpoint``, loads it. Beside them, ``training_<stage>.csv`` (and TensorBoard events when installed) log every step: see
:mod:`caadbench.models.step_log`. A model's config must have ``progress``, ``resume`` (``None``, ``"auto"`` or a path) and
``checkpoint_every``.

:class:`TrainerBase` is CoRe-CLIP's two-stage trainer's base; :class:`SingleStageTrainer` trains the baselines
(APRIL-GAN, AnomalyCLIP) whose models implement :class:`SingleStageModel`.
"""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from caadbench.data.batch import Batch
from caadbench.errors import ModelError
from caadbench.utils.hashing import sha256_file
from caadbench.models.base import AnomalyModel, FitData
from caadbench.models.step_log import StepLog
from caadbench.utils import distributed as D
from caadbench.utils.atomic import atomic_write_bytes
from caadbench.utils.progress import progress

logger = logging.getLogger(__name__)

STATE_SUFFIX = ".trainer.pt"
CURVE_POINTS = 100

LossFn = Callable[[Batch], tuple[torch.Tensor, dict[str, torch.Tensor]]]
"""``batch (on the device) -> (total loss, {part name: unweighted part})``."""


def warmup_cosine(total: int, warmup: float) -> Callable[[int], float]:
    """Learning-rate multiplier: linear warm-up over ``warmup·total`` steps, then cosine decay to 0 at ``total``."""
    warm = int(round(warmup * total))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        span = max(1, total - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warm) / span)))

    return factor


def constant(step: int) -> float:
    """Learning-rate multiplier 1 at every step (the baselines' official schedule)."""
    return 1.0


def param_groups(params: list[torch.nn.Parameter], weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices only (not on biases, gates or temperatures)."""
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
        """Per value, its mean over the rows that hold it (a monitored value may join a row after the losses)."""
        keys = dict.fromkeys(k for r in rows for k in r if k != "step")
        return {k: sum(r[k] for r in rows if k in r) / sum(1 for r in rows if k in r) for k in keys}

    def summary(self) -> dict[str, Any]:
        """``steps``, mean losses over the first and last 10 % of steps, and at most ``CURVE_POINTS`` rows."""
        n = len(self.entries)
        if n == 0:
            return {"steps": 0}
        k = max(1, n // 10)
        stride = max(1, math.ceil(n / CURVE_POINTS))
        return {"steps": n, "losses_first": self._mean(self.entries[:k]), "losses_last": self._mean(self.entries[-k:]),
                "curve": self.entries[::stride]}


class Selection:
    """Early stopping on the validation part: the score history, the best step and its fitted state.

    Args:
        val_every: steps between validations (0: at each epoch's end).
        patience: validations without improvement before stopping (0: never early).
    """

    METRIC = "macro I-AUROC on the validation part"

    def __init__(self, val_every: int, patience: int) -> None:
        self.val_every, self.patience = val_every, patience
        self.history: list[dict[str, float]] = []
        self.best_step, self.best_score = -1, -math.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.stopped_at: int | None = None

    def record(self, step: int, score: float, model: AnomalyModel) -> bool:
        """Add ``score`` at ``step``; keep the model's state when it is the best so far (ties keep the earlier
        one). Returns ``True`` when ``patience`` validations in a row did not improve."""
        self.history.append({"step": step, "score": score})
        if score > self.best_score:
            self.best_step, self.best_score = step, score
            self.best_state = {k: v.detach().cpu().clone() for k, v in model.fitted_state().items()}
        since = sum(1 for h in self.history if h["step"] > self.best_step)
        return bool(self.patience) and since >= self.patience

    def restore_best(self, model: AnomalyModel, last_step: int) -> None:
        """End with the best-scoring state (a no-op when it is the last one)."""
        self.stopped_at = last_step
        if self.best_state is not None and self.best_step != last_step:
            device = next(iter(model.fitted_state().values())).device
            model.load_fitted_state({k: v.to(device) for k, v in self.best_state.items()})

    def describe(self, where: str) -> str:
        return (f"{where}: selected step {self.best_step} of {self.stopped_at} ({self.METRIC} "
                f"{100 * self.best_score:.1f}; {len(self.history)} validations)")

    def summary(self) -> dict[str, Any]:
        """What the results file records: metric, rule, history, the selected step and its score."""
        return {"metric": self.METRIC, "val_every": self.val_every or "epoch", "patience": self.patience,
                "history": self.history, "selected_step": self.best_step, "val_score": self.best_score,
                "stopped_at": self.stopped_at}

    def state(self) -> dict[str, Any]:
        return {"val_every": self.val_every, "patience": self.patience, "history": self.history,
                "best_step": self.best_step, "best_score": self.best_score, "best_state": self.best_state,
                "stopped_at": self.stopped_at}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> Selection | None:
        if not state:
            return None
        out = cls(state["val_every"], state["patience"])
        out.history, out.best_step, out.best_score = state["history"], state["best_step"], state["best_score"]
        out.best_state, out.stopped_at = state["best_state"], state["stopped_at"]
        return out


class TrainerBase:
    """Epoch loop, distributed steps, checkpoints and resume for one model on one :class:`FitData`.

    Args:
        model: the model (moved to ``data.device`` by :meth:`run` of the subclass).
        data: ``train`` must be set.
        checkpoint_name: file name of the checkpoint in ``data.output_dir``.
        stages: names of the loss logs (one per stage).
        grad_clip: clip the gradient norm at this value (``None``: no clipping).
    """

    def __init__(self, model: AnomalyModel, data: FitData, checkpoint_name: str, stages: Sequence[str],
                 grad_clip: float | None) -> None:
        if data.train is None:
            raise ModelError(model.name or type(model).__name__,
                             "training needs FitData.train (the split's train part)")
        self.model, self.data, self.cfg = model, data, model.config
        self.checkpoint_name, self.grad_clip = checkpoint_name, grad_clip
        self.dist = D.context()
        self.device = torch.device(D.local_device(data.device))
        self.output_dir = Path(data.output_dir) if data.output_dir else None
        self.logs = {name: LossLog() for name in stages}
        self.selection: Selection | None = None

    @property
    def where(self) -> str:
        return self.model.name or type(self.model).__name__

    # ----------------------------------------------------------------- the loop
    def train_epochs(self, stage: int, log: str, params: list[torch.nn.Parameter], opt: torch.optim.Optimizer,
                     sched: Any, total_steps: int, resumed: dict[str, Any] | None, loss_fn: LossFn,
                     desc: str, select: bool = False) -> None:
        """Run ``total_steps`` optimiser steps over epochs of ``data.train``, checkpointing as configured.

        With ``select`` and ``data.validate``, the model is scored on the validation part every ``val_every``
        steps (0: at each epoch's end) and at the last step; training stops after ``patience`` validations
        without improvement (0: never early) and ends with the best-scoring state (:class:`Selection`).

        Args:
            stage: the stage number written to checkpoints taken during the loop; ``stage + 1`` when it ends.
            log: the loss log to record into.
            params, opt, sched: what is optimised, by what, on which learning-rate schedule.
            total_steps: steps in all (over as many epochs as needed).
            resumed: the trainer state of a checkpoint of this stage (continue from its step, epoch and
                position), or ``None``.
            loss_fn: the loss of one batch.
            desc: progress bar label.
            select: validate and keep the best state here (the stage whose steps selection chooses).
        """
        step, epoch, skip = 0, 0, 0
        if resumed and resumed["optimizer"] is not None:
            opt.load_state_dict(resumed["optimizer"])
            sched.load_state_dict(resumed["scheduler"])
            step, epoch, skip = resumed["step"], resumed["epoch"], resumed["batch_in_epoch"]
        every = int(getattr(self.cfg, "checkpoint_every", 0) or 0)
        selecting = select and self.data.validate is not None
        if selecting and self.selection is None:
            self.selection = Selection(int(getattr(self.cfg, "val_every", 0) or 0),
                                       int(getattr(self.cfg, "patience", 0) or 0))
        val_every = self.selection.val_every if selecting else 0
        bar = self._bar(total_steps, step, desc)
        steps = self.step_log(log, step)
        stop = False
        while step < total_steps and not stop:
            position, seen = skip, 0
            for batch in self._rank_batches(epoch, skip):
                seen += 1
                lr = float(opt.param_groups[0]["lr"])
                total, parts = loss_fn(batch.to(self.device))
                self._step(opt, sched, params, total)
                step, position = step + 1, position + 1
                steps.step(step, epoch, lr, self._record(log, step, total, parts, bar), images=len(batch))
                if selecting and ((val_every and step % val_every == 0) or step >= total_steps):
                    stop = self._validate(step)
                if every and step % every == 0 and step < total_steps and not stop:
                    self._checkpoint(stage, step, opt, sched, epoch, position)
                if step >= total_steps or stop:
                    break
            if seen == 0 and skip == 0:
                raise ModelError(self.where, "the train part yielded no batches")
            epoch, skip = epoch + 1, 0
            if selecting and not val_every and not stop and step < total_steps:
                stop = self._validate(step)
        bar.close()
        steps.close()
        if selecting:
            self.selection.restore_best(self.model, step)
            self._info(self.selection.describe(self.where))
        self._checkpoint(stage + 1, step, opt, sched, epoch, 0)

    def _validate(self, step: int) -> bool:
        """Score the model on the validation part at ``step``; ``True`` when patience is exhausted."""
        was_training, was_fitted = self.model.training, self.model.is_fitted
        self.model.is_fitted = True  # the state as it is now is what is scored
        try:
            score = float(self.data.validate(self.model))
        finally:
            self.model.train(was_training)
            self.model.is_fitted = was_fitted
        return self.selection.record(step, score, self.model)

    def _rank_batches(self, epoch: int, skip: int) -> Iterator[Batch]:
        """This rank's batches of ``epoch``, after ``skip`` already-trained ones; stops when any rank runs out."""
        it = iter(self.data.train(epoch))
        for _ in range(skip):
            if next(it, None) is None:
                break
        while True:
            batch = next(it, None)
            if not D.all_ranks(batch is not None, self.device):
                return
            yield batch

    def steps_per_epoch(self) -> int:
        """From ``train_size`` and the first batch's size; counted by one pass when the size is unknown."""
        first = next(iter(self.data.train(0)), None)
        if first is None:
            raise ModelError(self.where, "the train part yielded no batches")
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
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        opt.step()
        sched.step()

    def _record(self, log: str, step: int, total: torch.Tensor, parts: dict[str, torch.Tensor],
                bar: Any) -> dict[str, float]:
        """Add the step's losses to the log and the bar; return them (``total`` and one value per part)."""
        values = {"total": float(total.detach())} | {k: float(v.detach()) for k, v in parts.items()}
        self.logs[log].add(step, values)
        bar.update(1)
        if not bar.disable:
            bar.set_postfix({k: f"{v:.4f}" for k, v in self.logs[log].running().items()}, refresh=False)
        return values

    def _bar(self, total: int, initial: int, desc: str) -> Any:
        show = getattr(self.cfg, "progress", True) and self.dist.is_main
        return progress(total=total, initial=initial, desc=desc, unit="step", enabled=show)

    def step_log(self, log: str, resume_step: int = 0) -> StepLog:
        """The per-step CSV (and TensorBoard) writer of one stage (a no-op off rank 0 or without output_dir)."""
        return StepLog(self.output_dir if self.dist.is_main else None, log, resume_step=resume_step,
                       world_size=self.dist.world_size)

    def _info(self, message: str) -> None:
        if self.dist.is_main:
            logger.info(message)

    def summary(self, counts: dict[str, int], share: float, start: float) -> dict[str, Any]:
        """The training log a model keeps as ``train_log`` (and the results file records per seed)."""
        return {
            "trainable_params": counts["trainable"],
            "total_params": counts["total"],
            "trainable_share": share,
            "world_size": self.dist.world_size,
            "device": str(self.device),
            "precision": self.model.precision_for("train"),
            "seed": self.data.seed,
            **{name: log.summary() for name, log in self.logs.items()},
            **({"selection": self.selection.summary()} if self.selection is not None else {}),
            "wall_s": time.perf_counter() - start,
        }

    def _announce(self, counts: dict[str, int]) -> float:
        """Log the trainable parameter count; return the trainable share."""
        share = counts["trainable"] / counts["total"]
        self._info(f"{self.where}: {counts['trainable']:,} trainable parameters of {counts['total']:,} "
                    f"({100 * share:.2f} %) on {self.device}, {self.dist.world_size} process(es)")
        return share

    # ----------------------------------------------------------------- checkpoints
    def checkpoint_path(self) -> Path | None:
        return self.output_dir / self.checkpoint_name if self.output_dir else None

    def _checkpoint(self, stage: int, step: int, opt: torch.optim.Optimizer | None, sched: Any | None,
                    epoch: int, batch_in_epoch: int) -> None:
        """Write the fitted state and the trainer state (rank 0 only, no collective: other ranks may have no
        ``output_dir``). ``stage`` is the stage to resume in."""
        path = self.checkpoint_path()
        if path is not None and self.dist.is_main:
            final = stage > len(self.logs)
            self.model.save(path, in_progress=None if final else f"stage {stage}, step {step}")
            state = {
                "stage": stage, "step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch,
                "optimizer": opt.state_dict() if opt is not None else None,
                "scheduler": sched.state_dict() if sched is not None else None,
                "logs": {k: v.entries for k, v in self.logs.items()},
                "checkpoint_sha256": sha256_file(path),
                "world_size": self.dist.world_size,
                "selection": self.selection.state() if self.selection is not None else None,
                "train_identity": self.data.train_identity,
                **self.extra_state(),
            }
            buffer = io.BytesIO()
            torch.save(state, buffer)
            atomic_write_bytes(path.with_name(path.name + STATE_SUFFIX), buffer.getvalue())

    def _resume_path(self) -> Path | None:
        """The checkpoint ``config.resume`` names, or ``None`` for a fresh start."""
        resume = getattr(self.cfg, "resume", None)
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
        try:
            state = torch.load(side, map_location=self.device, weights_only=True)
        except Exception as exc:  # torch raises several types for a bad pickle
            raise ModelError(side, f"unreadable trainer state ({exc})") from exc
        if state.get("checkpoint_sha256") != sha256_file(path):
            raise ModelError(side, f"trainer state does not belong to {path.name} (written by another save)")
        theirs, mine = state.get("train_identity"), self.data.train_identity
        if theirs and mine and theirs != mine:
            raise ModelError(side, f"the checkpoint was trained on other data ({theirs}) than this run trains on "
                                   f"({mine}); resume only with the data it was trained on, or train afresh "
                                   "(another --out, or without resume)")
        self.model.load(path, resuming=True)
        self.logs = {k: LossLog(v) for k, v in state["logs"].items()}
        self.selection = Selection.from_state(state.get("selection"))
        self.restore_extra(state)
        return state

    def extra_state(self) -> dict[str, Any]:
        """What a subclass adds to the trainer state (plain values); :meth:`restore_extra` reads it back."""
        return {}

    def restore_extra(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` saved (``state`` is the whole trainer state)."""


class SingleStageModel(Protocol):
    """What :class:`SingleStageTrainer` needs from a model (besides :class:`AnomalyModel`).

    Its config has ``epochs``, ``max_steps``, ``lr``, ``precision`` and the checkpoint fields named in the module
    docstring.
    """

    def reset_trainable(self, seed: int) -> None:
        """(Re-)initialise every trainable parameter from ``seed``, independently of the global RNG."""

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """What the optimiser updates."""

    def training_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(total, {part: unweighted value})`` of one batch already on the device."""


ADAM_BETAS = (0.5, 0.999)
"""Adam's betas in both APRIL-GAN's and AnomalyCLIP's official training scripts."""


class SingleStageTrainer(TrainerBase):
    """Adam (betas ``ADAM_BETAS``) at a constant learning rate, no weight decay and no gradient clipping: the
    official recipe of APRIL-GAN and AnomalyCLIP. ``max_steps > 0`` overrides ``epochs``."""

    LOG = "train"

    def __init__(self, model: AnomalyModel, data: FitData, checkpoint_name: str) -> None:
        super().__init__(model, data, checkpoint_name, stages=(self.LOG,), grad_clip=None)

    def run(self) -> dict[str, Any]:
        """Train (or resume); return the training log."""
        start = time.perf_counter()
        model: Any = self.model.to(self.device)
        model.train()
        resumed = self._resume()
        if resumed is None:
            model.reset_trainable(self.data.seed)
        params = model.trainable_parameters()
        D.broadcast_parameters(params)
        torch.manual_seed(self.data.seed)
        counts = model.parameter_counts()
        share = self._announce(counts)
        c = self.cfg
        total_steps = c.max_steps or c.epochs * self.steps_per_epoch()
        opt = torch.optim.Adam(params, lr=c.lr, betas=ADAM_BETAS)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, constant)
        self.train_epochs(1, self.LOG, params, opt, sched, total_steps, resumed, model.training_loss,
                          f"{self.where} (train)", select=True)
        model.eval()
        return self.summary(counts, share, start)


__all__ = [
    "ADAM_BETAS",
    "CURVE_POINTS",
    "STATE_SUFFIX",
    "LossLog",
    "Selection",
    "SingleStageModel",
    "SingleStageTrainer",
    "TrainerBase",
    "constant",
    "param_groups",
    "warmup_cosine",
]
