"""Metrics against independent references: scikit-learn for ROC/AP/F1, a brute-force AUPRO written here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from caadbench.errors import ModelError
from caadbench.eval.metrics import (
    PixelMetricAccumulator,
    auroc,
    context_auroc,
    image_metrics,
    macro_mean,
    region_sizes,
    roc_curve,
)


# ------------------------------------------------------------------------------------------- references
def sk_f1max(labels, scores) -> float:
    precision, recall, _ = precision_recall_curve(labels, scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * precision * recall / (precision + recall)
    return float(np.nanmax(f1))


def brute_force_aupro(maps: np.ndarray, gts: np.ndarray, limit: float = 0.3, structure=np.ones((3, 3))) -> float:
    """Straightforward MVTec AUPRO: every distinct score a threshold, regions by scipy.ndimage.label."""
    regions = []
    for i, gt in enumerate(gts):
        labelled, n = ndimage.label(gt, structure=structure)
        regions += [(i, labelled == k) for k in range(1, n + 1)]
    normal = ~gts
    fprs, pros = [0.0], [0.0]
    for t in np.unique(maps)[::-1]:
        predicted = maps >= t
        fprs.append((predicted & normal).sum() / normal.sum())
        pros.append(np.mean([predicted[i][region].mean() for i, region in regions]))
    fprs.append(1.0)
    pros.append(1.0)
    area = 0.0
    for k in range(1, len(fprs)):
        x0, x1, y0, y1 = fprs[k - 1], fprs[k], pros[k - 1], pros[k]
        if x0 >= limit:
            break
        if x1 > limit:
            y1 = y0 + (y1 - y0) * (limit - x0) / (x1 - x0)
            x1 = limit
        area += (x1 - x0) * (y0 + y1) / 2
    return area / limit


def blobs(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Ground truth with several regions per image, including diagonal-only contacts (8- vs 4-connectivity)."""
    gts = np.zeros((n, size, size), dtype=bool)
    for i in range(n):
        if i % 3 == 2:
            continue  # normal image
        for _ in range(rng.integers(1, 4)):
            y, x = rng.integers(0, size - 4, 2)
            h, w = rng.integers(1, 5, 2)
            gts[i, y:y + h, x:x + w] = True
        gts[i, 1, 1] = gts[i, 2, 2] = True  # two pixels touching only diagonally: one region under 8-connectivity
        gts[i, 1, 2] = gts[i, 2, 1] = False
    return gts


def noisy_maps(rng, gts, separation=1.0, quantize=None) -> np.ndarray:
    maps = rng.normal(size=gts.shape) + separation * gts
    if quantize:
        maps = np.round(maps * quantize) / quantize
    return maps.astype(np.float32)


# ----------------------------------------------------------------------------------------- image level
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ties", [False, True])
def test_image_metrics_match_sklearn(seed, ties):
    rng = np.random.default_rng(seed)
    labels = rng.random(300) < 0.35
    scores = rng.normal(size=300) + 0.7 * labels
    if ties:
        scores = np.round(scores * 2) / 2  # a handful of distinct values: heavy ties across labels
    got = image_metrics(scores, labels)
    assert got["i_auroc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert got["i_ap"] == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    assert got["i_f1max"] == pytest.approx(sk_f1max(labels, scores), abs=1e-12)
    assert auroc(scores, labels) == got["i_auroc"]


def test_image_metrics_undefined_without_both_labels():
    scores = np.array([0.1, 0.5, 0.9])
    none_anomalous = image_metrics(scores, [0, 0, 0])
    assert all(math.isnan(v) for v in none_anomalous.values())
    no_normal = image_metrics(scores, [1, 1, 1])
    assert math.isnan(no_normal["i_auroc"]) and no_normal["i_ap"] == 1.0
    assert all(math.isnan(v) for v in image_metrics([], []).values())


def test_image_metrics_refuse_non_finite_scores():
    with pytest.raises(ModelError, match="NaN or infinite"):
        image_metrics([0.1, float("nan")], [0, 1])


def test_roc_curve_matches_auroc_and_endpoints():
    rng = np.random.default_rng(3)
    labels = rng.random(80) < 0.5
    scores = rng.normal(size=80) + labels
    fpr, tpr = roc_curve(scores, labels)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc_score(labels, scores))
    with pytest.raises(ValueError):
        roc_curve([0.1, 0.2], [0, 0])


