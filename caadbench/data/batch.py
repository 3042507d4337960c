"""The batch type the reader yields and every model consumes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

EVAL_RESOLUTION = 256
MIN_IMAGE_SIZE = 32
"""The smallest image side caadbench generates or feeds a model (``--image-size``), checked before any work."""
"""Side in pixels at which every pixel metric is computed: ground truth is resized to it with nearest
neighbour from the full-size mask, anomaly maps bilinearly from the model's input size."""


@dataclass
class Batch:
    """A batch of samples prepared for a model.

    A batch read from shards carries every field. A batch of a user's own images
    (:meth:`from_images`) carries images and subjects only: ``subject_masks``, ``gt_masks`` and ``labels`` are
    ``None`` there, never made-up zeros, so nothing can score them as ground truth. Prediction reads only
    ``images`` and ``subjects``; training and evaluation refuse a batch without the ground truth they need.

    Attributes:
        images: ``(B, 3, S, S)`` float32 RGB in [0, 1], resized to the model's input size ``S``
            (bicubic, antialiased). Models apply their own mean/std normalisation.
        subject_masks: ``(B, S, S)`` bool subject masks at the input size (nearest). All true for
            industrial samples, which have no subject segmentation. Only training may use them. ``None``: none.
        gt_masks: ``(B, R, R)`` bool pixel ground truth at the evaluation resolution ``R`` (nearest from the
            full-size mask): the subject mask of an anomalous contextual image, empty for a normal one,
            the defect mask for industrial images. ``None``: no pixel ground truth.
        labels: ``(B,)`` int64, 0 normal / 1 anomalous; ``None``: unlabelled.
        keys: sample keys (for a user's images: their paths or given names).
        subjects: subject (class) names, used in prompts.
        contexts: context names (``"-"`` when unknown).
        metadata: the full JSON record of each sample.
        has_gt: ``(B,)`` bool, whether image ``i``'s row of ``gt_masks`` is ground truth (false for an anomalous
            image whose dataset has no mask for it: image metrics only); ``None``: every row is.
    """

    images: torch.Tensor
    subject_masks: torch.Tensor | None
    gt_masks: torch.Tensor | None
    labels: torch.Tensor | None
    keys: list[str]
    subjects: list[str]
    contexts: list[str]
    metadata: list[dict[str, Any]] = field(default_factory=list)
    has_gt: torch.Tensor | None = None

    @classmethod
    def from_images(cls, images: torch.Tensor, subjects: Sequence[str], *, keys: Sequence[str] | None = None,
                    contexts: Sequence[str] | None = None, labels: torch.Tensor | None = None,
                    gt_masks: torch.Tensor | None = None) -> Batch:
        """A batch of images that come without a dataset: only what is known is set.

        Args:
            images: ``(B, 3, S, S)`` float32 in [0, 1] at the model's input size.
            subjects: ``B`` subject names (one per image).
            keys: ``B`` names (default ``image-0``, ``image-1``, ...).
            contexts: ``B`` context names (default ``"-"``).
            labels: optional ``(B,)`` int64 labels.
            gt_masks: optional ``(B, R, R)`` bool pixel ground truth.

        Raises:
            ValueError: lengths or shapes that do not match ``images``.
        """
        n = int(images.shape[0])
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, S, S), got {tuple(images.shape)}")
        keys = [f"image-{i}" for i in range(n)] if keys is None else list(keys)
        contexts = ["-"] * n if contexts is None else list(contexts)
        for name, values in (("subjects", subjects), ("keys", keys), ("contexts", contexts)):
            if len(values) != n:
                raise ValueError(f"{len(values)} {name} for {n} images")
        if labels is not None and tuple(labels.shape) != (n,):
            raise ValueError(f"labels must be ({n},), got {tuple(labels.shape)}")
        if gt_masks is not None and (gt_masks.ndim != 3 or gt_masks.shape[0] != n):
            raise ValueError(f"gt_masks must be ({n}, R, R), got {tuple(gt_masks.shape)}")
        return cls(images=images, subject_masks=None, gt_masks=gt_masks, labels=labels, keys=keys,
                   subjects=list(subjects), contexts=contexts)

    def __len__(self) -> int:
        return len(self.keys)

    def to(self, device: torch.device | str) -> Batch:
        """A copy with every tensor on ``device``."""

        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return replace(self, images=move(self.images), subject_masks=move(self.subject_masks),
                       gt_masks=move(self.gt_masks), labels=move(self.labels), has_gt=move(self.has_gt))
