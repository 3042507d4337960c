"""The ``synthetic`` source: specs, determinism by (seed, key), labels that never change pixels, masks equal to
the visible subject, variation, and contexts that differ (families alike)."""

from __future__ import annotations

import dataclasses
import json
import pickle
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from caadbench.data.compose import sample_rng
from caadbench.data.imageio import encode_png
from caadbench.data.rulebook import Rulebook
from caadbench.data.sample import KEY_PATTERN
from caadbench.data.sources import get_source_class
from caadbench.data.sources.synthetic import BUILTIN_RULEBOOK, DEFAULT_SIZE, SyntheticSource
from caadbench.data.sources.synthetic import source as synthetic_source
from caadbench.data.sources.synthetic.contexts import CONTEXTS, draw_context
from caadbench.data.sources.synthetic.subjects import SUBJECTS
from caadbench.errors import DataError

MAGENTA = (255, 0, 255)


def make(seed: int = 0, size: int = 40, image_size: int = 64, **kw) -> SyntheticSource:
    return get_source_class("synthetic")(root=None, seed=seed, size=size, image_size=image_size, **kw)


def png(sample) -> tuple[bytes, bytes]:
    return encode_png(sample.image), encode_png(sample.mask)


def test_registered_with_the_common_constructor() -> None:
    src = make()
    assert isinstance(src, SyntheticSource) and src.name == "synthetic" and src.kind == "contextual"
    assert get_source_class("synthetic")(seed=0).size == DEFAULT_SIZE == 3000
    assert src.rulebook() == Rulebook.load(BUILTIN_RULEBOOK).to_json()
    assert src.describe()["image_size"] == 64 and src.describe()["rulebook"] == "builtin"


def test_specs_keys_labels_and_spread() -> None:
    src = make(size=48)
    specs = src.specs()
    assert len(specs) == 48
    keys = [s.key for s in specs]
    assert len(set(keys)) == 48 and all(KEY_PATTERN.match(k) and "." not in k for k in keys)
    for i, s in enumerate(specs):
        assert s.key == f"syn-{s.subject}-{s.context}-{i:05d}"
        assert s.source == f"synthetic:seed0/{i:05d}"
        assert s.label == int(src.rules.label(s.subject, s.context) == "anomalous")
        assert s.payload["family"] == src.rules.family(s.context)
    # even a tiny set has every subject with both labels
    assert {(s.subject, s.label) for s in specs} == {(n, lab) for n in src.rules.subjects for lab in (0, 1)}
    assert specs == make(size=48).specs()
    assert [(s.subject, s.context) for s in specs] != [(s.subject, s.context) for s in make(seed=1, size=48).specs()]


def test_default_size_is_balanced_over_subjects_and_labels() -> None:
    rules = Rulebook.load(BUILTIN_RULEBOOK)
    specs = get_source_class("synthetic")(seed=0).specs()
    counts = Counter((s.subject, s.context) for s in specs)
    assert len(specs) == 3000 and len(counts) == len(rules.allowed_pairs())
    cells = Counter((s.subject, s.label) for s in specs)
    share = 3000 // (2 * len(rules.subjects))
    assert all(share - 8 <= n <= share + 4 for n in cells.values()), cells  # every subject half normal, half not
    for (subject, context), n in counts.items():  # even over a label's contexts, up to the remainder
        k = len(rules.normal_contexts(subject) if rules.label(subject, context) == "normal"
                else rules.anomalous_contexts(subject))
        assert abs(n - share / k) <= 1.5, (subject, context, n)


def test_pair_allocation_is_still_even() -> None:
    from caadbench.data.rulebook import spread_over_pairs

    rules = Rulebook.load(BUILTIN_RULEBOOK)
    counts = Counter((s, c) for s, c, _ in spread_over_pairs(rules, 3000, 0, "pairs"))
    assert max(counts.values()) - min(counts.values()) <= 1


def test_load_is_deterministic_by_seed_and_key_not_by_order() -> None:
    specs = make(size=24).specs()
    first = [png(make(size=24).load(s)) for s in specs[:6]]
    fresh = make(size=24)
    backwards = [png(fresh.load(s)) for s in reversed(specs[:6])][::-1]
    assert first == backwards
    other = make(seed=1, size=24)  # same keys, another seed
    assert all(png(other.load(s))[0] != f[0] for s, f in zip(specs[:6], first))


def test_pickled_source_draws_the_same_images() -> None:
    src = make(size=24)
    spec = src.specs()[3]
    assert png(pickle.loads(pickle.dumps(src)).load(spec)) == png(src.load(spec))


def test_the_label_never_changes_a_pixel() -> None:
    src = make(size=24)
    for spec in src.specs()[:8]:
        flipped = dataclasses.replace(spec, label=1 - spec.label)
        a, b = src.load(spec), src.load(flipped)
        assert (a.label, b.label) == (spec.label, 1 - spec.label)
        assert png(a) == png(b)


def test_samples_are_valid_with_binary_non_empty_masks() -> None:
    src = make(size=30, image_size=96)
    for spec in src.specs():
        s = src.load(spec)
        assert s.image.shape == (96, 96, 3) and s.mask.shape == (96, 96)
        assert set(np.unique(s.mask)) == {0, 255}
        assert 0.003 < (s.mask > 0).mean() < 0.6
        assert s.extra["family"] == src.rules.family(spec.context)
        json.dumps(s.metadata())


