"""A CLIP ViT and text transformer computed from a raw open_clip-layout state dict, for tests that must not run the
code under test: no open_clip module and no caadbench backbone is called, every layer is written out (LayerNorm,
multi-head attention from ``in_proj``/``out_proj``, the MLP with the activation given, the causal text mask)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from tests.baselines.reference import bilinear_reference

Activation = Callable[[torch.Tensor], torch.Tensor]


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    """OpenAI's activation, ``x · σ(1.702 x)``."""
    return x * torch.sigmoid(1.702 * x)


def gelu(x: torch.Tensor) -> torch.Tensor:
    """The exact GELU, ``x · Φ(x)``."""
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def layer_norm(sd: dict, name: str, x: torch.Tensor) -> torch.Tensor:
    mu = x.mean(dim=-1, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + 1e-5) * sd[f"{name}.weight"] + sd[f"{name}.bias"]


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, mask: torch.Tensor | None) -> torch.Tensor:
    """``(B, L, C)`` per-head softmax(q kᵀ / √d + mask) v, heads concatenated."""
    B, L, C = q.shape
    d = C // heads
    out = []
    for h in range(heads):
        qh, kh, vh = (t[..., h * d:(h + 1) * d] for t in (q, k, v))
        scores = qh @ kh.transpose(-1, -2) / math.sqrt(d)
        if mask is not None:
            scores = scores + mask
        weights = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
        out.append(weights / weights.sum(dim=-1, keepdim=True) @ vh)
    return torch.cat(out, dim=-1)


def attention(sd: dict, p: str, x: torch.Tensor, heads: int, mask: torch.Tensor | None = None,
              value_value: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Block ``p``'s attention on already normalised ``(B, L, C)`` tokens; with ``value_value`` the pair
    (value-value attention, query-key attention), both through the output projection."""
    q, k, v = (x @ sd[f"{p}.attn.in_proj_weight"].T + sd[f"{p}.attn.in_proj_bias"]).chunk(3, dim=-1)

    def out(t: torch.Tensor) -> torch.Tensor:
        return t @ sd[f"{p}.attn.out_proj.weight"].T + sd[f"{p}.attn.out_proj.bias"]

    original = out(_attend(q, k, v, heads, mask))
    return (out(_attend(v, v, v, heads, None)), original) if value_value else original


def mlp(sd: dict, p: str, x: torch.Tensor, act: Activation) -> torch.Tensor:
    h = act(x @ sd[f"{p}.mlp.c_fc.weight"].T + sd[f"{p}.mlp.c_fc.bias"])
    return h @ sd[f"{p}.mlp.c_proj.weight"].T + sd[f"{p}.mlp.c_proj.bias"]


def block(sd: dict, p: str, x: torch.Tensor, heads: int, act: Activation,
          mask: torch.Tensor | None = None) -> torch.Tensor:
    """A pre-norm residual block: ``x + attn(ln_1 x)``, then ``+ mlp(ln_2 ·)``."""
    x = x + attention(sd, p, layer_norm(sd, f"{p}.ln_1", x), heads, mask)
    return x + mlp(sd, p, layer_norm(sd, f"{p}.ln_2", x), act)


def count_blocks(sd: dict, prefix: str) -> int:
    """Number of residual blocks under ``prefix`` (``visual.transformer.resblocks.``, ``transformer.resblocks.``)."""
    return len({k[len(prefix):].split(".")[0] for k in sd if k.startswith(prefix)})


def bilinear_positions(sd: dict, grid: int) -> torch.Tensor:
    """The positional embedding for a ``grid × grid`` input, its patch part resized bilinearly (align_corners=False,
    no antialiasing) when it differs from the checkpoint's."""
    pos = sd["visual.positional_embedding"]
    side = math.isqrt(pos.shape[0] - 1)
    if side == grid:
        return pos
    patches = pos[1:].reshape(side, side, -1).numpy().astype(np.float64)
    resized = np.stack([bilinear_reference(patches[..., c], grid, grid, False) for c in range(patches.shape[-1])], -1)
    return torch.cat([pos[:1], torch.from_numpy(resized.reshape(grid * grid, -1)).to(pos.dtype)])


def image_input(sd: dict, pixels: torch.Tensor, positions: Callable[[dict, int], torch.Tensor]) -> torch.Tensor:
    """``(B, 1 + N, C)`` tokens entering the first image block: patches, class token, positions, ``ln_pre``."""
    w = sd["visual.conv1.weight"]
    x = F.conv2d(pixels, w, stride=w.shape[-1])
    grid = x.shape[-1]
    x = x.flatten(2).transpose(1, 2)
    cls = sd["visual.class_embedding"].view(1, 1, -1).expand(x.shape[0], 1, -1)
    return layer_norm(sd, "visual.ln_pre", torch.cat([cls, x], dim=1) + positions(sd, grid))


def image_embedding(sd: dict, pixels: torch.Tensor, heads: int, act: Activation) -> torch.Tensor:
    """``(B, D)`` CLIP's image embedding (not normalised): ``ln_post`` of the last class token, projected."""
    x = image_input(sd, pixels, bilinear_positions)
    for i in range(count_blocks(sd, "visual.transformer.resblocks.")):
        x = block(sd, f"visual.transformer.resblocks.{i}", x, heads, act)
    return layer_norm(sd, "visual.ln_post", x[:, 0]) @ sd["visual.proj"]


def text_embedding(sd: dict, tokens: torch.Tensor, heads: int, act: Activation, embeddings: torch.Tensor | None = None,
                   before_block: Callable[[int, torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """``(N, D)`` text embeddings (not normalised) of ``(N, L)`` token ids: causal blocks, ``ln_final``, the
    end-of-text token (the largest id) projected. ``embeddings`` replace the token embeddings; ``before_block(i, x)``
    rewrites the input of block ``i``."""
    x = sd["token_embedding.weight"][tokens] if embeddings is None else embeddings
    x = x + sd["positional_embedding"]
    L = x.shape[1]
    mask = torch.full((L, L), float("-inf")).triu(1)
    for i in range(count_blocks(sd, "transformer.resblocks.")):
        if before_block is not None:
            x = before_block(i, x)
        x = block(sd, f"transformer.resblocks.{i}", x, heads, act, mask)
    x = layer_norm(sd, "ln_final", x)
    return x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)] @ sd["text_projection"]
