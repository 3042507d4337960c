"""What the trained baselines (APRIL-GAN, AnomalyCLIP) share: training options, the image layers they tap, and a
model base whose :meth:`fit` runs :class:`~caadbench.models.training.SingleStageTrainer`.

Which blocks' patch tokens make the maps (``feature_layers``) is given as block indices or as a named set that
adapts to whatever backbone runs, so the same config works on the paper's ViT-L/14 and on the tiny test one:

* ``"quarters"``: the blocks ending each quarter, 0-based ``⌈n/4⌉ − 1, ⌈n/2⌉ − 1, ⌈3n/4⌉ − 1, n − 1`` (5, 11,
  17, 23 for ViT-L/14, i.e. blocks 6, 12, 18, 24 counted from 1; 1, 3, 5, 7 for the 8-block ``caad-tiny``):
  APRIL-GAN's ``--features_list 6 12 18 24``;
* ``"top"``: the last block only: AnomalyCLIP's released ``--features_list 24``.

``None`` is each method's own default (:attr:`TrainedConfig.DEFAULT_BLOCKS`).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

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


BLOCK_SETS = ("quarters", "top")
"""Named sets of feature blocks (see the module docstring)."""


def resolve_layers(layers: Sequence[int] | str, n_blocks: int, where: str) -> tuple[int, ...]:
    """``layers`` (block indices or a name of :data:`BLOCK_SETS`) as sorted, distinct, non-negative block indices.

    Raises:
        ModelError: an index outside the encoder, no index at all, or an unknown set name.
    """
    if layers == "quarters":
        return quarter_layers(n_blocks)
    if layers == "top":
        return (n_blocks - 1,)
    if isinstance(layers, str):
        raise ModelError(where, f"feature_layers must be block indices or one of {', '.join(BLOCK_SETS)}, "
                                f"got {layers!r}")
    bad = [i for i in layers if not -n_blocks <= int(i) < n_blocks]
    if bad or not layers:
        raise ModelError(where, f"feature_layers {list(layers)} must be non-empty block indices of a "
                                f"{n_blocks}-block image encoder")
    return tuple(sorted({int(i) % n_blocks for i in layers}))


@dataclass
class TrainedConfig(TrainedModelConfig):
    """Options of every trained baseline.

    Attributes:
        feature_layers: 0-based image blocks whose patch tokens make the maps, or a named set, ``"quarters"`` or
            ``"top"`` (``None``: the method's default, ``DEFAULT_BLOCKS``: ``quarters`` for APRIL-GAN, ``top`` for
            AnomalyCLIP).
        epochs: passes over the train part (``max_steps > 0`` overrides it).
        max_steps: optimisation steps to train (0: ``epochs`` passes).
        lr: Adam's learning rate (constant; betas 0.5, 0.999 as in both official scripts).
        batch_size: training batch size.
    """

    backbone: str = PAPER_BACKBONE
    feature_layers: tuple[int, ...] | str | None = None
    epochs: int = 1
    max_steps: int = 0
    lr: float = 1e-3
    batch_size: int = 8

    DEFAULT_BLOCKS: ClassVar[Literal["quarters", "top"]] = "quarters"
    """The feature blocks ``feature_layers=None`` means."""

    def __post_init__(self) -> None:
        where = type(self).__name__
        if isinstance(self.feature_layers, str):
            resolve_layers(self.feature_layers, 1, where)  # refuses an unknown set name now
        elif self.feature_layers is not None:
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
        layers = config.DEFAULT_BLOCKS if config.feature_layers is None else config.feature_layers
        self.feature_blocks = resolve_layers(layers, len(self.backbone.image_blocks), type(self).__name__)
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
