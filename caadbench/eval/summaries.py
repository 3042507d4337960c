"""Figures derived from a results file for its tables: chance levels, inverted subjects, seen/unseen availability.

Derived, not stored, so results files of every schema version show them: the chance level of an image metric is
what a *constant* score gets on the same test images (I-AUROC 0.5; I-AP the share of anomalous images; I-F1max
``2π / (1 + π)`` for that share π), macro-averaged over subjects exactly as the metric is — computed by the
metric code itself on constant scores, so the two cannot disagree on which subjects count.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from caadbench.eval.evaluator import ALL, SEEN, UNSEEN, role_of
from caadbench.eval.metrics import IMAGE_METRICS, METRIC_NAMES, image_metrics, macro_mean
from caadbench.eval.schema import Results, SubjectEntry

CHANCE_METRICS = IMAGE_METRICS
"""Metrics with a chance level here; the pixel metrics' depends on the maps' ties and is not shown."""


def scope_labels(results: Results, scope: str) -> dict[str, np.ndarray]:
    """``{subject: (n,) labels}`` of the test images in ``scope`` (``unseen``, ``seen`` or ``all``)."""
    by_subject: dict[str, list[int]] = defaultdict(list)
    for s in results.samples:
        if scope == ALL or role_of(s.seen) == scope:
            by_subject[s.subject].append(s.label)
    return {subject: np.array(labels) for subject, labels in sorted(by_subject.items())}


def chance_levels(results: Results, scope: str | None = None) -> dict[str, float]:
    """Macro chance level of every metric on ``scope`` (default: the headline); NaN for the pixel metrics."""
    labels = scope_labels(results, scope or results.headline).values()
    per_subject = [image_metrics(np.zeros(len(y)), y) for y in labels]
    return {m: macro_mean(v[m] for v in per_subject if not math.isnan(v[m])) if m in CHANCE_METRICS else math.nan
            for m in METRIC_NAMES}


def inverted_subjects(per_subject: dict[str, SubjectEntry], metric: str = "i_auroc") -> tuple[int, int]:
    """``(below chance, defined)``: subjects whose mean ``metric`` over seeds is below 0.5, of those defined."""
    values = [e.metrics[metric].mean for e in per_subject.values() if not math.isnan(e.metrics[metric].mean)]
    return sum(v < 0.5 for v in values), len(values)


def gap_status(results: Results) -> str:
    """Why the seen − unseen gap is (un)available, in one sentence."""
    if results.has_gap:
        return (f"measured: {results.seen.n} test images of seen contexts beside "
                f"{sum(e.n for e in results.per_subject.values())} of unseen ones")
    if results.headline == UNSEEN:
        return ("unavailable: every test image of this run is of an unseen context (shards or results written "
                "before the cc split held out seen test images; rebuild the shards and re-run to measure it)")
    return f"unavailable: split {results.split} has no unseen contexts (the gap is measured on cc)"


__all__ = ["CHANCE_METRICS", "SEEN", "chance_levels", "gap_status", "inverted_subjects", "scope_labels"]
