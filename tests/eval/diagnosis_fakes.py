"""Fake diagnostic extras for the evaluation tests: CoRe-CLIP-like ``alpha``, ``branch_scores`` and embeddings."""

from __future__ import annotations

import numpy as np
import torch

from caadbench.models.base import AnomalyOutput

BRANCHES = ("subject", "context", "global")
COLUMNS = {"alpha": BRANCHES, "branch_scores": BRANCHES}
FAMILIES = {"beach": "sand", "highway": "road", "street": "road", "kitchen": "indoor", "office": "indoor",
            "lake": "water", "meadow": "grassland", "pasture": "grassland"}
DIM = 8


def _direction(name: str, dim: int = DIM) -> np.ndarray:
    rng = np.random.default_rng(sum(map(ord, name)))
    return rng.normal(size=dim)


def with_extras(batches, seed: int = 0, inactive: int | None = None):
    """``(batch, output)`` pairs with diagnostic extras added: branch scores near the image score (noisier for
    the context branch), α from a seeded softmax, a frozen embedding near its context's *family* direction and an
    adapted one that drifts towards the context's own. ``inactive``: a branch column the variant lacks."""
    rng = np.random.default_rng(500 + seed)
    out = []
    for batch, output in batches:
        B = len(batch)
        s = output.scores.numpy().astype(np.float64)
        noise = np.array([0.05, 0.4, 0.15])
        branch = np.clip(s[:, None] + rng.normal(0, 1, (B, 3)) * noise, 0, 1)
        logits = rng.normal(0, 1, (B, 3)) + np.array([0.5, -0.5, 0.0])
        if inactive is not None:
            branch[:, inactive] = np.nan
            logits[:, inactive] = -np.inf
        alpha = np.exp(logits - logits.max(1, keepdims=True))
        alpha /= alpha.sum(1, keepdims=True)
        frozen = np.stack([_direction(FAMILIES[c]) + 0.3 * _direction(c) + 0.2 * rng.normal(size=DIM)
                           for c in batch.contexts])
        adapted = np.stack([0.5 * _direction(FAMILIES[c]) + _direction(c) + 0.2 * rng.normal(size=DIM)
                            for c in batch.contexts])
        extras = {"alpha": torch.tensor(alpha, dtype=torch.float32),
                  "branch_scores": torch.tensor(branch, dtype=torch.float32),
                  "embedding": torch.nn.functional.normalize(torch.tensor(adapted, dtype=torch.float32), dim=-1),
                  "frozen_embedding": torch.nn.functional.normalize(torch.tensor(frozen, dtype=torch.float32), dim=-1)}
        out.append((batch, AnomalyOutput(output.scores, output.maps, extras)))
    return out
