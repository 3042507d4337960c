"""The batch type the reader yields and every model consumes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch

EVAL_RESOLUTION = 256
"""Side in pixels at which every pixel metric is computed: ground truth is resized to it with nearest
neighbour from the full-size mask, anomaly maps bilinearly from the model's input size."""


@dataclass
class Batch:
    """A batch of samples prepared for a model.

    Attributes:
        images: ``(B, 3, S, S)`` float32 RGB in [0, 1], resized to the model's input size ``S``
            (bicubic, antialiased). Models apply their own mean/std normalisation.
        subject_masks: ``(B, S, S)`` bool subject masks at the input size (nearest). All true for
            industrial samples, which have no subject segmentation. Only training may use them.
        gt_masks: ``(B, R, R)`` bool pixel ground truth at the evaluation resolution ``R`` (nearest from the
            full-size mask): the subject mask of an anomalous contextual image, empty for a normal one,
            the defect mask for industrial images.
        labels: ``(B,)`` int64, 0 normal / 1 anomalous.
        keys: sample keys.
        subjects: subject (class) names, used in prompts.
        contexts: context names.
        metadata: the full JSON record of each sample.
    """

    images: torch.Tensor
    subject_masks: torch.Tensor
    gt_masks: torch.Tensor
    labels: torch.Tensor
    keys: list[str]
    subjects: list[str]
    contexts: list[str]
    metadata: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.keys)

    def to(self, device: torch.device | str) -> Batch:
        """A copy with every tensor on ``device``."""
        return replace(
            self,
            images=self.images.to(device, non_blocking=True),
            subject_masks=self.subject_masks.to(device, non_blocking=True),
            gt_masks=self.gt_masks.to(device, non_blocking=True),
            labels=self.labels.to(device, non_blocking=True),
        )