def test_every_subject_and_context_is_drawable_at_small_sizes() -> None:
    assert set(SUBJECTS) >= set(Rulebook.load(BUILTIN_RULEBOOK).subjects)
    src = make(size=len(CONTEXTS), image_size=48)
    base = src.specs()[0]
    for i, (subject, context) in enumerate(zip(list(SUBJECTS) * 2, CONTEXTS)):
        s = src.load(dataclasses.replace(base, key=f"k-{i}", subject=subject, context=context))
        assert s.mask.any(), (subject, context)


@pytest.fixture()
def magenta_subjects(monkeypatch: pytest.MonkeyPatch) -> None:
    """Draw every subject in pure magenta, a colour no context or prop uses."""
    real = synthetic_source.draw_subject

    def draw(name: str, rng: np.random.Generator, height: int):
        layer = real(name, rng, height)
        rgb = layer.rgb.copy()
        rgb[...] = MAGENTA
        return dataclasses.replace(layer, rgb=rgb)

    monkeypatch.setattr(synthetic_source, "draw_subject", draw)


def test_mask_is_the_visible_subject_and_occluders_cut_it(magenta_subjects: None) -> None:
    src = make(size=40, occlusion=1.0, shadow=1.0)
    occluded = 0
    for spec in src.specs():
        s = src.load(spec)
        np.testing.assert_array_equal(s.mask == 255, (s.image == MAGENTA).all(-1), err_msg=spec.key)
        gen = s.extra["generator"]
        occluded += gen["occluders"] > 0 and gen["visible_fraction"] < 1
        assert gen["visible_fraction"] >= 0.5
    assert occluded >= 10


def test_images_vary_within_a_class_and_are_textured() -> None:
    src = make(size=300, image_size=64)
    cows = [s for s in src.specs() if s.subject == "cow" and s.context == "pasture"][:2]
    images = [src.load(s) for s in cows]
    assert len(images) == 2 and png(images[0]) != png(images[1])
    shapes = [src.load(s).extra["generator"] for s in src.specs()[:20]]
    assert len({(g["width"], g["height"], g["x"]) for g in shapes}) >= 15  # pose, scale and position vary
    for s in images:
        windows = [s.image[y:y + 16, x:x + 16] for y in range(0, 64, 16) for x in range(0, 64, 16)]
        assert sum(w.reshape(-1, 3).std(0).max() > 0 for w in windows) == len(windows)


def test_subject_layers_vary_in_shape_colour_and_flip() -> None:
    for name in SUBJECTS:
        layers = [synthetic_source.draw_subject(name, sample_rng(0, f"k{i}", "subject"), 60) for i in range(6)]
        assert len({layer.mask.shape for layer in layers}) >= 3, name
        assert len({tuple(np.median(layer.rgb[layer.mask], 0)) for layer in layers}) >= 2, name


def _colour_features(img: np.ndarray) -> np.ndarray:
    f = img.astype(np.float32) / 255
    thirds = np.array_split(f, 3, axis=0)
    return np.concatenate([np.r_[t.mean((0, 1)), t.std((0, 1))] for t in thirds]
                          + [4 * np.abs(np.diff(f, axis=1)).mean((0, 1))])


def test_contexts_are_told_apart_by_colour_statistics_and_relatives_look_alike() -> None:
    names = list(CONTEXTS)
    feats = np.array([[_colour_features(draw_context(c, sample_rng(0, f"{c}-{k}", "context"), 64)[0])
                       for k in range(6)] for c in names])  # (contexts, draws, features)
    n_ctx, n_draw, _ = feats.shape
    hits = 0
    for c in range(n_ctx):
        for k in range(n_draw):
            keep = np.ones(n_draw, bool)
            keep[k] = False
            cents = np.array([feats[o][keep if o == c else slice(None)].mean(0) for o in range(n_ctx)])
            hits += int(np.argmin(((cents - feats[c, k]) ** 2).sum(1)) == c)
    assert hits / (n_ctx * n_draw) >= 0.85  # leave-one-out nearest centroid on 19 colour statistics
    family = dict(Rulebook.load(BUILTIN_RULEBOOK).contexts)
    cents = feats.mean(1)
    dist = np.sqrt(((cents[:, None] - cents[None]) ** 2).sum(-1))
    same = [dist[i, j] for i in range(n_ctx) for j in range(i) if family[names[i]] == family[names[j]]]
    other = [dist[i, j] for i in range(n_ctx) for j in range(i) if family[names[i]] != family[names[j]]]
    assert np.mean(same) < 0.8 * np.mean(other)


def test_custom_rulebook_via_root(tmp_path: Path) -> None:
    good = {"contexts": {"pasture": "g", "meadow": "g", "lake": "w", "sea": "w"},
            "rules": {"cow": {"normal": ["pasture", "meadow"], "anomalous": ["lake", "sea"]}}}
    (tmp_path / "rulebook.json").write_text(json.dumps(good))
    src = get_source_class("synthetic")(root=tmp_path, seed=0, size=8, image_size=48)
    assert {s.subject for s in src.specs()} == {"cow"} and src.load(src.specs()[0]).mask.any()
    assert src.describe()["rulebook"] == str(tmp_path / "rulebook.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**good, "rules": {"unicorn": good["rules"]["cow"]}}))
    with pytest.raises(DataError, match=re.escape(f"{bad}: the generator cannot draw subject 'unicorn'")):
        get_source_class("synthetic")(root=bad)
    with pytest.raises(DataError, match="no rulebook.json"):
        get_source_class("synthetic")(root=tmp_path / "..")


@pytest.mark.parametrize("kw, problem", [({"size": 0}, "--size"), ({"image_size": 8}, "--image-size")])
def test_bad_parameters(kw: dict, problem: str) -> None:
    with pytest.raises(DataError, match=problem):
        get_source_class("synthetic")(**kw)