def test_context_auroc_uses_the_other_label_of_the_subject():
    # contexts: a (normal), b (normal), c (anomalous); context b is scored like the anomalies
    contexts = np.array(["a", "a", "b", "b", "c", "c"])
    labels = np.array([0, 0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.8, 0.9, 0.6, 0.7])
    assert context_auroc(scores, labels, contexts == "a") == 1.0  # a vs c only
    assert context_auroc(scores, labels, contexts == "b") == 0.0  # b vs c: inverted
    assert context_auroc(scores, labels, contexts == "c") == 0.5  # c vs a and b
    mixed = np.array([True, False, False, False, True, False])
    assert context_auroc(scores, labels, mixed) == 1.0  # both labels: the cell alone
    assert math.isnan(context_auroc(scores[:4], labels[:4], contexts[:4] == "a"))


def test_macro_mean_skips_nan():
    assert macro_mean([0.5, math.nan, 1.0]) == 0.75
    assert math.isnan(macro_mean([math.nan]))


# ----------------------------------------------------------------------------------------- pixel level
def pixel_values(maps, gts, **kwargs):
    acc = PixelMetricAccumulator(**kwargs)
    acc.update(maps, gts)
    return acc, acc.compute()["all"]


@pytest.mark.parametrize("seed,quantize", [(0, None), (1, None), (2, 4)])
def test_exact_pixel_metrics_match_references(seed, quantize):
    rng = np.random.default_rng(seed)
    gts = blobs(rng, 6, 16)
    maps = noisy_maps(rng, gts, quantize=quantize)
    acc, got = pixel_values(maps, gts)
    assert got.exact and got.bound == {"p_auroc": 0.0, "p_f1max": 0.0, "aupro": 0.0}
    flat_gt, flat_maps = gts.ravel(), maps.ravel()
    assert got.values["p_auroc"] == pytest.approx(roc_auc_score(flat_gt, flat_maps), abs=1e-12)
    assert got.values["p_f1max"] == pytest.approx(sk_f1max(flat_gt, flat_maps), abs=1e-12)
    assert got.values["aupro"] == pytest.approx(brute_force_aupro(maps, gts), abs=1e-12)
    # the test discriminates connectivity: 4-connectivity gives another AUPRO on these masks
    four = brute_force_aupro(maps, gts, structure=ndimage.generate_binary_structure(2, 1))
    assert abs(four - got.values["aupro"]) > 1e-4


def test_region_sizes_use_8_connectivity():
    gt = np.zeros((5, 5), dtype=bool)
    gt[0, 0] = gt[1, 1] = True  # diagonal neighbours
    gt[3:5, 3:5] = True
    sizes, n = region_sizes(gt)
    assert n == 2
    assert sizes[0, 0] == sizes[1, 1] == 2 and sizes[4, 4] == 4 and sizes[2, 2] == 0


def test_known_answers():
    gts = np.zeros((4, 32, 32), dtype=bool)
    gts[0, 4:12, 4:12] = True
    gts[1, 20:30, 2:9] = True
    gts[1, 2:5, 20:30] = True
    rng = np.random.default_rng(0)
    perfect = (gts + 0.01 * rng.random(gts.shape)).astype(np.float32)
    _, got = pixel_values(perfect, gts)
    assert got.values == pytest.approx({"p_auroc": 1.0, "p_f1max": 1.0, "aupro": 1.0}, abs=1e-12)
    _, inverted = pixel_values(-perfect, gts)
    assert inverted.values["p_auroc"] == 0.0 and inverted.values["aupro"] == pytest.approx(0.0, abs=1e-12)
    _, constant = pixel_values(np.zeros(gts.shape, np.float32), gts)
    assert constant.values["p_auroc"] == 0.5
    assert constant.values["aupro"] == pytest.approx(0.15)  # the diagonal (0,0)-(1,1) integrated to 0.3, over 0.3


def test_pixel_metrics_undefined_without_anomalous_pixels():
    acc = PixelMetricAccumulator()
    acc.update(np.random.default_rng(0).random((2, 8, 8)), np.zeros((2, 8, 8), bool), ["cow", "cow"])
    got = acc.compute()["cow"]
    assert all(math.isnan(v) for v in got.values.values()) and got.n_regions == 0


def test_groups_are_separate():
    rng = np.random.default_rng(5)
    gts = blobs(rng, 6, 16)
    maps = noisy_maps(rng, gts)
    acc = PixelMetricAccumulator()
    acc.update(maps, gts, ["a", "b", "a", "b", "a", "b"])
    both = acc.compute()
    for name, idx in (("a", [0, 2, 4]), ("b", [1, 3, 5])):
        assert both[name].values["aupro"] == pytest.approx(brute_force_aupro(maps[idx], gts[idx]), abs=1e-12)


