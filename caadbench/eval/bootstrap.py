"""Bootstrap intervals of a run's headline metrics, and the replicates that paired comparisons reuse.

Two questions, two resampling levels (``docs/evaluation.md`` has the reasoning and the coverage evidence):

* ``image`` — *how sure is this number on this benchmark*: the test contexts are fixed; the images of every
  (subject, context, label) stratum are resampled.
* ``context`` — *how sure is it for other contexts of the same world*: a subject's contexts of one role (normal
  or anomalous; seen or unseen scope) are resampled, each drawn context with its images as they are. A role
  with a single context has no estimable between-context variance of its own: its images are resampled and, for
  the image metrics, its scores move by a context effect borrowed from the other strata of its role
  (:mod:`caadbench.eval.borrowing`, ``docs/evaluation.md`` *Protocol decisions*). Without any role of two
  contexts in the headline the level is unavailable.

Both levels use the rescaled bootstrap of Rao & Wu (1988): in a stratum of ``k ≥ 2`` units, ``k − 1`` units are
drawn with replacement and each draw weighs ``k / (k − 1)`` (a unit of a one-unit stratum keeps weight 1). Its
variance is unbiased for a mean (the plain ``k``-of-``k`` bootstrap shrinks it by ``(k − 1) / k``, far too much
for two or three contexts), and it resamples the ultimate units only: images inside a drawn context are not
resampled again, which would count their variance twice. The interval is ``value ± t · SE`` with SE the standard
deviation of the replicates and ``t`` the Student quantile at the design's degrees of freedom (units − strata,
the survey-sampling rule), clipped to [0, 1].

Every metric is the one of :mod:`caadbench.eval.metrics` computed with the resample's weights: the macro mean
over subjects (subjects where the metric is undefined left out, as in the run), per seed; the mean over seeds
uses the same resample for every seed. Resamples are a function of the test set's design and the seed only, so
two runs on the same test images get the same resamples (paired comparisons, :mod:`caadbench.eval.compare`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from caadbench.eval.borrowing import Borrowing
from caadbench.eval.evaluator import ALL, SeedEvaluation, role_of
from caadbench.eval.metrics import (
    IMAGE_METRICS,
    PIXEL_METRICS,
    auroc,
    image_curve_metrics,
    pixel_curve_metrics,
    ranked_counts,
)
from caadbench.eval.pixel_stats import ImagePixelHistogram, common_grid
from caadbench.eval.schema import LEVELS, MICRO, Interval, IntervalInfo, MetricStat, Results

RESAMPLES = 2000
SEED = 0
CONFIDENCE = 0.95
METHOD = ("rao-wu rescaled bootstrap (k−1 of k units per stratum), value ± t(df)·SE; single-context strata borrow "
          "their role's centred context effects")


@dataclass
class RunScores:
    """What the bootstrap reads from a run: every test image, sorted by key, and its score per seed.

    Attributes:
        keys: ``N`` image keys.
        subjects, contexts, scopes: ``(N,)`` object arrays; a scope is ``unseen`` / ``seen`` / ``all``.
        labels: ``(N,)`` bool, true = anomalous.
        scores: ``(S, N)`` float64, one row per seed.
        headline: the scope of the headline metrics (``unseen`` or ``all``).
        pixel: per seed, per image, its pixel histogram (``None`` without pixel ground truth or map); ``None`` when
            the run has no per-image pixel statistics (results files keep none; a model without maps).
    """

    keys: list[str]
    subjects: np.ndarray
    contexts: np.ndarray
    scopes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    headline: str
    pixel: list[list[ImagePixelHistogram | None]] | None = None

    @classmethod
    def of_results(cls, results: Results) -> RunScores:
        s = results.samples
        return cls(keys=[x.key for x in s], subjects=np.array([x.subject for x in s], dtype=object),
                   contexts=np.array([x.context for x in s], dtype=object),
                   scopes=np.array([role_of(x.seen) for x in s], dtype=object),
                   labels=np.array([x.label for x in s], dtype=bool),
                   scores=np.array([x.scores for x in s], dtype=np.float64).T.reshape(len(results.seeds), len(s)),
                   headline=results.headline)

    @classmethod
    def of_evaluations(cls, evaluations: Sequence[SeedEvaluation]) -> RunScores:
        first = evaluations[0].samples
        have_pixel = all(len(ev.samples.pixel) == len(first.keys) and any(h is not None for h in ev.samples.pixel)
                         for ev in evaluations)
        return cls(keys=list(first.keys), subjects=np.array(first.subjects, dtype=object),
                   contexts=np.array(first.contexts, dtype=object),
                   scopes=np.array([role_of(v) for v in first.seen], dtype=object),
                   labels=np.asarray(first.labels).astype(bool),
                   scores=np.stack([np.asarray(ev.samples.scores, dtype=np.float64) for ev in evaluations]),
                   headline=evaluations[0].headline,
                   pixel=[list(ev.samples.pixel) for ev in evaluations] if have_pixel else None)

    @property
    def in_headline(self) -> np.ndarray:
        """``(N,)`` bool: the images the headline metrics are computed on."""
        return np.ones(len(self.keys), dtype=bool) if self.headline == ALL else self.scopes == self.headline


# ------------------------------------------------------------------------------------------------ design
def _codes(*columns: np.ndarray) -> np.ndarray:
    """``(N,)`` int code of each row's combination of values (in sorted order of the combinations)."""
    rows = list(zip(*(c.tolist() for c in columns)))
    index = {row: i for i, row in enumerate(sorted(set(rows), key=repr))}
    return np.array([index[r] for r in rows], dtype=np.int64)


