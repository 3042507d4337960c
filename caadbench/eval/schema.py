"""The results schema: the dataclasses of one versioned results file and the invariants a reader relies on.

One file per run (:class:`Results`): the six macro metrics over seeds on the headline scope (``cc``: unseen
contexts only), the same six on the seen test images and the gap seen − unseen when the run has them,
per-subject and per-context breakdowns, every test image's scores, the support keys, the model config and the
:class:`~caadbench.eval.provenance.Provenance`. Building, writing and reading (and reading version-1 files) live
in :mod:`caadbench.eval.results`; the field list is documented in ``docs/evaluation.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from caadbench.errors import ResultsError
from caadbench.eval.evaluator import ALL, UNSEEN, ContextInfo
from caadbench.eval.metrics import METRIC_NAMES
from caadbench.eval.provenance import Provenance
from caadbench.eval.typed_json import ADDED_LATER

SCHEMA_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
"""Version 1 (before seen test images) is read and upgraded: no seen scope, the gap unavailable. Version 2 (before
bootstrap intervals) reads with ``intervals``, ``micro_i_auroc`` and every ``ci_*`` null: the commands that show or
compare intervals compute them from its stored scores (:func:`caadbench.eval.bootstrap.with_intervals`)."""
HEADLINES = (UNSEEN, ALL)
LEVELS = ("image", "context")
"""Bootstrap resampling levels, named in the ``ci_<level>`` fields (see :mod:`caadbench.eval.bootstrap`)."""
MICRO = "micro_i_auroc"
"""The pooled I-AUROC over every headline image (all subjects together), beside the macro one."""


Interval = list[float]
"""``[low, high]``: a 95 % bootstrap interval (see :class:`IntervalInfo`), in [0, 1] like the value."""


@dataclass
class MetricStat:
    """A value over seeds, with its bootstrap intervals where computed.

    Attributes:
        mean: mean over seeds (NaN when undefined in every seed).
        std: population standard deviation over seeds (0 for one seed).
        per_seed: one value per seed, in the order of ``Results.seeds``.
        bound: largest bound over seeds on the histogram error of the value (0 when exact).
        ci_image, ci_context: intervals of ``mean`` over resampled images (test contexts fixed) and over
            resampled contexts (``None``: not computed or unavailable, see ``Results.intervals``).
        ci_image_per_seed, ci_context_per_seed: the same per seed (``None`` for a seed without one).
    """

    mean: float
    std: float
    per_seed: list[float]
    bound: float = 0.0
    ci_image: Interval | None = field(default=None, metadata={ADDED_LATER: True})
    ci_context: Interval | None = field(default=None, metadata={ADDED_LATER: True})
    ci_image_per_seed: list[Interval | None] | None = field(default=None, metadata={ADDED_LATER: True})
    ci_context_per_seed: list[Interval | None] | None = field(default=None, metadata={ADDED_LATER: True})

    def interval(self, level: str) -> Interval | None:
        """``ci_image`` or ``ci_context``."""
        return getattr(self, f"ci_{level}")

    def intervals(self) -> list[tuple[str, Interval | None]]:
        """Every interval field with its name (for validation)."""
        out: list[tuple[str, Interval | None]] = []
        for level in LEVELS:
            out.append((f"ci_{level}", getattr(self, f"ci_{level}")))
            per_seed = getattr(self, f"ci_{level}_per_seed") or []
            out += [(f"ci_{level}_per_seed[{i}]", ci) for i, ci in enumerate(per_seed)]
        return out

    @classmethod
    def over(cls, values: Sequence[float], bounds: Sequence[float] | None = None) -> MetricStat:
        finite = np.array([v for v in values if not math.isnan(v)], dtype=np.float64)
        return cls(
            mean=float(finite.mean()) if len(finite) else math.nan,
            std=float(finite.std()) if len(finite) else math.nan,
            per_seed=[float(v) for v in values],
            bound=float(max(bounds)) if bounds else 0.0,
        )


@dataclass
class SubjectEntry:
    """Per-subject breakdown: image counts and the six metrics over seeds."""

    n: int
    n_anomalous: int
    metrics: dict[str, MetricStat]


@dataclass
class ScopeEntry:
    """The six metrics (and per-subject breakdown) of one set of test images, e.g. the seen contexts' images."""

    n: int
    n_anomalous: int
    metrics: dict[str, MetricStat]
    per_subject: dict[str, SubjectEntry]


@dataclass
class ContextEntry(ContextInfo):
    """One (subject, context) pair of the test set (fields of :class:`ContextInfo`) with its values over seeds:
    ``auroc`` is the context AUROC (the pair's images against the subject's images of the other label, see
    ``docs/evaluation.md``), ``mean_score`` the pair's mean image score."""

    auroc: MetricStat = field(default_factory=lambda: MetricStat(math.nan, math.nan, []))
    mean_score: MetricStat = field(default_factory=lambda: MetricStat(math.nan, math.nan, []))


