"""The process-wide frozen-text cache: identical to encoding afresh, keyed by the weights, bypassed under hooks."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from caadbench.models import create_model, text_cache
from caadbench.models.backbone import ClipBackbone
from caadbench.models.prompts import class_prototypes, get_prompt_set
from tests.baselines.reference import make_batch

SUBJECTS = ["cow", "car"]


@pytest.fixture(autouse=True)
def empty_cache():
    text_cache.clear()
    yield
    text_cache.clear()


def test_cached_equals_encoding_afresh(tiny_backbone):
    prompts = get_prompt_set("winclip")
    with text_cache.disabled():
        fresh = text_cache.frozen_prototypes(tiny_backbone, prompts, SUBJECTS)
    assert text_cache.stats() == {"entries": 0, "hits": 0, "misses": 0}
    first = text_cache.frozen_prototypes(tiny_backbone, prompts, SUBJECTS)
    again = text_cache.frozen_prototypes(tiny_backbone, prompts, SUBJECTS[::-1])
    assert text_cache.stats() == {"entries": 2, "hits": 2, "misses": 2}
    assert torch.equal(first, fresh) and torch.equal(again, fresh.flip(0))
    with torch.inference_mode():  # the independent reference: the prompt-ensemble recipe, one subject at a time
        reference = torch.stack([class_prototypes(tiny_backbone.encode_text, prompts, [s])[0] for s in SUBJECTS])
    assert torch.equal(first, reference)
    first.zero_()  # a returned tensor is the caller's own
    assert torch.equal(text_cache.frozen_prototypes(tiny_backbone, prompts, SUBJECTS), fresh)


@torch.no_grad()
def test_models_score_the_same_with_and_without_the_cache(tiny_backbone):
    images = torch.rand(3, 3, 128, 128, generator=torch.Generator().manual_seed(3))
    batch = make_batch(images, ["cow", "car", "cow"])
    with text_cache.disabled():
        expected = {n: create_model(n, backbone=tiny_backbone).predict(batch) for n in ("clip.ensemble", "winclip")}
    for _ in range(2):  # the first pass fills the cache, the second reads it, across two models
        for name, want in expected.items():
            got = create_model(name, backbone=tiny_backbone).predict(batch)
            assert torch.equal(got.scores, want.scores) and torch.equal(got.maps, want.maps)
    assert text_cache.stats()["hits"] > 0


def test_other_weights_never_hit(tiny_backbone, tmp_path):
    prompts = get_prompt_set("two")
    base = text_cache.frozen_prototypes(tiny_backbone, prompts, ["cow"])
    other_seed = ClipBackbone("caad-tiny", init_seed=1)
    seeded = text_cache.frozen_prototypes(other_seed, prompts, ["cow"])
    path = tmp_path / "tiny.pt"
    torch.save(other_seed.model.state_dict(), path)
    from_file = ClipBackbone("caad-tiny", pretrained=str(path), init_seed=0)  # seed 0's name, seed 1's weights
    filed = text_cache.frozen_prototypes(from_file, prompts, ["cow"])
    assert text_cache.stats() == {"entries": 3, "hits": 0, "misses": 3}
    assert not torch.equal(seeded, base)
    torch.testing.assert_close(filed, seeded)  # same numbers, yet its own entry: the key is the file's sha256
    assert not torch.allclose(filed, base)
    assert from_file.identity.weights_key() != tiny_backbone.identity.weights_key()


def test_other_prompts_and_subjects_are_other_entries(tiny_backbone):
    two, ensemble = get_prompt_set("two"), get_prompt_set("winclip")
    a = text_cache.frozen_prototypes(tiny_backbone, two, ["cow"])
    b = text_cache.frozen_prototypes(tiny_backbone, ensemble, ["cow"])
    c = text_cache.frozen_prototypes(tiny_backbone, two, ["traffic_light"])
    assert text_cache.stats()["misses"] == 3 and not torch.equal(a, b) and not torch.equal(a, c)


def test_hooked_text_tower_bypasses_the_cache(tiny_backbone):
    prompts = get_prompt_set("two")
    plain = text_cache.frozen_prototypes(tiny_backbone, prompts, ["cow"])
    with tiny_backbone.block_hooks("text", {0: lambda y: y + 1.0}):
        assert tiny_backbone.text_tower_hooked()
        hooked = text_cache.frozen_prototypes(tiny_backbone, prompts, ["cow"])
    assert not tiny_backbone.text_tower_hooked()
    assert not torch.allclose(hooked, plain)
    assert text_cache.stats() == {"entries": 1, "hits": 0, "misses": 1}
    assert torch.equal(text_cache.frozen_prototypes(tiny_backbone, prompts, ["cow"]), plain)


def test_autocast_is_part_of_the_key(tiny_backbone):
    prompts = get_prompt_set("two")
    text_cache.frozen_prototypes(tiny_backbone, prompts, ["cow"])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        text_cache.frozen_prototypes(tiny_backbone, prompts, ["cow"])
    assert text_cache.stats() == {"entries": 2, "hits": 0, "misses": 2}


# ----------------------------------------------------------------------------- on disk
@pytest.fixture
def disk(tmp_path, monkeypatch):
    root = tmp_path / "text-cache"
    monkeypatch.setenv(text_cache.ENV_DIR, str(root))
    return root


def test_disk_entries_are_read_back_bit_identical_in_a_new_process_state(tiny_backbone, disk):
    prompts = get_prompt_set("winclip")
    with text_cache.disabled():
        fresh = text_cache.frozen_prototypes(tiny_backbone, prompts, SUBJECTS)
    assert not disk.exists()  # disabled: neither memory nor disk
    first = text_cache.frozen_prototypes(tiny_backbone, prompts, SUBJECTS)
    assert text_cache.disk_stats() == {"reads": 0, "writes": 2, "rejected": 0}
    assert len(list(disk.glob("*.safetensors"))) == 2 and not list(disk.glob(".*"))  # no temporaries left
    text_cache.clear()  # what a later process starts from: nothing in memory, the files on disk
    again = text_cache.frozen_prototypes(tiny_backbone, prompts, SUBJECTS)
    assert text_cache.disk_stats() == {"reads": 2, "writes": 0, "rejected": 0}
    assert torch.equal(first, fresh) and torch.equal(again, fresh) and again.dtype == fresh.dtype


def test_disk_entries_of_other_weights_or_another_format_are_never_read(tiny_backbone, disk, monkeypatch):
    prompts = get_prompt_set("two")
    base = text_cache.frozen_prototypes(tiny_backbone, prompts, ["cow"])
    text_cache.clear()
    other = text_cache.frozen_prototypes(ClipBackbone("caad-tiny", init_seed=1), prompts, ["cow"])
    assert text_cache.disk_stats()["reads"] == 0 and not torch.equal(base, other)
    text_cache.clear()
    monkeypatch.setattr(text_cache, "DISK_FORMAT", text_cache.DISK_FORMAT + 1)
    text_cache.frozen_prototypes(tiny_backbone, prompts, ["cow"])
    assert text_cache.disk_stats() == {"reads": 0, "writes": 1, "rejected": 0}
    assert len(list(disk.glob("*.safetensors"))) == 3


def test_weights_known_only_by_name_stay_in_memory(tiny_backbone, disk):
    key = text_cache.entry_key(tiny_backbone, get_prompt_set("two"), "cow")
    assert text_cache._disk_entry(tiny_backbone.identity, key) is not None
    by_name = dataclasses.replace(tiny_backbone.identity, weights="openclip:some-tag", sha256=None)
    assert text_cache._disk_entry(by_name, key) is None


@pytest.mark.parametrize("damage", ["truncate", "swap"])
def test_a_damaged_or_foreign_entry_is_logged_encoded_afresh_and_replaced(tiny_backbone, disk, damage, caplog):
    prompts = get_prompt_set("two")
    want = text_cache.frozen_prototypes(tiny_backbone, prompts, ["cow", "car"])
    files = {s: text_cache._disk_entry(tiny_backbone.identity,
                                       text_cache.entry_key(tiny_backbone, prompts, s))[0] for s in ("cow", "car")}
    if damage == "truncate":
        files["cow"].write_bytes(files["cow"].read_bytes()[:40])
    else:  # car's prototypes under cow's name: the stored key tells them apart
        files["cow"].write_bytes(files["car"].read_bytes())
    text_cache.clear()
    got = text_cache.frozen_prototypes(tiny_backbone, prompts, ["cow", "car"])
    assert torch.equal(got, want)
    assert text_cache.disk_stats() == {"reads": 1, "writes": 1, "rejected": 1}
    assert str(files["cow"]) in caplog.text and "encoding afresh" in caplog.text
    text_cache.clear()
    text_cache.frozen_prototypes(tiny_backbone, prompts, ["cow"])
    assert text_cache.disk_stats() == {"reads": 1, "writes": 0, "rejected": 0}  # the replacement is good
