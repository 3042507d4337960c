"""Coverage of the bootstrap intervals on synthetic scores with a known population AUROC, in one run.

For each design, ``--sets`` data sets are simulated with the tests' generators (``tests/eval/score_sims.py``:
Gaussian cells; at the image level fixed contexts, at the context level contexts drawn from a random-effects
distribution), each gets its 95 % intervals from ``--resamples`` resamples, and the share of intervals holding the
population value is printed, for:

* ``t``: the method of :mod:`caadbench.eval.bootstrap` (Rao–Wu resampling, value ± t(df)·SE);
* ``percentile``: the 2.5 / 97.5 % percentiles of the same replicates;
* ``naive``: the percentile interval of the plain two-stage bootstrap (k of k contexts with replacement, then
  n of n images inside every drawn context) — context level only.

The last design is today's default protocol (per subject 1 normal + 2 anomalous unseen contexts of 46 images):
its normal contexts are single, so the context-level interval misses their between-context variance.

    PYTHONPATH=. python benchmarks/interval_coverage.py --sets 1000 --resamples 1000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from caadbench.eval.bootstrap import _context_strata, replicates, t_interval
from caadbench.eval.metrics import image_curve_metrics, ranked_counts
from caadbench.eval.schema import MICRO
from tests.eval.score_sims import fixed_contexts, random_contexts


def naive_weights(run, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``(B, N)`` weights of the plain two-stage bootstrap: contexts k of k per (subject, role), then n of n
    images inside each drawn copy of a context."""
    cell, strata = _context_strata(run)
    weights = np.zeros((n_resamples, len(cell)))
    for stratum in np.unique(strata):
        cells = np.flatnonzero(strata == stratum)
        draws = rng.integers(0, len(cells), (n_resamples, len(cells)))
        for slot in range(len(cells)):
            for c_index, c in enumerate(cells):
                images = np.flatnonzero(cell == c)
                picked = draws[:, slot] == c_index
                counts = rng.multinomial(len(images), np.full(len(images), 1 / len(images)), n_resamples)
                weights[:, images] += counts * picked[:, None]
    return weights


def naive_macro(run, truth, n_resamples: int, rng) -> float:
    """Coverage of the naive two-stage percentile interval of the macro I-AUROC."""
    hits = []
    subjects = sorted(set(run.subjects.tolist()))
    for row in run.scores:
        w = naive_weights(run, n_resamples, rng)
        values = np.mean([image_curve_metrics(*ranked_counts(row[run.subjects == s], run.labels[run.subjects == s],
                                                             w[:, run.subjects == s]), names=["i_auroc"])["i_auroc"]
                          for s in subjects], axis=0)
        low, high = np.percentile(values, [2.5, 97.5])
        hits.append(low <= truth["i_auroc"] <= high)
    return float(np.mean(hits))


def coverage(run, truth, level: str, n_resamples: int) -> dict[str, tuple[float, float]]:
    """``{metric: (t coverage, percentile coverage)}`` and the mean width of the t interval."""
    reps = replicates(run, n_resamples=n_resamples, seed=1, levels=[level])
    out = {}
    for metric, value in truth.items():
        values, estimates = reps.values[level][metric], reps.estimates[metric]
        intervals = [t_interval(e, v, reps.df[level]) for e, v in zip(estimates, values)]
        t_hits = np.mean([ci is not None and ci[0] <= value <= ci[1] for ci in intervals])
        width = np.mean([ci[1] - ci[0] for ci in intervals if ci is not None])
        low, high = np.percentile(values, [2.5, 97.5], axis=1)
        out[metric] = (float(t_hits), float(np.mean((low <= value) & (value <= high))), float(width))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", type=int, default=1000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--naive-sets", type=int, default=200, help="data sets for the (slow) naive scheme")
    args = parser.parse_args()
    rng = np.random.default_rng(2024)
    designs = [
        ("image", "5 subjects × (12 normal, 8 + 8 anomalous) images, fixed contexts",
         lambda: fixed_contexts(rng, 5, [(0, 12), (1, 8), (1, 8)], args.sets)),
        ("image", "10 subjects × (46 normal, 46 + 46 anomalous) images, fixed contexts",
         lambda: fixed_contexts(rng, 10, [(0, 46), (1, 46), (1, 46)], args.sets)),
        ("context", "5 subjects × 3 normal + 3 anomalous contexts × 8 images",
         lambda: random_contexts(rng, 5, per_role=3, images=8, n_sets=args.sets)),
        ("context", "10 subjects × 2 normal + 2 anomalous contexts × 20 images",
         lambda: random_contexts(rng, 10, per_role=2, images=20, n_sets=args.sets)),
        ("context", "10 subjects × 6 normal + 6 anomalous contexts × 10 images",
         lambda: random_contexts(rng, 10, per_role=6, images=10, n_sets=args.sets)),
    ]
    print(f"{args.sets} data sets, {args.resamples} resamples each; 95 % intervals; coverage t / percentile "
          "(mean width of the t interval, points)")
    for level, name, make in designs:
        start = time.perf_counter()
        run, truth = make()
        found = coverage(run, truth, level, args.resamples)
        text = "  ".join(f"{m}: {t:.3f} / {p:.3f} ({100 * w:.1f})" for m, (t, p, w) in found.items())
        extra = ""
        if level == "context" and args.naive_sets:
            sub = type(run)(**{**run.__dict__, "scores": run.scores[:args.naive_sets]})
            extra = f"  naive two-stage percentile: {naive_macro(sub, truth, args.resamples, rng):.3f}"
        print(f"{level:7s} {name}: {text}{extra}  [{time.perf_counter() - start:.0f} s]")
    # today's protocol: 1 normal + 2 anomalous contexts per subject (the normal context is single)
    start = time.perf_counter()
    run, truth = random_contexts(rng, 10, per_role=2, images=46, n_sets=args.sets)
    keep = np.array([not (label == 0 and c == "c1") for c, label in zip(run.contexts, run.labels)])
    run = type(run)(keys=[k for k, ok in zip(run.keys, keep) if ok], subjects=run.subjects[keep],
                    contexts=run.contexts[keep], scopes=run.scopes[keep], labels=run.labels[keep],
                    scores=run.scores[:, keep], headline=run.headline)
    found = coverage(run, truth, "context", args.resamples)
    text = "  ".join(f"{m}: {t:.3f} / {p:.3f} ({100 * w:.1f})" for m, (t, p, w) in found.items())
    print(f"context 10 subjects × 1 normal + 2 anomalous contexts × 46 images (today's protocol): {text}  "
          f"[{time.perf_counter() - start:.0f} s]")


if __name__ == "__main__":
    main()
