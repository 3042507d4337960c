"""Why a model generalises to unseen contexts or not: what one evaluation pass says about a model's extras.

Read from the per-image extras of :data:`~caadbench.models.base.DIAGNOSTIC_EXTRAS` (CoRe-CLIP gives them), per
scope (the roles of :mod:`caadbench.eval.evaluator`: ``unseen``, ``seen``, or ``all``):

* **per-branch I-AUROC**: each branch's own image score (``branch_scores``) ranked like the fused score, macro mean
  over subjects, beside the fused score's (:func:`~caadbench.eval.metrics.auroc`, :func:`~caadbench.eval.metrics.
  macro_mean`);
* **α distribution**: per branch, the mean and the 10/50/90 % quantiles of its fusion weight over the scope's
  images;
* **family neighbourhood**: for each (subject, unseen context) pair of the test set, the share of its images whose
  nearest seen-context centroid of the same subject belongs to a context of the *same family* (the rulebook's
  contexts alike in appearance), on the adapted embedding (``embedding``) and on the frozen backbone's
  (``frozen_embedding``). The centroids are the means of the subject's test images of each seen context (the
  held-out share of ``cc``'s seen contexts, never trained on; the evaluator does not read the train part);
  nearness is cosine similarity. A pair whose subject has no seen relative of its family in the test set is left
  out. ``chance`` is what a random centroid would give: relatives / candidates.

A model without these extras gets no diagnosis; each part is computed only from the extras it needs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from caadbench.eval.metrics import auroc, macro_mean

FUSED = "fused"
"""The row of the model's own (fused) score beside the branches in :attr:`SeedDiagnosis.branch_i_auroc`."""
QUANTILES: tuple[tuple[str, float], ...] = (("q10", 0.1), ("q50", 0.5), ("q90", 0.9))
ALPHA_STATS: tuple[str, ...] = ("mean", *(name for name, _ in QUANTILES))
EMBEDDINGS: dict[str, str] = {"adapted": "embedding", "frozen": "frozen_embedding"}
"""Neighbourhood kind → the extra it is computed on."""


@dataclass
class NeighbourCell:
    """The family neighbourhood of one (subject, unseen context) pair in one evaluation.

    Attributes:
        subject, context, family: the pair and its context's family.
        n: images of the pair.
        relatives: the subject's seen contexts (with test images) of the same family.
        candidates: the subject's seen contexts with test images (the centroids compared).
        share: per embedding kind (:data:`EMBEDDINGS`), the share of the pair's images whose nearest centroid is a
            relative, in [0, 1].
    """

    subject: str
    context: str
    family: str
    n: int
    relatives: int
    candidates: int
    share: dict[str, float] = field(default_factory=dict)


@dataclass
class SeedDiagnosis:
    """One evaluation's diagnosis (values in [0, 1]; NaN where undefined).

    Attributes:
        branches: the active branches (columns of ``alpha`` whose ``branch_scores`` are not all NaN).
        branch_i_auroc: per scope, per branch and :data:`FUSED`, the macro I-AUROC over subjects.
        alpha: per scope, per branch, :data:`ALPHA_STATS` of its fusion weight over the scope's images.
        neighbourhood: one :class:`NeighbourCell` per (subject, unseen context) pair with a seen relative, sorted.
    """

    branches: list[str]
    branch_i_auroc: dict[str, dict[str, float]]
    alpha: dict[str, dict[str, dict[str, float]]]
    neighbourhood: list[NeighbourCell]


