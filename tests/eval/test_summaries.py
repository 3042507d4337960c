"""Derived figures of a results file: chance levels (against their closed forms), inverted subjects, gap status."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest

from caadbench.eval.summaries import chance_levels, gap_status, inverted_subjects
from tests.eval.fakes import fake_results


@pytest.fixture(scope="module")
def results():
    return fake_results(seeds=(0, 1), n_per_pair=2)[0]


def closed_form_chance(results, seen: bool):
    """A constant score: AUROC ½ (subjects with both labels), AP = π, F1max = 2π/(1+π), macro over subjects."""
    labels = defaultdict(list)
    for s in results.samples:
        if s.seen is seen:
            labels[s.subject].append(s.label)
    pis = [np.mean(y) for y in labels.values()]
    both = [pi for pi in pis if 0 < pi < 1]
    with_anomalies = [pi for pi in pis if pi > 0]
    return {"i_auroc": 0.5 if both else math.nan, "i_ap": float(np.mean(with_anomalies)),
            "i_f1max": float(np.mean([2 * pi / (1 + pi) for pi in with_anomalies]))}


@pytest.mark.parametrize("scope,seen", [(None, False), ("unseen", False), ("seen", True)])
def test_chance_levels_match_their_closed_form(results, scope, seen):
    got, expected = chance_levels(results, scope), closed_form_chance(results, seen)
    for m, value in expected.items():
        assert got[m] == pytest.approx(value, abs=1e-12), m
    assert all(math.isnan(got[m]) for m in ("p_auroc", "p_f1max", "aupro"))
    assert 0.0 < got["i_ap"] < 1.0 and got["i_ap"] < got["i_f1max"]


def test_inverted_subjects_count_the_subjects_below_chance(results):
    means = {s: e.metrics["i_auroc"].mean for s, e in results.per_subject.items()}
    below, defined = inverted_subjects(results.per_subject)
    assert (below, defined) == (sum(v < 0.5 for v in means.values()), len(means))
    assert 0 < below < defined  # the fake run inverts some pairs, as a failing method would


def test_gap_status_says_why():
    with_gap, _ = fake_results(seeds=(0,), n_per_pair=1)
    old_cc, _ = fake_results(seeds=(0,), n_per_pair=1, seen=False)
    assert gap_status(with_gap).startswith("measured: ")
    assert gap_status(old_cc).startswith("unavailable: every test image of this run is of an unseen context")
