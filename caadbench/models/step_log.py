"""Per-step training logs on disk: one CSV per stage and, when ``tensorboard`` is installed, TensorBoard events.

``<output_dir>/training_<stage>.csv`` has one row per optimiser step: ``step``, ``epoch``, ``lr`` (the learning
rate of the first parameter group used by that step), ``images`` (the step's batch size on this rank),
``step_s`` (wall seconds since the previous step, data loading included), ``images_per_s`` (``images · world
size / step_s``), ``total`` and one column per loss term (unweighted, as the trainer's loss function returns
them). The header is fixed by the stage's first step. On resume the rows after the checkpoint's step are dropped,
so the file always matches the checkpoint it sits beside.

TensorBoard scalars (``<stage>/<column>``) go to ``<output_dir>/tensorboard/`` when
``torch.utils.tensorboard`` imports (the optional extra ``caadbench[tensorboard]``); without it nothing is written
and nothing fails.
"""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

TENSORBOARD_DIR = "tensorboard"
FIXED_COLUMNS = ("step", "epoch", "lr", "images", "step_s", "images_per_s", "total")


def csv_path(output_dir: str | Path, stage: str) -> Path:
    """``<output_dir>/training_<stage>.csv``."""
    return Path(output_dir) / f"training_{stage}.csv"


def _summary_writer(log_dir: Path) -> Any | None:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(log_dir))


class StepLog:
    """Writes one stage's per-step rows (rank 0 with an output directory only; otherwise every call is a no-op).

    Args:
        output_dir: the run's checkpoint folder, or ``None`` (nothing is written).
        stage: the stage's log name (``stage1``, ``stage2``, ``train``).
        resume_step: the step training continues after (0 for a fresh start): rows up to it are kept.
    """

    def __init__(self, output_dir: str | Path | None, stage: str, resume_step: int = 0, world_size: int = 1) -> None:
        self.stage, self.world_size = stage, world_size
        self._tick = time.perf_counter()
        self.path = csv_path(output_dir, stage) if output_dir is not None else None
        self._kept: list[dict[str, str]] = []
        if self.path is not None and resume_step > 0 and self.path.is_file():
            with self.path.open(newline="", encoding="utf-8") as f:
                self._kept = [r for r in csv.DictReader(f) if r.get("step", "").isdigit()
                              and int(r["step"]) <= resume_step]
        self._file = None
        self._writer: csv.DictWriter | None = None
        self._tb = _summary_writer(Path(output_dir) / TENSORBOARD_DIR) if output_dir is not None else None

    def step(self, step: int, epoch: int, lr: float, losses: dict[str, float], images: int | None = None) -> None:
        """Record one optimiser step; ``step_s`` is the time since the previous call (or since construction).

        Args:
            step: the step number (1-based, counting from the stage's start).
            epoch: the epoch it belongs to.
            lr: the learning rate it used.
            losses: ``total`` and the loss terms.
            images: this rank's images in the step (``None``, e.g. a text-only stage: no throughput columns).
        """
        now = time.perf_counter()
        elapsed, self._tick = max(now - self._tick, 1e-9), now
        row: dict[str, float | int] = {"step": step, "epoch": epoch, "lr": lr, "step_s": elapsed}
        if images is not None:
            row |= {"images": images, "images_per_s": images * self.world_size / elapsed}
        self.write(row | losses)

    def write(self, row: dict[str, float | int]) -> None:
        """Append one row (the first row fixes the header; fixed columns first)."""
        if self.path is None:
            return
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            header = [*FIXED_COLUMNS, *(k for k in row if k not in FIXED_COLUMNS)]
            self._file = self.path.open("w", newline="", encoding="utf-8")
            self._writer = csv.DictWriter(self._file, fieldnames=header, restval="", extrasaction="ignore")
            self._writer.writeheader()
            self._writer.writerows(self._kept)
        self._writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        self._file.flush()
        if self._tb is not None:
            for key, value in row.items():
                if key not in ("step", "epoch"):
                    self._tb.add_scalar(f"{self.stage}/{key}", float(value), global_step=int(row["step"]))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            logger.info("per-step log of %s: %s", self.stage, self.path)
        if self._tb is not None:
            self._tb.close()


__all__ = ["FIXED_COLUMNS", "TENSORBOARD_DIR", "StepLog", "csv_path"]
