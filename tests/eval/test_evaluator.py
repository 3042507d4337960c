"""The Evaluator: batches in, per-subject and per-context metrics of one seed out."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from caadbench.data.batch import EVAL_RESOLUTION, Batch
from caadbench.errors import DataError, ModelError
from caadbench.eval.evaluator import ALL, SEEN, UNSEEN, Evaluator
from caadbench.eval.metrics import PixelMetricAccumulator
from caadbench.models.base import AnomalyOutput
from tests.eval.fakes import CONTEXTS, SUBJECTS, make_batches, rulebook, seen_contexts


@pytest.fixture(scope="module")
def batches():
    return make_batches(n_per_pair=2, size=32, batch_size=12)


def evaluate(batches, **kwargs) -> Evaluator:
    ev = Evaluator(seen_contexts(rulebook()), **kwargs)
    for batch, output in batches:
        ev.update(batch, output)
    return ev


def _flat(batches):
    scores = np.concatenate([o.scores.numpy() for _, o in batches])
    labels = np.concatenate([b.labels.numpy() for b, _ in batches])
    subjects = np.array(sum((b.subjects for b, _ in batches), []))
    seen = seen_contexts(rulebook())
    is_seen = np.array([c in seen[s] for b, _ in batches for s, c in zip(b.subjects, b.contexts)])
    return scores, labels, subjects, is_seen


def test_macro_mean_is_the_mean_of_per_subject_sklearn_values_on_each_scope(batches):
    """Headline = images of unseen contexts only; the seen contexts' images are a scope of their own."""
    result = evaluate(batches).compute()
    scores, labels, subjects, is_seen = _flat(batches)
    assert result.headline == UNSEEN and set(result.scopes) == {UNSEEN, SEEN}
    for scope, mask in ((UNSEEN, ~is_seen), (SEEN, is_seen)):
        expected = {s: roc_auc_score(labels[mask & (subjects == s)], scores[mask & (subjects == s)])
                    for s in set(subjects)}
        got = result.scopes[scope]
        for subject, value in expected.items():
            assert got.per_subject[subject]["i_auroc"] == pytest.approx(value, abs=1e-9)
            assert got.subject_counts[subject] == (int((mask & (subjects == subject)).sum()),
                                                   int(labels[mask & (subjects == subject)].sum()))
        assert got.metrics["i_auroc"] == pytest.approx(np.mean(list(expected.values())), abs=1e-9)
    assert result.metrics == result.scopes[UNSEEN].metrics  # the headline
    assert result.samples.keys == sorted(result.samples.keys)
    assert not result.notes


def test_headline_scope_follows_the_test_set(batches):
    every_unseen, no_notion, every_seen = Evaluator({}), Evaluator(None), Evaluator({s: CONTEXTS for s in SUBJECTS})
    for ev in (every_unseen, no_notion, every_seen):
        for batch, output in batches:
            ev.update(batch, output)
    a, b, c = every_unseen.compute(), no_notion.compute(), every_seen.compute()
    assert (a.headline, set(a.scopes)) == (UNSEEN, {UNSEEN})  # old cc shards: no seen scope, no gap
    assert (b.headline, set(b.scopes)) == (ALL, {ALL}) and (c.headline, set(c.scopes)) == (ALL, {ALL})
    assert a.metrics == b.metrics == c.metrics  # the same images, whatever their role


def test_maps_are_resized_bilinearly_to_the_evaluation_resolution(batches):
    """Maps at the input size give the same pixel metrics, per scope, as maps pre-resized to 256 with bilinear."""
    exact = 1 << 23  # every pixel kept: both sides exact, so they must agree to the last bit
    result = evaluate(batches, examples_per_category=0, exact_pixels=exact).compute()
    seen = seen_contexts(rulebook())
    for scope in (UNSEEN, SEEN):
        reference = PixelMetricAccumulator(exact_pixels=exact)
        for batch, output in batches:
            keep = [i for i, (s, c) in enumerate(zip(batch.subjects, batch.contexts))
                    if (c in seen[s]) == (scope == SEEN)]
            resized = F.interpolate(output.maps[:, None], size=(EVAL_RESOLUTION,) * 2, mode="bilinear",
                                    align_corners=False)[:, 0]
            reference.update(resized[keep], batch.gt_masks[keep], [batch.subjects[i] for i in keep])
        theirs = reference.compute()
        for subject, values in result.scopes[scope].per_subject.items():
            assert {m: values[m] for m in theirs[subject].values} == theirs[subject].values


def test_cells_mark_seen_contexts_and_labels(batches):
    result = evaluate(batches).compute()
    rules, seen = rulebook(), seen_contexts(rulebook())
    assert len(result.cells) == len(rules)
    scores, labels, subjects, is_seen = _flat(batches)
    contexts = np.array(sum((b.contexts for b, _ in batches), []))
    for cell in result.cells:
        assert cell.label == rules[cell.subject, cell.context]
        assert cell.seen == (cell.context in seen[cell.subject])
        assert 0 <= cell.auroc <= 1 and cell.n == 2
        # against the subject's other-label images of the same role only
        pool = (subjects == cell.subject) & (is_seen == cell.seen)
        other = pool & (labels != cell.label)
        mine = pool & (contexts == cell.context)
        keep = mine | other
        assert cell.auroc == pytest.approx(roc_auc_score(labels[keep], scores[keep]), abs=1e-12)
    none_seen = Evaluator(None)
    for batch, output in batches:
        none_seen.update(batch, output)
    assert {c.seen for c in none_seen.compute().cells} == {None}


