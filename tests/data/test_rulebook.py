"""The rulebook: loading (JSON, CSV), validation one-liners, queries, the built-in rulebook's promises, and how
images are spread over its pairs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from caadbench.data.rulebook import Rulebook, spread_over_pairs
from caadbench.data.sources.synthetic import BUILTIN_RULEBOOK
from caadbench.errors import DataError

SMALL = {
    "subjects": ["cow", "car"],
    "contexts": {"pasture": "grass", "meadow": "grass", "highway": "road", "street": "road"},
    "rules": {
        "cow": {"normal": ["pasture", "meadow"], "anomalous": ["highway", "street"]},
        "car": {"normal": ["highway"], "anomalous": ["pasture"], "excluded": ["street"]},
    },
}


def write(tmp_path: Path, data: object, name: str = "rulebook.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@pytest.fixture(scope="module")
def builtin() -> Rulebook:
    return Rulebook.load(BUILTIN_RULEBOOK)


def test_builtin_rulebook_has_the_promised_size(builtin: Rulebook) -> None:
    assert len(builtin.subjects) >= 8
    assert len(builtin.context_names) >= 12
    assert len(builtin.families()) >= 4
    assert all(s.isalpha() and s.islower() for s in builtin.subjects)  # ordinary words usable in prompts


def test_builtin_every_subject_has_two_normal_and_two_anomalous_contexts(builtin: Rulebook) -> None:
    for subject in builtin.subjects:
        assert len(builtin.normal_contexts(subject)) >= 2, subject
        assert len(builtin.anomalous_contexts(subject)) >= 2, subject


def test_builtin_every_held_out_context_has_a_relative_with_the_same_label(builtin: Rulebook) -> None:
    family = dict(builtin.contexts)
    for subject in builtin.subjects:
        for label in ("normal", "anomalous"):
            ctxs = builtin.normal_contexts(subject) if label == "normal" else builtin.anomalous_contexts(subject)
            for c in ctxs:
                relatives = [o for o in ctxs if o != c and family[o] == family[c]]
                assert relatives, f"{subject}: {label} context {c} has no {label} relative in {family[c]}"
    assert builtin.unrelated_contexts() == []


def test_builtin_no_context_gives_the_label_away(builtin: Rulebook) -> None:
    for context in builtin.context_names:
        labels = {builtin.label(s, context) for s in builtin.subjects}
        assert {"normal", "anomalous"} <= labels, context


def test_queries(tmp_path: Path) -> None:
    rb = Rulebook.load(write(tmp_path, SMALL))
    assert rb.normal_contexts("cow") == ["pasture", "meadow"]
    assert rb.anomalous_contexts("car") == ["pasture"]
    assert rb.family("street") == "road"
    assert rb.label("car", "street") == "excluded"
    assert rb.label("car", "meadow") == "excluded"  # missing = excluded
    assert rb.allowed_pairs() == [("cow", "pasture", 0), ("cow", "meadow", 0), ("cow", "highway", 1),
                                  ("cow", "street", 1), ("car", "pasture", 1), ("car", "highway", 0)]
    assert rb.families() == {"grass": ["pasture", "meadow"], "road": ["highway", "street"]}
    # car's single normal (highway) and anomalous (pasture) contexts have no relative with their label
    assert set(rb.unrelated_contexts()) == {("car", "highway", "normal"), ("car", "pasture", "anomalous")}
    with pytest.raises(DataError, match="unknown context 'moon'"):
        rb.family("moon")


def test_to_json_round_trips(builtin: Rulebook) -> None:
    again = Rulebook.from_dict(json.loads(json.dumps(builtin.to_json())))
    assert (again.subjects, again.contexts, again.rules) == (builtin.subjects, builtin.contexts, builtin.rules)


def test_csv_equals_json(tmp_path: Path) -> None:
    rows = ["subject,context,label,family"]
    for s, by in SMALL["rules"].items():
        for label, ctxs in by.items():
            rows += [f"{s},{c},{label},{SMALL['contexts'][c]}" for c in ctxs]
    from_csv = Rulebook.load(write(tmp_path, "\n".join(rows) + "\n", "rules.csv"))
    from_json = Rulebook.load(write(tmp_path, SMALL))
    assert from_csv.rules == from_json.rules
    assert dict(from_csv.contexts) == dict(from_json.contexts)
    plain = Rulebook.load(write(tmp_path, "subject,context,label\ncow,a,normal\ncow,b,1\n", "plain.csv"))
    assert plain.family("a") == "a" and plain.anomalous_contexts("cow") == ["b"]


def _broken(**changes: object) -> dict:
    data = json.loads(json.dumps(SMALL))
    for key, value in changes.items():
        data[key] = value
    return data


@pytest.mark.parametrize("data, problem", [
    (_broken(rules={**SMALL["rules"], "horse": {"normal": ["pasture"]}}), "unknown subject 'horse'"),
    (_broken(rules={"cow": {"normal": ["pasture", "moon"], "anomalous": ["street"]},
                    "car": SMALL["rules"]["car"]}), "unknown context 'moon'"),
    (_broken(rules={"cow": {"normal": ["pasture"], "weird": ["street"]}, "car": SMALL["rules"]["car"]}),
     "unknown label 'weird'"),
    (_broken(rules={"cow": {"normal": ["pasture"]}, "car": SMALL["rules"]["car"]}), "'cow' has no anomalous"),
    (_broken(rules={"cow": {"anomalous": ["pasture"]}, "car": SMALL["rules"]["car"]}), "'cow' has no normal"),
    (_broken(subjects=["cow", "car", "boat"]), "'boat' has no normal"),
    (_broken(rules={"cow": {"normal": ["pasture"], "anomalous": ["pasture"]}, "car": SMALL["rules"]["car"]}),
     "both normal and anomalous"),
    ({}, "rulebook is empty"),
    ({"subjects": [], "contexts": {}, "rules": {}}, "rulebook is empty"),
    (_broken(rule={}), "unknown rulebook field"),
    (_broken(subjects=["cow", "cow", "car"]), "duplicate subject"),
    (_broken(contexts=["a/b"]), "invalid context name"),
    ([1, 2], "must be a JSON object"),
])
def test_invalid_rulebooks_fail_naming_the_file(tmp_path: Path, data: object, problem: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(DataError) as err:
        Rulebook.load(path)
    assert str(err.value).startswith(f"{path}: ")
    assert problem in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text, problem", [
    ('{"rules": ', "invalid JSON at line 1"),
    ("", "invalid JSON"),
])
def test_unparsable_json(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=problem) as err:
        Rulebook.load(path)
    assert str(err.value).startswith(str(path))


def test_bad_csv_and_missing_file(tmp_path: Path) -> None:
    bad_label = write(tmp_path, "subject,context,label\ncow,a,normal\ncow,b,maybe\n", "r.csv")
    with pytest.raises(DataError, match=r"r.csv: line 3: unknown label 'maybe'"):
        Rulebook.load(bad_label)
    no_header = write(tmp_path, "cow,a,normal\n", "h.csv")
    with pytest.raises(DataError, match="needs a header"):
        Rulebook.load(no_header)
    two_families = write(tmp_path, "subject,context,label,family\ncow,a,normal,x\ncow,a,normal,y\n", "f.csv")
    with pytest.raises(DataError, match="two families"):
        Rulebook.load(two_families)
    with pytest.raises(DataError, match="rulebook file not found"):
        Rulebook.load(tmp_path / "nope.json")


def test_spread_is_even_deterministic_and_seeded(builtin: Rulebook) -> None:
    n_pairs = len(builtin.allowed_pairs())
    size = 3 * n_pairs + 7
    plan = spread_over_pairs(builtin, size, seed=0)
    assert len(plan) == size
    counts = Counter((s, c) for s, c, _ in plan)
    assert set(counts.values()) == {3, 4} and sum(v == 4 for v in counts.values()) == 7
    assert all(builtin.label(s, c) == ("anomalous" if lab else "normal") for s, c, lab in plan)
    assert plan == spread_over_pairs(builtin, size, seed=0)
    assert plan != spread_over_pairs(builtin, size, seed=1)
    assert sorted(plan) != plan  # shuffled, not grouped by pair


def test_tiny_spread_still_covers_every_subject_with_both_labels(builtin: Rulebook) -> None:
    n = len(builtin.subjects)
    for seed in range(3):
        plan = spread_over_pairs(builtin, 2 * n, seed)
        assert {(s, lab) for s, _, lab in plan} == {(s, lab) for s in builtin.subjects for lab in (0, 1)}
        # with four per subject, each subject's two normal contexts are relatives (same family)
        plan = spread_over_pairs(builtin, 4 * n, seed)
        for subject in builtin.subjects:
            normals = {c for s, c, lab in plan if s == subject and lab == 0}
            assert len(normals) == 2 and len({builtin.family(c) for c in normals}) == 1, (subject, normals)


def test_spread_refuses_a_non_positive_size(builtin: Rulebook) -> None:
    with pytest.raises(DataError, match="size must be a positive"):
        spread_over_pairs(builtin, 0, seed=0)
