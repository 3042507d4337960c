"""Per-image pixel statistics: what the bootstrap needs to resample the pixel metrics over images.

P-AUROC, P-F1max and AUPRO pool the pixels of a subject's images, so a resample of images is a weighted sum of
per-image counts. Each image keeps, on its own dyadic grid of :data:`IMAGE_BINS` bins (the grid rule of
:func:`~caadbench.eval.metrics.dyadic_exponent`: width ``2^e``, aligned to multiples of the width, the smallest
``e`` whose grid spans the image's scores), the number of anomalous and of normal pixels per bin and the AUPRO
overlap mass (Σ 1/|region| over its anomalous pixels) per bin, plus its number of ground-truth regions.
Memory: ``12 · IMAGE_BINS + 40`` bytes per image (6 KiB), whatever the image size.

:func:`common_grid` moves a subject's images onto one grid of the same number of bins spanning all their scores:
grid exponents only grow with the range, so every image bin falls into exactly one common bin (bin pairs merge
exactly). Scores inside one common bin are treated as tied, with the error bounds of
:func:`~caadbench.eval.metrics.pixel_curve_metrics` (``bounds=True``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from caadbench.eval.metrics import dyadic_exponent, region_sizes

IMAGE_BINS = 512
"""Bins of each image's histogram and of a subject's common grid."""


@dataclass
class ImagePixelHistogram:
    """One image's pixels on the dyadic grid ``[k0·2^e, (k0 + IMAGE_BINS)·2^e)``.

    Attributes:
        e, k0: grid exponent and first bin index.
        lo, hi: smallest and largest pixel score of the image.
        n_regions: 8-connected ground-truth regions.
        pos, neg: ``(IMAGE_BINS,)`` int32 anomalous / normal pixels per bin.
        pro: ``(IMAGE_BINS,)`` float32 Σ 1/|region| of the anomalous pixels per bin.
    """

    e: int
    k0: int
    lo: float
    hi: float
    n_regions: int
    pos: np.ndarray
    neg: np.ndarray
    pro: np.ndarray


def image_histogram(scores: np.ndarray, gt: np.ndarray, n_bins: int = IMAGE_BINS) -> ImagePixelHistogram:
    """The histogram of one image.

    Args:
        scores: ``(H, W)`` float anomaly map at the evaluation resolution.
        gt: ``(H, W)`` bool pixel ground truth.
    """
    sizes, n_regions = region_sizes(gt)
    s = np.asarray(scores, dtype=np.float32).ravel().astype(np.float64)
    sizes = sizes.ravel()
    lo, hi = float(s.min()), float(s.max())
    e = dyadic_exponent(lo, hi, n_bins)
    k0 = math.floor(math.ldexp(lo, -e))
    k = np.floor(np.ldexp(s, -e)).astype(np.int64) - k0
    anomalous = sizes > 0
    return ImagePixelHistogram(
        e=e, k0=k0, lo=lo, hi=hi, n_regions=int(n_regions),
        pos=np.bincount(k[anomalous], minlength=n_bins).astype(np.int32),
        neg=np.bincount(k[~anomalous], minlength=n_bins).astype(np.int32),
        pro=np.bincount(k[anomalous], weights=1.0 / sizes[anomalous], minlength=n_bins).astype(np.float32),
    )


@dataclass
class SubjectHistograms:
    """A subject's images on one common grid (levels in increasing score order).

    Attributes:
        pos, neg, pro: ``(n_images, n_bins)`` float64 per-image counts and overlap mass.
        n_regions: ``(n_images,)`` float64 ground-truth regions per image.
    """

    pos: np.ndarray
    neg: np.ndarray
    pro: np.ndarray
    n_regions: np.ndarray


def common_grid(images: Sequence[ImagePixelHistogram], n_bins: int = IMAGE_BINS) -> SubjectHistograms:
    """Rebin images onto the grid of ``n_bins`` bins spanning all their scores.

    Raises:
        ValueError: no image, or images binned with another number of bins.
    """
    if not images or any(len(h.pos) != n_bins for h in images):
        raise ValueError(f"common_grid needs images binned with {n_bins} bins")
    e = dyadic_exponent(min(h.lo for h in images), max(h.hi for h in images), n_bins)
    k0 = math.floor(math.ldexp(min(h.lo for h in images), -e))
    shifts = np.array([e - h.e for h in images], dtype=np.int64)
    if np.any(shifts < 0):  # pragma: no cover - dyadic_exponent never decreases as the range grows
        raise AssertionError("an image grid is finer than the common grid")
    starts = np.array([h.k0 for h in images], dtype=np.int64)
    index = ((starts[:, None] + np.arange(n_bins)) >> shifts[:, None]) - k0
    used = np.stack([(h.pos > 0) | (h.neg > 0) for h in images])
    if np.any(used & ((index < 0) | (index >= n_bins))):  # pragma: no cover - guaranteed by dyadic_exponent
        raise AssertionError("the common grid does not cover an image's scores")
    flat = (np.arange(len(images))[:, None] * n_bins + np.clip(index, 0, n_bins - 1)).ravel()

    def rebin(values: np.ndarray) -> np.ndarray:
        return np.bincount(flat, weights=values.ravel(), minlength=len(images) * n_bins).reshape(len(images), n_bins)

    return SubjectHistograms(
        pos=rebin(np.stack([h.pos for h in images]).astype(np.float64)),
        neg=rebin(np.stack([h.neg for h in images]).astype(np.float64)),
        pro=rebin(np.stack([h.pro for h in images]).astype(np.float64)),
        n_regions=np.array([h.n_regions for h in images], dtype=np.float64),
    )


__all__ = ["IMAGE_BINS", "ImagePixelHistogram", "SubjectHistograms", "common_grid", "image_histogram"]
