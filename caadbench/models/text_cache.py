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

Prototypes are computed one subject at a time whether cached or not, so a cached and an uncached run give
bit-identical results (tested).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence

import torch

from caadbench.models.backbone import ClipBackbone
from caadbench.models.feature_cache import autocast_key
from caadbench.models.prompts import PromptEnsemble, PromptSet, class_prototypes

_CACHE: dict[tuple, torch.Tensor] = {}
_LOCK = threading.Lock()
_STATE = {"enabled": True, "hits": 0, "misses": 0}


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
    hooked = backbone.text_tower_hooked()
    out = []
    with torch.inference_mode():
        for subject in subjects:
            key = None if hooked or not _STATE["enabled"] else entry_key(backbone, prompts, subject)
            with _LOCK:
                cached = _CACHE.get(key) if key is not None else None
            if cached is None:
                cached = class_prototypes(backbone.encode_text, prompts, [subject])[0].detach()
                if key is not None:
                    with _LOCK:
                        _CACHE[key] = cached.cpu()
                        _STATE["misses"] += 1
            else:
                with _LOCK:
                    _STATE["hits"] += 1
            out.append(cached.to(device))
    return torch.stack(out).clone()


def clear() -> None:
    """Forget every entry and reset the counters."""
    with _LOCK:
        _CACHE.clear()
        _STATE.update(hits=0, misses=0)


def stats() -> dict[str, int]:
    """``{"entries", "hits", "misses"}`` since the last :func:`clear`."""
    with _LOCK:
        return {"entries": len(_CACHE), "hits": _STATE["hits"], "misses": _STATE["misses"]}


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Encode every prompt afresh while the context is open (the uncached reference of the tests and benchmarks)."""
    before = _STATE["enabled"]
    _STATE["enabled"] = False
    try:
        yield
    finally:
        _STATE["enabled"] = before
