"""One evaluation pass: feed ``(Batch, AnomalyOutput)`` pairs, get the metrics of one seed.

The runner's loop is::

    evaluator = Evaluator(seen_contexts=split_seen_contexts)
    for batch in test_batches:
        evaluator.update(batch, model.predict(batch))
    seed_eval = evaluator.compute()          # one per seed; then results.build_results(...)

Anomaly maps arrive at the model's input size and are resized bilinearly to ``EVAL_RESOLUTION``; the batch's
ground truth is already there (nearest from the full-size mask). Under ``torchrun`` each rank evaluates its
shards and rank 0 :meth:`Evaluator.merge` s the gathered evaluators: the result equals one process's.

A model without maps (``AnomalyOutput.maps is None``, :attr:`~caadbench.models.base.AnomalyModel.gives_maps`
false) gets image metrics only: its pixel metrics are NaN with the note "unavailable (the model gives no maps)",
shown ``n/a`` in every table, and its example images carry NaN maps that the report draws as "no map".

A model with diagnostic extras (:data:`~caadbench.models.base.DIAGNOSTIC_EXTRAS`: CoRe-CLIP's fusion weights,
per-branch scores and embeddings) also gets a :class:`~caadbench.eval.diagnosis.SeedDiagnosis` per pass
(:mod:`caadbench.eval.diagnosis`).

Scopes: when the test set has images of unseen contexts (``cc``), the *headline* metrics are computed on those
only (:data:`UNSEEN`), and the images of seen contexts (``cc``'s held-out share) get their own metrics
(:data:`SEEN`); otherwise (``ic``, ``cs``, industrial sets) the headline is every test image (:data:`ALL`).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from caadbench.data.batch import EVAL_RESOLUTION, Batch
from caadbench.errors import DataError, ModelError
from caadbench.eval.diagnosis import SeedDiagnosis, diagnose
from caadbench.eval.metrics import (
    DEFAULT_BINS,
    DEFAULT_EXACT_PIXELS,
    IMAGE_METRICS,
    METRIC_LABELS,
    METRIC_NAMES,
    PIXEL_METRICS,
    PixelMetricAccumulator,
    context_auroc,
    image_metrics,
    macro_mean,
)
from caadbench.eval.pixel_stats import ImagePixelHistogram, image_histogram
from caadbench.models.base import DIAGNOSTIC_EXTRAS, AnomalyOutput

UNSEEN, SEEN, ALL = "unseen", "seen", "all"
"""Scope names: images of unseen contexts, of seen contexts, every test image (no unseen context in the set)."""

EXAMPLE_CATEGORIES: tuple[tuple[str, int, int], ...] = (
    ("anomalous, highest score", 1, -1),
    ("anomalous, lowest score (missed)", 1, 1),
    ("normal, highest score (false alarm)", 0, -1),
    ("normal, lowest score", 0, 1),
)
"""``(title, label, order)``: the example grid shows, per category, the images ranked first by score."""


@dataclass
class ContextInfo:
    """One (subject, context) pair of the test set.

    Attributes:
        seen: whether the context was seen for this subject in training/support; ``None`` when the split has no
            seen/unseen notion.
        label: 0 or 1 when every image of the pair has it, ``None`` when mixed.
        n, n_anomalous: images of the pair, and how many are anomalous.
    """

    subject: str
    context: str
    seen: bool | None
    label: int | None
    n: int
    n_anomalous: int


@dataclass
class ContextCell(ContextInfo):
    """A pair's values in one evaluation: ``auroc`` is :func:`~caadbench.eval.metrics.context_auroc` (NaN when
    undefined), ``mean_score`` the mean image score of the pair."""

    auroc: float = math.nan
    mean_score: float = math.nan


@dataclass
class SampleScores:
    """Per-image outcome, sorted by key. Arrays are ``(N,)``; ``pixel`` holds each image's pixel histogram
    (:mod:`caadbench.eval.pixel_stats`; ``None`` for an image without pixel ground truth or map), what the bootstrap
    resamples for the pixel metrics' intervals."""

    keys: list[str]
    subjects: list[str]
    contexts: list[str]
    labels: np.ndarray
    seen: list[bool | None]
    scores: np.ndarray
    pixel: list[ImagePixelHistogram | None] = field(default_factory=list)


