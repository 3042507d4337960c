"""Text refinement: gated residual adapters on the first L text blocks produce (t0 normal, t1 anomalous) per class.

Each adapted block's output ``y`` becomes ``y + tanh(g) · adapter(y)``. The adapter's up-projection starts at
zero and the gate open (``g = 1``, ``tanh(g) ≈ 0.76``), so the refined encoder starts as the frozen one *and*
gradient reaches the adapter from the first step (the up-projection at step 1, the down-projection and the gate
from step 2). The earlier initialisation (gate 0, random adapter) also started at the frozen encoder, but then
the adapter's gradient is scaled by ``tanh(g) ≈ g``: zero at step 1 and ~``lr`` after it, so the text losses
barely moved in 40 steps (``docs/coreclip.md``, *Training*). The prototypes are the prompt-ensemble means of
:func:`~caadbench.models.prompts.class_prototypes`, computed with the adapters active through
``ClipBackbone.block_hooks("text", ...)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from caadbench.models.backbone import ClipBackbone
from caadbench.models.coreclip.init import seeded_normal_
from caadbench.models.prompts import PromptEnsemble, PromptSet, class_prototypes


GATE_INIT = 1.0
"""Initial gate ``g`` (``tanh(1) ≈ 0.76``): open, so the adapter weights get gradient from the start."""


class GatedAdapter(nn.Module):
    """``y ↦ y + tanh(g) · (W_up gelu(W_down y + b_down) + b_up)``; ``W_up = b_up = 0`` and ``g = GATE_INIT`` at
    initialisation (the identity, with gradient reaching ``W_up`` at once).

    Args:
        width: token width ``C``.
        bottleneck: hidden width ``r``.
    """

    def __init__(self, width: int, bottleneck: int) -> None:
        super().__init__()
        self.down = nn.Linear(width, bottleneck)
        self.up = nn.Linear(bottleneck, width)
        self.gate = nn.Parameter(torch.zeros(()))
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Down-projection ~ N(0, 1/fan_in); up-projection and biases zero; gate ``GATE_INIT``."""
        with torch.no_grad():
            seeded_normal_(self.down.weight, 1.0 / math.sqrt(self.down.in_features), generator)
            for t in (self.down.bias, self.up.weight, self.up.bias):
                t.zero_()
            self.gate.fill_(GATE_INIT)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """``(..., C)`` → ``(..., C)``."""
        return y + torch.tanh(self.gate) * self.up(F.gelu(self.down(y)))


class TextRefiner(nn.Module):
    """Gated adapters on the first ``blocks`` text blocks.

    Args:
        width: token width of the text transformer.
        blocks: L (0: the frozen text encoder).
        bottleneck: adapter hidden width.
    """

    def __init__(self, width: int, blocks: int, bottleneck: int) -> None:
        super().__init__()
        self.adapters = nn.ModuleList(GatedAdapter(width, bottleneck) for _ in range(blocks))

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        for adapter in self.adapters:
            adapter.reset_parameters(generator)

    def prototypes(self, backbone: ClipBackbone, prompts: PromptSet | PromptEnsemble,
                   subjects: Sequence[str]) -> torch.Tensor:
        """``(S, 2, D)`` L2-normalised (t0, t1) per subject through the refined text encoder.

        Gradients flow to the adapters unless called under ``torch.no_grad``.
        """
        hooks = {i: adapter for i, adapter in enumerate(self.adapters)}
        with backbone.block_hooks("text", hooks):
            return class_prototypes(backbone.encode_text, prompts, subjects).float()
