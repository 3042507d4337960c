"""Pixel-metric memory and time: the streaming accumulator against keeping every pixel, in one run.

Both compute P-AUROC, P-F1max and AUPRO per subject over ``--images`` maps at the evaluation resolution
(256²). The reference keeps every pixel and computes exactly (``exact_pixels`` = ∞); the streaming accumulator
uses its defaults (exact up to 2²² pixels, then 2¹⁷-bin histograms per subject). Printed: peak traced memory
(numpy allocations, ``tracemalloc``), wall time, their ratios, and the histogram's actual error against the
exact values beside the bound it reports.

    OMP_NUM_THREADS=1 python benchmarks/metrics_memory.py --images 400
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from caadbench.data.batch import EVAL_RESOLUTION
from caadbench.eval.metrics import PixelMetricAccumulator


def batches(n_images: int, batch: int, subjects: int, seed: int = 0):
    """Maps with disc-shaped ground truth on two images in three; scores overlap (AUROC well below 1)."""
    rng = np.random.default_rng(seed)
    R = EVAL_RESOLUTION
    yy, xx = np.mgrid[0:R, 0:R]
    for start in range(0, n_images, batch):
        b = min(batch, n_images - start)
        gt = np.zeros((b, R, R), dtype=bool)
        for i in range(b):
            if (start + i) % 3:
                cx, cy, r = rng.uniform(60, 196, 2).tolist() + [rng.uniform(10, 40)]
                gt[i] = (xx - cx) ** 2 + (yy - cy) ** 2 < r**2
        maps = rng.normal(size=(b, R, R)).astype(np.float32) + 1.5 * gt
        yield maps, gt, [f"s{(start + i) % subjects}" for i in range(b)]


def measure(n_images: int, batch: int, subjects: int, **kwargs):
    acc = PixelMetricAccumulator(**kwargs)
    tracemalloc.start()
    t0 = time.perf_counter()
    for maps, gt, groups in batches(n_images, batch, subjects):
        acc.update(maps, gt, groups)
    out = acc.compute()
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, peak, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--subjects", type=int, default=8)
    args = parser.parse_args()
    pixels = args.images * EVAL_RESOLUTION**2
    print(f"{args.images} maps of {EVAL_RESOLUTION}² = {pixels / 1e6:.1f} M pixels, {args.subjects} subjects")
    exact, exact_peak, exact_s = measure(args.images, args.batch, args.subjects, exact_pixels=1 << 62)
    stream, stream_peak, stream_s = measure(args.images, args.batch, args.subjects)
    print(f"keep every pixel (exact):  peak {exact_peak / 2**20:8.1f} MiB  {exact_s:6.2f} s")
    print(f"streaming accumulator:     peak {stream_peak / 2**20:8.1f} MiB  {stream_s:6.2f} s")
    print(f"ratio exact/streaming:     memory {exact_peak / stream_peak:.1f}x  time {exact_s / stream_s:.2f}x")
    worst = {}
    for subject in exact:
        for name, value in stream[subject].values.items():
            err, bound = abs(value - exact[subject].values[name]), stream[subject].bound[name]
            assert err <= bound + 1e-12, (subject, name, err, bound)
            w = worst.get(name, (0.0, 0.0))
            worst[name] = (max(w[0], err), max(w[1], bound))
    for name, (err, bound) in worst.items():
        print(f"{name:8s} worst |streamed − exact| over subjects {err:.2e}  (reported bound {bound:.2e})")


if __name__ == "__main__":
    main()
