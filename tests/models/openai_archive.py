"""Tiny stand-ins for OpenAI's CLIP release files, written from a random-init open_clip model.

OpenAI ships CLIP as TorchScript archives (``ViT-L-14-336px.pt``) whose state holds the model's weights in the
layout open_clip's ``CLIP`` shares, most of them float16, plus three entries that are not weights:
``input_resolution``, ``context_length`` and ``vocab_size``. These helpers write the same from a tiny model.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from torch import nn

ENTRIES = ("input_resolution", "context_length", "vocab_size")


def _openai_like(model: nn.Module) -> nn.Module:
    m = copy.deepcopy(model).eval()
    m._buffers.pop("attn_mask", None)  # open_clip's causal mask buffer: not part of OpenAI's state
    side = m.visual.image_size[0] if isinstance(m.visual.image_size, tuple) else m.visual.image_size
    values = {"input_resolution": side, "context_length": m.positional_embedding.shape[0],
              "vocab_size": m.token_embedding.num_embeddings}
    for name in ENTRIES:
        if hasattr(m, name):
            delattr(m, name)
        m.register_buffer(name, torch.tensor(values[name]))
    return m


def save_openai_archive(model: nn.Module, path: str | Path, half: bool = True) -> Path:
    """A TorchScript archive of ``model`` (an open_clip ``CLIP``) laid out as OpenAI's, its weight matrices in
    float16 when ``half`` (as OpenAI stores them). Returns ``path``."""
    m = _openai_like(model)
    side = int(m.input_resolution)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace_module(m, {"encode_image": (torch.zeros(1, 3, side, side),)}, check_trace=False)
    if half:
        with torch.no_grad():
            for p in traced.parameters():
                if p.ndim == 2:
                    p.data = p.data.half()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.save is deprecated; OpenAI's files are what they are
        torch.jit.save(traced, str(path))
    return Path(path)


def archive_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The archive's weights as float32 (read through ``torch.jit``, without its three non-weight entries)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = torch.jit.load(str(path), map_location="cpu").state_dict()
    return {k: v.float() for k, v in state.items() if k not in ENTRIES}