def test_subject_without_anomalous_image_is_excluded_with_a_note(batches):
    ev = Evaluator({})
    for batch, output in batches:
        keep = [i for i, s in enumerate(batch.subjects) if not (s == "cow" and batch.labels[i] == 1)]
        ev.update(_subset(batch, keep), AnomalyOutput(output.scores[keep], output.maps[keep]))
    result = ev.compute()
    assert math.isnan(result.per_subject["cow"]["i_auroc"]) and math.isnan(result.per_subject["cow"]["aupro"])
    others = [v["i_auroc"] for s, v in result.per_subject.items() if s != "cow"]
    assert result.metrics["i_auroc"] == pytest.approx(np.mean(others))
    assert any("'cow'" in n and "no anomalous test image" in n for n in result.notes)
    assert any("'cow'" in n and "no anomalous pixel" in n for n in result.notes)


def test_merged_ranks_equal_one_process(batches):
    one = evaluate(batches)
    ranks = [evaluate(batches[0::2]), evaluate(batches[1::2])]
    merged = ranks[0]
    merged.merge(ranks[1])
    a, b = one.compute(), merged.compute()
    assert a.scopes == b.scopes and a.cells == b.cells
    assert one.examples().keys == merged.examples().keys


def test_examples_are_the_extremes_of_each_category(batches):
    ev = evaluate(batches, examples_per_category=1)
    ex = ev.examples()
    result = ev.compute()
    s = result.samples
    anomalous = [(sc, k) for k, sc, y in zip(s.keys, s.scores, s.labels) if y == 1]
    normal = [(sc, k) for k, sc, y in zip(s.keys, s.scores, s.labels) if y == 0]
    assert ex.keys == [max(anomalous)[1], min(anomalous)[1], max(normal)[1], min(normal)[1]]
    assert ex.images.shape == (4, EVAL_RESOLUTION, EVAL_RESOLUTION, 3) and ex.images.dtype == np.uint8
    assert ex.maps.dtype == np.float16 and ex.gt.dtype == bool
    assert ex.gt[0].any() and not ex.gt[2].any()


def test_a_model_without_maps_gets_image_metrics_only_and_a_note(batches):
    """maps=None: the image metrics are those of the same scores with maps, the pixel metrics NaN with the note
    (never computed from a stand-in map), on both scopes and after merging ranks; example maps are NaN."""
    no_maps = [(b, AnomalyOutput(o.scores, None)) for b, o in batches]
    ranks = [evaluate(no_maps[0::2]), evaluate(no_maps[1::2])]
    ranks[0].merge(ranks[1])
    with_maps = evaluate(batches).compute()
    for ev in (evaluate(no_maps), ranks[0]):
        result = ev.compute()
        for scope in (UNSEEN, SEEN):
            for m in ("i_auroc", "i_ap", "i_f1max"):
                assert result.scopes[scope].metrics[m] == with_maps.scopes[scope].metrics[m]
            assert all(math.isnan(result.scopes[scope].metrics[m]) for m in ("p_auroc", "p_f1max", "aupro"))
        for scope in ("unseen", "seen"):
            for subject in SUBJECTS:
                assert (f"{scope} contexts: subject {subject!r}: P-AUROC, P-F1max, AUPRO unavailable (the model gives "
                        f"no maps); excluded from the macro mean") in result.notes
        ex = ev.examples()
        assert len(ex) and np.isnan(ex.maps.astype(np.float32)).all()


def test_bad_inputs(batches):
    batch, output = batches[0]
    ev = Evaluator({})
    with pytest.raises(ModelError, match="do not match"):
        ev.update(batch, AnomalyOutput(output.scores[:-1], output.maps))
    with pytest.raises(ModelError, match="NaN"):
        ev.update(batch, AnomalyOutput(torch.full_like(output.scores, float("nan")), output.maps))
    small_gt = Batch(batch.images, batch.subject_masks, batch.gt_masks[:, :64, :64], batch.labels, batch.keys,
                     batch.subjects, batch.contexts)
    with pytest.raises(DataError, match="evaluation resolution"):
        ev.update(small_gt, output)
    with pytest.raises(DataError, match="no image"):
        Evaluator({}).compute()
    ev.update(batch, output)
    ev.update(batch, output)
    with pytest.raises(DataError, match="evaluated twice"):
        ev.compute()


def _subset(batch: Batch, keep: list[int]) -> Batch:
    return Batch(batch.images[keep], batch.subject_masks[keep], batch.gt_masks[keep], batch.labels[keep],
                 [batch.keys[i] for i in keep], [batch.subjects[i] for i in keep], [batch.contexts[i] for i in keep])
