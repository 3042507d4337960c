"""Independent, slow references for the baseline tests: the image encoder run by hand, block by block.

Nothing here calls the code under test: tokens are built from open_clip's modules directly (patch embedding,
class token, positional embedding, ln_pre), the chosen tokens are kept, and the blocks run one at a time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from caadbench.models.backbone import ClipBackbone


def hand_forward(bb: ClipBackbone, images: torch.Tensor, keep: list[int] | None = None) -> list[torch.Tensor]:
    """Outputs of every image block, ``[(B, 1 + n, C)]``, on [CLS] + the patches in ``keep`` (all if ``None``)."""
    v = bb.model.visual
    x = v.conv1((images - bb.mean) / bb.std).flatten(2).transpose(1, 2)  # (B, N, C)
    cls = v.class_embedding.view(1, 1, -1).expand(x.shape[0], 1, -1)
    x = v.ln_pre(torch.cat([cls, x], dim=1) + v.positional_embedding)
    if keep is not None:
        x = x[:, [0] + [i + 1 for i in keep]]
    outs = []
    for blk in v.transformer.resblocks:
        x = blk(x)
        outs.append(x)
    return outs


def hand_embedding(bb: ClipBackbone, images: torch.Tensor, keep: list[int] | None = None) -> torch.Tensor:
    """``(B, D)`` L2-normalised embedding of [CLS] + the kept patches."""
    v = bb.model.visual
    return F.normalize(v.ln_post(hand_forward(bb, images, keep)[-1][:, 0]) @ v.proj, dim=-1)


def hand_patches(bb: ClipBackbone, images: torch.Tensor, block: int, project: bool) -> torch.Tensor:
    """``(B, N, C or D)`` L2-normalised patch tokens of ``block`` after ln_post (and the projection)."""
    v = bb.model.visual
    out = v.ln_post(hand_forward(bb, images)[block][:, 1:])
    return F.normalize(out @ v.proj if project else out, dim=-1)


def two_way_probability(embedding: torch.Tensor, normal: torch.Tensor, anomalous: torch.Tensor, scale: float) -> float:
    """Anomalous probability of one ``(D,)`` embedding, from the two exponentials."""
    a = torch.exp(scale * torch.dot(embedding, anomalous).double())
    n = torch.exp(scale * torch.dot(embedding, normal).double())
    return float(a / (a + n))


def make_batch(images: torch.Tensor, subjects: list[str]):
    """A :class:`~caadbench.data.batch.Batch` of ``(B, 3, S, S)`` images with the given subjects (labels 0)."""
    from caadbench.data.batch import EVAL_RESOLUTION, Batch

    B, S = images.shape[0], images.shape[-1]
    return Batch(
        images=images,
        subject_masks=torch.ones(B, S, S, dtype=torch.bool),
        gt_masks=torch.zeros(B, EVAL_RESOLUTION, EVAL_RESOLUTION, dtype=torch.bool),
        labels=torch.zeros(B, dtype=torch.long),
        keys=[f"img{i}" for i in range(B)],
        subjects=list(subjects),
        contexts=["pasture"] * B,
    )
