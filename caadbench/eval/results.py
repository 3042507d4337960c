"""The one results schema: one versioned JSON file per run, plus its optional example-images sidecar.

Build a file with :func:`build_results` (from one :class:`~caadbench.eval.evaluator.SeedEvaluation` per seed and
a :class:`Provenance` from :func:`collect_provenance`), write it with :func:`write_results` (atomic, sorted
keys, floats to 9 significant digits, NaN as ``null``) and read it back with :func:`read_results`, which refuses
another schema version, a missing field or a wrongly typed one with a :class:`~caadbench.errors.ResultsError`
naming the file. The field list is documented in ``docs/evaluation.md``.
"""

from __future__ import annotations

import io
import json
import math
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from caadbench.errors import ResultsError
from caadbench.eval.evaluator import ContextInfo, ExampleSet, SeedEvaluation
from caadbench.eval.metrics import METRIC_NAMES
from caadbench.utils.atomic import atomic_write_bytes, atomic_write_text

SCHEMA_VERSION = 1
FLOAT_DIGITS = 9
"""Significant digits written for every float: float32 scores round-trip exactly, float64 noise is dropped."""
RANDOM_INIT = "random-init"
OPTIONAL = "optional"
"""Field metadata key: the field may be absent from a file (added after files of this schema version existed)."""


# ------------------------------------------------------------------------------------------------- schema
@dataclass
class MetricStat:
    """A value over seeds.

    Attributes:
        mean: mean over seeds (NaN when undefined in every seed).
        std: population standard deviation over seeds (0 for one seed).
        per_seed: one value per seed, in the order of ``Results.seeds``.
        bound: largest bound over seeds on the histogram error of the value (0 when exact).
    """

    mean: float
    std: float
    per_seed: list[float]
    bound: float = 0.0

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
class Provenance:
    """What produced a result (collected by :func:`collect_provenance`)."""

    package_version: str
    git_commit: str
    git_dirty: bool | None
    torch_version: str
    open_clip_version: str
    backbone_arch: str
    image_size: int
    weights: str
    weights_sha256: str
    init_seed: int
    dataset_fingerprint: str
    dataset_path: str
    device: str
    wall_time_s: float
    images_per_s: float
    peak_memory_bytes: int
    peak_memory_kind: str
    python: str
    platform: str
    command: str

    @property
    def random_init(self) -> bool:
        return self.weights == RANDOM_INIT


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
        metrics: the six macro means (:data:`~caadbench.eval.metrics.METRIC_NAMES`), values in [0, 1].
        per_subject, per_context, subject_context: breakdowns.
        samples: every test image with its score per seed, sorted by key.
        support_keys: per seed (as a string), per subject, the support images used (empty without support).
        config: the model's config.
        provenance: what produced it.
        notes: why a value is missing or excluded.
        training: per seed (as a string), the trainer's log of a trained model (parameter counts and share,
            losses at the start and end of each stage, a thinned loss curve); empty for other models.
        train_data: the data a trained model was trained on (``None``: not trained here: zero-/few-shot models and
            runs that loaded a checkpoint). Optional in files: those written before the field existed lack it.
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
    train_data: TrainData | None = field(default=None, metadata={OPTIONAL: True})

    @property
    def random_init(self) -> bool:
        return self.provenance.random_init

    @property
    def cross_dataset(self) -> bool:
        """True when the model was trained on other data than the evaluated dataset."""
        return self.train_data is not None and self.train_data.fingerprint != self.provenance.dataset_fingerprint

    def validate(self, where: str | Path = "results") -> Results:
        """Check the invariants a reader relies on.

        Raises:
            ResultsError: naming ``where`` and the first violated invariant.
        """
        def fail(problem: str):
            raise ResultsError(where, problem)

        if self.schema_version != SCHEMA_VERSION:
            fail(f"schema version {self.schema_version} is not supported (this caadbench reads version {SCHEMA_VERSION})")
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
        for name, stat in stats:
            if len(stat.per_seed) != n_seeds:
                fail(f"{name}: {len(stat.per_seed)} per-seed values for {n_seeds} seeds")
            for v in [stat.mean, *stat.per_seed]:
                if not (math.isnan(v) or 0.0 <= v <= 1.0):
                    fail(f"{name}: value {v} is outside [0, 1]")
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
    train_data: TrainData | None = None,
) -> Results:
    """Aggregate one :class:`SeedEvaluation` per seed into a validated :class:`Results`.

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

    metrics = {m: MetricStat.over([ev.metrics[m] for ev in evaluations], [ev.bounds[m] for ev in evaluations])
               for m in METRIC_NAMES}
    per_subject = {
        subject: SubjectEntry(
            n=n,
            n_anomalous=n_anom,
            metrics={m: MetricStat.over([ev.per_subject[subject][m] for ev in evaluations]) for m in METRIC_NAMES},
        )
        for subject, (n, n_anom) in sorted(evaluations[0].subject_counts.items())
    }
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
        metrics=metrics,
        per_subject=per_subject,
        per_context=per_context,
        subject_context=subject_context_matrix(per_context),
        samples=samples,
        support_keys={str(seed): {subject: sorted(keys) for subject, keys in sorted(by_subject.items())}
                      for seed, by_subject in sorted((support_keys or {}).items())},
        config=dict(config),
        provenance=provenance,
        notes=all_notes,
        training={str(seed): dict(log) for seed, log in sorted((training or {}).items())},
        train_data=train_data,
    )
    return results.validate()


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
    return json.dumps(_plain(asdict(results)), sort_keys=True, indent=1, allow_nan=False, ensure_ascii=False) + "\n"


def _plain(value: Any) -> Any:
    """JSON-ready copy: floats to :data:`FLOAT_DIGITS` significant digits, NaN/inf as ``None``."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        x = float(value)
        return None if not math.isfinite(x) else float(f"{x:.{FLOAT_DIGITS}g}")
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    return value


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
    if data["schema_version"] != SCHEMA_VERSION:
        raise ResultsError(path, f"schema version {data['schema_version']!r} is not supported "
                                 f"(this caadbench reads version {SCHEMA_VERSION})")
    return _parse(Results, data, path, "").validate(path)


