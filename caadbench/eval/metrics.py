"""The one metrics module: image- and pixel-level anomaly-detection metrics.

Image level (exact, from per-image scores): I-AUROC, I-AP, I-F1max.
Pixel level (at :data:`~caadbench.data.batch.EVAL_RESOLUTION`, streamed): P-AUROC, P-F1max, AUPRO.

Every metric is computed from one *curve*: for each distinct threshold, from the highest to the lowest, the
cumulative number of positives (``tp``) and negatives (``fp``) scored at or above it and, for AUPRO, the
cumulative per-region overlap mass. Ties are merged into one threshold, as scikit-learn and MVTec's reference
code do. Counts may be weighted and curves batched on leading axes (:func:`ranked_counts`,
:func:`image_curve_metrics`, :func:`pixel_curve_metrics`): the bootstrap (:mod:`caadbench.eval.bootstrap`)
computes every resample's metric with the same code as the run's value.

* AUROC: trapezoidal area under (FPR, TPR) from (0, 0) (equals the Mann–Whitney statistic, ties count ½).
* AP: ``Σ (R_k − R_{k−1}) · P_k`` over thresholds (scikit-learn's step-wise definition, no interpolation).
* F1max: ``max_k 2·P_k·R_k / (P_k + R_k)``.
* AUPRO (MVTec AD): ground-truth regions are the 8-connected components of each image's mask. PRO(t) is the mean
  over all regions of all images of the fraction of the region scored ≥ t; FPR(t) is the fraction of all normal
  pixels scored ≥ t. The curve runs from (0, 0) to (1, 1); it is integrated over FPR ∈ [0, 0.3] (trapezoids,
  linear interpolation at 0.3) and divided by 0.3.

Pixel memory is bounded by :class:`PixelMetricAccumulator`: it keeps the raw pixels while their number is below
``exact_pixels`` (exact metrics), then switches to per-group histograms over a dyadic grid of at most
``n_bins`` bins spanning the group's score range (at least ``n_bins / 2`` levels across it). Scores inside one bin
are treated as tied; :class:`PixelMetrics` reports a data-dependent bound on the resulting error of each metric.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

METRIC_NAMES: tuple[str, ...] = ("i_auroc", "i_ap", "i_f1max", "p_auroc", "p_f1max", "aupro")
"""The six metrics of every result, in display order."""

IMAGE_METRICS: tuple[str, ...] = METRIC_NAMES[:3]
PIXEL_METRICS: tuple[str, ...] = METRIC_NAMES[3:]

METRIC_LABELS: dict[str, str] = {
    "i_auroc": "I-AUROC",
    "i_ap": "I-AP",
    "i_f1max": "I-F1max",
    "p_auroc": "P-AUROC",
    "p_f1max": "P-F1max",
    "aupro": "AUPRO",
}

AUPRO_FPR_LIMIT = 0.3
"""Upper FPR limit of the AUPRO integral (MVTec AD)."""

DEFAULT_BINS = 1 << 17
"""Histogram bins per group: the dyadic grid spans the group's scores with at least 2¹⁶ of them."""

DEFAULT_EXACT_PIXELS = 1 << 22
"""Pixels kept raw (8 bytes each, 32 MiB) before the accumulator switches to histograms."""

_CONNECTIVITY = np.ones((3, 3), dtype=bool)
"""8-connectivity, as MVTec's reference code (``scipy.ndimage.label`` with a full 3×3 structure)."""

_SUBFLOAT_BITS = 30
"""A bin is never narrower than 2^-30 of the largest |score|: finer than float32 resolution, so a group whose
scores span few float32 values gets one bin per value (exact)."""


