"""Frozen image-tower outputs computed once per process: what CLIP's and WinCLIP's variants share.

``caadbench quickstart`` runs ``winclip``, ``winclip.context`` and ``winclip.plus`` (and ``clip``,
``clip.ensemble``, ``clip.few_shot``) on the same test batches with the same frozen backbone: the window, image and
token features, most of their time, are identical. :class:`FeatureCache` keeps them, keyed by

* the backbone's **weights** (:meth:`BackboneIdentity.weights_key`: the file's sha256 when there is one, else the
  seeded random init's seed, else the weights label), architecture and image size, and the **version counters** of the image
  tower's parameters (any in-place change of a weight, as an optimiser step makes, is a different entry);
* the **device type**, the **autocast dtype** active at the call and the tower's train/eval mode;
* the **operation and its arguments** (``encode_image`` with ``normalize``, ``encode_token_subsets`` with the
  subsets and their chunking, ``image_tokens`` with the blocks and ``project``);
* a **digest of the input pixels** (BLAKE2b of the tensor's bytes, shape and dtype), so the same key never
  stands for other images whatever their sample keys or dataset.

A call bypasses the cache while gradients are enabled, when the images are not on the CPU (hashing through the
host costs more than a GPU forward), or while any hook is registered on the image tower (CoRe-CLIP's CSR adapters,
AnomalyCLIP's DPAM: their outputs depend on trained state the key does not hold). Entries are evicted least
recently used beyond ``CAADBENCH_FEATURE_CACHE_MB`` (default 1024 MiB; 0 turns the cache off). A hit returns a
copy of exactly the tensor the same call computed, so a cached and an uncached run are bit-identical (tested).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any

import torch

from caadbench.utils.lru import BytesLRU

DEFAULT_MB = 1024
ENV_MB = "CAADBENCH_FEATURE_CACHE_MB"


def autocast_key(device_type: str) -> str | None:
    """The autocast dtype active on ``device_type`` now (``None``: autocast off)."""
    if device_type not in ("cpu", "cuda"):
        return None
    try:  # torch >= 2.4 takes the device type
        on, dtype = torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type)
    except (TypeError, AttributeError):
        on = torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()
        dtype = torch.get_autocast_cpu_dtype() if device_type == "cpu" else torch.get_autocast_gpu_dtype()
    return str(dtype) if on else None


def tensor_digest(tensor: torch.Tensor) -> str:
    """BLAKE2b of a CPU tensor's bytes, shape and dtype."""
    t = tensor.detach().contiguous()
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{tuple(t.shape)}|{t.dtype}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().data if t.numel() else b"")
    return h.hexdigest()


def _nbytes(value: Any) -> int:
    """Bytes of the tensors in a tensor, a dict of them or a dataclass holding either."""
    if isinstance(value, torch.Tensor):
        return value.element_size() * value.numel()
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values())
    if dataclasses.is_dataclass(value):
        return sum(_nbytes(getattr(value, f.name)) for f in dataclasses.fields(value))
    return 0


def _clone(value: Any) -> Any:
    """A copy of :func:`_nbytes`' structures with every tensor detached and cloned."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value):
        return dataclasses.replace(value, **{f.name: _clone(getattr(value, f.name)) for f in dataclasses.fields(value)})
    return value


class FeatureCache(BytesLRU):
    """Tensors (or dataclasses of them, as :class:`~caadbench.models.backbone.ImageTokens`) under the keys of the
    module docstring; a hit returns a copy."""

    def __init__(self) -> None:
        super().__init__(ENV_MB, DEFAULT_MB, size=_nbytes, copy=_clone)

    def usable(self, inputs: torch.Tensor) -> bool:
        """Whether a call on ``inputs`` may use the cache now."""
        return self.active and inputs.device.type == "cpu" and not torch.is_grad_enabled()

    def get_or_compute(self, key: tuple, compute: Callable[[], Any], store: Callable[[Any], Any] = _clone) -> Any:
        return super().get_or_compute(key, compute, store)


IMAGE_FEATURES = FeatureCache()
"""The one cache of frozen image-tower outputs (:meth:`ClipBackbone.encode_image`, ``encode_token_subsets``)."""
