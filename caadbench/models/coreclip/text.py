"""Text refinement: gated residual adapters on the first L text blocks produce (t0 normal, t1 anomalous) per class.

Each adapted block's output ``y`` becomes ``y + tanh(g) · adapter(y)`` with the gate ``g`` initialised at 0, so
the refined encoder starts as the frozen one. (The adapter itself is not zero-initialised: with both at zero no
gradient would ever reach either.) The prototypes are the prompt-ensemble means of
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


class GatedAdapter(nn.Module):
    """``y ↦ y + tanh(g) · W_up gelu(W_down y + b_down) + b_up``, ``g = 0`` at initialisation.

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
        """Linear weights ~ N(0, 1/fan_in), biases and gate zero."""
        with torch.no_grad():
            for lin in (self.down, self.up):
                seeded_normal_(lin.weight, 1.0 / math.sqrt(lin.in_features), generator)
                lin.bias.zero_()
            self.gate.zero_()

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
