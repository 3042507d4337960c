"""Build, write and read results files (the schema is :mod:`caadbench.eval.schema`).

Build a file with :func:`build_results` (from one :class:`~caadbench.eval.evaluator.SeedEvaluation` per seed and
a :class:`~caadbench.eval.provenance.Provenance`), write it with :func:`write_results` (atomic, sorted keys,
floats to 9 significant digits, NaN as ``null``) and read it back with :func:`read_results`, which refuses
another schema version, a missing field or a wrongly typed one with a :class:`~caadbench.errors.ResultsError`
naming the file. :func:`build_results` attaches the bootstrap intervals (:mod:`caadbench.eval.bootstrap`) while the
per-image pixel statistics are still at hand; files of older versions read without them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np

from caadbench.errors import ResultsError
from caadbench.eval.bootstrap import RESAMPLES, RunScores, with_intervals
from caadbench.eval.diagnosis import ALPHA_STATS, SeedDiagnosis
from caadbench.eval.evaluator import ALL, SEEN, UNSEEN, ContextInfo, ScopeEvaluation, SeedEvaluation
from caadbench.eval.metrics import METRIC_NAMES, macro_mean
from caadbench.eval.provenance import Provenance
from caadbench.eval.schema import (
    READABLE_VERSIONS,
    SCHEMA_VERSION,
    ContextEntry,
    Diagnosis,
    MetricStat,
    NeighbourEntry,
    Results,
    SampleEntry,
    ScopeEntry,
    SubjectContextMatrix,
    SubjectEntry,
    TrainData,
)
from caadbench.eval.typed_json import parse_typed, to_plain
from caadbench.utils.atomic import atomic_write_text

FLOAT_DIGITS = 9
"""Significant digits written for every float: float32 scores round-trip exactly, float64 noise is dropped."""


# ------------------------------------------------------------------------------------------- building
def build_results(
    *,
    model: str,
    learning: str,
    dataset: str,
    split: str,
    shots: int,
    seeds: Sequence[int],
    evaluations: Sequence[SeedEvaluation],
    support_keys: Mapping[int, Mapping[str, Sequence[str]]] | None,
    config: Mapping[str, Any],
    provenance: Provenance,
    notes: Sequence[str] = (),
    training: Mapping[int, Mapping[str, Any]] | None = None,
    run_config: Mapping[str, Any] | None = None,
    train_data: TrainData | None = None,
    selection: Mapping[str, Any] | None = None,
    shipped: Mapping[str, Mapping[str, Any]] | None = None,
    n_resamples: int = RESAMPLES,
) -> Results:
    """Aggregate one :class:`SeedEvaluation` per seed into a validated :class:`Results`, with the bootstrap
    intervals of its headline metrics (``n_resamples`` per level; pixel metrics from the evaluations' per-image
    histograms).

    Raises:
        ResultsError: seeds and evaluations differ in number, or the seeds evaluated different test sets.
    """
    seeds = [int(s) for s in seeds]
    if len(seeds) != len(evaluations) or not evaluations:
        raise ResultsError("results", f"{len(evaluations)} evaluations for seeds {seeds}")
    first = evaluations[0].samples
    for seed, ev in zip(seeds, evaluations):
        s = ev.samples
        if (s.keys, s.subjects, s.contexts) != (first.keys, first.subjects, first.contexts) or not np.array_equal(
            s.labels, first.labels
        ):
            raise ResultsError("results", f"seed {seed} evaluated a different test set than seed {seeds[0]}")

    headline = evaluations[0].headline
    if any(ev.headline != headline or set(ev.scopes) != set(evaluations[0].scopes) for ev in evaluations):
        raise ResultsError("results", "the seeds evaluated different scopes (seen / unseen contexts)")
    main = _scope_entry([ev.scopes[headline] for ev in evaluations])
    seen = gap = None
    if SEEN in evaluations[0].scopes:
        seen = _scope_entry([ev.scopes[SEEN] for ev in evaluations])
        gap = {m: MetricStat.over([ev.scopes[SEEN].metrics[m] - ev.scopes[headline].metrics[m] for ev in evaluations])
               for m in METRIC_NAMES}
    per_context = [
        ContextEntry(
            **{f.name: getattr(cell, f.name) for f in fields(ContextInfo)},
            auroc=MetricStat.over([ev.cells[i].auroc for ev in evaluations]),
            mean_score=MetricStat.over([ev.cells[i].mean_score for ev in evaluations]),
        )
        for i, cell in enumerate(evaluations[0].cells)
    ]
    samples = [
        SampleEntry(key=key, subject=first.subjects[i], context=first.contexts[i], label=int(first.labels[i]),
                    seen=first.seen[i], scores=[float(ev.samples.scores[i]) for ev in evaluations])
        for i, key in enumerate(first.keys)
    ]
    all_notes = list(dict.fromkeys([*notes, *(n for ev in evaluations for n in ev.notes)]))
    results = Results(
        schema_version=SCHEMA_VERSION,
        model=model,
        learning=str(learning),
        dataset=dataset,
        split=split,
        shots=int(shots),
        seeds=seeds,
        metrics=main.metrics,
        per_subject=main.per_subject,
        per_context=per_context,
        subject_context=subject_context_matrix(per_context),
        samples=samples,
        support_keys={str(seed): {subject: sorted(keys) for subject, keys in sorted(by_subject.items())}
                      for seed, by_subject in sorted((support_keys or {}).items())},
        config=dict(config),
        provenance=provenance,
        notes=all_notes,
        training={str(seed): dict(log) for seed, log in sorted((training or {}).items())},
        run_config=dict(run_config or {}),
        train_data=train_data,
        selection=dict(selection) if selection is not None else None,
        shipped={str(k): dict(v) for k, v in shipped.items()} if shipped else None,
        headline=headline,
        seen=seen,
        gap=gap,
        categories=sorted(set(first.subjects)),
        diagnosis=diagnosis_entry([ev.diagnosis for ev in evaluations]),
    )
    with_intervals(results, RunScores.of_evaluations(evaluations), contexts=True, n_resamples=n_resamples)
    return results.validate()


def _scope_entry(scopes: Sequence[ScopeEvaluation]) -> ScopeEntry:
    """One scope's metrics over seeds (one :class:`ScopeEvaluation` per seed)."""
    metrics = {m: MetricStat.over([sc.metrics[m] for sc in scopes], [sc.bounds[m] for sc in scopes])
               for m in METRIC_NAMES}
    per_subject = {
        subject: SubjectEntry(
            n=n,
            n_anomalous=n_anom,
            metrics={m: MetricStat.over([sc.per_subject[subject][m] for sc in scopes]) for m in METRIC_NAMES},
        )
        for subject, (n, n_anom) in sorted(scopes[0].subject_counts.items())
    }
    return ScopeEntry(n=sum(n for n, _ in scopes[0].subject_counts.values()),
                      n_anomalous=sum(a for _, a in scopes[0].subject_counts.values()),
                      metrics=metrics, per_subject=per_subject)


