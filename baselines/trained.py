"""What the trained baselines (APRIL-GAN, AnomalyCLIP) share: training options, the image layers they tap, and a
model base whose :meth:`fit` runs :class:`~caadbench.models.training.SingleStageTrainer`.

Both papers read patch tokens at the quarters of a 24-block ViT-L/14 (blocks 6, 12, 18 and 24, counted from 1).
``feature_layers=None`` takes the quarters of whatever backbone runs (0-based indices ``⌈n/4⌉ − 1, ⌈n/2⌉ − 1,
⌈3n/4⌉ − 1, n − 1``: 5, 11, 17, 23 for ViT-L/14; 1, 3, 5, 7 for the 8-block ``caad-tiny``), so the same config
works on the paper's backbone and on the tiny test one.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from caadbench.models.api import (
    AnomalyModel,
    Batch,
    ClipBackbone,
    FitData,
    ModelError,
    SingleStageTrainer,
    TrainedModelConfig,
)

PAPER_BACKBONE = "ViT-L-14-336"
PAPER_PRETRAINED = "openai"
PAPER_IMAGE_SIZE = 518
"""Both papers: OpenAI's CLIP ViT-L/14@336px run at 518 × 518 px (pass ``--image-size 518``)."""


def quarter_layers(n_blocks: int) -> tuple[int, ...]:
    """0-based indices of the blocks that end each quarter of an ``n_blocks``-block encoder."""
    return tuple(sorted({max(0, math.ceil(n_blocks * q) - 1) for q in (0.25, 0.5, 0.75, 1.0)}))


def resolve_layers(layers: Sequence[int] | None, n_blocks: int, where: str) -> tuple[int, ...]:
    """``layers`` as sorted, distinct, non-negative block indices (``None``: :func:`quarter_layers`).

    Raises:
        ModelError: an index outside the encoder, or no index at all.
    """
    if layers is None:
        return quarter_layers(n_blocks)
    bad = [i for i in layers if not -n_blocks <= int(i) < n_blocks]
    if bad or not layers:
        raise ModelError(where, f"feature_layers {list(layers)} must be non-empty block indices of a "
                                f"{n_blocks}-block image encoder")
    return tuple(sorted({int(i) % n_blocks for i in layers}))


@dataclass
class TrainedConfig(TrainedModelConfig):
    """Options of every trained baseline.

    Attributes:
        feature_layers: 0-based image blocks whose patch tokens make the maps (``None``: the four quarters).
        epochs, max_steps: passes over the train part (``max_steps > 0`` overrides ``epochs``).
        lr: Adam's learning rate (constant; betas 0.5, 0.999 as in both official scripts).
        batch_size: training batch size.
    """

    backbone: str = PAPER_BACKBONE
    feature_layers: tuple[int, ...] | None = None
    epochs: int = 1
    max_steps: int = 0
    lr: float = 1e-3
    batch_size: int = 8

    def __post_init__(self) -> None:
        where = type(self).__name__
        if self.feature_layers is not None:
            self.feature_layers = tuple(int(i) for i in self.feature_layers)
        for name in ("epochs", "max_steps", "checkpoint_every"):
            if int(getattr(self, name)) < 0:
                raise ModelError(where, f"{name} must be >= 0, got {getattr(self, name)}")
        if self.epochs == 0 and self.max_steps == 0:
            raise ModelError(where, "epochs and max_steps are both 0: nothing would be trained")
        if not self.lr > 0 or self.batch_size < 1:
            raise ModelError(where, f"lr must be positive and batch_size >= 1, got {self.lr}, {self.batch_size}")


class TrainedBaseline(AnomalyModel):
    """Base of APRIL-GAN and AnomalyCLIP: a frozen backbone, a few trainable tensors, one training stage.

    Subclasses set ``config_cls`` and ``checkpoint_name`` and implement :meth:`reset_trainable`,
    :meth:`trainable_parameters`, :meth:`training_loss` and :meth:`_predict`.
    """

    config_cls = TrainedConfig
    checkpoint_name: ClassVar[str] = "baseline-last.safetensors"
    config: TrainedConfig

    def __init__(self, config: TrainedConfig, backbone: ClipBackbone | None = None) -> None:
        super().__init__(config, backbone)
        self.feature_blocks = resolve_layers(config.feature_layers, len(self.backbone.image_blocks),
                                             type(self).__name__)
        self.train_log: dict | None = None

    @abstractmethod
    def reset_trainable(self, seed: int) -> None:
        """(Re-)initialise every trainable tensor from ``seed``, independently of the global RNG."""

    @abstractmethod
    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """What training updates."""

    @abstractmethod
    def training_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(weighted total, {part: unweighted value})`` of a batch on the model's device."""

    def forget_cache(self) -> None:
        """Drop anything computed from the trainable tensors (called whenever they change)."""

    def fit(self, data: FitData) -> None:
        """Train on ``data.train`` (see :class:`~caadbench.models.training.SingleStageTrainer`)."""
        self.forget_cache()
        try:
            self.train_log = SingleStageTrainer(self, data, self.checkpoint_name).run()
        finally:
            self.forget_cache()
        self.is_fitted = True

    def load_fitted_state(self, tensors: dict[str, torch.Tensor]) -> None:
        super().load_fitted_state(tensors)
        self.forget_cache()