@dataclass
class SubjectContextMatrix:
    """The subject × context matrix (means over seeds); ``n == 0`` marks a pair absent from the test set."""

    subjects: list[str]
    contexts: list[str]
    auroc: list[list[float]]
    mean_score: list[list[float]]
    n: list[list[int]]
    seen: list[list[bool | None]]
    label: list[list[int | None]]


@dataclass
class SampleEntry:
    """One test image: its identity and one score per seed."""

    key: str
    subject: str
    context: str
    label: int
    seen: bool | None
    scores: list[float]


@dataclass
class IntervalInfo:
    """How the file's intervals were computed (:mod:`caadbench.eval.bootstrap`; ``docs/evaluation.md``).

    Attributes:
        method: the resampling scheme and interval formula.
        confidence: the intervals' confidence level (0.95).
        resamples: bootstrap resamples per level.
        seed: the resampling seed (resamples depend on it and on the test set's design only).
        df: per level (``image``, ``context``), the design's degrees of freedom; 0: the level is unavailable.
        bounds: per pixel metric, the largest histogram error bound of a resample's value (the pixel metrics'
            resamples use per-image histograms); empty when the pixel metrics have no intervals.
        notes: what the intervals leave out (e.g. roles with a single context, pixel metrics not resampled).
    """

    method: str
    confidence: float
    resamples: int
    seed: int
    df: dict[str, int]
    bounds: dict[str, float]
    notes: list[str]


@dataclass
class NeighbourEntry:
    """The family neighbourhood of one (subject, unseen context) pair over seeds (:mod:`caadbench.eval.diagnosis`).

    Attributes:
        subject, context, family: the pair and its context's family.
        n: test images of the pair.
        relatives: the subject's seen test contexts of the same family; candidates: all its seen test contexts.
        share: per embedding (``adapted``, ``frozen``), the share of the pair's images whose nearest seen-context
            centroid is a relative, over seeds.
    """

    subject: str
    context: str
    family: str
    n: int
    relatives: int
    candidates: int
    share: dict[str, MetricStat]


@dataclass
class Diagnosis:
    """What a model's diagnostic extras say about its generalisation (:mod:`caadbench.eval.diagnosis`), over
    seeds. Scopes are ``unseen`` and ``seen`` (``all`` for a split without them); values in [0, 1].

    Attributes:
        branches: the model's active branches.
        branch_i_auroc: per scope, per branch and ``fused`` (the model's score), the macro I-AUROC over subjects.
        alpha: per scope, per branch, the ``mean``, ``q10``, ``q50``, ``q90`` of its fusion weight over images.
        neighbourhood: per embedding (``adapted``, ``frozen``), the mean over the pairs of
            ``neighbourhood_pairs`` of their share (empty when the set has no families or the model no embeddings).
        neighbourhood_chance: mean over those pairs of relatives / candidates (a random centroid's share).
        neighbourhood_pairs: every (subject, unseen context) pair with a seen relative.
    """

    branches: list[str]
    branch_i_auroc: dict[str, dict[str, MetricStat]]
    alpha: dict[str, dict[str, dict[str, MetricStat]]]
    neighbourhood: dict[str, MetricStat]
    neighbourhood_chance: float
    neighbourhood_pairs: list[NeighbourEntry]

    def stats(self) -> list[tuple[str, MetricStat]]:
        """Every value over seeds with its path (for validation)."""
        out = [(f"diagnosis.branch_i_auroc.{sc}.{b}", v) for sc, by in self.branch_i_auroc.items()
               for b, v in by.items()]
        out += [(f"diagnosis.alpha.{sc}.{b}.{k}", v) for sc, by in self.alpha.items() for b, st in by.items()
                for k, v in st.items()]
        out += [(f"diagnosis.neighbourhood.{k}", v) for k, v in self.neighbourhood.items()]
        out += [(f"diagnosis.neighbourhood_pairs.{p.subject}/{p.context}.{k}", v) for p in self.neighbourhood_pairs
                for k, v in p.share.items()]
        return out


@dataclass
class TrainData:
    """What a trained model was trained on (``caadbench run --train-data``, or the evaluated split's train part).

    Attributes:
        dataset: dataset id of the training shards.
        fingerprint: their source fingerprint.
        path: where they were read from.
        split, part: the split and part trained on.
        samples: images in that part.
    """

    dataset: str
    fingerprint: str
    path: str
    split: str
    part: str
    samples: int


