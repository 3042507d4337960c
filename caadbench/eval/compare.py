"""Paired comparison of two runs on the same test images: each headline metric's difference, its interval, a p-value.

For a metric and a resampling level (:mod:`caadbench.eval.bootstrap`), ``Δ = A − B`` of the means over seeds.
Both runs are resampled with the *same* resamples (same images, or same contexts then images), so the replicates
``Δ*`` are paired and their spread is the sampling error of the difference on this design. A run with several
seeds adds the spread of its training (or support) draws: the seeds are a sample of the runs the method could
have produced, so the variance of its mean over ``S`` seeds gains ``σ²_seed / S`` (:func:`seed_variance`: the
spread of its per-seed values less the part the bootstrap already counts); a run of one seed adds nothing (its
spread is unknown; zero-shot runs have none).

    V = Var(Δ*) + σ²_A / S_A + σ²_B / S_B,   interval Δ ± t_df · √V,   p = 2 · P(T_df > |Δ| / √V)

with ``df`` by Welch–Satterthwaite from the design's degrees of freedom (bootstrap term) and ``S − 1`` (seed
terms). ``p < 0.05`` exactly when the interval excludes 0. Tests in ``tests/eval/test_compare.py`` check that two
models whose scores come from one distribution are called different at about the nominal rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from caadbench.errors import ResultsError
from caadbench.eval.bootstrap import (
    CONFIDENCE,
    RESAMPLES,
    SEED,
    Replicates,
    RunScores,
    replicates,
    t_quantile,
)
from caadbench.eval.metrics import METRIC_LABELS, METRIC_NAMES, PIXEL_METRICS
from caadbench.eval.schema import LEVELS, MICRO, Results

COMPARED = (*METRIC_NAMES, MICRO)
"""The compared metrics: the six headline ones and the micro I-AUROC."""


@dataclass
class Difference:
    """``A − B`` of one metric at one resampling level.

    Attributes:
        metric, level: what was compared.
        a, b: the runs' means over seeds.
        estimate: ``a − b``.
        low, high: the interval of the difference (``CONFIDENCE``).
        p: two-sided p-value of "no difference".
        se, df: the standard error and its degrees of freedom.
        seed_spread: whether the runs' spread over seeds is part of ``se`` (a run with ≥ 2 seeds).
    """

    metric: str
    level: str
    a: float
    b: float
    estimate: float
    low: float
    high: float
    p: float
    se: float
    df: float
    seed_spread: bool


def seed_variance(reps: Replicates, metric: str, level: str) -> tuple[float, float]:
    """``(σ²_seed / S, S − 1)``: the variance the run's mean over ``S`` seeds owes to the seeds themselves.

    The per-seed values ``θ_s`` of one run share the test images, so their sample variance ``s²`` holds the
    seeds' own spread ``σ²_seed`` *and* the part of each seed's sampling error that the other seeds do not share
    (``v − c``: a seed's image-sampling variance minus the covariance between seeds), which the bootstrap variance
    of the mean already counts. The bootstrap estimates that part: ``Σ_s Var*(θ*_s − θ̄*) = (S − 1)(v − c)``; so
    ``σ²_seed = max(0, s² − Σ_s Var*(θ*_s − θ̄*) / (S − 1))`` (method of moments). ``(0, inf)`` for one seed.
    """
    estimates, values = reps.estimates[metric], reps.values[level][metric]
    keep = np.isfinite(estimates) & np.all(np.isfinite(values), axis=1)
    n_seeds = int(keep.sum())
    if n_seeds < 2:
        return 0.0, math.inf
    values = values[keep]
    shared = float(np.sum(np.var(values - values.mean(axis=0), axis=1, ddof=1)) / (n_seeds - 1))
    return max(0.0, float(np.var(estimates[keep], ddof=1)) - shared) / n_seeds, float(n_seeds - 1)


def paired_difference(a: Replicates, b: Replicates, metric: str, level: str, *,
                      seed_spread: bool = True, confidence: float = CONFIDENCE) -> Difference | None:
    """The difference of ``metric`` at ``level`` between two runs' replicates of one design (same resamples);
    ``None`` when either run cannot resample it."""
    if not (a.has(level, metric) and b.has(level, metric)):
        return None
    mean_a = float(np.nanmean(a.estimates[metric])) if np.isfinite(a.estimates[metric]).any() else math.nan
    mean_b = float(np.nanmean(b.estimates[metric])) if np.isfinite(b.estimates[metric]).any() else math.nan
    delta = a.seed_mean(level, metric) - b.seed_mean(level, metric)
    delta = delta[np.isfinite(delta)]
    if math.isnan(mean_a) or math.isnan(mean_b) or len(delta) < 2:
        return None
    terms = [(float(np.var(delta, ddof=1)), float(a.df[level]))]
    if seed_spread:
        terms += [seed_variance(a, metric, level), seed_variance(b, metric, level)]
    variance = sum(v for v, _ in terms)
    denominator = sum(v * v / df for v, df in terms if v > 0 and not math.isinf(df))
    df = variance * variance / denominator if denominator > 0 else math.inf
    estimate, se = mean_a - mean_b, math.sqrt(variance)
    if se == 0.0:
        p = 1.0 if estimate == 0.0 else 0.0
    else:
        p = float(2 * (stats.norm.sf(abs(estimate) / se) if math.isinf(df) else stats.t.sf(abs(estimate) / se, df)))
    half = t_quantile(df, confidence) * se
    return Difference(metric=metric, level=level, a=mean_a, b=mean_b, estimate=estimate, low=estimate - half,
                      high=estimate + half, p=p, se=se, df=df,
                      seed_spread=seed_spread and any(v > 0 for v, _ in terms[1:]))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given): reject ``i`` at level α when its adjusted value
    is below α; controls the family-wise error rate over the family given."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def comparable(a: Results, b: Results) -> str | None:
    """Why two runs cannot be compared pairwise (dataset, split or test images differ), or ``None``."""
    fa, fb = a.provenance.dataset_fingerprint, b.provenance.dataset_fingerprint
    if fa != fb:
        return f"dataset fingerprint {fb[:12]} differs from {fa[:12]}"
    if a.split != b.split:
        return f"split {b.split} differs from {a.split}"
    if a.headline != b.headline:
        return f"headline scope {b.headline} differs from {a.headline}"
    keys_a, keys_b = [s.key for s in a.samples], [s.key for s in b.samples]
    if keys_a != keys_b:
        only_a, only_b = sorted(set(keys_a) - set(keys_b)), sorted(set(keys_b) - set(keys_a))
        first = (only_a or only_b)[0]
        return (f"test keys differ ({len(only_a)} only in the first file, {len(only_b)} only in this one; "
                f"first: {first})")
    for x, y in zip(a.samples, b.samples):
        if (x.subject, x.context, x.label, x.seen) != (y.subject, y.context, y.label, y.seen):
            return f"test image {x.key} has another subject, context, label or seen flag"
    return None


def check_comparable(a: Results, b: Results, path_a: str | Path, path_b: str | Path) -> None:
    """Raise unless the two runs can be compared pairwise.

    Raises:
        ResultsError: naming the second file and how it differs from the first.
    """
    why = comparable(a, b)
    if why is not None:
        raise ResultsError(path_b, f"cannot be compared with {path_a}: {why}")


def compare(a: Results, b: Results, path_a: str | Path = "A", path_b: str | Path = "B", *,
            n_resamples: int = RESAMPLES, seed: int = SEED) -> list[Difference | tuple[str, str]]:
    """Every compared metric at both levels: a :class:`Difference`, or ``(metric, level)`` when unavailable.

    Raises:
        ResultsError: the runs differ in dataset, split or test images.
    """
    check_comparable(a, b, path_a, path_b)
    reps_a = replicates(RunScores.of_results(a), n_resamples, seed)
    reps_b = replicates(RunScores.of_results(b), n_resamples, seed)
    out: list[Difference | tuple[str, str]] = []
    for level in LEVELS:
        for metric in COMPARED:
            diff = paired_difference(reps_a, reps_b, metric, level)
            out.append(diff if diff is not None else (metric, level))
    return out


LEVEL_TITLES = {"image": "over test images (the test contexts fixed)",
                "context": "over contexts (each subject's contexts of a role resampled, then kept whole)"}
PIXEL_UNAVAILABLE = "results files keep no per-image pixel statistics"
CONTEXT_UNAVAILABLE = "no subject has two headline contexts of one role"


def _p_text(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def comparison_text(a: Results, b: Results, path_a: str | Path, path_b: str | Path,
                    found: Sequence[Difference | tuple[str, str]]) -> str:
    """What ``caadbench compare`` prints: the two runs, then per level a table of the differences."""
    from caadbench.eval.tables import markdown_table, pct

    def who(r: Results, path) -> str:
        return f"{Path(path).name}: {r.model} ({r.learning}), seeds {', '.join(map(str, r.seeds))}"

    n_headline = sum(e.n for e in a.per_subject.values())
    lines = [f"A = {who(a, path_a)}", f"B = {who(b, path_b)}",
             f"same test images: {a.dataset} split {a.split}, {len(a.samples)} test images, {n_headline} in the "
             f"headline ({a.headline}); differences A − B of the means over seeds, in points", ""]
    for level in LEVELS:
        rows = []
        for item in found:
            if isinstance(item, Difference):
                if item.level != level:
                    continue
                rows.append([METRIC_LABELS.get(item.metric, "Micro I-AUROC"), pct(item.a), pct(item.b),
                             pct(item.estimate, signed=True), f"[{pct(item.low, signed=True)}, "
                             f"{pct(item.high, signed=True)}]", _p_text(item.p),
                             "inf" if math.isinf(item.df) else f"{item.df:.1f}",
                             "yes" if item.seed_spread else "no"])
            elif item[1] == level:
                why = PIXEL_UNAVAILABLE if item[0] in PIXEL_METRICS else CONTEXT_UNAVAILABLE
                rows.append([METRIC_LABELS.get(item[0], "Micro I-AUROC"), "", "", "unavailable", why, "", "", ""])
        lines += [f"{level} level: {LEVEL_TITLES[level]}", ""]
        lines += markdown_table(["Metric", "A", "B", "A − B", f"{round(100 * CONFIDENCE)} % interval", "p", "df",
                                 "seed spread"], rows)
        lines.append("")
    lines.append("p: two-sided test of no difference (paired bootstrap: both runs resampled alike; a run's spread "
                 "over seeds added when it has several; Student t at Welch–Satterthwaite df; docs/evaluation.md).")
    return "\n".join(lines) + "\n"


__all__ = ["COMPARED", "Difference", "check_comparable", "comparable", "compare", "comparison_text", "holm",
           "paired_difference", "seed_variance"]