def diagnose(*, subjects: np.ndarray, contexts: np.ndarray, labels: np.ndarray, roles: np.ndarray,
             scores: np.ndarray, extras: Mapping[str, np.ndarray], columns: Mapping[str, Sequence[str]],
             families: Mapping[str, str] | None, scopes: Sequence[str]) -> SeedDiagnosis | None:
    """The diagnosis of one evaluation pass, or ``None`` when the extras allow none.

    Args:
        subjects, contexts, roles: ``(N,)`` object arrays (roles: ``unseen`` / ``seen`` / ``all``).
        labels: ``(N,)`` 0/1. scores: ``(N,)`` the model's image scores.
        extras: name → ``(N, ...)`` array, every image's (see module docstring for the names read).
        columns: name → column names of a two-dimensional extra (``alpha``, ``branch_scores``).
        families: ``{context: family}``; ``None`` or empty: no neighbourhood.
        scopes: the scopes to summarise, in order.
    """
    branch_scores, alpha = extras.get("branch_scores"), extras.get("alpha")
    names = list(columns.get("branch_scores") or columns.get("alpha") or ())
    if branch_scores is not None:
        active = [j for j in range(branch_scores.shape[1]) if not np.isnan(branch_scores[:, j]).all()]
    elif alpha is not None:
        active = [j for j in range(alpha.shape[1]) if (alpha[:, j] > 0).any()]
    else:
        active = []
    if len(names) < max(active, default=-1) + 1:
        names = [f"branch {j}" for j in range(max(active, default=-1) + 1)]
    branches = [names[j] for j in active]
    per_branch: dict[str, dict[str, float]] = {}
    alphas: dict[str, dict[str, dict[str, float]]] = {}
    for scope in scopes:
        mask = roles == scope
        if not mask.any():
            continue
        if branch_scores is not None:
            per_branch[scope] = {names[j]: macro_auroc(branch_scores[mask, j], labels[mask], subjects[mask])
                                 for j in active}
            per_branch[scope][FUSED] = macro_auroc(scores[mask], labels[mask], subjects[mask])
        if alpha is not None:
            alphas[scope] = {names[j]: alpha_summary(alpha[mask, j]) for j in active}
    cells = []
    if families:
        kinds = {kind: extras[name] for kind, name in EMBEDDINGS.items() if name in extras}
        if kinds:
            cells = neighbourhood(subjects, contexts, roles, kinds, families)
    if not per_branch and not alphas and not cells:
        return None
    return SeedDiagnosis(branches, per_branch, alphas, cells)


def macro_auroc(scores: np.ndarray, labels: np.ndarray, subjects: np.ndarray) -> float:
    """Macro mean over subjects of the I-AUROC (a subject without both labels left out)."""
    return macro_mean(auroc(scores[subjects == s], labels[subjects == s]) for s in sorted(set(subjects.tolist())))


def alpha_summary(values: np.ndarray) -> dict[str, float]:
    """:data:`ALPHA_STATS` of ``(n,)`` weights (linear-interpolated quantiles)."""
    if len(values) == 0:
        return {name: math.nan for name in ALPHA_STATS}
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), **{name: float(np.quantile(v, q)) for name, q in QUANTILES}}


def neighbourhood(subjects: np.ndarray, contexts: np.ndarray, roles: np.ndarray, embeddings: Mapping[str, np.ndarray],
                  families: Mapping[str, str], unseen: str = "unseen", seen: str = "seen") -> list[NeighbourCell]:
    """Family-neighbourhood cells (see module docstring).

    Args:
        subjects, contexts, roles: ``(N,)``.
        embeddings: kind → ``(N, D)`` image embeddings (normalised or not: nearness is cosine).
        families: ``{context: family}`` (a context not listed is its own family).
    """
    family = {c: families.get(c, c) for c in set(contexts.tolist())}
    cells = []
    for subject in sorted(set(subjects.tolist())):
        of_subject = subjects == subject
        seen_contexts = sorted(set(contexts[of_subject & (roles == seen)].tolist()))
        if not seen_contexts:
            continue
        candidate_family = np.array([family[c] for c in seen_contexts], dtype=object)
        centroids = {kind: _unit(np.stack([e[of_subject & (contexts == c)].mean(0) for c in seen_contexts]))
                     for kind, e in embeddings.items()}
        for context in sorted(set(contexts[of_subject & (roles == unseen)].tolist())):
            relative = candidate_family == family[context]
            if not relative.any():
                continue
            in_cell = of_subject & (contexts == context)
            share = {kind: float(relative[np.argmax(_unit(e[in_cell]) @ centroids[kind].T, axis=1)].mean())
                     for kind, e in embeddings.items()}
            cells.append(NeighbourCell(subject, context, family[context], int(in_cell.sum()), int(relative.sum()),
                                       len(seen_contexts), share))
    return cells


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


__all__ = ["ALPHA_STATS", "EMBEDDINGS", "FUSED", "NeighbourCell", "SeedDiagnosis", "alpha_summary", "diagnose",
           "macro_auroc", "neighbourhood"]