def diagnosis_entry(per_seed: Sequence[SeedDiagnosis | None]) -> Diagnosis | None:
    """The seeds' diagnoses over seeds (a value a seed lacks counts as NaN); ``None`` unless every seed has one."""
    if not per_seed or any(d is None for d in per_seed):
        return None

    def over(get) -> MetricStat:
        return MetricStat.over([_get(get, d) for d in per_seed])

    first = per_seed[0]
    scopes = list(dict.fromkeys(sc for d in per_seed for sc in d.branch_i_auroc))
    branch = {sc: {b: over(lambda d, sc=sc, b=b: d.branch_i_auroc[sc][b])
                   for b in dict.fromkeys(b for d in per_seed for b in d.branch_i_auroc.get(sc, {}))}
              for sc in scopes}
    alpha = {sc: {b: {k: over(lambda d, sc=sc, b=b, k=k: d.alpha[sc][b][k]) for k in ALPHA_STATS}
                  for b in dict.fromkeys(b for d in per_seed for b in d.alpha.get(sc, {}))}
             for sc in dict.fromkeys(sc for d in per_seed for sc in d.alpha)}
    cells = {(c.subject, c.context): c for d in per_seed for c in d.neighbourhood}
    kinds = list(dict.fromkeys(k for c in cells.values() for k in c.share))
    by_seed = [{(c.subject, c.context): c for c in d.neighbourhood} for d in per_seed]
    pairs = [NeighbourEntry(subject=s, context=c, family=cell.family, n=cell.n, relatives=cell.relatives,
                            candidates=cell.candidates,
                            share={k: MetricStat.over([m[s, c].share.get(k, math.nan) if (s, c) in m else math.nan
                                                       for m in by_seed]) for k in kinds})
             for (s, c), cell in sorted(cells.items())]
    summary = {k: MetricStat.over([macro_mean(c.share.get(k, math.nan) for c in d.neighbourhood) for d in per_seed])
               for k in kinds}
    chance = macro_mean(c.relatives / c.candidates for c in cells.values())
    return Diagnosis(branches=list(first.branches), branch_i_auroc=branch, alpha=alpha, neighbourhood=summary,
                     neighbourhood_chance=chance, neighbourhood_pairs=pairs)


