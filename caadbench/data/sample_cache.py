"""Prepared samples kept per process, so models after the first one read a part without decoding it again.

``caadbench quickstart`` and a multi-seed ``caadbench run`` read the same parts many times (every model, every
seed, every epoch): decoding three PNGs per sample and resizing the image is most of a read. :data:`SAMPLES`
holds what :func:`~caadbench.data.loader.prepare_sample` returned, keyed by the **sha256 of the shard** the
sample was read from (as ``index.json`` records it and the reader checked it), the sample key, and the input and
ground-truth sides. The same key therefore always stands for the same bytes decoded the same way, whatever the
shard directory's location. A shard whose wanted samples are all held is not read again; any other is read and
hash-checked as usual. Entries are evicted least recently used beyond ``CAADBENCH_SAMPLE_CACHE_MB`` (default
1024 MiB; 0 turns the cache off). Each process (a DataLoader worker, a ``torchrun`` rank) has its own.
"""

from __future__ import annotations

from typing import Any

import torch

from caadbench.data.manifest import ShardEntry
from caadbench.utils.lru import BytesLRU

ENV_MB = "CAADBENCH_SAMPLE_CACHE_MB"
DEFAULT_MB = 1024


def prepared_bytes(sample: dict[str, Any]) -> int:
    """Bytes of a prepared sample's tensors."""
    return sum(v.element_size() * v.numel() for v in sample.values() if isinstance(v, torch.Tensor))


def _copy(sample: dict[str, Any]) -> dict[str, Any]:
    """A hit's copy: a new dict and metadata dict (tensors are shared; collating stacks them into new ones)."""
    out = dict(sample)
    if isinstance(out.get("metadata"), dict):
        out["metadata"] = dict(out["metadata"])
    return out


def sample_key(entry: ShardEntry, key: str, image_size: int, eval_size: int) -> tuple:
    """The cache key of one prepared sample (see module docstring)."""
    return (entry.sha256, key, image_size, eval_size)


SAMPLES = BytesLRU(ENV_MB, DEFAULT_MB, size=prepared_bytes, copy=_copy)
"""The one cache of prepared samples."""
