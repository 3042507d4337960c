"""torch.distributed helpers shared by training and evaluation: the same code on one CPU, one GPU or many nodes.

Everything is a no-op in a single process (no process group), so callers never branch on it. Under ``torchrun``
call :func:`init_from_env` once: it picks NCCL for CUDA devices and gloo otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process stands.

    Attributes:
        rank: global rank.
        world_size: number of processes.
        local_rank: rank on this node (the CUDA device index under torchrun).
        backend: ``nccl``, ``gloo`` or ``None`` (single process).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def context() -> DistContext:
    """The current :class:`DistContext` (rank 0 of 1 without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistContext()
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)),
                       dist.get_backend())


def init_from_env(device: str | None = None, timeout_s: float = 1800.0) -> DistContext:
    """Join the process group that ``torchrun`` describes in the environment (no-op without ``WORLD_SIZE > 1``).

    Args:
        device: ``cuda`` / ``cuda:i`` selects NCCL and binds this process to ``cuda:LOCAL_RANK``; anything else gloo.
        timeout_s: collective timeout.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        return context()
    use_cuda = device is not None and device.startswith("cuda") and torch.cuda.is_available()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if use_cuda else "gloo", init_method="env://", timeout=timedelta(seconds=timeout_s))
    return context()


def local_device(device: str) -> str:
    """Under a NCCL group, ``cuda`` means this process's ``cuda:LOCAL_RANK``; other devices are returned as given."""
    if device == "cuda" and is_distributed() and dist.get_backend() == "nccl":
        return f"cuda:{context().local_rank}"
    return device


def shutdown() -> None:
    """Leave the process group if one is open."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum_(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place (unchanged in a single process)."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Replace each gradient by its mean over ranks (missing gradients count as zero), in one collective.

    With per-rank losses that are means over equally sized local batches, this gives the gradient of the mean
    loss over the global batch: what DDP does, without wrapping modules that run inside the frozen backbone.
    """
    if not is_distributed():
        return
    params = [p for p in params if p.requires_grad]
    if not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def broadcast_parameters(params: Iterable[torch.Tensor], src: int = 0) -> None:
    """Copy rank ``src``'s values of ``params`` to every rank."""
    if not is_distributed():
        return
    with torch.no_grad():
        for p in params:
            dist.broadcast(p.data, src=src)


def all_ranks(flag: bool, device: torch.device | str = "cpu") -> bool:
    """True when ``flag`` is true on every rank (e.g. "I still have a batch")."""
    if not is_distributed():
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if is_distributed():
        dist.barrier()


def gather_objects(obj: object, dst: int = 0) -> list[object] | None:
    """Pickle-gather ``obj`` from every rank: the list (in rank order) on ``dst``, ``None`` elsewhere.

    In a single process: ``[obj]``.
    """
    if not is_distributed():
        return [obj]
    out = [None] * dist.get_world_size() if dist.get_rank() == dst else None
    dist.gather_object(obj, out, dst=dst)
    return out


def all_gather_objects(obj: object) -> list[object]:
    """Pickle-gather ``obj`` from every rank onto every rank, in rank order (``[obj]`` in a single process)."""
    if not is_distributed():
        return [obj]
    out: list[object] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: object, src: int = 0) -> object:
    """Rank ``src``'s ``obj`` (pickled) on every rank; ``obj`` itself in a single process."""
    if not is_distributed():
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]