# --------------------------------------------------------------------------------------------------- curves
# Every curve function works on the last axis and accepts leading batch axes (one curve per bootstrap resample).
def _cumulate(pos: np.ndarray, neg: np.ndarray, pro: np.ndarray | None = None):
    """Cumulative counts from the highest level down.

    Args:
        pos, neg: ``(..., L)`` positives / negatives per score level, levels in increasing score order.
        pro: ``(..., L)`` per-region overlap mass per level (Σ 1/|region| over its anomalous pixels), or ``None``.

    Returns:
        ``(tp, fp, pro_cum)``: ``(..., L)`` float64 arrays, index 0 = highest threshold.
    """
    def down(x):
        levels_first = np.ascontiguousarray(np.swapaxes(np.asarray(x, dtype=np.float64), 0, -1)[::-1])
        return np.swapaxes(_scan_in_place(levels_first), 0, -1)

    return down(pos), down(neg), None if pro is None else down(pro)


def _totals(tp: np.ndarray, fp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(P, N)``: ``(...)`` totals, the last cumulative values (0 for an empty curve)."""
    if tp.shape[-1] == 0:
        return np.zeros(tp.shape[:-1]), np.zeros(fp.shape[:-1])
    return tp[..., -1], fp[..., -1]


def _from_origin(x: np.ndarray) -> np.ndarray:
    """Prepend a 0 on the last axis (the curve's start)."""
    return np.concatenate((np.zeros(x.shape[:-1] + (1,)), x), axis=-1)


def _scalar(value: np.ndarray) -> float | np.ndarray:
    return float(value) if np.ndim(value) == 0 else value


def _steps(x: np.ndarray) -> np.ndarray:
    """``(..., L)`` increments of a cumulative curve that starts at 0."""
    steps = np.empty_like(x)
    steps[..., :1] = x[..., :1]
    np.subtract(x[..., 1:], x[..., :-1], out=steps[..., 1:])
    return steps


def _auroc(tp: np.ndarray, fp: np.ndarray) -> float | np.ndarray:
    """Trapezoids under (FPR, TPR) from (0, 0): ``Σ ΔFP · (TP_k + TP_{k−1}) / (2 P N)``."""
    n_pos, n_neg = _totals(tp, fp)
    heights = _steps(tp)
    np.subtract(2.0 * tp, heights, out=heights)
    with np.errstate(divide="ignore", invalid="ignore"):
        area = np.sum(_steps(fp) * heights, axis=-1) / (2.0 * n_pos * n_neg)
    return _scalar(np.where((n_pos > 0) & (n_neg > 0), area, math.nan))


def _average_precision(tp: np.ndarray, fp: np.ndarray) -> float | np.ndarray:
    """``Σ_k (R_k − R_{k−1}) · P_k``."""
    n_pos, _ = _totals(tp, fp)
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).tiny)
    with np.errstate(divide="ignore", invalid="ignore"):
        ap = np.sum(_steps(tp) * precision, axis=-1) / n_pos
    return _scalar(np.where(n_pos > 0, ap, math.nan))


def _f1(tp: np.ndarray, fp: np.ndarray, n_pos) -> np.ndarray:
    return 2.0 * tp / (tp + fp + np.asarray(n_pos)[..., None])


def _f1max(tp: np.ndarray, fp: np.ndarray) -> float | np.ndarray:
    n_pos, _ = _totals(tp, fp)
    if tp.shape[-1] == 0:
        return _scalar(np.full(tp.shape[:-1], math.nan))
    with np.errstate(divide="ignore", invalid="ignore"):
        best = np.max(_f1(tp, fp, n_pos), axis=-1)
    return _scalar(np.where(n_pos > 0, best, math.nan))


def _pro_curve(fp: np.ndarray, pro_cum: np.ndarray, n_regions) -> tuple[np.ndarray, np.ndarray]:
    """``(fpr, pro)``: ``(..., L + 2)`` curves from (0, 0) to (1, 1) (NaN where undefined)."""
    _, n_neg = _totals(fp, fp)
    n_regions = np.asarray(n_regions, dtype=np.float64)
    ones = np.ones(fp.shape[:-1] + (1,))
    with np.errstate(divide="ignore", invalid="ignore"):
        fpr = np.concatenate((_from_origin(fp / n_neg[..., None]), ones), axis=-1)
        pro = np.concatenate((_from_origin(np.clip(pro_cum / n_regions[..., None], 0.0, 1.0)), ones), axis=-1)
    return fpr, pro


