"""The frozen features a probe reads, and the one pass over the train part that collects them.

Layers (the config's ``layer``):

* ``"global"``: the backbone's projected, L2-normalised image embedding (``ClipBackbone.encode_image``), ``(B, D)``;
* an image block (``"middle"``: block ``⌈n/2⌉ − 1`` of an ``n``-block encoder, 3 of caad-tiny's 8, 5 of ViT-B's
  12; or a 0-based index, negative from the end): that block's output patch tokens, the raw residual stream (no
  final LayerNorm, no projection, ``ClipBackbone.image_tokens(..., project=False)``), ``(B, N, C)``; the
  image-level feature is their mean over the ``N`` patches, ``(B, C)``.

Both go through the backbone's feature cache (``caadbench.models.feature_cache``): a second pass over the same
pixels with the same frozen tower on the CPU (a validation pass per candidate) costs no forward.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from caadbench.models.api import Batch, ClipBackbone, ModelError, progress

GLOBAL = "global"
MIDDLE = "middle"


def resolve_layer(layer: int | str, n_blocks: int, where: str) -> int | None:
    """The block a ``layer`` option names as a non-negative index, ``None`` for ``"global"``.

    Raises:
        ModelError: a name other than ``global``/``middle``, or an index outside the encoder.
    """
    if layer == GLOBAL:
        return None
    if layer == MIDDLE:
        return max(0, math.ceil(n_blocks / 2) - 1)
    if isinstance(layer, bool) or not isinstance(layer, int) or not -n_blocks <= layer < n_blocks:
        raise ModelError(where, f"layer must be {GLOBAL!r}, {MIDDLE!r} or a block index of the {n_blocks}-block "
                                f"image encoder, got {layer!r}")
    return layer % n_blocks


@dataclass
class Features:
    """One batch's features.

    Attributes:
        image: ``(B, C)`` float64 image-level features.
        patches: ``(B, N, C)`` float64 patch tokens of the block (``None`` for the global embedding).
    """

    image: torch.Tensor
    patches: torch.Tensor | None


def image_features(backbone: ClipBackbone, images: torch.Tensor, block: int | None) -> Features:
    """Features of ``(B, 3, S, S)`` images in [0, 1] at ``block`` (``None``: the global embedding), on the CPU."""
    if block is None:
        return Features(backbone.encode_image(images).double().cpu(), None)
    patches = backbone.image_tokens(images, layers=[block], project=False).patches[block].double().cpu()
    return Features(patches.mean(dim=1), patches)


@dataclass
class TrainFeatures:
    """The image-level features of every train image, sorted by key.

    Attributes:
        keys: ``N`` sample keys. subjects: ``N`` subject names.
        labels: ``(N,)`` int64, 0 normal / 1 anomalous.
        x: ``(N, C)`` float64 features.
    """

    keys: list[str]
    subjects: list[str]
    labels: np.ndarray
    x: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)

    def two_label_subjects(self) -> list[str]:
        """The subjects with normal and anomalous train images (sorted): those a per-subject classifier can learn."""
        labels: dict[str, set[int]] = {}
        for s, y in zip(self.subjects, self.labels.tolist()):
            labels.setdefault(s, set()).add(y)
        return sorted(s for s, ys in labels.items() if len(ys) == 2)

    def of(self, subjects: set[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(x (n, C), labels (n,))`` of the images of ``subjects`` (``None``: every image), in key order."""
        if subjects is None:
            return self.x, self.labels
        rows = np.array([s in subjects for s in self.subjects], dtype=bool)
        return self.x[rows], self.labels[rows]


def collect_train_features(backbone: ClipBackbone, block: int | None, batches: Iterable[Batch], device: torch.device,
                           where: str, show: bool = True) -> TrainFeatures:
    """Read the train part once and keep every image's feature (gathered from every rank under torchrun).

    Sorting by key makes the result independent of the reading order (shuffling, ranks, workers).

    Raises:
        ModelError: a batch without labels, a key read twice, or no image at all.
    """
    keys: list[str] = []
    subjects: list[str] = []
    labels: list[int] = []
    rows: list[np.ndarray] = []
    with torch.inference_mode():
        main = not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
        for batch in progress(batches, desc=f"{where} train features", unit="batch", enabled=show and main):
            if batch.labels is None:
                raise ModelError(where, "train batches need labels (normal / anomalous) to fit a probe")
            rows.append(image_features(backbone, batch.images.to(device), block).image.numpy())
            keys += list(batch.keys)
            subjects += list(batch.subjects)
            labels += [int(v) for v in batch.labels.reshape(-1).tolist()]
    part = (keys, subjects, labels, np.concatenate(rows) if rows else None)
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        parts: list = [None] * dist.get_world_size()
        dist.all_gather_object(parts, part)
    else:
        parts = [part]
    keys = [k for p in parts for k in p[0]]
    if not keys:
        raise ModelError(where, "the train part has no image to fit a probe on")
    subjects = [s for p in parts for s in p[1]]
    labels = [y for p in parts for y in p[2]]
    x = np.concatenate([p[3] for p in parts if p[3] is not None])
    order = sorted(range(len(keys)), key=keys.__getitem__)
    for a, b in zip(order, order[1:]):
        if keys[a] == keys[b]:
            raise ModelError(where, f"train image {keys[a]!r} was read twice (overlapping shards or ranks?)")
    return TrainFeatures([keys[i] for i in order], [subjects[i] for i in order],
                         np.array([labels[i] for i in order], dtype=np.int64), x[order])
