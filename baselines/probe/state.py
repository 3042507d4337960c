"""The safetensors layout of a fitted probe.

Per-subject tensors are stored under ``"<part>/<subject>"`` (``"coef/cow"``, ``"memory/cow"``): parts never contain
``/``, so the subject is everything after the first ``/`` and may be any string. Tensors that belong to no subject
(the shared classifier, the selected ``k``) have keys without ``/`` (``"shared.coef"``, ``"k"``), which no subject's
key can be.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import torch

from caadbench.models.api import ModelError


def subject_state(per_subject: Mapping[str, Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """``{subject: {part: tensor}}`` → ``{"<part>/<subject>": tensor}``."""
    return {f"{part}/{subject}": t for subject, parts in per_subject.items() for part, t in parts.items()}


def split_state(tensors: Mapping[str, torch.Tensor], parts: Sequence[str], plain: Sequence[str],
                where: str) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
    """Inverse of :func:`subject_state` plus the subject-less keys: ``({subject: {part: t}}, {key: t})``.

    Every tensor is copied into its own storage (a safetensors view may be misaligned, which changes BLAS rounding).

    Raises:
        ModelError: an unknown key, a subject without every part, or a missing subject-less key.
    """
    per_subject: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
    rest: dict[str, torch.Tensor] = {}
    for key, tensor in tensors.items():
        tensor = tensor.clone(memory_format=torch.contiguous_format)
        part, sep, subject = key.partition("/")
        if sep and part in parts and subject:
            per_subject[subject][part] = tensor
        elif not sep and key in plain:
            rest[key] = tensor
        else:
            raise ModelError(where, f"unexpected tensor {key!r} in the fitted state (expected '<part>/<subject>' with "
                                    f"part in {list(parts)}, or one of {list(plain)})")
    for subject, found in per_subject.items():
        if set(found) != set(parts):
            raise ModelError(where, f"subject {subject!r} lacks {sorted(set(parts) - set(found))} in the fitted state")
    missing = sorted(set(plain) - set(rest))
    if missing:
        raise ModelError(where, f"the fitted state lacks {missing}")
    return dict(per_subject), rest
