"""Frozen-text prototypes encoded once per process: the one cache of (normal, anomalous) prompt embeddings.

Every zero-/few-shot baseline and CoRe-CLIP's stage-1 anchor embed the same prompts of the same subjects with the
same frozen text tower; across seeds, variants and models of one process (``caadbench quickstart`` runs them all)
they are encoded once. An entry is keyed by

* the backbone's **weights** (:meth:`BackboneIdentity.weights_key`, which
  :meth:`~BackboneIdentity.same_weights` compares: the file's sha256 when there is
  one, else the seeded random init's seed, else the weights label) and architecture and image size;
* the **device type** and the **autocast dtype** active at the call (bf16 and fp32 embeddings differ);
* the **exact prompt strings** of both sides (so any change of a prompt set, template or subject name is a
  different entry).

A call while any hook is registered on the text tower (CoRe-CLIP's text adapters, AnomalyCLIP's learnable prompts)
bypasses the cache: those embeddings depend on trained state the key does not hold. The backbone's own
parameters are frozen by design (:class:`ClipBackbone`), so the key does not hash them.

Entries (one ``(2, D)`` CPU tensor each) are evicted least recently used beyond ``CAADBENCH_TEXT_CACHE_MB``
(default 1024 MiB, far above any prompt set's needs; ``0`` turns the cache off), by the same
:class:`~caadbench.utils.lru.BytesLRU` as the sample and feature caches.

Prototypes are computed one subject at a time whether cached or not, so a cached and an uncached run give
bit-identical results (tested).

**On disk** (opt-in): with ``CAADBENCH_TEXT_CACHE_DIR`` set (``caadbench run/quickstart --text-cache DIR``), entries
also persist across processes as ``DIR/<sha256 of the key>.safetensors``, one ``(2, D)`` tensor in its own dtype.
Only weights known by content (a file's sha256, a seeded random init) go to disk, and the on-disk key adds the
torch and open_clip versions (init, tokenizer and kernels come from them) and :data:`DISK_FORMAT`; the full key
is stored in the file and compared on read. A file that cannot be read or holds another key is logged, encoded
afresh and replaced; files are written atomically, so parallel runs may share one directory.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import open_clip
import torch

from caadbench.models.backbone import BackboneIdentity, ClipBackbone
from caadbench.models.feature_cache import autocast_key
from caadbench.models.prompts import PromptEnsemble, PromptSet, class_prototypes
from caadbench.utils.atomic import atomic_write_bytes
from caadbench.utils.lru import BytesLRU

logger = logging.getLogger(__name__)

ENV_MB = "CAADBENCH_TEXT_CACHE_MB"
ENV_DIR = "CAADBENCH_TEXT_CACHE_DIR"
DEFAULT_MB = 1024
DISK_FORMAT = 1  # bump when what an entry holds changes for the same key (prompt averaging, normalisation)
_CACHE = BytesLRU(ENV_MB, DEFAULT_MB, size=lambda t: t.element_size() * t.numel())
_DISK = {"reads": 0, "writes": 0, "rejected": 0}


def entry_key(backbone: ClipBackbone, prompts: PromptSet | PromptEnsemble, subject: str) -> tuple:
    """The cache key of one subject's prototypes (see module docstring)."""
    device_type = backbone.mean.device.type
    return (backbone.identity.weights_key(), device_type, autocast_key(device_type), subject,
            tuple(prompts.prompts(subject, False)), tuple(prompts.prompts(subject, True)))


def use_disk(directory: str | Path | None) -> None:
    """Persist entries under ``directory`` from now on in this process and its children (``None``: stop)."""
    if directory is None:
        os.environ.pop(ENV_DIR, None)
    else:
        os.environ[ENV_DIR] = str(Path(directory).resolve())


def _disk_entry(identity: BackboneIdentity, key: tuple) -> tuple[Path, str] | None:
    """``(file, full key)`` of ``key`` on disk, or ``None`` (no directory set, or weights known only by name)."""
    root = os.environ.get(ENV_DIR)
    if not root or not identity.known_by_content:
        return None
    full = repr((DISK_FORMAT, torch.__version__, getattr(open_clip, "__version__", "unknown"), key))
    return Path(root) / f"{hashlib.sha256(full.encode()).hexdigest()}.safetensors", full


def _disk_read(path: Path, full: str) -> torch.Tensor | None:
    from safetensors import safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            if (f.metadata() or {}).get("key") != full:
                raise ValueError("it holds another key")
            value = f.get_tensor("prototypes")
    except Exception as exc:  # noqa: BLE001 - any unreadable entry is re-encoded and replaced
        _DISK["rejected"] += 1
        logger.warning("%s: text cache entry not used (%s); encoding afresh", path, exc)
        return None
    _DISK["reads"] += 1
    return value


def _disk_write(path: Path, full: str, value: torch.Tensor) -> None:
    from safetensors.torch import save

    atomic_write_bytes(path, save({"prototypes": value.contiguous()}, metadata={"key": full}))
    _DISK["writes"] += 1


def _encode(backbone: ClipBackbone, prompts: PromptSet | PromptEnsemble, subject: str,
            key: tuple | None) -> torch.Tensor:
    """One subject's ``(2, D)`` prototypes: from memory, from disk, or encoded (then stored in both)."""
    cached = _CACHE.get(key) if key is not None else None
    if cached is not None:
        return cached
    disk = _disk_entry(backbone.identity, key) if key is not None else None
    value = _disk_read(*disk) if disk is not None else None
    if value is None:
        value = class_prototypes(backbone.encode_text, prompts, [subject])[0].detach()
        if disk is not None:
            _disk_write(*disk, value.cpu())
    if key is not None:
        _CACHE.put(key, value.cpu())
    return value


def frozen_prototypes(backbone: ClipBackbone, prompts: PromptSet | PromptEnsemble,
                      subjects: Sequence[str]) -> torch.Tensor:
    """``(len(subjects), 2, D)`` (normal, anomalous) prototypes of the frozen text tower, on the backbone's device.

    Encoded one subject at a time (bounding the text batch) and cached per process (see module docstring); the
    returned tensor is a fresh copy, so callers may modify it.
    """
    device = backbone.mean.device
    use = _CACHE.active and not backbone.text_tower_hooked()
    out = []
    with torch.inference_mode():
        for subject in subjects:
            key = entry_key(backbone, prompts, subject) if use else None
            out.append(_encode(backbone, prompts, subject, key).to(device))
    return torch.stack(out).clone()


def clear() -> None:
    """Forget every entry held in memory and reset the counters (files on disk stay)."""
    _CACHE.clear()
    _DISK.update(dict.fromkeys(_DISK, 0))


def stats() -> dict[str, int]:
    """``{"entries", "hits", "misses"}`` since the last :func:`clear`."""
    full = _CACHE.stats()
    return {k: full[k] for k in ("entries", "hits", "misses")}


def disk_stats() -> dict[str, int]:
    """``{"reads", "writes", "rejected"}`` of on-disk entries since the last :func:`clear`."""
    return dict(_DISK)


def disabled() -> AbstractContextManager[None]:
    """Encode every prompt afresh while the context is open (the uncached reference of the tests and benchmarks)."""
    return _CACHE.disabled()
