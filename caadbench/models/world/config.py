"""The recipe of world pretraining: one dataclass, stored in every checkpoint it produces."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from caadbench.data.world import WORLD_SEED
from caadbench.errors import ModelError

PRECISIONS = ("fp32", "bf16")


@dataclass
class PretrainConfig:
    """Contrastive pretraining of an open_clip architecture on the captioned world.

    Attributes:
        arch: open_clip architecture (default ``caad-tiny``).
        image_size: model input side (``None``: the architecture's).
        scenes: number of world scenes drawn (each gives a scene pair and a close-up pair).
        world_seed: seed of the world scenes (disjoint from every benchmark build, see ``caadbench.data.world``).
        caption_variants: captions drawn per scene and per close-up; epoch ``e`` uses variant ``e mod V``.
        steps: optimisation steps.
        batch_size: pairs per step (global, over every process).
        closeup_share: share of each batch that are close-up pairs.
        cutout_share: share of each batch that are cutout pairs (the subject alone on a plain backdrop); the rest
            of the batch are full scenes.
        lr: peak learning rate (AdamW, linear warm-up then cosine decay to ``lr · final_lr``).
        final_lr: the learning rate at the last step, as a fraction of ``lr``.
        warmup: fraction of the steps spent warming up.
        weight_decay: AdamW weight decay on matrices (not on gains, biases, embeddings or the temperature).
        seed: seed of the initialisation and of the batch order.
        precision: ``fp32`` or ``bf16`` (autocast; see ``docs/world.md`` for where it is faster).
        checkpoint_every: write the resumable trainer state every N steps (0: only at the end).
        eval_every: measure zero-shot accuracy on held-out scenes every N steps (0: never).
        eval_scenes: held-out scenes for that measurement.
        workers: processes that draw the world.
    """

    arch: str = "caad-tiny"
    image_size: int | None = None
    scenes: int = 24000
    world_seed: int = WORLD_SEED
    caption_variants: int = 4
    steps: int = 1500
    batch_size: int = 128
    closeup_share: float = 0.25
    cutout_share: float = 0.25
    lr: float = 1e-3
    final_lr: float = 0.02
    warmup: float = 0.04
    weight_decay: float = 0.1
    seed: int = 0
    precision: str = "fp32"
    checkpoint_every: int = 100
    eval_every: int = 250
    eval_scenes: int = 300
    workers: int = 2

    def __post_init__(self) -> None:
        where = "pretrain"
        for name in ("scenes", "steps", "batch_size", "caption_variants"):
            if int(getattr(self, name)) < 1:
                raise ModelError(where, f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("checkpoint_every", "eval_every", "eval_scenes"):
            if int(getattr(self, name)) < 0:
                raise ModelError(where, f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        for name in ("closeup_share", "cutout_share"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ModelError(where, f"--{name.replace('_', '-')} is a fraction in [0, 1), got {getattr(self, name)}")
        if self.closeup_share + self.cutout_share >= 1.0:
            raise ModelError(where, "--closeup-share plus --cutout-share must leave room for full scenes (< 1)")
        if not 0.0 <= self.warmup < 1.0 or not 0.0 <= self.final_lr <= 1.0:
            raise ModelError(where, "warmup must lie in [0, 1) and final_lr in [0, 1]")
        if self.lr <= 0:
            raise ModelError(where, f"--lr must be positive, got {self.lr}")
        if self.precision not in PRECISIONS:
            raise ModelError(where, f"--precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if self.workers < 1:
            raise ModelError(where, f"--workers must be at least 1, got {self.workers}")

    def view_counts(self) -> dict[str, int]:
        """Pairs of each world view in one global batch (scenes take what the shares leave)."""
        closeup = int(round(self.batch_size * self.closeup_share))
        cutout = int(round(self.batch_size * self.cutout_share))
        return {"scene": self.batch_size - closeup - cutout, "closeup": closeup, "cutout": cutout}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PretrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ModelError("pretrain", f"unknown recipe field(s) {', '.join(unknown)}")
        return cls(**values)

    def same_run(self, other: PretrainConfig) -> list[str]:
        """Fields that differ in a way that makes a resumed run not the same run (everything but bookkeeping)."""
        free = {"checkpoint_every", "eval_every", "eval_scenes", "workers"}
        return [f.name for f in fields(self) if f.name not in free and getattr(self, f.name) != getattr(other, f.name)]
