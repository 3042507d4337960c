"""A tiny, easy *contextual* data set drawn in memory: the label depends on the (subject, context) pair only.

Subjects are coloured squares, contexts are background colours; ``cow`` is normal on ``pasture`` and anomalous on
``road``, ``car`` the other way round, so neither the subject nor the context alone predicts the label.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from caadbench.data.batch import EVAL_RESOLUTION, Batch

SUBJECTS = {"cow": (0.9, 0.9, 0.85), "car": (0.8, 0.1, 0.1)}
CONTEXTS = {"pasture": (0.2, 0.6, 0.2), "road": (0.4, 0.4, 0.45)}
NORMAL = {("cow", "pasture"), ("car", "road")}


def toy_batch(n: int, seed: int, size: int = 128) -> Batch:
    """``n`` images, every (subject, context) pair equally often, random square position and size."""
    g = torch.Generator().manual_seed(seed)
    pairs = [(s, c) for s in SUBJECTS for c in CONTEXTS]
    images, masks, labels, subjects, contexts = [], [], [], [], []
    for i in range(n):
        subject, context = pairs[(i + seed) % len(pairs)]
        img = torch.tensor(CONTEXTS[context]).view(3, 1, 1) + 0.05 * torch.randn(3, size, size, generator=g)
        side = int(torch.randint(size // 4, size // 2, (1,), generator=g))
        y, x = (int(v) for v in torch.randint(0, size - side, (2,), generator=g))
        mask = torch.zeros(size, size, dtype=torch.bool)
        mask[y:y + side, x:x + side] = True
        img = torch.where(mask, torch.tensor(SUBJECTS[subject]).view(3, 1, 1), img).clamp(0, 1)
        images.append(img)
        masks.append(mask)
        labels.append(0 if (subject, context) in NORMAL else 1)
        subjects.append(subject)
        contexts.append(context)
    masks_t = torch.stack(masks)
    labels_t = torch.tensor(labels)
    gt = F.interpolate(masks_t[:, None].float(), size=EVAL_RESOLUTION, mode="nearest")[:, 0] > 0.5
    gt &= labels_t.bool().view(-1, 1, 1)
    return Batch(torch.stack(images), masks_t, gt, labels_t, [f"toy{seed}_{i}" for i in range(n)], subjects, contexts)


def toy_loader(batches: int, batch_size: int, seed: int = 0):
    """A ``FitData.train`` callable: the same ``batches`` batches every epoch."""
    data = [toy_batch(batch_size, seed * 1000 + k) for k in range(batches)]
    return lambda epoch: iter(data)