@pytest.mark.parametrize("case", ["continuous", "ties", "outlier"])
def test_histogram_error_stays_within_its_bound(case):
    rng = np.random.default_rng(11)
    gts = blobs(rng, 24, 48)
    maps = noisy_maps(rng, gts, separation=1.5)
    if case == "ties":
        maps = np.round(maps * 8) / 8
    if case == "outlier":
        maps[0, 0, 0] = 1e4  # stretches the grid: coarse bins, a larger (but honest) bound
    _, exact = pixel_values(maps, gts)
    _, binned = pixel_values(maps, gts, n_bins=1 << 12, exact_pixels=0)
    assert exact.exact and not binned.exact
    for name, value in binned.values.items():
        assert abs(value - exact.values[name]) <= binned.bound[name] + 1e-12, name
    if case == "continuous":
        assert max(binned.bound.values()) < 5e-3
    if case == "ties":
        # 1/8 steps span few float32 values per 4096-bin grid: every value gets its own bin, so it is exact
        assert binned.values == pytest.approx(exact.values, abs=1e-12)


def test_default_histogram_is_close_on_a_large_set():
    rng = np.random.default_rng(2)
    gts = blobs(rng, 40, 64)
    maps = noisy_maps(rng, gts, separation=1.2)
    _, exact = pixel_values(maps, gts)
    _, binned = pixel_values(maps, gts, exact_pixels=0)
    for name, value in binned.values.items():
        assert abs(value - exact.values[name]) <= binned.bound[name] + 1e-12
        assert binned.bound[name] < 2e-4


def test_state_does_not_depend_on_order_or_process():
    """Chunks in any order, or split across two merged accumulators, give the same histogram and metrics."""
    rng = np.random.default_rng(9)
    gts = blobs(rng, 18, 24)
    maps = noisy_maps(rng, gts) * np.linspace(0.2, 3, 18)[:, None, None].astype(np.float32)  # growing range
    groups = ["x", "y"] * 9
    kwargs = {"n_bins": 1 << 10, "exact_pixels": 3000}

    def run(order):
        acc = PixelMetricAccumulator(**kwargs)
        for i in order:
            acc.update(maps[i:i + 1], gts[i:i + 1], [groups[i]])
        return acc

    forward, backward = run(range(18)), run(reversed(range(18)))
    ranks = [run(range(0, 18, 2)), run(range(1, 18, 2))]
    merged = PixelMetricAccumulator(**kwargs)
    for acc in ranks:
        merged.merge(acc)
    assert not forward.exact
    for name in ("x", "y"):
        a, b, c = forward._groups[name], backward._groups[name], merged._groups[name]
        assert (a.e, a.k0) == (b.e, b.k0) == (c.e, c.k0)
        assert np.array_equal(a.pos, b.pos) and np.array_equal(a.pos, c.pos)
        assert np.array_equal(a.neg, b.neg) and np.array_equal(a.neg, c.neg)
        np.testing.assert_allclose(a.pro, c.pro, rtol=1e-12)
        for other in (backward, merged):
            assert other.compute()[name].values == pytest.approx(forward.compute()[name].values, abs=1e-12)


def test_merge_of_exact_accumulators_stays_exact():
    rng = np.random.default_rng(4)
    gts = blobs(rng, 6, 16)
    maps = noisy_maps(rng, gts)
    one = PixelMetricAccumulator()
    one.update(maps, gts)
    a, b = PixelMetricAccumulator(), PixelMetricAccumulator()
    a.update(maps[:3], gts[:3])
    b.update(maps[3:], gts[3:])
    a.merge(b)
    assert a.exact and a.compute()["all"].values == one.compute()["all"].values


def test_memory_is_bounded_after_the_switch():
    acc = PixelMetricAccumulator(n_bins=1 << 10, exact_pixels=10_000)
    rng = np.random.default_rng(0)
    for _ in range(5):
        gts = blobs(rng, 4, 64)
        acc.update(noisy_maps(rng, gts), gts)
    group = acc._groups["all"]
    assert not acc.exact and group.raw_scores == [] and group.pos.shape == (1 << 10,)
    assert group.n_pixels == 5 * 4 * 64 * 64


def test_accepts_torch_half_maps_and_refuses_nan():
    maps = torch.rand(2, 8, 8, dtype=torch.float16)
    gt = torch.zeros(2, 8, 8, dtype=torch.bool)
    gt[0, 2:4, 2:4] = True
    acc = PixelMetricAccumulator()
    acc.update(maps, gt)
    assert not math.isnan(acc.compute()["all"].values["p_auroc"])
    maps[1, 0, 0] = float("nan")
    with pytest.raises(ModelError, match="anomaly maps"):
        acc.update(maps, gt)
    with pytest.raises(ValueError, match="must both be"):
        acc.update(torch.rand(2, 8, 8), torch.zeros(2, 4, 4, dtype=torch.bool))
