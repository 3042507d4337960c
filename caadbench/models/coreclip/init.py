"""Seeded initialisation that does not depend on the global RNG or on where the parameters live."""

from __future__ import annotations

import torch


def seeded_normal_(tensor: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill ``tensor`` in place with N(0, std²) drawn on the CPU from ``generator`` (the global RNG if ``None``)."""
    values = torch.empty(tensor.shape, dtype=torch.float32).normal_(0.0, std, generator=generator)
    with torch.no_grad():
        tensor.copy_(values)
    return tensor
