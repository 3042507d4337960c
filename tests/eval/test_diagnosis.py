"""The diagnosis of a model's extras: per-branch I-AUROC, α summary and the family neighbourhood."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from caadbench.eval.diagnosis import FUSED, alpha_summary, neighbourhood
from caadbench.eval.evaluator import SEEN, UNSEEN, Evaluator
from tests.eval.diagnosis_fakes import BRANCHES, COLUMNS, FAMILIES, with_extras
from tests.eval.fakes import make_batches, rulebook, seen_contexts


@pytest.fixture(scope="module")
def batches():
    return with_extras(make_batches(n_per_pair=3, size=32, batch_size=12))


def evaluate(batches, **kwargs):
    ev = Evaluator(seen_contexts(rulebook()), examples_per_category=0, families=FAMILIES, extras_columns=COLUMNS,
                   **kwargs)
    for batch, output in batches:
        ev.update(batch, output)
    return ev


def _flat(batches, name=None):
    values = [o.extras[name] if name else o.scores for _, o in batches]
    return np.concatenate([v.numpy() for v in values])


def test_per_branch_auroc_is_the_macro_mean_of_sklearn_values(batches):
    d = evaluate(batches).compute().diagnosis
    assert d.branches == list(BRANCHES)
    seen = seen_contexts(rulebook())
    labels = np.concatenate([b.labels.numpy() for b, _ in batches])
    subjects = np.array(sum((b.subjects for b, _ in batches), []))
    is_seen = np.array([c in seen[s] for b, _ in batches for s, c in zip(b.subjects, b.contexts)])
    branch = _flat(batches, "branch_scores")
    for scope, mask in ((UNSEEN, ~is_seen), (SEEN, is_seen)):
        for j, name in [*enumerate(BRANCHES), (None, FUSED)]:
            scores = _flat(batches) if j is None else branch[:, j]
            per_subject = [roc_auc_score(labels[mask & (subjects == s)], scores[mask & (subjects == s)])
                           for s in sorted(set(subjects)) if len(set(labels[mask & (subjects == s)])) == 2]
            assert d.branch_i_auroc[scope][name] == pytest.approx(np.mean(per_subject), abs=1e-12)


def test_the_fused_row_equals_the_headline_metric(batches):
    ev = evaluate(batches).compute()
    assert ev.diagnosis.branch_i_auroc[UNSEEN][FUSED] == pytest.approx(ev.scopes[UNSEEN].metrics["i_auroc"])
    assert ev.diagnosis.branch_i_auroc[SEEN][FUSED] == pytest.approx(ev.scopes[SEEN].metrics["i_auroc"])


def test_alpha_summary_per_scope(batches):
    d = evaluate(batches).compute().diagnosis
    seen = seen_contexts(rulebook())
    is_seen = np.array([c in seen[s] for b, _ in batches for s, c in zip(b.subjects, b.contexts)])
    alpha = _flat(batches, "alpha").astype(np.float64)
    for scope, mask in ((UNSEEN, ~is_seen), (SEEN, is_seen)):
        total = sum(d.alpha[scope][b]["mean"] for b in BRANCHES)
        assert total == pytest.approx(1.0, abs=1e-6)  # the means of weights that sum to 1
        for j, b in enumerate(BRANCHES):
            assert d.alpha[scope][b]["q50"] == pytest.approx(np.median(alpha[mask, j]), abs=1e-7)
            assert d.alpha[scope][b]["q10"] <= d.alpha[scope][b]["q50"] <= d.alpha[scope][b]["q90"]
    assert alpha_summary(np.array([0.0, 1.0])) == {"mean": 0.5, "q10": 0.1, "q50": 0.5, "q90": 0.9}


def test_an_inactive_branch_is_left_out():
    d = evaluate(with_extras(make_batches(n_per_pair=2, size=32), inactive=1)).compute().diagnosis
    assert d.branches == ["subject", "global"]
    assert set(d.alpha[UNSEEN]) == {"subject", "global"} and "context" not in d.branch_i_auroc[UNSEEN]


def test_neighbourhood_on_a_hand_built_example():
    # cow: seen pasture (grassland) and highway (road); unseen meadow (grassland), street (road), lake (water)
    rows = [("pasture", "seen", (1, 0)), ("pasture", "seen", (1, 0.1)),
            ("highway", "seen", (0, 1)), ("highway", "seen", (0.1, 1)),
            ("meadow", "unseen", (1, 0.2)), ("meadow", "unseen", (0.9, 0.1)), ("meadow", "unseen", (1, -0.1)),
            ("meadow", "unseen", (0.1, 1)),
            ("street", "unseen", (0.2, 1)), ("street", "unseen", (0, 3)),
            ("lake", "unseen", (1, 0))]
    contexts = np.array([r[0] for r in rows], dtype=object)
    roles = np.array([r[1] for r in rows], dtype=object)
    emb = np.array([r[2] for r in rows], dtype=np.float64)
    subjects = np.array(["cow"] * len(rows), dtype=object)
    swapped = emb.copy()
    swapped[roles == "unseen"] = emb[roles == "unseen", ::-1]  # every unseen image next to the other family
    cells = neighbourhood(subjects, contexts, roles, {"adapted": swapped, "frozen": emb}, FAMILIES)
    assert [(c.context, c.family, c.n, c.relatives, c.candidates) for c in cells] == [
        ("meadow", "grassland", 4, 1, 2), ("street", "road", 2, 1, 2)]  # lake has no seen relative: left out
    assert cells[0].share == {"adapted": 0.25, "frozen": 0.75}
    assert cells[1].share == {"adapted": 0.0, "frozen": 1.0}


def test_no_extras_no_diagnosis_and_no_families_no_neighbourhood(batches):
    plain = [(b, type(o)(o.scores, o.maps)) for b, o in batches]
    assert evaluate(plain).compute().diagnosis is None
    ev = Evaluator(seen_contexts(rulebook()), examples_per_category=0, extras_columns=COLUMNS)
    for b, o in batches:
        ev.update(b, o)
    d = ev.compute().diagnosis
    assert d.neighbourhood == [] and d.branch_i_auroc


def test_an_extra_missing_from_one_batch_is_dropped(batches):
    first, *rest = batches
    b, o = first
    partial = [(b, type(o)(o.scores, o.maps, {k: v for k, v in o.extras.items() if k != "alpha"})), *rest]
    d = evaluate(partial).compute().diagnosis
    assert d.alpha == {} and d.branch_i_auroc


def test_merged_ranks_equal_one_process(batches):
    whole = evaluate(batches).compute().diagnosis
    a, b = evaluate(batches[::2]), evaluate(batches[1::2])
    a.merge(b)
    merged = a.compute().diagnosis
    assert merged.branch_i_auroc == whole.branch_i_auroc and merged.alpha == whole.alpha
    assert merged.neighbourhood == whole.neighbourhood
    shares = [c.share for c in whole.neighbourhood]
    assert shares and all(0 <= v <= 1 and not math.isnan(v) for s in shares for v in s.values())
