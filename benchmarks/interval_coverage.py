"""Coverage of the bootstrap intervals on synthetic scores with a known population AUROC, in one run.

For each design, ``--sets`` data sets are simulated with the tests' generators (``tests/eval/score_sims.py``:
Gaussian cells; at the image level fixed contexts, at the context level contexts drawn from a random-effects
distribution), each gets its 95 % intervals from ``--resamples`` resamples, and the share of intervals holding the
population value is printed, for:

* ``t``: the method of :mod:`caadbench.eval.bootstrap` (Rao–Wu resampling, value ± t(df)·SE);
* ``percentile``: the 2.5 / 97.5 % percentiles of the same replicates;
* ``naive``: the percentile interval of the plain two-stage bootstrap (k of k contexts with replacement, then
  n of n images inside every drawn context) — context level only.

The last two designs have (subject, role) strata of a single context: the v1 default protocol (per subject
1 normal + 2 anomalous unseen contexts of 46 images) and the v2 default set's ``cc`` test side (unseen contexts
per subject and role, and their image counts, read from ``--index``; built-in counts of the set of fingerprint
``ffc4e8e6…`` when the file is absent: 5 subjects with one normal context, one with one anomalous context).
For them the context level is measured twice: ``before`` (a single context kept, its images resampled) and
``after`` (a borrowed context effect, :mod:`caadbench.eval.borrowing`).

    PYTHONPATH=. python benchmarks/interval_coverage.py --sets 1000 --resamples 1000
    PYTHONPATH=. python benchmarks/interval_coverage.py --sets 500 --resamples 500 --only-singletons
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from caadbench.eval.bootstrap import _context_strata, replicates, t_interval
from caadbench.eval.metrics import image_curve_metrics, ranked_counts
from caadbench.eval.schema import MICRO
from tests.eval.score_sims import fixed_contexts, random_cells, random_contexts


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


# the v2 default set's cc test side (fingerprint ffc4e8e6…): per subject, images of each unseen (label, context)
V2_CC_TEST = {
    "bicycle": [(0, 75), (1, 25), (1, 25), (1, 25)],
    "boat": [(0, 75)] + [(1, 17)] * 5,
    "camel": [(0, 75)] + [(1, 21)] * 4,
    "car": [(0, 50)] * 2 + [(1, 17)] * 5,
    "chair": [(0, 50)] * 2 + [(1, 21)] * 4,
    "cow": [(0, 50)] * 2 + [(1, 19)] * 4,
    "fish": [(0, 75)] + [(1, 15)] * 5,
    "penguin": [(0, 75)] + [(1, 13)] * 6,
    "person": [(0, 17)] * 5 + [(1, 75)],
    "sheep": [(0, 50)] * 2 + [(1, 19)] * 4,
}


def cc_test_cells(index: Path) -> tuple[dict[str, list[tuple[int, int]]], str]:
    """Per subject, ``(label, images)`` of each unseen test context of a built set's ``cc`` split (the built-in
    counts when ``index`` is absent), and where they come from."""
    if not index.is_file():
        return V2_CC_TEST, "built-in counts (fingerprint ffc4e8e6…)"
    data = json.loads(index.read_text())
    definition = data["splits"]["cc"]["definition"]
    counts = Counter()
    for shard in data["shards"]:
        if shard["split"] == "cc" and shard["part"] == "test":
            for key in shard["keys"]:
                _, subject, *context, _ = key.split("-")
                counts[(subject, "-".join(context))] += 1
    cells = {subject: [(int(definition["context_roles"][subject][c] == "anomalous"), counts[(subject, c)])
                       for c in sorted(sides["unseen"])]
             for subject, sides in sorted(definition["context_sides"].items())}
    return cells, f"{index} (fingerprint {data['fingerprint'][:8]}…)"


def coverage(run, truth, level: str, n_resamples: int, borrow: bool = True) -> dict[str, tuple[float, float]]:
    """``{metric: (t coverage, percentile coverage)}`` and the mean width of the t interval."""
    reps = replicates(run, n_resamples=n_resamples, seed=1, levels=[level], borrow=borrow)
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
    parser.add_argument("--index", type=Path, default=Path("/work/data/caad-synth/index.json"),
                        help="a built set's index.json: the v2 cc test design's counts")
    parser.add_argument("--only-singletons", action="store_true", help="only the designs with single contexts")
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
    for level, name, make in [] if args.only_singletons else designs:
        start = time.perf_counter()
        run, truth = make()
        found = coverage(run, truth, level, args.resamples)
        text = "  ".join(f"{m}: {t:.3f} / {p:.3f} ({100 * w:.1f})" for m, (t, p, w) in found.items())
        extra = ""
        if level == "context" and args.naive_sets:
            sub = type(run)(**{**run.__dict__, "scores": run.scores[:args.naive_sets]})
            extra = f"  naive two-stage percentile: {naive_macro(sub, truth, args.resamples, rng):.3f}"
        print(f"{level:7s} {name}: {text}{extra}  [{time.perf_counter() - start:.0f} s]")
    # v1 protocol: 1 normal + 2 anomalous contexts per subject (the normal context is single)
    run, truth = random_contexts(rng, 10, per_role=2, images=46, n_sets=args.sets)
    keep = np.array([not (label == 0 and c == "c1") for c, label in zip(run.contexts, run.labels)])
    run = type(run)(keys=[k for k, ok in zip(run.keys, keep) if ok], subjects=run.subjects[keep],
                    contexts=run.contexts[keep], scopes=run.scopes[keep], labels=run.labels[keep],
                    scores=run.scores[:, keep], headline=run.headline)
    single_designs = [("10 subjects × 1 normal + 2 anomalous contexts × 46 images (v1 protocol)", run, truth)]
    cells, source = cc_test_cells(args.index)
    run, truth = random_cells(rng, list(cells.values()), n_sets=args.sets)
    shape = ", ".join(f"{sum(1 for label, _ in x if not label)}+{sum(1 for label, _ in x if label)}"
                      for x in cells.values())
    single_designs.append((f"v2 cc test side, {len(cells)} subjects, normal+anomalous contexts {shape}; "
                           f"{source}", run, truth))
    for name, run, truth in single_designs:
        for borrow in (False, True):
            start = time.perf_counter()
            found = coverage(run, truth, "context", args.resamples, borrow=borrow)
            text = "  ".join(f"{m}: {t:.3f} / {p:.3f} ({100 * w:.1f})" for m, (t, p, w) in found.items())
            print(f"context {name} [{'after' if borrow else 'before'}]: {text}  "
                  f"[{time.perf_counter() - start:.0f} s]")


if __name__ == "__main__":
    main()
