"""Independent, slow references for the baseline tests: the image encoder run by hand, block by block.

Nothing here calls the code under test: tokens are built from open_clip's modules directly (patch embedding,
class token, positional embedding, ln_pre), the chosen tokens are kept, and the blocks run one at a time; the text
encoder likewise (token embedding, positions, blocks, final LayerNorm, end-of-text pooling, projection); attention
and interpolation are written out as loops.
"""

from __future__ import annotations

import math

import numpy as np
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


def bilinear_reference(grid: np.ndarray, out_h: int, out_w: int, align_corners: bool) -> np.ndarray:
    """PyTorch's bilinear resize of an ``(h, w)`` array: source coordinates per output pixel (clamped at 0),
    the two neighbours and their weights along each axis, then the weighted sum of the four neighbours."""
    h, w = grid.shape

    def coords(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lo, hi, frac = [], [], []
        for i in range(n_out):
            if align_corners:
                src = i * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
            else:
                src = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
            i0 = min(int(math.floor(src)), n_in - 1)
            lo.append(i0)
            hi.append(min(i0 + 1, n_in - 1))
            frac.append(src - i0)
        return np.array(lo), np.array(hi), np.array(frac)

    y0, y1, wy = coords(out_h, h)
    x0, x1, wx = coords(out_w, w)
    top = (1 - wx) * grid[y0][:, x0] + wx * grid[y0][:, x1]
    bottom = (1 - wx) * grid[y1][:, x0] + wx * grid[y1][:, x1]
    return (1 - wy)[:, None] * top + wy[:, None] * bottom


def value_value_reference(block, x: torch.Tensor) -> torch.Tensor:
    """DPAM's V-V attention branch of an open_clip block on ``(B, L, C)`` tokens, head by head with explicit softmax."""
    attn = block.attn
    C, H = attn.embed_dim, attn.num_heads
    d = C // H
    v = block.ln_1(x) @ attn.in_proj_weight[2 * C:].T + attn.in_proj_bias[2 * C:]
    heads = []
    for h in range(H):
        vh = v[..., h * d:(h + 1) * d]
        scores = vh @ vh.transpose(-1, -2) / math.sqrt(d)
        weights = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
        heads.append((weights / weights.sum(dim=-1, keepdim=True)) @ vh)
    return block.ls_1(torch.cat(heads, dim=-1) @ attn.out_proj.weight.T + attn.out_proj.bias)


def hand_text(bb: ClipBackbone, tokens: torch.Tensor, embeddings: torch.Tensor | None = None,
              before_block: dict[int, callable] | None = None) -> torch.Tensor:
    """``(N, D)`` L2-normalised text embeddings, the text tower run block by block.

    ``embeddings`` replace the token embeddings; ``before_block[i](x)`` rewrites the input of block ``i``.
    """
    m = bb.model
    x = m.token_embedding(tokens) if embeddings is None else embeddings
    x = x + m.positional_embedding
    for i, blk in enumerate(m.transformer.resblocks):
        if before_block and i in before_block:
            x = before_block[i](x)
        x = blk(x, attn_mask=m.attn_mask)
    x = m.ln_final(x)
    pooled = torch.stack([x[n, int(tokens[n].argmax())] for n in range(len(tokens))])
    return F.normalize(pooled @ m.text_projection, dim=-1)


def hand_prototype(bb: ClipBackbone, prompts: list[str]) -> torch.Tensor:
    """``(D,)`` mean of the normalised embeddings of ``prompts``, renormalised."""
    with torch.no_grad():
        return F.normalize(hand_text(bb, bb.tokenize(prompts)).mean(dim=0), dim=-1)


def ready_model(name: str, backbone: ClipBackbone, seed: int | None = None, **options):
    """A trained baseline with freshly drawn trainable tensors (from ``seed`` when given), marked fitted so that it
    predicts before any training (what the tests compare before and after learning)."""
    from caadbench.models import create_model

    model = create_model(name, backbone=backbone, progress=False, **options)
    if seed is not None:
        model.reset_trainable(seed)
    model.is_fitted = True
    return model