def _get(get, diagnosis: SeedDiagnosis) -> float:
    try:
        return float(get(diagnosis))
    except KeyError:
        return math.nan


def subject_context_matrix(cells: Sequence[ContextEntry]) -> SubjectContextMatrix:
    """Arrange the per-pair entries as a subject × context matrix (absent pairs: NaN, ``n = 0``)."""
    subjects = sorted({c.subject for c in cells})
    contexts = sorted({c.context for c in cells})
    at = {(c.subject, c.context): c for c in cells}

    def grid(get, empty):
        return [[get(at[s, c]) if (s, c) in at else empty for c in contexts] for s in subjects]

    return SubjectContextMatrix(
        subjects=subjects,
        contexts=contexts,
        auroc=grid(lambda c: c.auroc.mean, math.nan),
        mean_score=grid(lambda c: c.mean_score.mean, math.nan),
        n=grid(lambda c: c.n, 0),
        seen=grid(lambda c: c.seen, None),
        label=grid(lambda c: c.label, None),
    )


# ---------------------------------------------------------------------------------------------- writing
def write_results(path: str | Path, results: Results) -> Path:
    """Validate and write ``results`` atomically as canonical JSON (sorted keys, fixed float digits)."""
    path = Path(path)
    results.validate(path)
    atomic_write_text(path, dumps(results))
    return path


def dumps(results: Results) -> str:
    """The canonical JSON text of a results object."""
    plain = to_plain(asdict(results), FLOAT_DIGITS)
    return json.dumps(plain, sort_keys=True, indent=1, allow_nan=False, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------------------------- reading
def read_results(path: str | Path) -> Results:
    """Read and validate a results file.

    Raises:
        ResultsError: the file is missing, not JSON, of another schema version, or lacks or mistypes a field.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError(path, "results file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(path, f"cannot read results file ({exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(path, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise ResultsError(path, "not a caadbench results file (top level is not an object)")
    if "schema_version" not in data:
        raise ResultsError(path, "missing field schema_version (not a caadbench results file?)")
    if data["schema_version"] not in READABLE_VERSIONS:
        raise ResultsError(path, f"schema version {data['schema_version']!r} is not supported "
                                 f"(this caadbench reads versions {', '.join(map(str, READABLE_VERSIONS))})")
    if data["schema_version"] == 1:
        data = upgrade_v1(data)
    if data["schema_version"] == 2:
        data = {**data, "schema_version": SCHEMA_VERSION}  # its intervals fields read as null (added later)
    return parse_typed(Results, data, path).validate(path)


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 document as version 2 (read on as version 2): written before seen test images existed, so no
    seen scope and no gap.

    Its metrics were computed on every test image; when every one is of an unseen context (any ``cc`` run of that
    time) they are the unseen headline, otherwise the headline is ``all``.
    """
    samples = data.get("samples")
    samples = samples if isinstance(samples, list) else []
    unseen = bool(samples) and all(isinstance(s, dict) and s.get("seen") is False for s in samples)
    subjects = sorted({s["subject"] for s in samples if isinstance(s, dict) and isinstance(s.get("subject"), str)})
    return {**data, "schema_version": 2, "headline": UNSEEN if unseen else ALL, "seen": None,
            "gap": None, "categories": subjects}


__all__ = ["FLOAT_DIGITS", "build_results", "diagnosis_entry", "dumps", "read_results", "subject_context_matrix", "upgrade_v1",
           "write_results"]
