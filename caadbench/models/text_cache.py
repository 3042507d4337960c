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
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager

import torch

from caadbench.models.backbone import ClipBackbone
from caadbench.models.feature_cache import autocast_key
from caadbench.models.prompts import PromptEnsemble, PromptSet, class_prototypes
from caadbench.utils.lru import BytesLRU

ENV_MB = "CAADBENCH_TEXT_CACHE_MB"
DEFAULT_MB = 1024
_CACHE = BytesLRU(ENV_MB, DEFAULT_MB, size=lambda t: t.element_size() * t.numel())


def entry_key(backbone: ClipBackbone, prompts: PromptSet | PromptEnsemble, subject: str) -> tuple:
    """The cache key of one subject's prototypes (see module docstring)."""
    device_type = backbone.mean.device.type
    return (backbone.identity.weights_key(), device_type, autocast_key(device_type), subject,
            tuple(prompts.prompts(subject, False)), tuple(prompts.prompts(subject, True)))


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
            cached = _CACHE.get(key) if key is not None else None
            if cached is None:
                cached = class_prototypes(backbone.encode_text, prompts, [subject])[0].detach()
                if key is not None:
                    _CACHE.put(key, cached.cpu())
            out.append(cached.to(device))
    return torch.stack(out).clone()


def clear() -> None:
    """Forget every entry and reset the counters."""
    _CACHE.clear()


def stats() -> dict[str, int]:
    """``{"entries", "hits", "misses"}`` since the last :func:`clear`."""
    full = _CACHE.stats()
    return {k: full[k] for k in ("entries", "hits", "misses")}


def disabled() -> AbstractContextManager[None]:
    """Encode every prompt afresh while the context is open (the uncached reference of the tests and benchmarks)."""
    return _CACHE.disabled()
