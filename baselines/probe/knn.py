"""The k-NN probe: per subject, the share of anomalous images among a feature's k nearest train images.

For a feature ``x`` of subject ``o`` and the memory of ``o``'s train features ``m_j`` with labels ``y_j``:

* distance ``d_j``: ``cosine`` ``1 − ⟨x̂, m̂_j⟩`` (clipped to [0, 2]) or ``euclidean`` ``‖x − m_j‖``;
* neighbours ``N_k(x)``: the ``k`` smallest ``d_j``; equal distances go to the memory's earlier entry (a subject's
  memory is in key order, the shared one subject by subject), so ties are deterministic; ``k`` larger than the
  memory takes the whole memory;
* weights: ``distance`` ``w_j = 1 / d_j`` (when some ``d_j = 0``, those neighbours weigh 1 and the others 0) or
  ``uniform`` ``w_j = 1``: scikit-learn's ``KNeighborsClassifier`` weights;
* score ``Σ_{j∈N_k} w_j y_j / Σ_{j∈N_k} w_j`` in [0, 1], scikit-learn's ``predict_proba(x)[:, 1]``.

Every train subject keeps its memory; a subject whose memory holds one label only, and a subject absent from the
train part, is scored against the *shared* memory (every train image, whatever its subject). The probe gives
no maps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from caadbench.baselines.probe.features import TrainFeatures
from caadbench.baselines.probe.state import split_state, subject_state

METRICS = ("cosine", "euclidean")
WEIGHTS = ("distance", "uniform")
PARTS = ("memory", "labels")


@dataclass
class KnnMemory:
    """Train features ``x`` ``(n, C)`` float64 and their labels ``(n,)`` int64, in key order."""

    x: torch.Tensor
    labels: torch.Tensor

    @property
    def both_labels(self) -> bool:
        return len(set(self.labels.tolist())) == 2


def knn_scores(query: torch.Tensor, memory: KnnMemory, k: int, metric: str, weights: str) -> torch.Tensor:
    """``(B,)`` float64 weighted anomalous shares of ``(B, C)`` float64 queries (see the module docstring)."""
    if metric == "cosine":
        d = (1.0 - F.normalize(query, dim=-1) @ F.normalize(memory.x, dim=-1).T).clamp(0.0, 2.0)
    else:
        d = torch.cdist(query, memory.x)
    d, idx = torch.sort(d, dim=1, stable=True)
    k = min(k, memory.x.shape[0])
    d, y = d[:, :k], memory.labels[idx[:, :k]].to(torch.float64)
    if weights == "uniform":
        w = torch.ones_like(d)
    else:
        exact = d == 0
        w = torch.where(exact.any(dim=1, keepdim=True), exact.to(d.dtype), 1.0 / d)
    return (w * y).sum(dim=1) / w.sum(dim=1)


class KnnProbe:
    """Per-subject memories, the shared memory and the neighbour count.

    Args:
        metric: ``cosine`` or ``euclidean``. weights: ``distance`` or ``uniform``.
    """

    hyper = "k"

    def __init__(self, metric: str, weights: str) -> None:
        self.metric, self.weights = metric, weights
        self.memories: dict[str, KnnMemory] = {}
        self.shared: KnnMemory | None = None
        self.k = 0

    def fit(self, feats: TrainFeatures, k: int) -> dict[str, Any]:
        """Keep every train subject's memory (one with a single label too: :meth:`memory` then uses the shared one)
        and use ``k`` neighbours."""
        self.memories = {}
        for subject in sorted(set(feats.subjects)):
            x, y = feats.of({subject})
            self.memories[subject] = KnnMemory(torch.from_numpy(x), torch.from_numpy(y))
        self._share()
        self.k = int(k)
        return {}

    def _share(self) -> None:
        ordered = sorted(self.memories)
        self.shared = KnnMemory(torch.cat([self.memories[s].x for s in ordered]),
                                torch.cat([self.memories[s].labels for s in ordered]))

    def memory(self, subject: str) -> KnnMemory:
        own = self.memories.get(subject)
        return own if own is not None and own.both_labels else self.shared

    def scores(self, subject: str, x: torch.Tensor) -> torch.Tensor:
        """``(n,)`` float64 scores of ``(n, C)`` float64 features of ``subject``."""
        return knn_scores(x, self.memory(subject), self.k, self.metric, self.weights)

    def state(self) -> dict[str, torch.Tensor]:
        state = subject_state({s: {"memory": m.x, "labels": m.labels} for s, m in self.memories.items()})
        state["k"] = torch.tensor(self.k, dtype=torch.int64)
        return state

    def load_state(self, tensors: dict[str, torch.Tensor], where: str) -> None:
        per_subject, rest = split_state(tensors, PARTS, ["k"], where)
        self.memories = {s: KnnMemory(p["memory"], p["labels"]) for s, p in per_subject.items()}
        self._share()
        self.k = int(rest["k"])
