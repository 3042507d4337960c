"""The captioned world: every pair, content-only captions, and disjoint from the benchmark's random streams."""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter

import numpy as np
import pytest

from caadbench.data.compose import sample_rng
from caadbench.data.sources.synthetic import SyntheticSource
from caadbench.data.sources.synthetic.contexts import CONTEXTS
from caadbench.data.sources.synthetic.subjects import SUBJECTS
from caadbench.data.world import (
    COLOURS,
    EVAL_PREFIX,
    EVAL_SEED,
    FORBIDDEN_WORDS,
    MONITOR_PREFIX,
    MONITOR_SEED,
    WORLD_SEED,
    VIEWS,
    SceneFacts,
    build_world,
    caption_words,
    check_caption,
    closeup_box,
    cutout,
    describe,
    render,
    scene_facts,
    world_specs,
    words,
)
from caadbench.errors import DataError
from caadbench.models.world.config import PretrainConfig

STREAMS = ("context", "subject", "place")


def test_specs_cover_every_drawable_pair_evenly():
    specs = world_specs(2 * len(SUBJECTS) * len(CONTEXTS))
    pairs = Counter((s.subject, s.context) for s in specs)
    assert set(pairs) == set(itertools.product(SUBJECTS, CONTEXTS))  # anomalous and excluded pairs included
    assert set(pairs.values()) == {2}
    assert all("." not in s.key and s.key.startswith("world-") for s in specs)
    assert world_specs(40) == world_specs(40) and world_specs(40) != world_specs(40, seed=WORLD_SEED + 1)


def test_specs_refuse_what_cannot_be_drawn():
    with pytest.raises(DataError, match="at least 1"):
        world_specs(0)
    with pytest.raises(DataError, match="cannot draw subject 'unicorn'"):
        world_specs(5, subjects=["unicorn"])


def every_facts():
    """Every subject, context, size and occlusion; colours and positions rotating through all of theirs."""
    colours, positions = ["", *COLOURS], ["on the left", "in the middle", "on the right"]
    combos = itertools.product(SUBJECTS, CONTEXTS, ["", "small", "large"], [False, True])
    for i, (subject, context, size, occluded) in enumerate(combos):
        yield SceneFacts(subject, context, colours[i % len(colours)], size, positions[i % 3], occluded)


def test_captions_describe_content_and_never_use_a_forbidden_word():
    spec = world_specs(1)[0]
    seen = set()
    for facts in every_facts():
        for variant, view in itertools.product(range(4), VIEWS):
            text = describe(spec, facts, view=view, variant=variant)
            used = set(caption_words(text))
            assert not used & FORBIDDEN_WORDS, text
            assert set(words(facts.subject).split()) <= used or set(words(facts.context).split()) <= used, text
            seen.add(text)
    assert len(seen) > 2000  # templates, adjectives and positions really vary


def test_the_forbidden_list_covers_the_prompt_and_rulebook_vocabulary():
    from caadbench.models import prompts

    states = [*prompts.NORMAL_STATES, *prompts.ANOMALOUS_STATES, *prompts.CONTEXT_NORMAL_STATES,
              *prompts.CONTEXT_ANOMALOUS_STATES, "normal", "anomalous", "excluded"]
    content = set(caption_words(" ".join(list(SUBJECTS) + list(CONTEXTS)))) | {"in", "a", "without", "with", "its",
                                                                               "where", "it", "does", "not", "place",
                                                                               "setting", "surroundings", "an",
                                                                               "out", "of"}
    for state in states:
        state_words = set(caption_words(state.format("")))
        assert state_words - content <= FORBIDDEN_WORDS, state
        assert state_words & FORBIDDEN_WORDS or state_words <= content, state
    with pytest.raises(DataError, match="forbidden word"):
        check_caption("a photo of an unusual cow on the highway.")


def test_every_view_shows_the_subject():
    spec = world_specs(3)[2]
    scene = render(spec)
    facts = scene_facts(spec, scene)
    assert (facts.subject, facts.context) == (spec.subject, spec.context)
    x0, y0, x1, y1 = closeup_box(scene, sample_rng(spec.seed, spec.key, "closeup"))
    assert x1 - x0 == y1 - y0 and scene.mask[y0:y1, x0:x1].sum() == scene.mask.sum()  # the whole subject inside
    alone = cutout(spec)
    assert alone.mask.sum() > scene.mask.sum()  # the same subject, larger, on a plain backdrop
    assert 0.3 * 256 <= alone.params["height"] <= 0.92 * 256


def test_building_does_not_depend_on_the_number_of_workers():
    specs = world_specs(6)
    one, two = build_world(specs, 64, workers=1, chunk=2, progress=False), build_world(specs, 64, workers=2,
                                                                                          chunk=2, progress=False)
    assert set(one.views) == set(VIEWS) and all(v.shape == (6, 3, 64, 64) for v in one.views.values())
    assert all(np.array_equal(one.views[v], two.views[v]) for v in VIEWS)
    assert one.captions == two.captions and len(one.captions["cutout"][0]) == 4


def stream_seeds(seed: int, keys) -> set[bytes]:
    """The exact 128-bit seeds :func:`sample_rng` derives for every stream of every key."""
    return {hashlib.sha256(f"{int(seed)}/{key}/{stream}".encode()).digest()[:16] for key in keys for stream in STREAMS}


def test_no_world_stream_equals_a_stream_of_the_default_benchmark():
    """Every image is a pure function of its three stream seeds (``draw_scene``), so disjoint seeds mean no world
    scene can be drawn as a benchmark image; the pixels of a sample of both sides are compared as well."""
    bench = SyntheticSource()
    bench_specs = bench.specs()
    benchmark = stream_seeds(bench.seed, [s.key for s in bench_specs])
    default = PretrainConfig()
    world = (stream_seeds(WORLD_SEED, [s.key for s in world_specs(default.scenes)])
             | stream_seeds(EVAL_SEED, [s.key for s in world_specs(1500, EVAL_SEED, prefix=EVAL_PREFIX)])
             | stream_seeds(MONITOR_SEED, [s.key for s in world_specs(300, MONITOR_SEED, prefix=MONITOR_PREFIX)]))
    assert len(benchmark) == 3 * len(bench_specs) and not benchmark & world
    digest = lambda a: hashlib.sha256(a.tobytes()).hexdigest()  # noqa: E731
    bench_images = {digest(bench.load(s).image) for s in bench_specs[::150]}
    same_pairs = {(s.subject, s.context) for s in bench_specs[::150]}
    world_images = {digest(render(s).image) for s in world_specs(600) if (s.subject, s.context) in same_pairs}
    assert world_images and not bench_images & world_images
