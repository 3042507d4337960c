"""Paired comparisons: the nominal false-positive rate, power, seeds, Holm, and the refusals of `compare`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from caadbench.errors import ResultsError
from caadbench.eval.bootstrap import replicates
from caadbench.eval.compare import check_comparable, compare, comparison_text, holm, paired_difference
from caadbench.eval.results import read_results, write_results
from tests.eval.fakes import fake_results
from tests.eval.score_sims import design, index_of, one_set, run_of

N_PAIRS = 300
RESAMPLES = 300


def rejection_rate(a: np.ndarray, b: np.ndarray, subjects, contexts, labels, level: str, metric: str,
                   seeds: int = 1, n_resamples: int = RESAMPLES, **kwargs) -> float:
    """Share of the stacked data sets (``seeds`` rows each) whose paired test rejects at 5 %."""
    ra = replicates(run_of(subjects, contexts, labels, a), n_resamples, 3, [level])
    rb = replicates(run_of(subjects, contexts, labels, b), n_resamples, 3, [level])
    p = [paired_difference(one_set(ra, slice(seeds * r, seeds * (r + 1))),
                           one_set(rb, slice(seeds * r, seeds * (r + 1))), metric, level, **kwargs).p
         for r in range(len(a) // seeds)]
    return float(np.mean(np.array(p) < 0.05))


def two_models(rng, n_subjects, cells, shift_b=0.0, random_contexts=False, tau=0.6):
    """Scores of two models on the same simulated images: a shared signal plus each model's own noise; ``shift_b``
    raises model B's anomalous scores (a real difference)."""
    subjects, contexts, labels = design(n_subjects, cells)
    s, c = index_of(subjects), index_of(contexts)
    if random_contexts:
        delta = rng.normal(1.0, 0.5, n_subjects)
        shared = (delta[s] * labels + rng.normal(0.0, tau, (N_PAIRS, n_subjects, len(cells)))[:, s, c]
                  + rng.normal(size=(N_PAIRS, len(s))))
    else:
        anomalous = np.array([label for label, _ in cells]) == 1
        means = np.where(anomalous, rng.normal(1.0, 0.6, (n_subjects, len(cells))), 0.0)
        shared = means[s, c] + rng.normal(size=(N_PAIRS, len(s)))
    a = shared + rng.normal(0.0, 0.7, shared.shape)
    b = shared + rng.normal(0.0, 0.7, shared.shape) + shift_b * labels
    return (subjects, contexts, labels), a, b


def test_same_distribution_is_called_different_at_the_nominal_rate_over_images():
    """300 pairs of models whose scores come from one distribution (fixed contexts): rejected at about 5 %."""
    design_, a, b = two_models(np.random.default_rng(0), 4, [(0, 10), (1, 6), (1, 6)])
    for metric in ("i_auroc", "micro_i_auroc"):
        rate = rejection_rate(a, b, *design_, "image", metric)
        assert 0.02 <= rate <= 0.08, (metric, rate)


def test_same_distribution_is_called_different_at_the_nominal_rate_over_contexts():
    """The same with each data set's contexts drawn from a random-effects distribution (3 per role)."""
    design_, a, b = two_models(np.random.default_rng(1), 4, [(0, 6)] * 3 + [(1, 6)] * 3, random_contexts=True)
    for metric in ("i_auroc", "micro_i_auroc"):
        rate = rejection_rate(a, b, *design_, "context", metric)
        assert 0.02 <= rate <= 0.08, (metric, rate)


def test_a_real_difference_is_detected():
    design_, a, b = two_models(np.random.default_rng(2), 4, [(0, 10), (1, 6), (1, 6)], shift_b=1.2)
    assert rejection_rate(a[:100], b[:100], *design_, "image", "i_auroc") > 0.9


def test_the_spread_over_seeds_keeps_the_rate_at_most_nominal():
    """200 pairs of models with 3 seeds each, every seed scaling the separation (a training draw): with the seeds'
    spread the rate stays at or below 5 % (the test is conservative, see docs/evaluation.md); ignoring it, as a test
    conditional on the seeds would, calls about a quarter of such pairs different."""
    rng = np.random.default_rng(5)
    n_pairs, n_seeds, cells = 200, 3, [(0, 20), (1, 12), (1, 12)]
    subjects, contexts, labels = design(3, cells)
    s, c = index_of(subjects), index_of(contexts)
    means = np.where(np.array([0, 1, 1]) == 1, rng.normal(1.0, 0.6, (3, 3)), 0.0)
    base = means[s, c] + rng.normal(size=(n_pairs, len(s)))

    def seeded():
        gain = 1 + 0.5 * rng.normal(size=(n_pairs, n_seeds, 1))
        return (base[:, None, :] * gain + rng.normal(0, 0.3, (n_pairs, n_seeds, len(s)))).reshape(-1, len(s))

    a, b = seeded(), seeded()
    kwargs = {"seeds": n_seeds, "n_resamples": 200}
    with_seeds = rejection_rate(a, b, subjects, contexts, labels, "image", "i_auroc", **kwargs)
    without = rejection_rate(a, b, subjects, contexts, labels, "image", "i_auroc", seed_spread=False, **kwargs)
    assert with_seeds <= 0.08 and without >= 0.15, (with_seeds, without)


def test_holm_against_a_hand_computed_example():
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 → max(0.06, 0.04) = 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0]) and holm([]) == []


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("cmp")
    a, _ = fake_results(seeds=(0, 1), n_per_pair=3)
    b, _ = fake_results(seeds=(2,), n_per_pair=3, model="winclip", learning="zero-shot")
    return write_results(d / "a.json", a), write_results(d / "b.json", b)


def test_compare_reports_every_metric_at_both_levels(pair):
    a, b = (read_results(p) for p in pair)
    found = compare(a, b, *pair, n_resamples=200)
    diffs = {(d.metric, d.level): d for d in found if not isinstance(d, tuple)}
    assert {("i_auroc", "image"), ("i_auroc", "context"), ("micro_i_auroc", "image"), ("i_ap", "context")} <= set(diffs)
    d = diffs["i_auroc", "image"]
    assert d.estimate == pytest.approx(a.metrics["i_auroc"].mean - b.metrics["i_auroc"].mean)
    assert d.low < d.estimate < d.high and 0 < d.p <= 1 and (d.p < 0.05) == (d.low > 0 or d.high < 0)
    assert ("p_auroc", "image") in found  # pixel metrics cannot be paired from files
    text = comparison_text(a, b, *pair, found)
    assert "I-AUROC" in text and "unavailable" in text and "context level" in text
    same = compare(a, read_results(pair[0]), *pair, n_resamples=200)
    assert all(x.estimate == 0 and x.p == 1.0 for x in same if not isinstance(x, tuple))


@pytest.mark.parametrize("change,message", [
    (lambda d: d.update(split="ic"), "split ic differs from cc"),
    (lambda d: d["provenance"].update(dataset_fingerprint="0" * 16), "dataset fingerprint 000000000000 differs"),
    (lambda d: d.update(samples=d["samples"][1:]), "test keys differ"),
    (lambda d: d["samples"][0].update(label=1 - d["samples"][0]["label"]), "another subject, context, label"),
])
def test_other_test_sets_are_refused_naming_the_file(pair, tmp_path, change, message):
    doc = json.loads(pair[1].read_text())
    change(doc)
    other = tmp_path / "other.json"
    other.write_text(json.dumps(doc))
    with pytest.raises(ResultsError, match=message) as info:
        a = read_results(pair[0])
        check_comparable(a, read_results(other), pair[0], other)
    assert str(other) in str(info.value) and "\n" not in str(info.value)
