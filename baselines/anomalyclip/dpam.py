"""DPAM, AnomalyCLIP's diagonally prominent attention map: a value-value attention path beside the image encoder.

From block ``d`` on, a second stream runs next to the unchanged encoder. With ``x_j`` the input of block ``j`` in
the original encoder (the output of block ``j − 1``), the V-V stream after block ``j ≥ d`` is

    v_j = x_d + Σ_{k=d..j} VV_k(x_k),      VV_k(x) = ls_1(out_proj(softmax(v vᵀ / √d_h) v)),  v = W_v ln_1(x) + b_v

(``ClipBackbone.value_value_attention``): each block's query-key attention replaced by value-value attention on
the original stream's tokens, added without the block's MLP — the official implementation's dual path
(github.com/zqhang/AnomalyCLIP, ``AnomalyCLIP_lib/AnomalyCLIP.py``). Patch features of a block ``l ≥ d`` are
``v_l``'s patch tokens through the final LayerNorm and projection; blocks before ``d`` give the original ones.
The image embedding is the original encoder's last class token projected, without the final LayerNorm as the
official code computes it (``x_ori[0] @ proj``), or with it (CLIP's standard embedding); the V-V stream only serves
segmentation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from caadbench.models.api import ClipBackbone, ModelError


def dpam_features(backbone: ClipBackbone, images: torch.Tensor, layers: Sequence[int], start: int,
                  embedding_ln_post: bool = False) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """The image embedding and projected patch features of ``layers``, from the V-V stream from block ``start``.

    Args:
        backbone: the frozen backbone.
        images: ``(B, 3, S, S)`` in [0, 1].
        layers: 0-based image blocks to read.
        start: the first block ``d ≥ 1`` of the V-V stream.
        embedding_ln_post: the embedding's class token goes through the final LayerNorm before the projection.

    Returns:
        ``(B, D)`` embedding (not normalised) and ``{layer: (B, N, D)}`` patch features (not normalised).
    """
    n_blocks = len(backbone.image_blocks)
    if not 1 <= start < n_blocks:
        raise ModelError(backbone.identity.arch, f"dpam_start must lie in [1, {n_blocks}), got {start}")
    last = max(layers)
    raw = sorted({*(i for i in layers if i < start), *range(start - 1, last), n_blocks - 1})
    toks = backbone.image_tokens(images, layers=raw, project=False)
    embedding = backbone.project_tokens(toks.cls[n_blocks - 1], ln_post=embedding_ln_post)
    out = {i: backbone.project_tokens(toks.patches[i]) for i in layers if i < start}
    stream = None
    for j in range(start, last + 1):
        x = torch.cat([toks.cls[j - 1].unsqueeze(1), toks.patches[j - 1]], dim=1)  # input of block j
        stream = (x if stream is None else stream) + backbone.value_value_attention(j, x)
        if j in layers:
            out[j] = backbone.project_tokens(stream[:, 1:])
    return embedding, out


def plain_features(backbone: ClipBackbone, images: torch.Tensor, layers: Sequence[int],
                   embedding_ln_post: bool = False) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """Like :func:`dpam_features` without DPAM: the original encoder's projected patch tokens."""
    last = len(backbone.image_blocks) - 1
    toks = backbone.image_tokens(images, layers=[*layers, last], project=False)
    embedding = backbone.project_tokens(toks.cls[last], ln_post=embedding_ln_post)
    return embedding, {i: backbone.project_tokens(toks.patches[i]) for i in layers}