def _area_to(x: np.ndarray, y: np.ndarray, x_max: float) -> np.ndarray:
    """Trapezoidal area under ``y(x)`` on ``[0, x_max]``: ``(..., K)`` curves, ``x`` non-decreasing from 0 past
    ``x_max``; the segment that crosses ``x_max`` is cut there by linear interpolation."""
    x0, x1, y0, y1 = x[..., :-1], x[..., 1:], y[..., :-1], y[..., 1:]
    right = np.minimum(x1, x_max)
    with np.errstate(divide="ignore", invalid="ignore"):
        y_right = np.where(x1 > x0, y0 + (y1 - y0) * (right - x0) / (x1 - x0), y1)
    return np.sum(np.maximum(right - x0, 0.0) * (y0 + y_right), axis=-1) / 2.0


def _aupro(fp: np.ndarray, pro_cum: np.ndarray, n_regions, limit: float = AUPRO_FPR_LIMIT) -> float | np.ndarray:
    _, n_neg = _totals(fp, fp)
    area = _area_to(*_pro_curve(fp, pro_cum, n_regions), limit) / limit
    return _scalar(np.where((np.asarray(n_regions) > 0) & (n_neg > 0), area, math.nan))


def _scan_in_place(x: np.ndarray) -> np.ndarray:
    """Cumulative sum over axis 0 of a float64 array, in place. Row by row when rows are long: numpy's ``cumsum``
    runs one element at a time, a row addition is vectorised."""
    if x.ndim < 2 or x[0].size < 64:
        return np.cumsum(x, axis=0, out=x)
    for i in range(1, len(x)):
        np.add(x[i - 1], x[i], out=x[i])
    return x


