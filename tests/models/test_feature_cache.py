"""The process-wide image-feature cache: bit-identical to computing afresh, never another input's or weights' entry."""

from __future__ import annotations

import torch

from caadbench.models import FitData, create_model
from caadbench.models.backbone import ClipBackbone
from caadbench.models.feature_cache import ENV_MB, IMAGE_FEATURES, tensor_digest
from tests.baselines.reference import make_batch

WINDOWS = torch.tensor([[0, 1, 8, 9], [9, 10, 17, 18]])


def images(seed: int, n: int = 2) -> torch.Tensor:
    return torch.rand(n, 3, 128, 128, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def test_models_score_the_same_with_and_without_the_cache(tiny_backbone):
    batch = make_batch(images(3, 3), ["cow", "car", "cow"])
    support = make_batch(images(8, 2), ["cow", "car"])
    names = ("clip", "clip.ensemble", "clip.few_shot", "winclip", "winclip.context", "winclip.plus")

    def predict(name):
        model = create_model(name, backbone=tiny_backbone)
        model.fit(FitData(subjects=["car", "cow"], support=[support]))
        return model.predict(batch)

    with IMAGE_FEATURES.disabled():
        expected = {n: predict(n) for n in names}
    assert IMAGE_FEATURES.stats()["misses"] == 0
    for repeat in range(2):  # clip fills what clip.ensemble reads, winclip what winclip.context reads, ...
        for name in names:
            got = predict(name)
            assert torch.equal(got.scores, expected[name].scores) and torch.equal(got.maps, expected[name].maps)
        if repeat == 0:
            first = IMAGE_FEATURES.stats()
    assert first["hits"] > 0 and first["misses"] > 0
    assert IMAGE_FEATURES.stats()["misses"] == first["misses"]  # the second pass computed nothing


@torch.no_grad()
def test_a_hit_is_the_same_call_on_the_same_pixels(tiny_backbone):
    x = images(1)
    first = tiny_backbone.encode_image(x)
    assert torch.equal(tiny_backbone.encode_image(x.clone()), first)  # equal pixels in another tensor: a hit
    assert IMAGE_FEATURES.stats()["hits"] == 1
    changed = x.clone()
    changed[0, 0, 0, 0] += 1e-3
    assert not torch.equal(tiny_backbone.encode_image(changed)[0], first[0])
    tiny_backbone.encode_image(x, normalize=False)
    tiny_backbone.encode_token_subsets(x, WINDOWS)
    tiny_backbone.encode_token_subsets(x, WINDOWS[:1])
    assert IMAGE_FEATURES.stats() == {**IMAGE_FEATURES.stats(), "hits": 1, "misses": 5}
    first.zero_()  # a returned tensor is the caller's own
    assert not torch.equal(tiny_backbone.encode_image(x), first)


@torch.no_grad()
def test_other_weights_never_hit(tiny_backbone, tmp_path):
    x = images(2)
    base = tiny_backbone.encode_image(x)
    other = ClipBackbone("caad-tiny", init_seed=1)
    path = tmp_path / "tiny.pt"
    torch.save(other.model.state_dict(), path)
    from_file = ClipBackbone("caad-tiny", pretrained=str(path), init_seed=0)  # seed 0's name, seed 1's weights
    filed = from_file.encode_image(x)
    assert IMAGE_FEATURES.stats()["hits"] == 0 and not torch.allclose(filed, base)
    torch.testing.assert_close(filed, other.encode_image(x))


@torch.no_grad()
def test_changed_weights_never_hit():
    backbone = ClipBackbone("caad-tiny", init_seed=0)
    x = images(4)
    before = backbone.encode_image(x)
    backbone.model.visual.proj.mul_(2.0)  # an in-place update, as an optimiser step makes
    after = backbone.encode_image(x)
    assert IMAGE_FEATURES.stats()["hits"] == 0
    assert not torch.allclose(before, backbone.encode_image(x, normalize=False))
    torch.testing.assert_close(after, before)  # normalised embeddings ignore a global scale...
    assert IMAGE_FEATURES.stats()["misses"] == 3  # ...yet each state of the weights had its own entry


def test_hooks_gradients_and_a_zero_limit_bypass(tiny_backbone, monkeypatch):
    x = images(5)
    with torch.no_grad(), tiny_backbone.block_hooks("image", {0: lambda y: y + 1.0}):
        assert tiny_backbone.image_tower_hooked()
        tiny_backbone.encode_image(x)
        tiny_backbone.encode_token_subsets(x, WINDOWS)
    assert not tiny_backbone.image_tower_hooked()
    tiny_backbone.encode_image(x)  # gradients enabled: never stored
    monkeypatch.setenv(ENV_MB, "0")
    with torch.no_grad():
        tiny_backbone.encode_image(x)
    assert IMAGE_FEATURES.stats() == {"entries": 0, "bytes": 0, "hits": 0, "misses": 0}


@torch.no_grad()
def test_least_recently_used_entries_go_beyond_the_limit(tiny_backbone, monkeypatch):
    one = tiny_backbone.encode_image(images(6)).numel() * 4
    IMAGE_FEATURES.clear()
    monkeypatch.setenv(ENV_MB, str(2.5 * one / 2**20))  # room for two entries
    for seed in (6, 7, 6, 8):  # 6 is used again before 8 arrives, so 7 is the one evicted
        tiny_backbone.encode_image(images(seed))
    assert IMAGE_FEATURES.stats() == {"entries": 2, "bytes": 2 * one, "hits": 1, "misses": 3}
    tiny_backbone.encode_image(images(6))
    assert IMAGE_FEATURES.stats()["hits"] == 2


def test_digest_tells_shape_dtype_and_bytes_apart():
    x = torch.arange(6, dtype=torch.float32)
    digests = {tensor_digest(x), tensor_digest(x.view(2, 3)), tensor_digest(x.double()), tensor_digest(x + 1),
               tensor_digest(x.view(2, 3).t())}
    assert len(digests) == 5 and tensor_digest(x) == tensor_digest(x.clone())


@torch.no_grad()
def test_image_tokens_are_cached_per_blocks_and_projection(tiny_backbone):
    x = images(9)
    with IMAGE_FEATURES.disabled():
        fresh = tiny_backbone.image_tokens(x, layers=[2, -1])
    first = tiny_backbone.image_tokens(x, layers=[-1, 2])  # the same blocks in another spelling
    again = tiny_backbone.image_tokens(x, layers=[2, 7])
    raw = tiny_backbone.image_tokens(x, layers=[2, 7], project=False)
    assert IMAGE_FEATURES.stats()["hits"] == 1 and IMAGE_FEATURES.stats()["misses"] == 2
    for got in (first, again):
        assert torch.equal(got.embedding, fresh.embedding)
        assert got.patches.keys() == fresh.patches.keys() == {2, 7}
        assert all(torch.equal(got.patches[i], fresh.patches[i]) and torch.equal(got.cls[i], fresh.cls[i])
                   for i in (2, 7))
    assert raw.patches[7].shape[-1] == tiny_backbone.width("image") != fresh.patches[7].shape[-1]
    again.patches[7].zero_()  # a hit is the caller's own copy
    assert torch.equal(tiny_backbone.image_tokens(x, layers=[2, 7]).patches[7], fresh.patches[7])
