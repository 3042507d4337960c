"""AnomalyCLIP's released inference, re-implemented for the tests from a reading of the official code
(github.com/zqhang/AnomalyCLIP at 45ed4dd: ``AnomalyCLIP_lib/AnomalyCLIP.py``, ``AnomalyCLIP_lib/model_load.py``,
``test.py`` and ``test.sh``), on a raw open_clip-layout state dict.

Nothing of caadbench's backbone or models runs here: every layer is computed from the state dict's tensors, and the
official code's choices are written out where it makes them:

* the positional embedding's patch grid resized bilinearly (align_corners=False, no antialiasing) when the input
  grid differs (``VisionTransformer.forward``), here with the numpy reference of PyTorch's bilinear resize;
* QuickGELU in every MLP (the official model hard-codes it);
* DPAM's dual path from block ``d`` on (``DAPM_replace`` + ``ResidualAttentionBlock.forward`` with ``ffn=False``):
  the first dual block adds the V-V attention of its input to that input, each later one the V-V attention of the
  original stream's tokens to the V-V stream; the original stream runs unchanged;
* the tokens of the ``features_list`` blocks (counted from 1) are the V-V stream's from ``d`` on, the original
  ones before; patch features are ``ln_post(tokens) @ proj``;
* the image embedding is the original stream's last class token ``@ proj``, without ``ln_post``;
* text: the prompt's token embeddings with the learned context written in, learned tokens swapped into positions
  ``1 … T`` of the inputs of text blocks ``1 … depth − 1``, causal attention, ``ln_final``, end-of-text pooling,
  ``@ text_projection`` (``encode_text_learn``);
* score ``softmax(⟨f, t⟩ / 0.07)[anomalous]``; map: per block ``softmax(⟨z, t⟩ / 0.07)`` on the patch tokens,
  bilinear to the image size, ``(p_a + 1 − p_n) / 2``, summed over blocks, ``gaussian_filter(σ = 4)``
  (``test.py``).
"""

from __future__ import annotations

import math

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter

from tests.baselines.reference import bilinear_reference
from tests.models.state_dict_clip import (
    Activation,
    attention,
    bilinear_positions,
    block,
    count_blocks,
    image_input,
    layer_norm,
    mlp,
    quick_gelu,
    text_embedding,
)

TAU = 0.07


def image_forward(sd: dict, pixels: torch.Tensor, features_list: list[int], dpam_start: int, heads: int,
                  act: Activation = quick_gelu) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``(B, D)`` embedding (not normalised) and the ``(B, 1 + N, D)`` features of ``features_list`` (1-based)."""
    x = image_input(sd, pixels, bilinear_positions)
    tokens, x_ori = [], None
    for i in range(count_blocks(sd, "visual.transformer.resblocks.")):
        p = f"visual.transformer.resblocks.{i}"
        if i < dpam_start:
            x = block(sd, p, x, heads, act)
        else:
            source = x if x_ori is None else x_ori  # the dual path's first block reads its own input
            vv, qk = attention(sd, p, layer_norm(sd, f"{p}.ln_1", source), heads, value_value=True)
            x_ori = source + qk
            x_ori = x_ori + mlp(sd, p, layer_norm(sd, f"{p}.ln_2", x_ori), act)
            x = x + vv  # the V-V stream skips the MLP
        if i + 1 in features_list:
            tokens.append(x.clone())
    last = x if x_ori is None else x_ori
    proj = sd["visual.proj"]
    return last[:, 0] @ proj, [layer_norm(sd, "visual.ln_post", t) @ proj for t in tokens]


def prompt_text(sd: dict, tokens: torch.Tensor, context: torch.Tensor, deep: torch.Tensor | None, heads: int,
                act: Activation = quick_gelu) -> torch.Tensor:
    """``(N, D)`` L2-normalised embeddings of ``(N, L)`` prompt tokens with ``context`` ``(N, E, C)`` written at
    positions ``1 … E`` and ``deep`` ``(depth − 1, T, C)`` swapped in before text blocks ``1 … depth − 1``."""
    x = sd["token_embedding.weight"][tokens].clone()
    x[:, 1:1 + context.shape[1]] = context

    def swap(i: int, x: torch.Tensor) -> torch.Tensor:
        if deep is None or not 1 <= i <= len(deep):
            return x
        return torch.cat([x[:, :1], deep[i - 1].expand(x.shape[0], -1, -1), x[:, 1 + deep.shape[1]:]], dim=1)

    return F.normalize(text_embedding(sd, tokens, heads, act, embeddings=x, before_block=swap), dim=-1)


@torch.no_grad()
def released_inference(sd: dict, images: torch.Tensor, tokens: torch.Tensor, context: torch.Tensor,
                       deep: torch.Tensor | None, features_list: list[int], dpam_start: int, heads: tuple[int, int],
                       act: Activation = quick_gelu, sigma: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Scores ``(B,)`` and maps ``(B, S, S)`` of ``images`` ``(B, 3, S, S)`` in [0, 1] (``test.py``'s loop).

    Args:
        sd: open_clip-layout state dict (float32).
        tokens: ``(2, L)`` the normal and anomalous prompts' token ids.
        context, deep: the learned prompt tensors (``(2, E, C)``, ``(depth − 1, T, C)``).
        features_list: blocks counted from 1 (``--features_list``).
        dpam_start: the first dual-path block, 0-based.
        heads: attention heads of the image and the text tower.
        act: the MLP activation (the official model's is QuickGELU).
        sigma: the Gaussian's σ in pixels (``--sigma 4``).
    """
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
    text = prompt_text(sd, tokens, context, deep, heads[1], act)  # (2, D): normal, anomalous
    embedding, patch_features = image_forward(sd, (images - mean) / std, features_list, dpam_start, heads[0], act)
    f = F.normalize(embedding, dim=-1)
    scores = ((f @ text.T) / TAU).double().softmax(dim=-1)[:, 1].numpy()
    size = images.shape[-1]
    maps = np.zeros((images.shape[0], size, size))
    for feats in patch_features:
        probs = ((F.normalize(feats, dim=-1) @ text.T) / TAU).double().softmax(dim=-1)[:, 1:].numpy()  # no [CLS]
        side = math.isqrt(probs.shape[1])
        for b in range(images.shape[0]):
            p_n, p_a = (bilinear_reference(probs[b, :, k].reshape(side, side), size, size, False) for k in (0, 1))
            maps[b] += (p_a + 1 - p_n) / 2
    return scores, np.stack([gaussian_filter(m, sigma=sigma) for m in maps])