def ranked_counts(scores: np.ndarray, labels: np.ndarray,
                  weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The image-level curve: cumulative (weighted) positives and negatives from the highest score down.

    ``tp[..., i]`` and ``fp[..., i]`` are the weights of the positives and negatives scored at or above the
    ``i``-th threshold. With one row of scores (``(N,)``, any weights) the thresholds are the ``L`` distinct
    scores; with a score row per weight row (leading axes, e.g. one simulated data set each) every position is a
    threshold and a tie group repeats its values at each of its positions (a repeated curve point adds nothing to
    an area, a sum of recall steps or a maximum).

    Args:
        scores: ``(N,)``, or ``(..., N)`` broadcasting against ``weights``.
        labels: ``(N,)`` or like ``scores``, bool (true = positive).
        weights: ``(..., N)`` non-negative weights, e.g. ``(B, N)`` bootstrap resamples; default 1.

    Returns:
        ``(tp, fp)``: float64 ``(..., L)`` (one row of scores) or ``(..., N)``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.broadcast_to(np.asarray(labels, dtype=bool), scores.shape)
    weights = np.ones(scores.shape) if weights is None else np.asarray(weights, dtype=np.float64)
    order = np.argsort(-scores, axis=-1, kind="stable")
    ranked = np.take_along_axis(scores, order, axis=-1)
    positive = np.take_along_axis(labels, order, axis=-1)
    last = np.ones(ranked.shape, dtype=bool)
    last[..., :-1] = ranked[..., 1:] != ranked[..., :-1]
    if scores.ndim == 1:  # thresholds first in memory: row gathers and row-by-row sums are the fast ones
        w = np.swapaxes(weights, 0, -1)[order]  # a new array
        tp = _scan_in_place(w * positive.reshape((-1,) + (1,) * (w.ndim - 1)))
        fp = _scan_in_place(w)
        fp -= tp
        if not last.all():
            tp, fp = tp[last], fp[last]
        return np.swapaxes(tp, 0, -1), np.swapaxes(fp, 0, -1)
    shape = np.broadcast_shapes(scores.shape, weights.shape)
    w = np.take_along_axis(np.broadcast_to(weights, shape), np.broadcast_to(order, shape), axis=-1)
    n = scores.shape[-1]
    end = np.broadcast_to(np.flip(np.minimum.accumulate(np.flip(np.where(last, np.arange(n), n - 1), -1), -1), -1),
                          shape)
    tp = np.cumsum(w * np.broadcast_to(positive, shape), axis=-1)
    return np.take_along_axis(tp, end, axis=-1), np.take_along_axis(np.cumsum(w, axis=-1) - tp, end, axis=-1)


def image_curve_metrics(tp: np.ndarray, fp: np.ndarray, names: Sequence[str] = IMAGE_METRICS
                        ) -> dict[str, float | np.ndarray]:
    """``{"i_auroc", "i_ap", "i_f1max"}`` (or those of ``names``) of ``(..., L)`` curves from :func:`ranked_counts`;
    NaN where undefined."""
    compute = {"i_auroc": _auroc, "i_ap": _average_precision, "i_f1max": _f1max}
    return {name: compute[name](tp, fp) for name in names}


def pixel_curve_metrics(pos: np.ndarray, neg: np.ndarray, pro: np.ndarray, n_regions, *, bounds: bool = False):
    """``{"p_auroc", "p_f1max", "aupro"}`` from ``(..., L)`` counts per level in increasing score order (distinct
    scores or histogram bins) and ``(...)`` region counts; NaN where undefined.

    With ``bounds``, returns ``(values, bounds)``: ``bounds`` holds, per metric and curve, the largest error of
    treating each level as a histogram bin whose scores are tied (:func:`_histogram_bounds`).
    """
    tp, fp, pro_cum = _cumulate(pos, neg, pro)
    values = {"p_auroc": _auroc(tp, fp), "p_f1max": _f1max(tp, fp), "aupro": _aupro(fp, pro_cum, n_regions)}
    return (values, _histogram_bounds(pos, neg, tp, fp, pro_cum, n_regions, values)) if bounds else values


def _check_scores(scores: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(scores)):
        from caadbench.errors import ModelError

        raise ModelError(what, "contain NaN or infinite values; metrics need finite scores")


# --------------------------------------------------------------------------------------------- image level
def image_metrics(scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray) -> dict[str, float]:
    """Exact image-level metrics of one set of images.

    Args:
        scores: ``(N,)`` anomaly scores, higher is more anomalous.
        labels: ``(N,)`` 0 normal / 1 anomalous.

    Returns:
        ``{"i_auroc", "i_ap", "i_f1max"}``; I-AUROC is NaN without both labels, I-AP and I-F1max without an
        anomalous image.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    if s.shape != y.shape:
        raise ValueError(f"scores {s.shape} and labels {y.shape} differ in length")
    _check_scores(s, "image scores")
    if len(s) == 0:
        return {name: math.nan for name in IMAGE_METRICS}
    return image_curve_metrics(*ranked_counts(s, y))


def auroc(scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """Exact AUROC (ties count ½); NaN unless both labels are present."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    if len(s) == 0:
        return math.nan
    return _auroc(*ranked_counts(s, y))


def roc_curve(scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ROC curve ``(fpr, tpr)``, from (0, 0) to (1, 1), one point per distinct score.

    Raises:
        ValueError: the labels are not both present.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    tp, fp = ranked_counts(s, y)
    if len(tp) == 0 or tp[-1] == 0 or fp[-1] == 0:
        raise ValueError("a ROC curve needs both normal and anomalous images")
    return np.concatenate(([0.0], fp / fp[-1])), np.concatenate(([0.0], tp / tp[-1]))


def context_auroc(scores: np.ndarray, labels: np.ndarray, in_cell: np.ndarray) -> float:
    """AUROC of one (subject, context) cell against the subject's images of the other label.

    A cell of a contextual benchmark usually holds one label (the label is a property of the subject–context
    pair). Its AUROC is then computed on the cell's images together with the subject's images of the opposite
    label from every context: how well this context is separated from what it must be told apart from. A cell
    holding both labels is scored on its own images.

    Args:
        scores, labels: ``(N,)`` the subject's images.
        in_cell: ``(N,)`` bool, the images of the cell.

    Returns:
        The AUROC, or NaN when the subject has no image of the opposite label.
    """
    labels = np.asarray(labels).astype(bool)
    in_cell = np.asarray(in_cell, dtype=bool)
    cell_labels = labels[in_cell]
    if len(cell_labels) == 0:
        return math.nan
    if cell_labels.all() or not cell_labels.any():
        keep = in_cell | (labels != cell_labels[0])
    else:
        keep = in_cell
    return auroc(np.asarray(scores)[keep], labels[keep])


def macro_mean(values: Iterable[float]) -> float:
    """Mean of the finite values (NaN entries excluded); NaN when none is finite."""
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


# --------------------------------------------------------------------------------------------- pixel level
@dataclass
class PixelMetrics:
    """Pixel metrics of one group and the bound on their histogram error.

    Attributes:
        values: ``{"p_auroc", "p_f1max", "aupro"}``; NaN when the group has no anomalous (or no normal) pixel.
        bound: per metric, ``|value − exact value| ≤ bound`` (0 when computed exactly or undefined).
        n_pixels, n_anomalous, n_regions: what was counted.
        exact: whether the values were computed from the raw pixels.
    """

    values: dict[str, float]
    bound: dict[str, float]
    n_pixels: int
    n_anomalous: int
    n_regions: int
    exact: bool


def region_sizes(gt: np.ndarray) -> tuple[np.ndarray, int]:
    """Per pixel, the size of its 8-connected ground-truth region (0 for normal pixels).

    Args:
        gt: ``(H, W)`` bool ground truth of one image.

    Returns:
        ``((H, W) int32 sizes, number of regions)``.
    """
    labelled, n = ndimage.label(gt, structure=_CONNECTIVITY)
    if n == 0:
        return np.zeros(gt.shape, dtype=np.int32), 0
    counts = np.bincount(labelled.ravel(), minlength=n + 1)
    counts[0] = 0
    return counts[labelled].astype(np.int32), n


def dyadic_exponent(lo: float, hi: float, n_bins: int) -> int:
    """The smallest bin-width exponent ``e`` (width ``2^e``) whose grid spans ``[lo, hi]`` in ``n_bins`` bins.

    It depends only on ``(lo, hi)`` and never decreases as the range grows, so the histogram of a set of
    pixels does not depend on the order (or the process) in which they arrived.
    """
    magnitude = max(abs(lo), abs(hi))
    e = (math.frexp(magnitude)[1] if magnitude > 0 else 0) - _SUBFLOAT_BITS
    if hi > lo:
        e = max(e, math.frexp((hi - lo) / n_bins)[1] - 2)
    while math.floor(math.ldexp(hi, -e)) - math.floor(math.ldexp(lo, -e)) >= n_bins:
        e += 1
    return e


@dataclass
class _Group:
    """Pixels of one group: raw while exact, then a histogram on the dyadic grid ``[k0·2^e, (k0+n)·2^e)``."""

    n_regions: int = 0
    n_pixels: int = 0
    n_anomalous: int = 0
    lo: float = math.inf
    hi: float = -math.inf
    raw_scores: list[np.ndarray] = field(default_factory=list)
    raw_sizes: list[np.ndarray] = field(default_factory=list)
    e: int | None = None
    k0: int = 0
    pos: np.ndarray | None = None
    neg: np.ndarray | None = None
    pro: np.ndarray | None = None

    @property
    def binned(self) -> bool:
        return self.e is not None

    def add_raw(self, scores: np.ndarray, sizes: np.ndarray) -> None:
        self.raw_scores.append(scores)
        self.raw_sizes.append(sizes)

    def to_histogram(self, n_bins: int) -> None:
        if self.binned:
            return
        self.e = dyadic_exponent(self.lo, self.hi, n_bins)
        self.k0 = math.floor(math.ldexp(self.lo, -self.e))
        self.pos = np.zeros(n_bins, np.int64)
        self.neg = np.zeros(n_bins, np.int64)
        self.pro = np.zeros(n_bins, np.float64)
        scores, sizes = self.raw_scores, self.raw_sizes
        self.raw_scores, self.raw_sizes = [], []
        for s, z in zip(scores, sizes):
            self.add_binned(s, z, n_bins)

    def fit_grid(self, n_bins: int) -> None:
        """Coarsen (bin pairs merge exactly) and shift the grid until it spans ``[lo, hi]``."""
        e = dyadic_exponent(self.lo, self.hi, n_bins)
        k0 = math.floor(math.ldexp(self.lo, -e))
        if e == self.e and k0 == self.k0:
            return
        shift = e - self.e
        index = ((np.arange(n_bins, dtype=np.int64) + self.k0) >> shift) - k0
        used = (self.pos > 0) | (self.neg > 0) | (self.pro != 0)
        if np.any(used & ((index < 0) | (index >= n_bins))):  # pragma: no cover - guaranteed by dyadic_exponent
            raise AssertionError("histogram grid does not cover its own data")
        index = np.clip(index, 0, n_bins - 1)
        self.pos = np.bincount(index, weights=self.pos, minlength=n_bins).astype(np.int64)
        self.neg = np.bincount(index, weights=self.neg, minlength=n_bins).astype(np.int64)
        self.pro = np.bincount(index, weights=self.pro, minlength=n_bins)
        self.e, self.k0 = e, k0

    def add_binned(self, scores: np.ndarray, sizes: np.ndarray, n_bins: int) -> None:
        self.fit_grid(n_bins)
        k = np.floor(np.ldexp(scores.astype(np.float64), -self.e)).astype(np.int64) - self.k0
        anomalous = sizes > 0
        self.pos += np.bincount(k[anomalous], minlength=n_bins)
        self.neg += np.bincount(k[~anomalous], minlength=n_bins)
        self.pro += np.bincount(k[anomalous], weights=1.0 / sizes[anomalous], minlength=n_bins)

    def levels(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(pos, neg, pro)`` per level in increasing score order: distinct scores (exact) or non-empty bins."""
        if self.binned:
            used = (self.pos > 0) | (self.neg > 0)
            return self.pos[used], self.neg[used], self.pro[used]
        scores = np.concatenate(self.raw_scores) if self.raw_scores else np.zeros(0, np.float32)
        sizes = np.concatenate(self.raw_sizes) if self.raw_sizes else np.zeros(0, np.int32)
        _, inverse = np.unique(scores, return_inverse=True)
        n_levels = int(inverse.max()) + 1 if len(inverse) else 0
        anomalous = sizes > 0
        pos = np.bincount(inverse[anomalous], minlength=n_levels)
        neg = np.bincount(inverse[~anomalous], minlength=n_levels)
        pro = np.bincount(inverse[anomalous], weights=1.0 / sizes[anomalous], minlength=n_levels)
        return pos, neg, pro


class PixelMetricAccumulator:
    """Streaming P-AUROC, P-F1max and AUPRO per group (subject), with bounded memory.

    While fewer than ``exact_pixels`` pixels have been added, they are kept (score and region size, 8 bytes a
    pixel) and the metrics are exact. Beyond that every group switches to a histogram of ``n_bins`` bins of
    width ``2^e``, aligned to multiples of the width, with ``e`` the smallest exponent whose grid spans the
    group's scores (so at least ``n_bins / 2`` bins across them). A wider range later merges bin pairs exactly.
    The state depends only on the set of pixels added, not on their order, so accumulators of several processes
    can be merged (:meth:`merge`) into exactly the single-process state.

    Memory: at most ``8 · exact_pixels`` bytes, then ``24 · n_bins`` bytes per group (3 MiB by default).
    """

    def __init__(self, n_bins: int = DEFAULT_BINS, exact_pixels: int = DEFAULT_EXACT_PIXELS) -> None:
        if n_bins < 2 or n_bins & (n_bins - 1):
            raise ValueError(f"n_bins must be a power of two ≥ 2, got {n_bins}")
        self.n_bins = n_bins
        self.exact_pixels = exact_pixels
        self._groups: dict[str, _Group] = {}
        self._raw_pixels = 0
        self._binned = False

    @property
    def exact(self) -> bool:
        """Whether :meth:`compute` will be exact (the pixels are still kept raw)."""
        return not self._binned

    @property
    def groups(self) -> list[str]:
        return sorted(self._groups)

    def update(self, maps, gt, groups: Sequence[str] | None = None) -> None:
        """Add a batch.

        Args:
            maps: ``(B, H, W)`` float anomaly maps (numpy or torch), higher is more anomalous.
            gt: ``(B, H, W)`` bool pixel ground truth of the same size.
            groups: the group (subject) of each image; ``None`` puts every image in group ``"all"``.

        Raises:
            ValueError: shapes differ or ``groups`` has the wrong length.
            ModelError: a map holds NaN or an infinite value.
        """
        maps = _to_numpy(maps).astype(np.float32, copy=False)
        gt = _to_numpy(gt).astype(bool, copy=False)
        if maps.ndim != 3 or maps.shape != gt.shape:
            raise ValueError(f"maps {maps.shape} and ground truth {gt.shape} must both be (B, H, W)")
        names = ["all"] * len(maps) if groups is None else list(groups)
        if len(names) != len(maps):
            raise ValueError(f"{len(names)} group names for {len(maps)} maps")
        _check_scores(maps, "anomaly maps")
        for name, m, g in zip(names, maps, gt):
            sizes, n_regions = region_sizes(g)
            self._add(name, m.ravel(), sizes.ravel(), n_regions)

    def _add(self, name: str, scores: np.ndarray, sizes: np.ndarray, n_regions: int) -> None:
        group = self._groups.setdefault(name, _Group())
        group.n_regions += n_regions
        group.n_pixels += len(scores)
        group.n_anomalous += int(np.count_nonzero(sizes))
        if len(scores):
            group.lo, group.hi = min(group.lo, float(scores.min())), max(group.hi, float(scores.max()))
        if self._binned:
            group.to_histogram(self.n_bins)
            group.add_binned(scores, sizes, self.n_bins)
            return
        group.add_raw(scores.copy(), sizes.copy())
        self._raw_pixels += len(scores)
        if self._raw_pixels > self.exact_pixels:
            self._to_histograms()

    def _to_histograms(self) -> None:
        for group in self._groups.values():
            group.to_histogram(self.n_bins)
        self._binned, self._raw_pixels = True, 0

    def merge(self, other: PixelMetricAccumulator) -> None:
        """Add everything ``other`` holds (e.g. another rank's accumulator) to this one."""
        if other.n_bins != self.n_bins:
            raise ValueError(f"cannot merge accumulators of {other.n_bins} and {self.n_bins} bins")
        if other._binned:
            self._to_histograms()
        for name, theirs in other._groups.items():
            mine = self._groups.setdefault(name, _Group())
            mine.n_regions += theirs.n_regions
            mine.n_pixels += theirs.n_pixels
            mine.n_anomalous += theirs.n_anomalous
            mine.lo, mine.hi = min(mine.lo, theirs.lo), max(mine.hi, theirs.hi)
            if self._binned:
                if not mine.binned:
                    mine.to_histogram(self.n_bins)
                for s, z in zip(theirs.raw_scores, theirs.raw_sizes):
                    mine.add_binned(s, z, self.n_bins)
                if theirs.binned:
                    mine.fit_grid(self.n_bins)
                    shift = mine.e - theirs.e
                    index = ((np.arange(self.n_bins, dtype=np.int64) + theirs.k0) >> shift) - mine.k0
                    used = (theirs.pos > 0) | (theirs.neg > 0)
                    np.add.at(mine.pos, index[used], theirs.pos[used])
                    np.add.at(mine.neg, index[used], theirs.neg[used])
                    np.add.at(mine.pro, index[used], theirs.pro[used])
            else:
                mine.raw_scores.extend(theirs.raw_scores)
                mine.raw_sizes.extend(theirs.raw_sizes)
                self._raw_pixels += sum(len(s) for s in theirs.raw_scores)
        if not self._binned and self._raw_pixels > self.exact_pixels:
            self._to_histograms()

    def compute(self) -> dict[str, PixelMetrics]:
        """Metrics of every group, sorted by group name."""
        return {name: self._compute_group(self._groups[name]) for name in self.groups}

    def _compute_group(self, group: _Group) -> PixelMetrics:
        pos, neg, pro = group.levels()
        if group.binned:
            values, bound = pixel_curve_metrics(pos, neg, pro, group.n_regions, bounds=True)
        else:
            values, bound = pixel_curve_metrics(pos, neg, pro, group.n_regions), {name: 0.0 for name in PIXEL_METRICS}
        return PixelMetrics(values, bound, group.n_pixels, group.n_anomalous, group.n_regions, not group.binned)


def _histogram_bounds(pos, neg, tp, fp, pro_cum, n_regions, values) -> dict[str, float | np.ndarray]:
    """Worst-case error of treating each bin's scores as tied (see docs/evaluation.md); ``(..., L)`` inputs as in
    :func:`pixel_curve_metrics`, one bound per curve (0 where the value is undefined).

    Inside one bin the exact curve is monotone and stays in the box spanned by the bin's end points; the
    binned curve is the box's diagonal. AUROC: half the box areas, ``½ Σ pos_b·neg_b / (P·N)``. AUPRO: the
    same on the FPR range below 0.3, the whole box height for the bin cut at 0.3. F1max: F1 grows with TP and
    falls with FP, so no threshold inside bin b beats ``2·TP_b / (TP_b + FP_{b−1} + P)``.
    """
    if tp.shape[-1] == 0:
        return {name: _scalar(np.zeros(tp.shape[:-1])) for name in PIXEL_METRICS}
    n_pos, n_neg = _totals(tp, fp)
    with np.errstate(divide="ignore", invalid="ignore"):
        auroc_err = 0.5 * np.sum(np.asarray(pos, np.float64) * neg, axis=-1) / (n_pos * n_neg)
        fp_above = _from_origin(fp[..., :-1])
        f1_err = np.maximum(0.0, np.max(_f1(tp, fp_above, n_pos), axis=-1) - values["p_f1max"])
        fpr = _from_origin(fp / n_neg[..., None])
        pro = _from_origin(np.clip(pro_cum / np.asarray(n_regions, np.float64)[..., None], 0.0, 1.0))
    f0, f1, dr = fpr[..., :-1], fpr[..., 1:], np.diff(pro, axis=-1)
    full = f1 <= AUPRO_FPR_LIMIT
    cut = (f0 < AUPRO_FPR_LIMIT) & ~full
    aupro_err = (0.5 * np.sum(np.where(full, (f1 - f0) * dr, 0.0), axis=-1)
                 + np.sum(np.where(cut, (AUPRO_FPR_LIMIT - f0) * dr, 0.0), axis=-1)) / AUPRO_FPR_LIMIT
    errors = {"p_auroc": auroc_err, "p_f1max": f1_err, "aupro": aupro_err}
    return {name: _scalar(np.where(np.isnan(values[name]), 0.0, errors[name])) for name in PIXEL_METRICS}


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        if x.is_floating_point() and x.element_size() < 4:
            x = x.float()
        return x.numpy()
    return np.asarray(x)


__all__ = [
    "AUPRO_FPR_LIMIT",
    "DEFAULT_BINS",
    "DEFAULT_EXACT_PIXELS",
    "IMAGE_METRICS",
    "METRIC_LABELS",
    "METRIC_NAMES",
    "PIXEL_METRICS",
    "PixelMetricAccumulator",
    "PixelMetrics",
    "auroc",
    "dyadic_exponent",
    "context_auroc",
    "image_curve_metrics",
    "image_metrics",
    "macro_mean",
    "pixel_curve_metrics",
    "ranked_counts",
    "region_sizes",
    "roc_curve",
]
