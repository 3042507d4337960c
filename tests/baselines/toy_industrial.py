"""A tiny *industrial* data set drawn in memory: plain surfaces, half of them with a small defect of another colour.

The label and the pixel ground truth come from the defect alone (as in MVTec-AD), so a method that learns what a
defect looks like locally — APRIL-GAN's maps, AnomalyCLIP's prompts — can learn it from a few batches, whatever
the surface (``SURFACES``), including surfaces it never saw in training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from caadbench.baselines.segmentation import resize_mask
from caadbench.data.batch import EVAL_RESOLUTION, Batch
from caadbench.models.base import AnomalyOutput

SURFACES = {"plate": (0.55, 0.55, 0.58), "tile": (0.80, 0.72, 0.55), "board": (0.35, 0.45, 0.30)}
DEFECT = (0.75, 0.05, 0.05)


def toy_industrial_batch(n: int, seed: int, size: int = 128, surfaces: tuple[str, ...] = ("plate", "tile")) -> Batch:
    """``n`` images alternating normal / defective, over ``surfaces`` in turn; defects are 16-40 px squares."""
    g = torch.Generator().manual_seed(seed)
    images, gts, labels, subjects = [], [], [], []
    for i in range(n):
        surface = surfaces[(i // 2) % len(surfaces)]
        img = torch.tensor(SURFACES[surface]).view(3, 1, 1) + 0.04 * torch.randn(3, size, size, generator=g)
        mask = torch.zeros(size, size, dtype=torch.bool)
        label = i % 2
        if label:
            side = int(torch.randint(size // 8, size // 3, (1,), generator=g))
            y, x = (int(v) for v in torch.randint(0, size - side, (2,), generator=g))
            mask[y:y + side, x:x + side] = True
            img = torch.where(mask, torch.tensor(DEFECT).view(3, 1, 1), img)
        images.append(img.clamp(0, 1))
        gts.append(mask)
        labels.append(label)
        subjects.append(surface)
    gt = F.interpolate(torch.stack(gts)[:, None].float(), size=EVAL_RESOLUTION, mode="nearest")[:, 0] > 0.5
    return Batch(torch.stack(images), torch.ones(n, size, size, dtype=torch.bool), gt, torch.tensor(labels),
                 [f"ind{seed}_{i}" for i in range(n)], subjects, ["-"] * n)


def toy_industrial_loader(batches: int, batch_size: int, seed: int = 0):
    """A ``FitData.train`` callable: the same ``batches`` batches every epoch."""
    data = [toy_industrial_batch(batch_size, seed * 1000 + k) for k in range(batches)]
    return lambda epoch: iter(data)


def aurocs(out: AnomalyOutput, batch: Batch) -> tuple[float, float]:
    """``(image AUROC, pixel AUROC)`` of a prediction on a toy batch (ground truth at the maps' size)."""
    gt = resize_mask(batch.gt_masks, out.maps.shape[-1])
    return (roc_auc_score(batch.labels.numpy(), out.scores.numpy()),
            roc_auc_score(gt.flatten().numpy(), out.maps.flatten().numpy()))
