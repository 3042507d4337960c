"""Devices and numeric precision: the one place that resolves ``--device`` and ``--precision``.

Every command that runs a model (``run``, ``predict``, ``calibrate``, ``quickstart``, ``pretrain``) takes
``--device auto`` by default and resolves it here, and every model resolves its ``precision`` option here.

``--precision auto`` picks bf16 autocast only where it was measured faster than float32:

* on CUDA: bf16 when the GPU supports it (``torch.cuda.is_bf16_supported()``), else fp32;
* on a CPU: bf16 only for the paths (``predict``, ``train``) that :data:`CPU_BF16_FASTER` lists for this CPU's
  kind (:func:`cpu_kind`), else fp32. No CPU kind lists a path today: on AVX2 without native bf16 (measured,
  see ``docs/predict.md``) bf16 autocast is several times slower than fp32 for inference and ~15x slower for a
  training step, and CPUs with native bf16 (``avx512_bf16``, ``amx_bf16``) have not been measured yet;
* anywhere else (``mps``): fp32.

An explicit ``fp32`` or ``bf16`` is always honoured (bf16 on a CUDA device without bf16 support is refused).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from caadbench.errors import CaadError

DEVICE_CHOICES = "auto | cpu | cuda | cuda:i | mps"
DEVICE_HELP = "auto (CUDA when available, else CPU) | cpu | cuda | cuda:i | mps"
PRECISIONS = ("auto", "fp32", "bf16")
PRECISION_HELP = "auto (bf16 autocast where measured faster: CUDA with bf16; fp32 on this CPU) | fp32 | bf16"
PATHS = ("predict", "train")

CPU_BF16_FASTER: Mapping[str, frozenset[str]] = {
    "AVX2": frozenset(),  # measured: bf16 several x slower for inference, ~15x slower for a training step
}
"""Per CPU kind (:func:`cpu_kind`), the paths where bf16 autocast was *measured* faster than fp32.

A kind that is absent was not measured and resolves ``auto`` to fp32. Add a kind only with a measurement from
``benchmarks/model_throughput.py --precision`` on such a CPU (its ratio goes into ``docs/predict.md``)."""

_CUDA = re.compile(r"cuda(?::(\d+))?")
_NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def resolve_device(device: str | None = "auto") -> str:
    """``auto`` → ``cuda`` when CUDA is available, else ``cpu``; other names are checked and returned.

    Raises:
        CaadError: an unknown device name, or a CUDA / MPS device this machine does not have.
    """
    name = (device or "auto").strip().lower()
    where = f"--device {device}"
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return name
    match = _CUDA.fullmatch(name)
    if match:
        if not torch.cuda.is_available():
            raise CaadError(where, "CUDA is not available on this machine (use --device auto or cpu)")
        if match.group(1) is not None and int(match.group(1)) >= torch.cuda.device_count():
            raise CaadError(where, f"this machine has {torch.cuda.device_count()} CUDA device(s)")
        return name
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise CaadError(where, "MPS is not available on this machine (use --device auto or cpu)")
        return name
    raise CaadError(where, f"unknown device (expected {DEVICE_CHOICES})")


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS reports one, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty where there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def cpu_kind() -> str:
    """The CPU's bf16-relevant kind: ``amx_bf16`` or ``avx512_bf16`` when it has native bf16 instructions,
    else torch's CPU capability (``AVX2``, ``AVX512``, ``DEFAULT``, ...)."""
    flags = cpu_flags()
    for flag in _NATIVE_BF16_FLAGS:
        if flag in flags:
            return flag
    return torch.backends.cpu.get_cpu_capability()


def resolve_precision(precision: str | None, device: str | torch.device, path: str = "predict") -> str:
    """``fp32`` or ``bf16`` for ``precision`` (``auto``, ``fp32``, ``bf16``) on ``device`` for ``path``.

    Args:
        precision: the requested precision (``None`` means ``auto``).
        device: the device the model runs on.
        path: ``predict`` or ``train`` (see :data:`CPU_BF16_FASTER`).

    Raises:
        CaadError: an unknown precision or path, or bf16 on a CUDA device that has no bf16 support.
    """
    name = (precision or "auto").strip().lower()
    if name not in PRECISIONS:
        raise CaadError(f"--precision {precision}", f"expected one of {', '.join(PRECISIONS)}")
    if path not in PATHS:
        raise ValueError(f"unknown precision path {path!r} (known: {', '.join(PATHS)})")
    kind = torch.device(device).type
    if name == "bf16" and kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise CaadError(f"--precision {precision}", "this CUDA device does not support bf16 (use fp32 or auto)")
    if name != "auto":
        return name
    if kind == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if kind == "cpu" and path in CPU_BF16_FASTER.get(cpu_kind(), frozenset()):
        return "bf16"
    return "fp32"


def autocast(device: str | torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` when the resolved ``precision`` is ``bf16``; a no-op context for ``fp32``."""
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"autocast needs a resolved precision (fp32 or bf16), got {precision!r}")
    kind = torch.device(device).type
    return torch.autocast(device_type=kind, dtype=torch.bfloat16, enabled=precision == "bf16")


__all__ = [
    "CPU_BF16_FASTER",
    "DEVICE_HELP",
    "PRECISIONS",
    "PRECISION_HELP",
    "autocast",
    "cpu_flags",
    "cpu_kind",
    "resolve_device",
    "resolve_precision",
]