@dataclass
class Results:
    """One run: a model evaluated on one split of one dataset, over one or more seeds.

    Attributes:
        schema_version: :data:`SCHEMA_VERSION`.
        model: registry name (``coreclip``, ``winclip.plus``).
        learning: ``zero-shot`` / ``few-shot`` / ``trained``.
        dataset: dataset id (``caad-synth``, ``caad-3k``, ``mvtec-ad``, ``visa``, ...).
        split: split name (``cc``, ``ic``, ``cs``, ...).
        shots: normal reference images per subject (0 for zero-shot and trained models).
        seeds: one evaluation per seed.
        metrics: the six macro means (:data:`~caadbench.eval.metrics.METRIC_NAMES`), values in [0, 1], on the
            headline scope.
        per_subject: per-subject breakdown of the headline scope.
        per_context, subject_context: every (subject, context) pair of the test set, seen and unseen.
        samples: every test image with its score per seed, sorted by key.
        support_keys: per seed (as a string), per subject, the support images used (empty without support).
        config: the model's config.
        provenance: what produced it.
        notes: why a value is missing or excluded.
        training: per seed (as a string), the trainer's log of a trained model (parameter counts and share,
            losses at the start and end of each stage, a thinned loss curve); empty for other models.
        run_config: the run's configuration as ``caadbench run --config`` reads it (every ``run`` setting after
            defaults, config file and flags were merged); ``caadbench run --config <this file>`` reruns it.
            Empty in files written before run configs existed.
        train_data: the data a trained model was trained on (``None``: not trained here: zero-/few-shot models and
            runs that loaded a checkpoint; also in files written before the field existed).
        headline: ``unseen`` (the test set has unseen contexts: ``metrics`` are on those images only) or ``all``.
        seen: the six metrics on the test images of seen contexts (``cc``'s held-out share); ``None`` when the run
            has none (another split, shards or a results file from before the seen hold-out).
        gap: per metric, seen − unseen per seed (in [-1, 1]) with its mean and std over seeds; ``None`` exactly
            when ``seen`` is.
        categories: the evaluated subjects (categories), sorted: what a dataset id's mean is over.
        selection: what a trained model's run selected on the split's validation part (mode, search candidates
            and their validation scores, each seed's selected step and validation score); ``None`` for zero- and
            few-shot models and files written before selection existed.
        micro_i_auroc: the I-AUROC of every headline image pooled over subjects, per seed, with its intervals
            (``None`` in files written before it; computed from the samples when shown).
        intervals: how the ``ci_*`` intervals were computed; ``None`` in files written before them.
        diagnosis: per-branch scores, α distribution and family neighbourhood of a model with diagnostic extras
            (CoRe-CLIP); ``None`` for other models and files written before it.
        shipped: per seed (as a string) whose trained model was loaded from a shipped checkpoint
            (:mod:`caadbench.eval.shipped`) instead of trained in this run: its ``file``, ``sha256``, ``commit``
            and ``command``; ``None`` when every seed was fitted here (and in files written before the field).
    """

    schema_version: int
    model: str
    learning: str
    dataset: str
    split: str
    shots: int
    seeds: list[int]
    metrics: dict[str, MetricStat]
    per_subject: dict[str, SubjectEntry]
    per_context: list[ContextEntry]
    subject_context: SubjectContextMatrix
    samples: list[SampleEntry]
    support_keys: dict[str, dict[str, list[str]]]
    config: dict[str, Any]
    provenance: Provenance
    notes: list[str] = field(default_factory=list)
    training: dict[str, dict[str, Any]] = field(default_factory=dict)
    run_config: dict[str, Any] = field(default_factory=dict, metadata={ADDED_LATER: True})
    train_data: TrainData | None = field(default=None, metadata={ADDED_LATER: True})
    headline: str = ALL
    seen: ScopeEntry | None = None
    gap: dict[str, MetricStat] | None = None
    categories: list[str] = field(default_factory=list)
    micro_i_auroc: MetricStat | None = field(default=None, metadata={ADDED_LATER: True})
    intervals: IntervalInfo | None = field(default=None, metadata={ADDED_LATER: True})
    selection: dict[str, Any] | None = field(default=None, metadata={ADDED_LATER: True})
    diagnosis: Diagnosis | None = field(default=None, metadata={ADDED_LATER: True})
    shipped: dict[str, dict[str, Any]] | None = field(default=None, metadata={ADDED_LATER: True})

    @property
    def random_init(self) -> bool:
        return self.provenance.random_init

    @property
    def cross_dataset(self) -> bool:
        """True when the model was trained on other data than the evaluated dataset."""
        return self.train_data is not None and self.train_data.fingerprint != self.provenance.dataset_fingerprint

    @property
    def has_gap(self) -> bool:
        """Whether the run measured seen and unseen contexts (the generalisation gap is available)."""
        return self.gap is not None

    def validate(self, where: str | Path = "results") -> Results:
        """Check the invariants a reader relies on.

        Raises:
            ResultsError: naming ``where`` and the first violated invariant.
        """
        def fail(problem: str):
            raise ResultsError(where, problem)

        if self.schema_version != SCHEMA_VERSION:
            fail(f"schema version {self.schema_version} is not supported (this caadbench writes version "
                 f"{SCHEMA_VERSION})")
        n_seeds = len(self.seeds)
        if n_seeds == 0 or len(set(self.seeds)) != n_seeds:
            fail(f"seeds must be a non-empty list of distinct integers, got {self.seeds}")
        if self.shots < 0:
            fail(f"shots must be ≥ 0, got {self.shots}")
        if sorted(self.metrics) != sorted(METRIC_NAMES):
            fail(f"metrics must be exactly {', '.join(METRIC_NAMES)}, got {', '.join(sorted(self.metrics))}")
        stats = [(f"metrics.{m}", s) for m, s in self.metrics.items()]
        for subject, entry in self.per_subject.items():
            if sorted(entry.metrics) != sorted(METRIC_NAMES):
                fail(f"per_subject.{subject}.metrics must hold the six metrics")
            stats += [(f"per_subject.{subject}.{m}", s) for m, s in entry.metrics.items()]
        stats += [(f"per_context.{c.subject}/{c.context}.auroc", c.auroc) for c in self.per_context]
        if self.headline not in HEADLINES:
            fail(f"headline must be one of {', '.join(HEADLINES)}, got {self.headline!r}")
        if (self.seen is None) != (self.gap is None):
            fail("seen and gap must both be present or both be null")
        if self.seen is not None:
            if self.headline != UNSEEN:
                fail("seen metrics need an unseen headline")
            if sorted(self.seen.metrics) != sorted(METRIC_NAMES) or sorted(self.gap) != sorted(METRIC_NAMES):
                fail("seen.metrics and gap must hold the six metrics")
            stats += [(f"seen.{m}", s) for m, s in self.seen.metrics.items()]
            for subject, entry in self.seen.per_subject.items():
                stats += [(f"seen.per_subject.{subject}.{m}", s) for m, s in entry.metrics.items()]
        if self.micro_i_auroc is not None:
            stats.append((MICRO, self.micro_i_auroc))
        if self.diagnosis is not None:
            stats += self.diagnosis.stats()
        gaps = [(f"gap.{m}", s) for m, s in (self.gap or {}).items()]
        for name, stat in stats + gaps:
            for ci_name, ci in stat.intervals():
                if ci is not None and not (len(ci) == 2 and 0.0 <= ci[0] <= ci[1] <= 1.0):
                    fail(f"{name}.{ci_name}: {ci} is not an interval [low, high] within [0, 1]")
            for level in LEVELS:
                per_seed = getattr(stat, f"ci_{level}_per_seed")
                if per_seed is not None and len(per_seed) != n_seeds:
                    fail(f"{name}.ci_{level}_per_seed: {len(per_seed)} intervals for {n_seeds} seeds")
            if len(stat.per_seed) != n_seeds:
                fail(f"{name}: {len(stat.per_seed)} per-seed values for {n_seeds} seeds")
            low = -1.0 if name.startswith("gap.") else 0.0
            for v in [stat.mean, *stat.per_seed]:
                if not (math.isnan(v) or low <= v <= 1.0):
                    fail(f"{name}: value {v} is outside [{low:g}, 1]")
        if self.categories != sorted({s.subject for s in self.samples}):
            fail("categories must be the sorted subjects of the test images")
        keys = [s.key for s in self.samples]
        if keys != sorted(set(keys)):
            fail("samples must be sorted by key, without duplicates")
        for s in self.samples:
            if len(s.scores) != n_seeds:
                fail(f"sample {s.key}: {len(s.scores)} scores for {n_seeds} seeds")
            if s.label not in (0, 1):
                fail(f"sample {s.key}: label {s.label} is not 0 or 1")
        m = self.subject_context
        shape = (len(m.subjects), len(m.contexts))
        for name in ("auroc", "mean_score", "n", "seen", "label"):
            rows = getattr(m, name)
            if len(rows) != shape[0] or any(len(r) != shape[1] for r in rows):
                fail(f"subject_context.{name} is not a {shape[0]}×{shape[1]} matrix")
        return self


__all__ = ["HEADLINES", "LEVELS", "MICRO", "READABLE_VERSIONS", "SCHEMA_VERSION", "ContextEntry", "Diagnosis", "Interval",
           "IntervalInfo", "MetricStat", "NeighbourEntry", "Results", "SampleEntry", "ScopeEntry", "SubjectContextMatrix", "SubjectEntry"]