def _parse(tp: Any, value: Any, path: Path, where: str) -> Any:
    """Build ``tp`` from decoded JSON, checking presence and type of every field."""
    def fail(expected: str):
        shown = json.dumps(value)[:40] if value is not None else "null"
        raise ResultsError(path, f"field {where or '(top level)'}: expected {expected}, got {shown}")

    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _parse(options[0], value, path, where)
    if is_dataclass(tp):
        if not isinstance(value, dict):
            fail(f"an object ({tp.__name__})")
        hints = typing.get_type_hints(tp)
        kwargs = {}
        for f in fields(tp):
            name = f"{where}.{f.name}" if where else f.name
            if f.name not in value:
                if f.metadata.get(OPTIONAL):
                    kwargs[f.name] = f.default
                    continue
                raise ResultsError(path, f"missing field {name}")
            kwargs[f.name] = _parse(hints[f.name], value[f.name], path, name)
        return tp(**kwargs)
    if origin is list:
        if not isinstance(value, list):
            fail("a list")
        (item,) = typing.get_args(tp)
        return [_parse(item, v, path, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            fail("an object")
        _, item = typing.get_args(tp)
        return {k: _parse(item, v, path, f"{where}.{k}") for k, v in value.items()}
    if tp is float:
        if value is None:
            return math.nan
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail("a number")
        return float(value)
    if tp is bool:
        if not isinstance(value, bool):
            fail("true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail("an integer")
        return value
    if tp is str:
        if not isinstance(value, str):
            fail("a string")
        return value
    raise TypeError(f"unsupported schema type {tp!r}")  # pragma: no cover - a schema bug, not bad input


# ------------------------------------------------------------------------------------------- provenance
class ResourceMeter:
    """Measures a run's wall time, throughput and peak memory.

    Use as a context manager around fitting and evaluation; call :meth:`count` with the number of images
    predicted. Peak memory is ``torch.cuda.max_memory_allocated`` on a CUDA device, else the process's peak RSS.
    """

    def __init__(self, device: str = "cpu") -> None:
        self.device = str(device)
        self.images = 0
        self.wall_time_s = 0.0
        self._start: float | None = None

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")

    def __enter__(self) -> ResourceMeter:
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall_time_s = time.perf_counter() - (self._start or time.perf_counter())

    def count(self, n: int) -> None:
        self.images += int(n)

    @property
    def images_per_s(self) -> float:
        return self.images / self.wall_time_s if self.wall_time_s > 0 else 0.0

    def peak_memory(self) -> tuple[int, str]:
        """``(bytes, kind)``: CUDA peak allocated, or the process's peak resident set size."""
        if self.cuda:
            import torch

            return int(torch.cuda.max_memory_allocated(self.device)), "cuda-max-allocated"
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(rss if sys.platform == "darwin" else rss * 1024), "cpu-peak-rss"


def git_state(directory: str | Path | None = None) -> tuple[str, bool | None]:
    """``(commit, dirty)`` of the checkout holding the caadbench sources; ``("unknown", None)`` outside one."""
    root = Path(directory) if directory else Path(__file__).resolve().parents[2]

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        top = Path(git("rev-parse", "--show-toplevel"))
        if not (top / "caadbench" / "__init__.py").is_file():
            return "unknown", None
        return git("rev-parse", "HEAD"), bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return "unknown", None


def collect_provenance(
    identity: Any,
    *,
    dataset_fingerprint: str,
    dataset_path: str | Path,
    device: str,
    meter: ResourceMeter,
    command: Sequence[str] | None = None,
) -> Provenance:
    """Everything a result must say about what produced it.

    Args:
        identity: the backbone's :class:`~caadbench.models.backbone.BackboneIdentity`.
        dataset_fingerprint: the shard manifest's fingerprint.
        dataset_path: where the shards were read from.
        device: the device evaluated on.
        meter: the run's :class:`ResourceMeter` (after its ``with`` block).
        command: the command line (default ``sys.argv``).
    """
    import open_clip
    import torch

    from caadbench import __version__

    commit, dirty = git_state()
    peak, kind = meter.peak_memory()
    argv = list(sys.argv if command is None else command)
    if argv:
        argv[0] = os.path.basename(argv[0])
    return Provenance(
        package_version=__version__,
        git_commit=commit,
        git_dirty=dirty,
        torch_version=torch.__version__,
        open_clip_version=getattr(open_clip, "__version__", "unknown"),
        backbone_arch=identity.arch,
        image_size=int(identity.image_size),
        weights=identity.weights,
        weights_sha256=identity.sha256 or (RANDOM_INIT if identity.weights == RANDOM_INIT else "unknown"),
        init_seed=int(identity.init_seed),
        dataset_fingerprint=dataset_fingerprint,
        dataset_path=str(dataset_path),
        device=str(device),
        wall_time_s=meter.wall_time_s,
        images_per_s=meter.images_per_s,
        peak_memory_bytes=peak,
        peak_memory_kind=kind,
        python=platform.python_version(),
        platform=platform.platform(),
        command=shlex.join(argv),
    )


# ------------------------------------------------------------------------------------ examples sidecar
EXAMPLES_SUFFIX = ".examples.npz"


def examples_path(results_path: str | Path) -> Path:
    """The sidecar beside a results file: ``run.json`` → ``run.examples.npz``."""
    results_path = Path(results_path)
    return results_path.with_name(results_path.stem + EXAMPLES_SUFFIX)


def write_examples(path: str | Path, examples: ExampleSet) -> Path:
    """Write the example images atomically (compressed npz, no pickled objects)."""
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        keys=np.array(examples.keys, dtype=str),
        subjects=np.array(examples.subjects, dtype=str),
        contexts=np.array(examples.contexts, dtype=str),
        categories=np.array(examples.categories, dtype=str),
        labels=np.asarray(examples.labels, dtype=np.int64),
        scores=np.asarray(examples.scores, dtype=np.float32),
        images=np.asarray(examples.images, dtype=np.uint8),
        maps=np.asarray(examples.maps, dtype=np.float16),
        gt=np.asarray(examples.gt, dtype=bool),
    )
    return atomic_write_bytes(path, buffer.getvalue())


def read_examples(path: str | Path) -> ExampleSet:
    """Read an examples sidecar.

    Raises:
        ResultsError: unreadable, missing arrays, or inconsistent shapes.
    """
    path = Path(path)
    names = ("keys", "subjects", "contexts", "categories", "labels", "scores", "images", "maps", "gt")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [n for n in names if n not in data.files]
            if missing:
                raise ResultsError(path, f"examples file lacks array(s) {', '.join(missing)}")
            arrays = {n: data[n] for n in names}
    except ResultsError:
        raise
    except (OSError, ValueError) as exc:
        raise ResultsError(path, f"not a readable examples file ({exc})") from exc
    n = len(arrays["keys"])
    images, maps, gt = arrays["images"], arrays["maps"], arrays["gt"]
    if (images.ndim != 4 or images.shape[-1] != 3 or maps.shape != images.shape[:3] or gt.shape != maps.shape
            or any(len(arrays[k]) != n for k in names)):
        raise ResultsError(path, f"inconsistent example arrays (images {images.shape}, maps {maps.shape}, "
                                 f"gt {gt.shape}, {n} keys)")
    return ExampleSet(
        keys=[str(k) for k in arrays["keys"]],
        subjects=[str(s) for s in arrays["subjects"]],
        contexts=[str(c) for c in arrays["contexts"]],
        categories=[str(c) for c in arrays["categories"]],
        labels=arrays["labels"].astype(np.int64),
        scores=arrays["scores"].astype(np.float32),
        images=images.astype(np.uint8),
        maps=maps.astype(np.float16),
        gt=gt.astype(bool),
    )


__all__ = [
    "EXAMPLES_SUFFIX",
    "RANDOM_INIT",
    "SCHEMA_VERSION",
    "ContextEntry",
    "MetricStat",
    "Provenance",
    "ResourceMeter",
    "Results",
    "SampleEntry",
    "SubjectContextMatrix",
    "SubjectEntry",
    "TrainData",
    "build_results",
    "collect_provenance",
    "dumps",
    "examples_path",
    "git_state",
    "read_examples",
    "read_results",
    "subject_context_matrix",
    "write_examples",
    "write_results",
]
