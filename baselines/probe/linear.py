"""The linear probe: per subject, a logistic regression on standardised features (scikit-learn), kept as tensors.

For subject ``o`` with train features ``X_o`` (``(n, C)``) and labels ``y_o``:

* ``StandardScaler``: ``μ_o``, ``σ_o`` (per feature; scikit-learn's 1 where a feature is constant);
* ``LogisticRegression(C=c, class_weight="balanced")`` (L2, lbfgs) on ``(X_o − μ_o) / σ_o``: ``w_o``, ``b_o``;
* score of a feature ``x``: the decision function ``⟨(x − μ_o) / σ_o, w_o⟩ + b_o``, the log-odds of "anomalous"
  (the probability's order exactly, without float32 saturating it at 1).

Being linear, the score of the mean of a block's patch tokens is the mean of the patch tokens' scores: the per-patch
score map of the block probe averages to its image score.

A subject whose train images hold one label only, and a subject absent from the train part (held-out subjects
of ``cs``), is scored by the *shared* head: the same fit over every train image, whatever its subject.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from caadbench.baselines.probe.features import TrainFeatures
from caadbench.baselines.probe.state import split_state, subject_state

PARTS = ("mean", "scale", "coef", "intercept")
SHARED = "shared"


@dataclass
class LinearHead:
    """A fitted scaler and logistic regression.

    Attributes:
        mean, scale, coef: ``(C,)`` float64. intercept: ``()`` float64.
    """

    mean: torch.Tensor
    scale: torch.Tensor
    coef: torch.Tensor
    intercept: torch.Tensor

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Decision function of ``(..., C)`` float64 features: ``(...)`` float64."""
        return ((x - self.mean) / self.scale) @ self.coef + self.intercept

    def tensors(self) -> dict[str, torch.Tensor]:
        return {part: getattr(self, part) for part in PARTS}


def fit_head(x: np.ndarray, y: np.ndarray, c: float, max_iter: int) -> tuple[LinearHead, bool]:
    """Fit the scaler and the balanced logistic regression on ``x`` ``(n, C)`` and ``y`` ``(n,)``.

    Returns:
        ``(head, converged)``: converged is false when lbfgs stopped at ``max_iter``.
    """
    scaler = StandardScaler().fit(x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf = LogisticRegression(C=c, class_weight="balanced", max_iter=max_iter).fit(scaler.transform(x), y)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    head = LinearHead(torch.from_numpy(scaler.mean_.astype(np.float64)),
                      torch.from_numpy(scaler.scale_.astype(np.float64)),
                      torch.from_numpy(clf.coef_[0].astype(np.float64)),
                      torch.tensor(float(clf.intercept_[0]), dtype=torch.float64))
    return head, converged


class LinearProbe:
    """Per-subject heads and the shared head.

    Args:
        max_iter: lbfgs iterations per fit.
    """

    hyper = "c"

    def __init__(self, max_iter: int) -> None:
        self.max_iter = max_iter
        self.heads: dict[str, LinearHead] = {}
        self.shared: LinearHead | None = None

    def fit(self, feats: TrainFeatures, c: float) -> dict[str, Any]:
        """Fit a head for each subject with both labels in train and the shared head; ``{"not_converged": [...]}``
        names the heads whose lbfgs stopped at ``max_iter`` (``"shared"`` for the shared one)."""
        self.heads, not_converged = {}, []
        for subject in feats.two_label_subjects():
            self.heads[subject], ok = fit_head(*feats.of({subject}), c, self.max_iter)
            if not ok:
                not_converged.append(subject)
        self.shared, ok = fit_head(*feats.of(None), c, self.max_iter)
        return {"not_converged": not_converged + ([] if ok else [SHARED])}

    def head(self, subject: str) -> LinearHead:
        return self.heads.get(subject, self.shared)

    def scores(self, subject: str, x: torch.Tensor) -> torch.Tensor:
        """``(n,)`` float64 scores of ``(n, C)`` float64 features of ``subject``."""
        return self.head(subject).logits(x)

    def patch_scores(self, subject: str, patches: torch.Tensor) -> torch.Tensor:
        """``(n, N)`` float64 scores of ``(n, N, C)`` float64 patch tokens of ``subject``."""
        return self.head(subject).logits(patches)

    def state(self) -> dict[str, torch.Tensor]:
        if self.shared is None:  # not fitted
            return {}
        state = subject_state({s: h.tensors() for s, h in self.heads.items()})
        state.update({f"{SHARED}.{part}": t for part, t in self.shared.tensors().items()})
        return state

    def load_state(self, tensors: dict[str, torch.Tensor], where: str) -> None:
        per_subject, rest = split_state(tensors, PARTS, [f"{SHARED}.{p}" for p in PARTS], where)
        self.heads = {s: LinearHead(**parts) for s, parts in per_subject.items()}
        self.shared = LinearHead(**{p: rest[f"{SHARED}.{p}"] for p in PARTS})
