"""What the two-process (gloo) training tests share."""

from __future__ import annotations

import socket

import torch


def free_port() -> int:
    """A TCP port on 127.0.0.1 free at the time of asking (the gloo rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """The largest absolute difference over the tensors of ``a`` (compared in float32)."""
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