@dataclass
class ScopeEvaluation:
    """The metrics of one set of test images (a scope: unseen contexts, seen contexts, or all).

    Attributes:
        metrics: the six macro means over subjects (NaN subjects excluded).
        bounds: per metric, the bound on the macro mean's histogram error (0 when exact).
        per_subject: ``{subject: {metric: value}}``.
        subject_counts: ``{subject: (n images, n anomalous)}``.
        notes: why a subject was left out of a macro mean.
    """

    metrics: dict[str, float]
    bounds: dict[str, float]
    per_subject: dict[str, dict[str, float]]
    subject_counts: dict[str, tuple[int, int]]
    notes: list[str] = field(default_factory=list)


@dataclass
class SeedEvaluation:
    """Everything one evaluation pass produced.

    Attributes:
        headline: :data:`UNSEEN` when the test set has unseen contexts, else :data:`ALL`.
        scopes: the headline scope, and :data:`SEEN` beside an unseen headline when seen test images exist.
        cells: every (subject, context) pair, sorted.
        samples: per-image scores.
        diagnosis: what the model's diagnostic extras say (:mod:`caadbench.eval.diagnosis`); ``None`` without.

    ``metrics``, ``bounds``, ``per_subject`` and ``subject_counts`` are the headline scope's; ``notes`` gathers
    every scope's.
    """

    headline: str
    scopes: dict[str, ScopeEvaluation]
    cells: list[ContextCell]
    samples: SampleScores
    diagnosis: SeedDiagnosis | None = None

    @property
    def main(self) -> ScopeEvaluation:
        return self.scopes[self.headline]

    @property
    def metrics(self) -> dict[str, float]:
        return self.main.metrics

    @property
    def bounds(self) -> dict[str, float]:
        return self.main.bounds

    @property
    def per_subject(self) -> dict[str, dict[str, float]]:
        return self.main.per_subject

    @property
    def subject_counts(self) -> dict[str, tuple[int, int]]:
        return self.main.subject_counts

    @property
    def notes(self) -> list[str]:
        return [n for scope in self.scopes.values() for n in scope.notes]


@dataclass
class ExampleSet:
    """Example images for the report's grid, at the evaluation resolution ``R``.

    Attributes:
        keys, subjects, contexts, categories: ``N`` strings each.
        labels: ``(N,)`` int64. scores: ``(N,)`` float32.
        images: ``(N, R, R, 3)`` uint8. maps: ``(N, R, R)`` float16, all NaN for an image whose model gives no
            maps. gt: ``(N, R, R)`` bool.
    """

    keys: list[str]
    subjects: list[str]
    contexts: list[str]
    categories: list[str]
    labels: np.ndarray
    scores: np.ndarray
    images: np.ndarray
    maps: np.ndarray
    gt: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)


