"""AnomalyCLIP's learnable text prompts: object-agnostic context vectors and learnable tokens inside the text encoder.

The normal prompt is ``[V_1] … [V_E] object.`` and the anomalous one ``[W_1] … [W_E] damaged object.``: the ``E``
context vectors of each are free token embeddings (initialised ``N(0, 0.02²)``), the rest are the frozen
embeddings of the words. ``object_agnostic=False`` puts the subject's name in place of ``object`` (the paper's
object-aware comparison).

Learnable tokens in the text encoder ("text prompt tuning"): for each of the blocks ``1 … depth − 1`` (0-based)
a set of ``T`` token embeddings replaces positions ``1 … T`` of the block's input, so the first ``depth`` blocks all
see learnable tokens (block 0 sees the context vectors). ``depth = 9`` and ``T = 4`` in the paper on a 12-block
text encoder; ``T ≤ E``, so the swapped positions never cover the words.

The prompts are tokenised with the placeholder ``X`` for each context vector; the placeholders' embeddings are
replaced before the text encoder runs (``ClipBackbone.encode_text(..., embeddings=...)``), and the end-of-text token
still marks the pooled position.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from caadbench.models.api import ClipBackbone, ModelError

PLACEHOLDER = "X"
OBJECT = "object"
DAMAGED = "damaged"
INIT_STD = 0.02


def prompt_texts(length: int, name: str) -> tuple[str, str]:
    """``(normal, anomalous)`` prompt strings with ``length`` placeholders, for the object word ``name``."""
    ctx = " ".join([PLACEHOLDER] * length)
    return f"{ctx} {name}.", f"{ctx} {DAMAGED} {name}."


class LearnablePrompts(nn.Module):
    """Context vectors ``(2, E, C)`` (normal, anomalous) and in-encoder tokens ``(depth − 1, T, C)``.

    Args:
        backbone: the frozen backbone (its text width, tokenizer and number of text blocks).
        length: ``E`` context vectors per prompt.
        tokens: ``T`` learnable tokens per text block.
        depth: blocks ``0 … depth − 1`` see learnable tokens (``depth = 1``: context vectors only).
    """

    def __init__(self, backbone: ClipBackbone, length: int, tokens: int, depth: int) -> None:
        super().__init__()
        width, n_blocks = backbone.width("text"), len(backbone.text_blocks)
        if length < 1 or not 0 <= tokens <= length or not 1 <= depth <= n_blocks:
            raise ModelError("AnomalyClipConfig", f"need prompt_length >= 1, 0 <= text_tokens <= prompt_length and "
                                                  f"1 <= text_depth <= {n_blocks} (text blocks), got {length}, "
                                                  f"{tokens}, {depth}")
        longest = backbone.tokenize([prompt_texts(length, OBJECT)[1]])[0]
        if int(longest[-1]) != 0:
            raise ModelError("AnomalyClipConfig", f"prompt_length={length} does not fit the text context of "
                                                  f"{backbone.context_length} tokens")
        self.length, self.tokens, self.depth = length, tokens, depth
        self.context = nn.Parameter(torch.zeros(2, length, width))
        self.deep = nn.Parameter(torch.zeros(depth - 1, tokens, width)) if tokens and depth > 1 else None
        self.placeholder_id = int(backbone.tokenize([PLACEHOLDER])[0, 1])

    def reset_parameters(self, generator: torch.Generator) -> None:
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * INIT_STD)

    def deep_hooks(self) -> dict[int, Callable[[torch.Tensor], torch.Tensor]]:
        """``{block: fn}`` for :meth:`ClipBackbone.block_hooks`: after block ``i`` (the input of block ``i + 1``)
        positions ``1 … T`` become the learnable tokens of block ``i + 1``."""
        if self.deep is None:
            return {}

        def swap(y: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
            t = tokens.to(y.dtype).expand(y.shape[0], -1, -1)
            return torch.cat([y[:, :1], t, y[:, 1 + self.tokens:]], dim=1)

        return {i: (lambda y, t=self.deep[i]: swap(y, t)) for i in range(self.depth - 1)}

    def encode(self, backbone: ClipBackbone, names: Sequence[str]) -> torch.Tensor:
        """``(S, 2, D)`` L2-normalised (normal, anomalous) text embeddings for each object word in ``names``."""
        texts = [t for name in names for t in prompt_texts(self.length, name)]
        tokens = backbone.tokenize(texts)  # (2S, L): normal, anomalous, normal, anomalous, ...
        slots = tokens[:, 1:1 + self.length]
        if not bool((slots == self.placeholder_id).all()):
            raise ModelError(backbone.identity.arch, f"the tokenizer does not give one token per {PLACEHOLDER!r} "
                                                     "placeholder")
        with torch.no_grad():
            words = backbone.token_embeddings(tokens)
        context = self.context.repeat(len(names), 1, 1).to(words.dtype)  # (2S, E, C)
        embeddings = torch.cat([words[:, :1], context, words[:, 1 + self.length:]], dim=1)
        with backbone.block_hooks("text", self.deep_hooks()):
            out = backbone.encode_text(tokens, normalize=False, embeddings=embeddings)
        return F.normalize(out.float(), dim=-1).view(len(names), 2, -1)
