"""Device strings: ``auto`` means CUDA when it is available, else the CPU."""

from __future__ import annotations

import torch

from caadbench.errors import CaadError


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` or ``cpu``; ``cuda``/``cuda:i`` checked to exist; anything else as given.

    Raises:
        CaadError: CUDA asked for on a machine without it.
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CaadError(None, f"--device {device}: CUDA is not available on this machine")
    return device