def _rao_wu(strata: np.ndarray, n_resamples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rao–Wu weights of units.

    Args:
        strata: ``(U,)`` int stratum of each unit.

    Returns:
        ``((B, U) weights, (U,) bool single)``: in a stratum of ``k ≥ 2`` units, ``k − 1`` draws with
        replacement, each ``k / (k − 1)``; the unit of a one-unit stratum (``single``) keeps weight 1.
    """
    _, inverse, counts = np.unique(strata, return_inverse=True, return_counts=True)
    k = counts[inverse]
    members = np.argsort(inverse, kind="stable")
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    draws = np.repeat(np.arange(len(counts)), np.maximum(counts - 1, 0))
    u = rng.random((n_resamples, len(draws)))
    picked = members[first[draws] + np.minimum((u * counts[draws]).astype(np.int64), counts[draws] - 1)]
    n_units = len(strata)
    flat = (np.arange(n_resamples)[:, None] * n_units + picked).ravel()
    counts_drawn = np.bincount(flat, minlength=n_resamples * n_units).reshape(n_resamples, n_units)
    single = k == 1
    weights = np.ascontiguousarray(counts_drawn.T, dtype=np.float64)  # units first: see ranked_counts
    weights *= np.where(single, 1.0, k / np.maximum(k - 1, 1))[:, None]
    weights[single] = 1.0
    return weights.T, single


def _image_strata(run: RunScores) -> np.ndarray:
    return _codes(run.subjects, run.contexts, run.labels)


def _context_design(run: RunScores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(cell of each image, stratum of each cell, role of each cell)``: cells are (subject, context) pairs; a
    cell's stratum is its subject, scope and role (its label ``"0"`` / ``"1"``, or ``"mixed"``)."""
    cell = _codes(run.subjects, run.contexts)
    _, first = np.unique(cell, return_index=True)
    roles = np.array([str(int(run.labels[cell == c][0])) if len(set(run.labels[cell == c].tolist())) == 1 else "mixed"
                      for c in range(len(first))], dtype=object)
    strata = _codes(run.subjects[first], run.scopes[first], roles)
    return cell, strata, roles


def _context_strata(run: RunScores) -> tuple[np.ndarray, np.ndarray]:
    """``(cell of each image, stratum of each cell)`` (:func:`_context_design`)."""
    cell, strata, _ = _context_design(run)
    return cell, strata


def borrowing(run: RunScores, n_resamples: int = RESAMPLES, seed: int = SEED) -> Borrowing | None:
    """The context level's borrowed context effects for the headline's single-context strata
    (:mod:`caadbench.eval.borrowing`; a function of the design and the seed only), ``None`` without any."""
    cell, strata, roles = _context_design(run)
    headline_cell = cell[run.in_headline]
    kept, local = np.unique(headline_cell, return_inverse=True)
    _, first = np.unique(cell, return_index=True)
    subject = _codes(run.subjects[first][kept])
    rng = np.random.default_rng([seed, LEVELS.index("context"), 1])
    return Borrowing.plan(local, subject, strata[kept], roles[kept], n_resamples, rng)


def degrees_of_freedom(run: RunScores, level: str) -> int:
    """The design's degrees of freedom for the headline at ``level``: Σ (k − 1) over the strata of the headline
    images (image level: images per (subject, context, label); context level: contexts per (subject, role),
    strata of one context left out). 0: the level is unavailable."""
    headline = run.in_headline
    if level == "image":
        _, counts = np.unique(_image_strata(run)[headline], return_counts=True)
    else:
        cell, strata = _context_strata(run)
        _, counts = np.unique(strata[np.unique(cell[headline])], return_counts=True)
    return int(np.sum(np.maximum(counts - 1, 0)))


def _images(weights: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``weights[:, index]`` keeping the images-first memory layout (a row gather, the fast one)."""
    return weights.T[index].T


def resample_weights(run: RunScores, level: str, n_resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """``(B, N)`` weights of every test image in ``B`` resamples at ``level`` (a function of the design, the
    level and the seed only). Stored images-first (the array is the transpose of a C-ordered ``(N, B)`` one):
    :func:`~caadbench.eval.metrics.ranked_counts` gathers and sums rows of it; select images with
    :func:`_images`."""
    rng = np.random.default_rng([seed, LEVELS.index(level)])
    if level == "image":
        return _rao_wu(_image_strata(run), n_resamples, rng)[0]
    cell, strata = _context_strata(run)
    cell_weights, single = _rao_wu(strata, n_resamples, rng)
    image_weights = _rao_wu(_image_strata(run), n_resamples, rng)[0]
    return (cell_weights.T[cell] * np.where(single[cell, None], image_weights.T, 1.0)).T


# -------------------------------------------------------------------------------------------- replicates
@dataclass
class Replicates:
    """Bootstrap replicates of one run's headline metrics.

    Attributes:
        estimates: ``{metric: (S,)}`` the values with unit weights, per seed (macro metrics, and :data:`MICRO`).
        values: ``{level: {metric: (S, B)}}`` the values in each resample, per seed; a level is absent when
            unavailable, a metric when it cannot be resampled (pixel metrics without per-image statistics).
        df: ``{level: degrees of freedom}``.
        bounds: ``{pixel metric: largest histogram error bound over seeds and resamples}``.
    """

    estimates: dict[str, np.ndarray]
    values: dict[str, dict[str, np.ndarray]]
    df: dict[str, int]
    bounds: dict[str, float] = field(default_factory=dict)

    def seed_mean(self, level: str, metric: str) -> np.ndarray:
        """``(B,)`` the replicates of the mean over seeds (NaN seeds left out, as in the run's mean)."""
        return _nanmean(self.values[level][metric], axis=0)

    def has(self, level: str, metric: str) -> bool:
        return level in self.values and metric in self.values[level]


def _nanmean(x: np.ndarray, axis: int) -> np.ndarray:
    finite = np.isfinite(x)
    total = np.where(finite, x, 0.0).sum(axis=axis)
    count = finite.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), math.nan)


def _macro(per_subject: list[np.ndarray], defined: list[bool]) -> np.ndarray:
    """Mean over the subjects defined with unit weights of ``(B,)`` values."""
    kept = [v for v, ok in zip(per_subject, defined) if ok]
    return _nanmean(np.stack(kept), axis=0) if kept else np.full(per_subject[0].shape, math.nan)


def _image_values(scores: np.ndarray, labels: np.ndarray, subjects: np.ndarray, weights: np.ndarray,
                  shifts: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Macro image metrics and the micro I-AUROC for ``(B, n)`` weights; also computes the unit-weight values to
    know which subjects are defined. ``shifts``: ``((B, n) score shift per resample, (n,) bool images that
    move)`` (borrowed context effects, :mod:`caadbench.eval.borrowing`); a subject with a moving image is ranked
    resample by resample. Returns ``{metric: (B,)}``."""
    per_subject: dict[str, list[np.ndarray]] = {m: [] for m in IMAGE_METRICS}
    defined: dict[str, list[bool]] = {m: [] for m in IMAGE_METRICS}
    for subject in sorted(set(subjects.tolist())):
        idx = np.flatnonzero(subjects == subject)
        unit = image_curve_metrics(*ranked_counts(scores[idx], labels[idx]))
        moved = shifts is not None and bool(shifts[1][idx].any())
        row = scores[idx] + shifts[0][:, idx] if moved else scores[idx]
        resampled = image_curve_metrics(*ranked_counts(row, labels[idx], _images(weights, idx)))
        for m in IMAGE_METRICS:
            per_subject[m].append(resampled[m])
            defined[m].append(not math.isnan(unit[m]))
    out = {m: _macro(per_subject[m], defined[m]) for m in IMAGE_METRICS}
    pooled = scores + shifts[0] if shifts is not None and shifts[1].any() else scores
    out[MICRO] = image_curve_metrics(*ranked_counts(pooled, labels, weights), names=["i_auroc"])["i_auroc"]
    return out


def _pixel_values(histograms: list[ImagePixelHistogram | None], subjects: np.ndarray,
                  weights: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Macro pixel metrics for ``(B, n)`` weights from per-image histograms, and the largest histogram bound."""
    per_subject: dict[str, list[np.ndarray]] = {m: [] for m in PIXEL_METRICS}
    defined: dict[str, list[bool]] = {m: [] for m in PIXEL_METRICS}
    bounds = {m: 0.0 for m in PIXEL_METRICS}
    for subject in sorted(set(subjects.tolist())):
        idx = [i for i in np.flatnonzero(subjects == subject) if histograms[i] is not None]
        if not idx:
            continue
        grid = common_grid([histograms[i] for i in idx])
        w = _images(weights, np.array(idx)).T  # (n, B), C-ordered
        unit = pixel_curve_metrics(grid.pos.sum(0), grid.neg.sum(0), grid.pro.sum(0), grid.n_regions.sum())
        # (B, bins) views of bins-first arrays: the cumulative sums run row by row
        pos, neg, pro = ((h.T @ w).T for h in (grid.pos, grid.neg, grid.pro))
        resampled, bound = pixel_curve_metrics(pos, neg, pro, grid.n_regions @ w, bounds=True)
        for m in PIXEL_METRICS:
            per_subject[m].append(resampled[m])
            defined[m].append(not math.isnan(unit[m]))
            bounds[m] = max(bounds[m], float(np.max(bound[m])))
    if not per_subject[PIXEL_METRICS[0]]:
        return {m: np.full(len(weights), math.nan) for m in PIXEL_METRICS}, bounds
    return {m: _macro(per_subject[m], defined[m]) for m in PIXEL_METRICS}, bounds


def replicates(run: RunScores, n_resamples: int = RESAMPLES, seed: int = SEED,
               levels: Sequence[str] = LEVELS, borrow: bool = True) -> Replicates:
    """Resample the run's headline at ``levels`` (pixel metrics too when ``run.pixel`` is known).

    ``borrow``: at the context level, give the single-context strata a borrowed context effect
    (:func:`borrowing`; image metrics and the micro I-AUROC only). ``False`` keeps such a context fixed with only
    its images resampled (the estimator before it, for comparisons of the two).
    """
    headline = np.flatnonzero(run.in_headline)
    labels, subjects = run.labels[headline], run.subjects[headline]
    unit = np.ones((1, len(headline)))
    estimates: dict[str, list[float]] = {}
    for row in run.scores:
        for m, v in _image_values(row[headline], labels, subjects, unit).items():
            estimates.setdefault(m, []).append(float(v[0]))
    values: dict[str, dict[str, np.ndarray]] = {}
    df: dict[str, int] = {}
    bounds: dict[str, float] = {}
    for level in levels:
        df[level] = degrees_of_freedom(run, level)
        if df[level] == 0:
            continue
        weights = _images(resample_weights(run, level, n_resamples, seed), headline)
        borrowed = borrowing(run, n_resamples, seed) if borrow and level == "context" else None
        per_seed: dict[str, list[np.ndarray]] = {}
        for s, row in enumerate(run.scores):
            shifts = None if borrowed is None else borrowed.shifts(row[headline])
            found = _image_values(row[headline], labels, subjects, weights, shifts)
            if run.pixel is not None:
                pixel, pixel_bounds = _pixel_values([run.pixel[s][i] for i in headline], subjects, weights)
                found.update(pixel)
                for m, b in pixel_bounds.items():
                    bounds[m] = max(bounds.get(m, 0.0), b)
            for m, v in found.items():
                per_seed.setdefault(m, []).append(v)
        values[level] = {m: np.stack(v) for m, v in per_seed.items()}
    return Replicates(estimates={m: np.array(v) for m, v in estimates.items()}, values=values, df=df, bounds=bounds)


# --------------------------------------------------------------------------------------------- intervals
def t_quantile(df: float, confidence: float = CONFIDENCE) -> float:
    """The two-sided Student quantile (the normal one for infinite ``df``)."""
    q = 0.5 + confidence / 2
    return float(stats.norm.ppf(q) if math.isinf(df) else stats.t.ppf(q, df))


def t_interval(centre: float, values: np.ndarray, df: float, confidence: float = CONFIDENCE,
               clip: tuple[float, float] | None = (0.0, 1.0)) -> Interval | None:
    """``[centre − t·SE, centre + t·SE]`` with SE the standard deviation of the ``(B,)`` replicates (clipped);
    ``None`` when the centre or the replicates are undefined."""
    finite = values[np.isfinite(values)]
    if math.isnan(centre) or len(finite) < 2 or df <= 0:
        return None
    half = t_quantile(df, confidence) * float(np.std(finite, ddof=1))
    low, high = centre - half, centre + half
    if clip is not None:
        low, high = max(clip[0], low), min(clip[1], high)
    return [low, high]


def cell_intervals(run: RunScores, cells: Sequence[tuple[str, str]], n_resamples: int = RESAMPLES,
                   seed: int = SEED) -> list[tuple[list[Interval | None], Interval | None]]:
    """Image-level intervals of each (subject, context) pair's context AUROC
    (:func:`~caadbench.eval.metrics.context_auroc`: the pair's images against the subject's images of the other
    label in the same scope): per pair, ``(per seed, of the mean over seeds)``."""
    weights = resample_weights(run, "image", n_resamples, seed)
    strata = _image_strata(run)
    out: list[tuple[list[Interval | None], Interval | None]] = []
    for subject, context in cells:
        in_cell = (run.subjects == subject) & (run.contexts == context)
        if not in_cell.any():
            out.append(([None] * len(run.scores), None))
            continue
        cell_labels = run.labels[in_cell]
        pool = (run.subjects == subject) & (run.scopes == run.scopes[in_cell][0])
        pure = bool(cell_labels.all() or not cell_labels.any())
        keep = np.flatnonzero(in_cell | (pool & (run.labels != cell_labels[0])) if pure else in_cell)
        _, counts = np.unique(strata[keep], return_counts=True)
        df = int(np.sum(counts - 1))
        centres, values = [], []
        for row in run.scores:
            centres.append(auroc(row[keep], run.labels[keep]))
            values.append(image_curve_metrics(*ranked_counts(row[keep], run.labels[keep], _images(weights, keep)),
                                              names=["i_auroc"])["i_auroc"])
        stacked = np.stack(values)
        mean = float(_nanmean(np.array(centres), axis=0))
        out.append(([t_interval(c, v, df) for c, v in zip(centres, stacked)],
                    t_interval(mean, _nanmean(stacked, axis=0), df)))
    return out


# ------------------------------------------------------------------------------------------ results files
def _fill(stat: MetricStat, reps: Replicates, metric: str) -> None:
    """Set the intervals ``stat`` lacks from the replicates (centred on the stat's own values)."""
    for level in LEVELS:
        if stat.interval(level) is not None or not reps.has(level, metric):
            continue
        values, df = reps.values[level][metric], reps.df[level]
        setattr(stat, f"ci_{level}", t_interval(stat.mean, reps.seed_mean(level, metric), df))
        setattr(stat, f"ci_{level}_per_seed", [t_interval(c, v, df) for c, v in zip(stat.per_seed, values)])


def _notes(run: RunScores, reps: Replicates) -> list[str]:
    """What the intervals of a run leave out, in words."""
    notes = []
    cell, strata = _context_strata(run)
    headline_cells = np.unique(cell[run.in_headline])
    _, counts = np.unique(strata[headline_cells], return_counts=True)
    single = int(np.sum(counts == 1))
    if reps.df["context"] == 0:
        notes.append("context level unavailable: no subject has two headline contexts of one role")
    elif single:
        notes.append(f"context level: {single} of {len(counts)} headline (subject, role) strata hold a single "
                     "context: its images are resampled and its scores shifted by a context effect borrowed from "
                     "the strata of its role with two or more contexts (image metrics; pixel metrics keep it "
                     "fixed, so their context interval is too narrow for those subjects)")
    if run.pixel is None:
        notes.append("pixel metrics: no intervals (no per-image pixel statistics: they are kept only while a run "
                     "evaluates, so a file written before intervals has none; a model without maps has none)")
    return notes


def with_intervals(results: Results, run: RunScores | None = None, *, contexts: bool = False,
                   n_resamples: int = RESAMPLES, seed: int = SEED) -> Replicates:
    """Fill the intervals ``results`` lacks and return the replicates (what comparisons reuse).

    Fills the headline metrics' intervals (pixel metrics only when ``run`` carries per-image pixel histograms,
    i.e. while a run is built), the micro I-AUROC, ``intervals`` and, with ``contexts``, every pair's context
    AUROC interval. Intervals already stored are kept. ``run`` defaults to the results' own samples.
    """
    run = RunScores.of_results(results) if run is None else run
    reps = replicates(run, n_resamples, seed)
    for metric, stat in results.metrics.items():
        _fill(stat, reps, metric)
    if results.micro_i_auroc is None:
        results.micro_i_auroc = MetricStat.over(reps.estimates[MICRO].tolist())
    _fill(results.micro_i_auroc, reps, MICRO)
    if contexts and any(c.auroc.ci_image is None for c in results.per_context):
        found = cell_intervals(run, [(c.subject, c.context) for c in results.per_context], n_resamples, seed)
        for entry, (per_seed, mean) in zip(results.per_context, found):
            if entry.auroc.ci_image is None:
                entry.auroc.ci_image, entry.auroc.ci_image_per_seed = mean, per_seed
    if results.intervals is None:
        results.intervals = IntervalInfo(method=METHOD, confidence=CONFIDENCE, resamples=n_resamples, seed=seed,
                                         df=dict(reps.df), bounds=dict(reps.bounds), notes=_notes(run, reps))
    return reps


__all__ = ["CONFIDENCE", "METHOD", "RESAMPLES", "SEED", "Replicates", "RunScores", "borrowing",
           "cell_intervals", "degrees_of_freedom", "replicates", "resample_weights", "t_interval", "t_quantile",
           "with_intervals"]
