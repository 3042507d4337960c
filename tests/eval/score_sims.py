"""Synthetic score generators with known population AUROCs, for the bootstrap and comparison tests.

A design is subjects × (context, label, images) cells. Scores are Gaussian: at the image level the contexts are
fixed (each cell has its own mean), at the context level each data set draws its contexts' means from a
random-effects distribution. Many simulated data sets are stacked as the *seeds* of one :class:`RunScores`:
:func:`~caadbench.eval.bootstrap.replicates` then resamples them all with the same resamples (each data set's
interval is still an ordinary bootstrap interval of that data set).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from caadbench.eval.bootstrap import Replicates, RunScores
from caadbench.eval.schema import MICRO


def design(n_subjects: int, cells: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(subjects, contexts, labels)`` of ``n_subjects`` subjects with the same ``(label, images)`` cells."""
    subjects, contexts, labels = [], [], []
    for s in range(n_subjects):
        for c, (label, n) in enumerate(cells):
            subjects += [f"s{s}"] * n
            contexts += [f"c{c}"] * n
            labels += [label] * n
    return np.array(subjects, dtype=object), np.array(contexts, dtype=object), np.array(labels, dtype=bool)


def run_of(subjects: np.ndarray, contexts: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> RunScores:
    """A run whose every test image is of an unseen context; ``scores`` ``(data sets or seeds, N)``."""
    n = len(subjects)
    return RunScores(keys=[f"k{i:05d}" for i in range(n)], subjects=subjects, contexts=contexts,
                     scopes=np.array(["unseen"] * n, dtype=object), labels=labels, scores=np.atleast_2d(scores),
                     headline="unseen")


def index_of(names: np.ndarray) -> np.ndarray:
    """``"s3"`` / ``"c1"`` → 3 / 1."""
    return np.array([int(x[1:]) for x in names])


def fixed_contexts(rng: np.random.Generator, n_subjects: int, cells: list[tuple[int, int]], n_sets: int):
    """Image level: each cell's mean is fixed; returns ``(run, truth)`` with ``truth`` the population macro and
    micro I-AUROC (Gaussian cells of unit variance: ``P(X_a > X_n) = Φ((μ_a − μ_n) / √2)``)."""
    subjects, contexts, labels = design(n_subjects, cells)
    offset = rng.normal(0.0, 0.5, n_subjects)
    means = np.array([[offset[s] + (rng.normal(1.0, 0.6) if label else 0.0) for label, _ in cells]
                      for s in range(n_subjects)])
    scores = means[index_of(subjects), index_of(contexts)] + rng.normal(size=(n_sets, len(subjects)))
    pos = [(means[s, c], n) for s in range(n_subjects) for c, (label, n) in enumerate(cells) if label]
    neg = [(means[s, c], n) for s in range(n_subjects) for c, (label, n) in enumerate(cells) if not label]

    def pooled(p, q):
        return sum(na * nn * norm.cdf((a - b) / math.sqrt(2)) for a, na in p for b, nn in q) / (
            sum(n for _, n in p) * sum(n for _, n in q))

    per_subject = [pooled([(means[s, c], n) for c, (label, n) in enumerate(cells) if label],
                          [(means[s, c], n) for c, (label, n) in enumerate(cells) if not label])
                   for s in range(n_subjects)]
    return run_of(subjects, contexts, labels, scores), {"i_auroc": float(np.mean(per_subject)),
                                                        MICRO: float(pooled(pos, neg))}


def random_contexts(rng: np.random.Generator, n_subjects: int, per_role: int, images: int, n_sets: int,
                    tau: float = 0.6, sigma: float = 1.0):
    """Context level: every data set draws each context's mean shift from N(0, τ²) around its subject's normal
    (offset) or anomalous (offset + δ) mean; images add N(0, σ²). Returns ``(run, truth)``: the population AUROC
    of a subject over contexts is ``Φ(δ / √(2σ² + 2τ²))``; the micro one pools subjects' offsets."""
    cells = [(0, images)] * per_role + [(1, images)] * per_role
    subjects, contexts, labels = design(n_subjects, cells)
    offset, delta = rng.normal(0.0, 0.5, n_subjects), rng.normal(1.0, 0.5, n_subjects)
    s, c = index_of(subjects), index_of(contexts)
    shifts = rng.normal(0.0, tau, (n_sets, n_subjects, len(cells)))
    scores = offset[s] + delta[s] * labels + shifts[:, s, c] + rng.normal(0.0, sigma, (n_sets, len(subjects)))
    sd = math.sqrt(2 * sigma**2 + 2 * tau**2)
    micro = np.mean([[norm.cdf((offset[a] + delta[a] - offset[b]) / sd) for b in range(n_subjects)]
                     for a in range(n_subjects)])
    return run_of(subjects, contexts, labels, scores), {"i_auroc": float(np.mean(norm.cdf(delta / sd))),
                                                        MICRO: float(micro)}


def one_set(reps: Replicates, index: int | slice) -> Replicates:
    """The replicates of one stacked data set (or a slice of seeds)."""
    pick = [index] if isinstance(index, int) else index
    return Replicates(estimates={m: v[pick] for m, v in reps.estimates.items()},
                      values={level: {m: v[pick] for m, v in d.items()} for level, d in reps.values.items()},
                      df=dict(reps.df), bounds=dict(reps.bounds))


def random_cells(rng: np.random.Generator, cells: list[list[tuple[int, int]]], n_sets: int, tau: float = 0.6,
                 sigma: float = 1.0):
    """Context level with a design of its own per subject: ``cells[s]`` lists subject ``s``'s ``(label, images)``
    contexts (e.g. one normal context for some subjects, several for others). Scores as in
    :func:`random_contexts`; the micro truth weighs each pair of subjects by their anomalous × normal images."""
    subjects, contexts, labels = [], [], []
    for s, subject_cells in enumerate(cells):
        for c, (label, n) in enumerate(subject_cells):
            subjects += [f"s{s}"] * n
            contexts += [f"c{c}"] * n
            labels += [label] * n
    subjects, contexts = np.array(subjects, dtype=object), np.array(contexts, dtype=object)
    labels = np.array(labels, dtype=bool)
    n_subjects = len(cells)
    offset, delta = rng.normal(0.0, 0.5, n_subjects), rng.normal(1.0, 0.5, n_subjects)
    s, c = index_of(subjects), index_of(contexts)
    shifts = rng.normal(0.0, tau, (n_sets, n_subjects, max(len(x) for x in cells)))
    scores = offset[s] + delta[s] * labels + shifts[:, s, c] + rng.normal(0.0, sigma, (n_sets, len(subjects)))
    sd = math.sqrt(2 * sigma**2 + 2 * tau**2)
    pos = np.array([sum(n for label, n in x if label) for x in cells], dtype=float)
    neg = np.array([sum(n for label, n in x if not label) for x in cells], dtype=float)
    pairs = norm.cdf((offset[:, None] + delta[:, None] - offset[None, :]) / sd)
    micro = float(pos @ pairs @ neg / (pos.sum() * neg.sum()))
    return run_of(subjects, contexts, labels, scores), {"i_auroc": float(np.mean(norm.cdf(delta / sd))),
                                                        MICRO: micro}