class Evaluator:
    """Accumulates one evaluation pass over the test part.

    Args:
        seen_contexts: per subject, the contexts seen in training/support (from the split definition);
            ``None`` when the split has no seen/unseen notion (industrial sets).
        resolution: side of the pixel-metric grid (``EVAL_RESOLUTION``).
        n_bins, exact_pixels: :class:`~caadbench.eval.metrics.PixelMetricAccumulator` memory settings.
        examples_per_category: images kept per :data:`EXAMPLE_CATEGORIES` entry for the report (0: none).
        families: ``{context: family}`` from the dataset's rulebook, for the diagnosis's family neighbourhood
            (``None``: none).
        extras_columns: names of the columns of the model's two-dimensional extras
            (:attr:`~caadbench.models.base.AnomalyModel.extras_columns`).

    Memory: the pixel accumulator's bound, the examples, and per image its key, scores and pixel histogram
    (:data:`~caadbench.eval.pixel_stats.IMAGE_BINS` bins, 6 KiB), plus its diagnostic extras when the model gives
    them (two embeddings of ``D`` floats and a few weights).
    """

    def __init__(
        self,
        seen_contexts: Mapping[str, Collection[str]] | None,
        *,
        resolution: int = EVAL_RESOLUTION,
        n_bins: int = DEFAULT_BINS,
        exact_pixels: int = DEFAULT_EXACT_PIXELS,
        examples_per_category: int = 2,
        families: Mapping[str, str] | None = None,
        extras_columns: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.seen_contexts = None if seen_contexts is None else {s: set(c) for s, c in seen_contexts.items()}
        self.resolution = resolution
        self.examples_per_category = examples_per_category
        self.pixels = PixelMetricAccumulator(n_bins=n_bins, exact_pixels=exact_pixels)  # groups: role/subject
        self._keys: list[str] = []
        self._subjects: list[str] = []
        self._contexts: list[str] = []
        self._labels: list[int] = []
        self._scores: list[float] = []
        self._pixel: list[ImagePixelHistogram | None] = []
        self._without_gt: dict[str, list[int]] = {}  # (role, subject) group: [anomalous, normal] images without pixel gt
        self._without_maps: dict[str, int] = {}  # (role, subject) group: images whose model gave no map
        # per category: a min-heap of (rank, key, counter, payload); the worst kept candidate is at the top
        self._examples: list[list[tuple]] = [[] for _ in EXAMPLE_CATEGORIES]
        self._offered = 0
        self.families = dict(families or {})
        self.extras_columns = {k: tuple(v) for k, v in (extras_columns or {}).items()}
        self._extras: dict[str, list[np.ndarray]] | None = None  # diagnostic extras every batch so far gave

    def __len__(self) -> int:
        return len(self._keys)

    # ------------------------------------------------------------------ input
    def update(self, batch: Batch, output: AnomalyOutput) -> None:
        """Add one predicted batch.

        Args:
            batch: the test batch: ``labels`` required; ``gt_masks`` ``(B, R, R)`` at ``resolution`` where known
                (images without pixel ground truth, ``has_gt`` false or ``gt_masks`` ``None``, count for image
                metrics only).
            output: the model's ``scores (B,)`` and ``maps (B, S, S)`` (``None``: the model gives no maps; the
                images count for image metrics only).

        Raises:
            ModelError: outputs of the wrong shape or with non-finite values.
            DataError: a batch without labels, or ground truth at another resolution.
        """
        B, R = len(batch), self.resolution
        if batch.labels is None:
            raise DataError("test batch", "has no labels: metrics need the label of every image (predict "
                                          "unlabelled images with caadbench.predict instead)")
        scores = output.scores.detach().float().reshape(-1)
        maps = None if output.maps is None else output.maps.detach().float()
        if scores.shape[0] != B or (maps is not None and (maps.ndim != 3 or maps.shape[0] != B)):
            raise ModelError("model output", f"scores {tuple(output.scores.shape)} and maps "
                                             f"{None if maps is None else tuple(maps.shape)} do not match a batch "
                                             f"of {B} images")
        if batch.gt_masks is not None and tuple(batch.gt_masks.shape) != (B, R, R):
            raise DataError("test batch", f"ground truth is {tuple(batch.gt_masks.shape)}, expected ({B}, {R}, {R}) "
                                          f"at the evaluation resolution")
        if maps is not None and tuple(maps.shape[-2:]) != (R, R):
            maps = F.interpolate(maps[:, None], size=(R, R), mode="bilinear", align_corners=False)[:, 0]
        maps_np = np.full((B, R, R), np.nan, dtype=np.float32) if maps is None else maps.cpu().numpy()
        if batch.gt_masks is None:
            gt_np, has_gt = np.zeros((B, R, R), dtype=bool), np.zeros(B, dtype=bool)
        else:
            gt_np = batch.gt_masks.detach().cpu().numpy().astype(bool)
            has_gt = np.ones(B, dtype=bool) if batch.has_gt is None else batch.has_gt.detach().cpu().numpy()
        scores_np = scores.cpu().numpy()
        labels = [int(v) for v in batch.labels.detach().cpu().reshape(-1).tolist()]
        if not np.all(np.isfinite(scores_np)):
            raise ModelError("image scores", "contain NaN or infinite values; metrics need finite scores")
        roles = [self._role(s, c) for s, c in zip(batch.subjects, batch.contexts)]
        groups = [_group(r, s) for r, s in zip(roles, batch.subjects)]
        if maps is None:
            for g in groups:
                self._without_maps[g] = self._without_maps.get(g, 0) + 1
        elif has_gt.all():
            self.pixels.update(maps_np, gt_np, groups)
        else:
            keep = np.flatnonzero(has_gt)
            if len(keep):
                self.pixels.update(maps_np[keep], gt_np[keep], [groups[i] for i in keep])
            for i in np.flatnonzero(~has_gt):
                self._without_gt.setdefault(groups[i], [0, 0])[0 if labels[i] else 1] += 1
        self._keys += list(batch.keys)
        self._subjects += list(batch.subjects)
        self._contexts += list(batch.contexts)
        self._labels += labels
        self._scores += [float(v) for v in scores_np]
        self._pixel += [image_histogram(m, g) if ok and maps is not None else None
                        for m, g, ok in zip(maps_np, gt_np, has_gt)]
        self._add_extras(output.extras, B)
        if self.examples_per_category:
            self._offer_examples(batch, scores_np, labels, maps_np, gt_np)

    def _add_extras(self, extras: Mapping[str, torch.Tensor], B: int) -> None:
        """Keep the diagnostic extras of a batch: a name only while every batch so far had it."""
        given = {k: v.detach().float().cpu().numpy().reshape(B, -1) for k, v in extras.items()
                 if k in DIAGNOSTIC_EXTRAS and v.shape[0] == B}
        if self._extras is None:
            self._extras = {k: [v] for k, v in given.items()}
            return
        self._extras = {k: [*arrays, given[k]] for k, arrays in self._extras.items() if k in given}

    def _offer_examples(self, batch: Batch, scores, labels, maps, gt) -> None:
        images = None
        for i, key in enumerate(batch.keys):
            for c, (_, label, order) in enumerate(EXAMPLE_CATEGORIES):
                if labels[i] != label:
                    continue
                heap = self._examples[c]
                rank = (-order * float(scores[i]), _reverse(key))  # larger = better kept
                if len(heap) >= self.examples_per_category and rank <= heap[0][0]:
                    continue
                if images is None:
                    images = _display_images(batch.images, self.resolution)
                payload = (batch.subjects[i], batch.contexts[i], labels[i], float(scores[i]),
                           images[i], maps[i].astype(np.float16), gt[i].copy())
                self._offered += 1
                item = (rank, key, self._offered, payload)  # the counter keeps heapq away from the arrays
                if len(heap) >= self.examples_per_category:
                    heapq.heapreplace(heap, item)
                else:
                    heapq.heappush(heap, item)

    def merge(self, other: Evaluator) -> None:
        """Add another evaluator's images (another rank's share of the same pass)."""
        if other.resolution != self.resolution:
            raise ValueError("cannot merge evaluators at different resolutions")
        self._keys += other._keys
        self._subjects += other._subjects
        self._contexts += other._contexts
        self._labels += other._labels
        self._scores += other._scores
        self._pixel += other._pixel
        for subject, (anomalous, normal) in other._without_gt.items():
            mine = self._without_gt.setdefault(subject, [0, 0])
            mine[0] += anomalous
            mine[1] += normal
        for group, n in other._without_maps.items():
            self._without_maps[group] = self._without_maps.get(group, 0) + n
        if other._extras is not None:
            self._extras = (dict(other._extras) if self._extras is None else
                            {k: [*v, *other._extras[k]] for k, v in self._extras.items() if k in other._extras})
        self.pixels.merge(other.pixels)
        for mine, theirs in zip(self._examples, other._examples):
            for rank, key, _, payload in theirs:
                self._offered += 1
                item = (rank, key, self._offered, payload)
                if len(mine) < self.examples_per_category:
                    heapq.heappush(mine, item)
                elif item[0] > mine[0][0]:
                    heapq.heapreplace(mine, item)

    # ------------------------------------------------------------------ output
    def _seen(self, subject: str, context: str) -> bool | None:
        if self.seen_contexts is None:
            return None
        return context in self.seen_contexts.get(subject, ())

    def _role(self, subject: str, context: str) -> str:
        return role_of(self._seen(subject, context))

    def compute(self) -> SeedEvaluation:
        """Metrics of everything added so far.

        Raises:
            DataError: nothing was evaluated, or a key was evaluated twice.
        """
        if not self._keys:
            raise DataError("test set", "no image was evaluated")
        order = sorted(range(len(self._keys)), key=self._keys.__getitem__)
        keys = [self._keys[i] for i in order]
        for a, b in zip(keys, keys[1:]):
            if a == b:
                raise DataError("test set", f"image {a!r} was evaluated twice (overlapping shards or ranks?)")
        subjects = np.array([self._subjects[i] for i in order], dtype=object)
        contexts = np.array([self._contexts[i] for i in order], dtype=object)
        labels = np.array([self._labels[i] for i in order], dtype=np.int64)
        scores = np.array([self._scores[i] for i in order], dtype=np.float64)
        samples = SampleScores(keys, list(subjects), list(contexts), labels,
                               [self._seen(s, c) for s, c in zip(subjects, contexts)], scores.astype(np.float32),
                               [self._pixel[i] for i in order])

        roles = np.array([role_of(v) for v in samples.seen], dtype=object)
        pixel = self.pixels.compute()
        headline = UNSEEN if (roles == UNSEEN).any() else ALL
        scopes = {headline: roles == UNSEEN if headline == UNSEEN else np.ones(len(keys), dtype=bool)}
        if headline == UNSEEN and (roles == SEEN).any():
            scopes[SEEN] = roles == SEEN
        evaluated = {
            name: _scope_metrics(mask, subjects, labels, scores, roles, pixel, self._without_gt, self._without_maps,
                                 prefix="" if name == ALL else f"{name} contexts: ")
            for name, mask in scopes.items()
        }
        cells: list[ContextCell] = []
        for subject in sorted(set(subjects)):
            of_subject = subjects == subject
            for context in sorted(set(contexts[of_subject])):
                in_cell = of_subject & (contexts == context)
                # against the subject's other-label images of the same role (seen or unseen contexts)
                pool = of_subject & (roles == roles[in_cell][0])
                cell_labels = labels[in_cell]
                cells.append(ContextCell(
                    subject=subject,
                    context=context,
                    seen=self._seen(subject, context),
                    label=int(cell_labels[0]) if len(set(cell_labels.tolist())) == 1 else None,
                    n=int(in_cell.sum()),
                    n_anomalous=int(cell_labels.sum()),
                    auroc=context_auroc(scores[pool], labels[pool], in_cell[pool]),
                    mean_score=float(np.mean(scores[in_cell])),
                ))
        extras = {k: np.concatenate(v)[order] for k, v in (self._extras or {}).items() if v}
        diagnosis = diagnose(subjects=subjects, contexts=contexts, labels=labels, roles=roles, scores=scores,
                             extras=extras, columns=self.extras_columns, families=self.families,
                             scopes=list(scopes)) if extras else None
        return SeedEvaluation(headline, evaluated, cells, samples, diagnosis)

    def examples(self) -> ExampleSet | None:
        """The kept example images, category by category (an image listed once); ``None`` when none was kept."""
        seen: set[str] = set()
        rows: list[tuple[str, str, tuple]] = []
        for (title, _, _), heap in zip(EXAMPLE_CATEGORIES, self._examples):
            for _, key, _, payload in sorted(heap, key=lambda item: item[:3], reverse=True):
                if key not in seen:
                    seen.add(key)
                    rows.append((title, key, payload))
        if not rows:
            return None
        return ExampleSet(
            keys=[key for _, key, _ in rows],
            subjects=[p[0] for _, _, p in rows],
            contexts=[p[1] for _, _, p in rows],
            categories=[title for title, _, _ in rows],
            labels=np.array([p[2] for _, _, p in rows], dtype=np.int64),
            scores=np.array([p[3] for _, _, p in rows], dtype=np.float32),
            images=np.stack([p[4] for _, _, p in rows]),
            maps=np.stack([p[5] for _, _, p in rows]),
            gt=np.stack([p[6] for _, _, p in rows]),
        )


def role_of(seen: bool | None) -> str:
    """A test image's role: :data:`SEEN`, :data:`UNSEEN`, or :data:`ALL` for a split without the notion."""
    return ALL if seen is None else (SEEN if seen else UNSEEN)


def _group(role: str, subject: str) -> str:
    """Pixel-accumulator group of a (role, subject): roles never contain the separator."""
    return f"{role}\x1f{subject}"


def _scope_metrics(mask: np.ndarray, subjects: np.ndarray, labels: np.ndarray, scores: np.ndarray,
                   roles: np.ndarray, pixel: Mapping[str, Any], without_gt: Mapping[str, Sequence[int]],
                   without_maps: Mapping[str, int], prefix: str) -> ScopeEvaluation:
    """The six macro metrics over the images in ``mask`` (``(N,)`` bool); ``pixel``, ``without_gt`` (anomalous and
    normal images without pixel ground truth) and ``without_maps`` (images the model gave no map) are keyed by
    :func:`_group`."""
    per_subject: dict[str, dict[str, float]] = {}
    bounds_per_subject: dict[str, dict[str, float]] = {}
    counts: dict[str, tuple[int, int]] = {}
    notes: list[str] = []
    for subject in sorted(set(subjects[mask])):
        in_subject = mask & (subjects == subject)
        s_labels = labels[in_subject]
        values = image_metrics(scores[in_subject], s_labels)
        (role,) = set(roles[in_subject])
        px = pixel.get(_group(role, subject))
        values.update(px.values if px is not None else {m: math.nan for m in PIXEL_METRICS})
        per_subject[subject] = values
        bounds_per_subject[subject] = {**{m: 0.0 for m in IMAGE_METRICS},
                                       **(px.bound if px is not None else {m: 0.0 for m in PIXEL_METRICS})}
        counts[subject] = (int(in_subject.sum()), int(s_labels.sum()))
        without = tuple(without_gt.get(_group(role, subject), (0, 0)))
        notes += [prefix + n for n in _undefined_notes(subject, values, counts[subject], px.n_anomalous if px else 0,
                                                       px.n_pixels if px else 0, without,
                                                       without_maps.get(_group(role, subject), 0))]
    metrics, bounds = {}, {}
    for name in METRIC_NAMES:
        included = [s for s in per_subject if not math.isnan(per_subject[s][name])]
        metrics[name] = macro_mean(per_subject[s][name] for s in included)
        bounds[name] = macro_mean(bounds_per_subject[s][name] for s in included) if included else 0.0
    return ScopeEvaluation(metrics, bounds, per_subject, counts, notes)


def _reverse(key: str) -> tuple[int, ...]:
    """A tie-break that prefers the smaller key when ranks are equal (heap keeps the larger rank)."""
    return tuple(-ord(ch) for ch in key) + (1,)


def _display_images(images: torch.Tensor, resolution: int) -> np.ndarray:
    """``(B, 3, S, S)`` float [0, 1] → ``(B, R, R, 3)`` uint8 for display."""
    x = images.detach().float()
    if tuple(x.shape[-2:]) != (resolution, resolution):
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def _undefined_notes(subject: str, values: dict[str, float], counts: tuple[int, int], n_anom_px: int, n_px: int,
                     without_gt: tuple[int, int] = (0, 0), without_maps: int = 0):
    """Why a subject's metric is NaN, and which images pixel metrics left out (``without_gt``: anomalous and
    normal images without pixel ground truth; ``without_maps``: images whose model gave no map)."""
    n, n_anomalous = counts
    notes = []
    image_nan = [METRIC_LABELS[m] for m in IMAGE_METRICS if math.isnan(values[m])]
    if image_nan:
        why = "no anomalous test image" if n_anomalous == 0 else "no normal test image"
        notes.append(f"subject {subject!r}: {', '.join(image_nan)} undefined ({why}); excluded from the macro mean")
    pixel_nan = [METRIC_LABELS[m] for m in PIXEL_METRICS if math.isnan(values[m])]
    missing = without_gt[0] + without_gt[1]
    if pixel_nan:
        if without_maps and n_px == 0:
            word, why = "unavailable", "the model gives no maps"
        elif missing and n_anom_px == 0:
            word, why = "unavailable", f"no pixel ground truth: {without_gt[0]} anomalous image(s) without a mask"
        else:
            word, why = "undefined", "no anomalous pixel" if n_anom_px == 0 else "no normal pixel"
        notes.append(f"subject {subject!r}: {', '.join(pixel_nan)} {word} ({why}); excluded from the macro mean")
    elif missing:
        notes.append(f"subject {subject!r}: pixel metrics over the images with pixel ground truth only "
                     f"({without_gt[0]} anomalous and {without_gt[1]} normal image(s) without a mask left out)")
    return notes


__all__ = ["ALL", "EXAMPLE_CATEGORIES", "SEEN", "UNSEEN", "ContextCell", "ContextInfo", "Evaluator", "ExampleSet",
           "SampleScores", "ScopeEvaluation", "SeedEvaluation", "role_of"]
