"""Split protocols: partitions, side constraints, reproducibility, support sets, bad input."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from caadbench.data.sources.base import SampleSpec
from caadbench.data.splits import (check_specs, choose_support, make_splits, split_cc, split_cs, split_ic,
                                   split_std)
from caadbench.errors import DataError, SplitError
from tests.data.fake_sources import RULES, FakeContextual, FakeIndustrial

SPECS = FakeContextual(per_pair=5).specs()


def _contexts(specs, subject, label=None):
    return {s.context for s in specs if s.subject == subject and (label is None or s.label == label)}


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_cc_partitions_contexts_per_subject(seed):
    split = split_cc(SPECS, seed)
    parts = [{s.key for s in p} for p in (split.train, split.val, split.test)]
    assert sum(map(len, parts)) == len(set().union(*parts)) == len(SPECS)  # disjoint, and every image is placed
    for subject, (normal, anomalous) in RULES.items():
        sides = split.definition["context_sides"][subject]
        assert set(sides["seen"]).isdisjoint(sides["unseen"]) and set(sides["val"]).isdisjoint(sides["seen"])
        assert set(sides["seen"]) | set(sides["unseen"]) | set(sides["val"]) == set(normal) | set(anomalous)
        for side in ("seen", "unseen"):
            assert set(sides[side]) & set(normal) and set(sides[side]) & set(anomalous), (subject, side)
        assert _contexts(split.train, subject) == set(sides["seen"])
        unseen_test = [s for s in split.test if s.context in sides["unseen"]]
        assert _contexts(unseen_test, subject) == set(sides["unseen"])
        for label in (0, 1):
            assert _contexts(split.train, subject, label) and _contexts(unseen_test, subject, label)


@pytest.mark.parametrize("seed", [0, 3])
def test_cc_holds_out_a_share_of_every_seen_pair_as_seen_test_images(seed):
    split = choose_support(split_cc(SPECS, seed), seed)
    sides = split.definition["context_sides"]
    assert split.definition["seen_test_fraction"] == 0.2
    train, test, val = {s.key for s in split.train}, {s.key for s in split.test}, {s.key for s in split.val}
    counts = defaultdict(lambda: [0, 0])  # per seen pair: (train, test)
    for s in SPECS:
        if s.context in sides[s.subject]["seen"]:
            counts[s.subject, s.context][s.key in test] += 1
            assert (s.key in train) + (s.key in test) + (s.key in val) == 1  # every seen image on exactly one side
    assert counts and all(c == [4, 1] or c == [3, 1] for c in counts.values())  # 5 per pair: 1 to test (+1 to val)
    seen_test = [s for s in split.test if s.context in sides[s.subject]["seen"]]  # the seen flag, from the manifest
    for subject, c in split.definition["seen_test_counts"].items():
        assert c == {"normal": sum(s.subject == subject and s.label == 0 for s in seen_test),
                     "anomalous": sum(s.subject == subject and s.label == 1 for s in seen_test)}
        assert c["normal"] and c["anomalous"]
    support = {k for by_seed in split.support.values() for by_subject in by_seed.values()
               for keys in by_subject.values() for k in keys}
    assert support and support <= train and support.isdisjoint(test)  # the pool is what stays in train
    none = split_cc(SPECS, seed, seen_test_fraction=0.0)  # 0: every test image is unseen, as before
    assert all(s.context in none.definition["context_sides"][s.subject]["unseen"] for s in none.test)
    assert {s.key for s in none.train + none.val} == train | val | {s.key for s in seen_test}


def test_cc_seen_share_keeps_a_single_image_pair_in_train():
    split = split_cc(FakeContextual(per_pair=1).specs(), 0)
    sides = split.definition["context_sides"]
    assert all(s.context in sides[s.subject]["unseen"] for s in split.test)
    assert all(c == {"normal": 0, "anomalous": 0} for c in split.definition["seen_test_counts"].values())


def test_cc_is_reproducible_order_independent_and_seed_dependent():
    shuffled = list(SPECS)
    random.Random(3).shuffle(shuffled)
    a, b = split_cc(SPECS, 0), split_cc(shuffled, 0)
    assert a.definition == b.definition and a.train == b.train and a.test == b.test
    partitions = {str(split_cc(SPECS, seed).definition["context_sides"]) for seed in range(8)}
    assert len(partitions) > 1
    held = {str(sorted(s.key for s in split_cc(SPECS, seed).test)) for seed in range(4)}
    assert len(held) > 1


@pytest.mark.parametrize("word,label", [("anomalous", 1), ("normal", 0)])
def test_cc_refuses_a_subject_with_one_context_of_a_kind(word, label):
    specs = [s for s in SPECS if not (s.subject == "red" and s.label == label and s.context != RULES["red"][label][0])]
    with pytest.raises(SplitError, match=f"src: subject 'red' has no {word} context on the test side of split cc"):
        split_cc(specs, 0, where="src")
    specs = [s for s in SPECS if not (s.subject == "red" and s.label == label)]
    with pytest.raises(SplitError, match=f"subject 'red' has no {word} context"):
        split_cc(specs, 0)


def test_ic_same_contexts_disjoint_images_stratified():
    split = split_ic(SPECS, 0)
    parts = [{s.key for s in p} for p in (split.train, split.val, split.test)]
    assert sum(map(len, parts)) == len(set().union(*parts)) == len(SPECS)
    groups = defaultdict(lambda: [0, 0, 0])
    for i, part in enumerate((split.train, split.val, split.test)):
        for s in part:
            groups[(s.subject, s.context)][i] += 1
    assert all(g == [2, 1, 2] for g in groups.values())  # 5 images per pair: 40 % to test, 1 of the other 3 to val
    assert split.definition["context_sides"]["red"]["unseen"] == []


def test_ic_pools_single_images_per_subject_and_label():
    split = split_ic(FakeContextual(per_pair=1).specs(), 0)  # one image per (subject, context)
    for subject, (normal, anomalous) in RULES.items():
        for label, contexts in ((0, normal), (1, anomalous)):
            n_test = sum(s.subject == subject and s.label == label for s in split.test)
            assert n_test == min(len(contexts) - 1, max(1, round(len(contexts) * 0.4)))


def test_ic_refuses_a_subject_with_a_single_normal_image():
    specs = FakeContextual(per_pair=1, rules=dict(RULES, blue=(["water"], ["grass", "road"]))).specs()
    with pytest.raises(SplitError, match="subject 'blue' has no normal context on the test side of split ic"):
        split_ic(specs, 0)


def test_cs_holds_out_subjects_and_reserves_a_support_pool():
    rules = {f"s{i}": (["a", "b"], ["c", "d"]) for i in range(8)}
    specs = FakeContextual(per_pair=8, rules=rules).specs()  # 16 normal images: pool of 8
    split = choose_support(split_cs(specs, 0, pool_size=8), 0)
    held = split.definition["held_out_subjects"]
    assert len(held) == 2  # 25 % of 8
    assert {s.subject for s in split.test} == set(held)
    assert not {s.subject for s in split.train} & set(held)
    for subject in held:
        pool = set(split.definition["support_pools"][subject])
        assert len(pool) == 8 and pool.isdisjoint(s.key for s in split.test)
        assert all(s.label == 0 and s.subject == subject for s in split.pools[subject])
        for k in ("1", "2", "4", "8"):
            assert set(split.support[k]["0"][subject]) <= pool
    assert {s.key for s in split.support_specs()} == set().union(*map(set, split.definition["support_pools"].values()))


def test_cs_needs_two_subjects():
    specs = [s for s in SPECS if s.subject == "red"]
    with pytest.raises(SplitError, match="split cs needs at least 2 subjects"):
        split_cs(specs, 0)


def test_std_uses_the_datasets_own_split():
    specs = FakeIndustrial(n=3).specs()
    split = split_std(specs, 0)
    assert all(s.origin_split == "train" and s.label == 0 for s in split.train)
    assert {s.key for s in split.test} == {s.key for s in specs if s.origin_split == "test"}
    bad = specs + [SampleSpec("x-1", "bottle", "-", 0, "fake:x.png", mask_kind="defect")]
    with pytest.raises(SplitError, match="fake:x.png: sample 'x-1' has origin_split None"):
        split_std(bad, 0)


@pytest.mark.parametrize("name", ["cc", "ic", "cs"])
def test_support_sets_are_nested_normal_train_images(name):
    split = make_splits(SPECS, "contextual", [name], seed=0)[name]
    train = {s.key for s in split.train}
    normal = {s.key for s in SPECS if s.label == 0}
    test_subjects = {s.subject for s in split.test}
    for seed in ("0", "1", "2"):
        prev: list[str] = []
        for k in ("1", "2", "4", "8"):
            chosen = split.support[k][seed]
            assert set(chosen) == test_subjects
            for subject, keys in chosen.items():
                assert len(keys) == min(int(k), len(split.pools[subject]))
                assert set(keys) <= normal and all(key.startswith(subject) for key in keys)
                if name != "cs":
                    assert set(keys) <= train
            flat = [key for subject in sorted(chosen) for key in chosen[subject]]
            assert all(key in flat for key in prev)
            prev = flat
    seeds_differ = {tuple(split.support["4"][s][sorted(test_subjects)[0]]) for s in ("0", "1", "2")}
    assert len(seeds_differ) > 1


def test_support_records_what_exists_when_pool_is_small():
    specs = FakeContextual(per_pair=1).specs()
    split = make_splits(specs, "contextual", ["cc"])["cc"]
    for subject, keys in split.support["8"]["0"].items():
        assert len(keys) == len(split.pools[subject]) < 8


def test_bad_specs():
    with pytest.raises(DataError, match="src: empty source: no samples found"):
        check_specs([], "src")
    dup = SPECS + [SampleSpec(SPECS[0].key, "red", "grass", 0, "other:file.png")]
    with pytest.raises(DataError, match=r"other:file.png: duplicate sample key 'blue-water-000' "
                                        r"\(also used by fake:blue-water-000\)"):
        make_splits(dup, "contextual")
    dotted = SPECS + [SampleSpec("red.grass", "red", "grass", 0, "fake:dotted.png")]
    with pytest.raises(DataError, match="fake:dotted.png: invalid sample key 'red.grass'"):
        make_splits(dotted, "contextual")


def test_split_must_apply_to_kind():
    with pytest.raises(SplitError, match="split 'std' does not apply to contextual sources"):
        make_splits(SPECS, "contextual", ["std"])
    with pytest.raises(SplitError, match="split 'cc' does not apply to industrial sources"):
        make_splits(FakeIndustrial().specs(), "industrial", ["cc"])


def test_cc_holds_out_contexts_with_a_seen_relative():
    from tests.data.fake_sources import FAMILIES

    for seed in range(6):
        d = split_cc(SPECS, seed, families=FAMILIES).definition
        for subject, ctx_roles in d["context_roles"].items():
            seen = d["context_sides"][subject]["seen"]
            for context in d["context_sides"][subject]["unseen"]:
                role, family = ctx_roles[context], FAMILIES[context]
                relatives = [c for c, r in ctx_roles.items() if r == role and FAMILIES[c] == family and c != context]
                has_seen_relative = any(c in seen for c in relatives)
                assert has_seen_relative == (context not in d["unseen_without_seen_relative"].get(subject, []))
                if relatives:  # a role with a family pair never holds out a context that has no seen relative
                    assert has_seen_relative, (seed, subject, context)


@pytest.mark.parametrize("seed", range(5))
def test_cc_val_holds_out_whole_seen_contexts_with_a_trained_relative(seed):
    from tests.data.fake_sources import FAMILIES

    split = split_cc(SPECS, seed, families=FAMILIES)
    d = split.definition
    train_ctx = defaultdict(set)
    for s in split.train:
        train_ctx[s.subject].add(s.context)
    test_keys = {s.key for s in split.test}
    for subject, ctx_roles in d["context_roles"].items():
        sides, vsides = d["context_sides"][subject], d["validation"]["sides"][subject]
        val = [s for s in split.val if s.subject == subject]
        assert {s.label for s in val} == {0, 1}, (seed, subject)  # selection can compute an AUROC per subject
        for context in sides["val"]:
            role = ctx_roles[context]
            assert vsides[role] == {"contexts": [context]}
            assert any(ctx_roles[c] == role and FAMILIES[c] == FAMILIES[context] for c in train_ctx[subject])
            assert not any(s.subject == subject and s.context == context for s in split.train + split.test)
        for role, how in vsides.items():
            if "image_share" in how:  # no holdable context: a share of the role's train pairs, never test images
                shared = [s for s in val if ctx_roles[s.context] == role]
                assert shared and all(s.context in sides["seen"] and s.key not in test_keys for s in shared)
        assert not set(sides["val"]) & set(sides["unseen"])


def test_val_parts_of_the_builtin_rulebook_over_split_seeds():
    from caadbench.data.rulebook import Rulebook
    from caadbench.data.sources.synthetic import BUILTIN_RULEBOOK, SyntheticSource

    specs = SyntheticSource().specs()
    families = dict(Rulebook.load(BUILTIN_RULEBOOK).contexts)
    for seed in range(4):
        split = split_cc(specs, seed, families=families)
        for subject, sides in split.definition["context_sides"].items():
            val = {(s.context, s.label) for s in split.val if s.subject == subject}
            assert {lab for _, lab in val} == {0, 1}, (seed, subject)
            unseen = set(sides["unseen"])
            assert not any(c in unseen for c, _ in val)  # the test's unseen contexts never reach selection


def test_cs_val_holds_out_train_subjects():
    rules = {f"s{i}": (["a", "b"], ["c", "d"]) for i in range(8)}
    split = split_cs(FakeContextual(per_pair=4, rules=rules).specs(), 0)
    d = split.definition
    assert len(d["val_subjects"]) == 2 and not set(d["val_subjects"]) & set(d["held_out_subjects"])
    assert {s.subject for s in split.val} == set(d["val_subjects"])
    assert not {s.subject for s in split.train} & set(d["val_subjects"])
    assert sorted(d["train_subjects"]) == sorted({s.subject for s in split.train})


def test_std_has_no_val_part():
    split = split_std(FakeIndustrial().specs(), 0)
    assert split.val == [] and split.definition["validation"]["kind"] == "none"
