"""WinCLIP / WinCLIP+: windows, harmonic aggregation, token masking, the whole pipeline against a loop reference,
few-shot memories and their safetensors round trip. All on the random-init caad-tiny backbone (8x8 grid)."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from caadbench.baselines.winclip import WinClip, coverage_matrix, harmonic_aggregation, harmonic_mean, window_indices
from caadbench.errors import ModelError
from caadbench.models import FitData, create_model, text_cache
from caadbench.models.prompts import WINCLIP_PROMPTS, get_prompt_set
from tests.baselines.reference import hand_embedding, hand_forward, hand_patches, make_batch, two_way_probability


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(3, 3, 128, 128, generator=torch.Generator().manual_seed(3))


@pytest.fixture(scope="module")
def winclip(tiny_backbone) -> WinClip:
    return create_model("winclip", backbone=tiny_backbone)


@pytest.fixture(scope="module")
def plus(tiny_backbone, images) -> WinClip:
    model = create_model("winclip.plus", backbone=tiny_backbone)
    support = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(4))
    model.fit(FitData(subjects=["cow", "car"], support=[make_batch(support, ["cow", "car"])]))
    return model


# ----------------------------------------------------------------------------- windows
@pytest.mark.parametrize("grid,size", [((8, 8), 2), ((8, 8), 3), ((15, 15), 2), ((15, 15), 3), ((3, 5), 2)])
def test_window_indices_are_contiguous_row_major_blocks(grid, size):
    gh, gw = grid
    idx = window_indices(grid, size)
    assert idx.shape == ((gh - size + 1) * (gw - size + 1), size * size) and idx.dtype == torch.int64
    expected_top_left = [(r, c) for r in range(gh - size + 1) for c in range(gw - size + 1)]  # row-major windows
    for window, (r0, c0) in zip(idx.tolist(), expected_top_left):
        assert window == [(r0 + i) * gw + (c0 + j) for i in range(size) for j in range(size)]


def test_window_indices_small_example_and_bad_sizes():
    assert window_indices((3, 3), 2).tolist() == [[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]]
    assert len(window_indices((15, 15), 2)) == 196 and len(window_indices((15, 15), 3)) == 169
    for bad in (0, 9):
        with pytest.raises(ValueError, match="does not fit"):
            window_indices((8, 8), bad)


def test_coverage_counts_windows_per_patch():
    idx = window_indices((8, 8), 3)
    cover = coverage_matrix(idx, 64)
    for p in range(64):
        r, c = divmod(p, 8)
        brute = sum(1 for r0 in range(6) for c0 in range(6) if r0 <= r < r0 + 3 and c0 <= c < c0 + 3)
        assert cover[:, p].sum().item() == brute


# ----------------------------------------------------------------------------- aggregation
@pytest.mark.parametrize("g,size", [(8, 2), (8, 3), (15, 3)])
def test_harmonic_aggregation_equals_brute_force_loop(g, size):
    idx = window_indices((g, g), size)
    scores = torch.rand(2, len(idx), generator=torch.Generator().manual_seed(g * size)) * 0.98 + 0.01
    got = harmonic_aggregation(scores, coverage_matrix(idx, g * g))
    for b in range(2):
        for p in range(g * g):
            covering = [scores[b, m].item() for m, window in enumerate(idx.tolist()) if p in window]
            expected = len(covering) / sum(1.0 / s for s in covering)
            assert got[b, p].item() == pytest.approx(expected, rel=1e-5)


def test_harmonic_mean_and_zero_scores():
    a, b, c = torch.tensor([0.5, 0.2]), torch.tensor([0.25, 0.2]), torch.tensor([1.0, 0.0])
    got = harmonic_mean([a, b, c])
    assert got[0].item() == pytest.approx(3 / (2 + 4 + 1))
    assert got[1].item() < 1e-9  # a zero anywhere gives the harmonic mean's limit, not inf/nan
    agg = harmonic_aggregation(torch.tensor([[0.0, 0.5, 0.5, 0.5]]), coverage_matrix(window_indices((3, 3), 2), 9))
    assert torch.isfinite(agg).all() and agg[0, 0].item() < 1e-9 and agg[0, 8].item() == pytest.approx(0.5)


# ----------------------------------------------------------------------------- prompts
def test_prompt_counts_and_prototypes_per_subject(tiny_backbone, monkeypatch):
    assert len(WINCLIP_PROMPTS.prompts("cow", anomalous=False)) == 7 * 22
    assert len(WINCLIP_PROMPTS.prompts("cow", anomalous=True)) == 4 * 22
    model = create_model("winclip", backbone=tiny_backbone)
    text_cache.clear()  # other tests may have encoded these subjects in this process
    seen: list[int] = []
    encode = tiny_backbone.encode_text
    monkeypatch.setattr(tiny_backbone, "encode_text", lambda texts, **kw: (seen.append(len(texts)), encode(texts, **kw))[1])
    protos = model.text_prototypes(["cow", "car", "cow"])
    assert seen == [154 + 88, 154 + 88]  # one ensemble per distinct subject
    assert protos.shape == (3, 2, tiny_backbone.embed_dim)
    assert torch.equal(protos[0], protos[2]) and not torch.allclose(protos[0], protos[1])
    assert not torch.allclose(protos[0, 0], protos[0, 1])
    model.text_prototypes(["car"])  # cached: no new text encoding
    assert len(seen) == 2
    ctx = create_model("winclip.context", backbone=tiny_backbone)
    n_ctx = len(get_prompt_set("winclip+context").prompts("cow", anomalous=False))
    assert ctx.prototypes.prompts.prompts("cow", anomalous=False)[:154] == WINCLIP_PROMPTS.prompts("cow", anomalous=False)
    assert n_ctx > 154


# ----------------------------------------------------------------------------- windows through the encoder
@torch.no_grad()
def test_window_embeddings_differ_and_equal_encoding_the_window_alone(winclip, tiny_backbone, images):
    feats = winclip.encode(images[:2])
    for k in (2, 3):
        emb = feats.windows[k]
        assert emb.shape == (2, (8 - k + 1) ** 2, tiny_backbone.embed_dim)
        spread = (emb - emb.mean(dim=1, keepdim=True)).norm(dim=-1)
        assert (spread > 1e-3).all(), "window embeddings of one image must not all be equal"
        for m in (0, 7, len(emb[0]) - 1):
            ref = hand_embedding(tiny_backbone, images[:2], winclip.window_index(k)[m].tolist())
            torch.testing.assert_close(emb[:, m], ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(feats.image, hand_embedding(tiny_backbone, images[:2]), rtol=1e-4, atol=1e-5)


@torch.no_grad()
def test_windows_of_a_batch_go_through_few_encoder_calls(tiny_backbone, images):
    model = create_model("winclip", backbone=tiny_backbone, max_sequences=10_000)
    calls = []
    handle = tiny_backbone.image_blocks[0].register_forward_pre_hook(lambda m, a: calls.append(a[0].shape[0]))
    try:
        model.predict(make_batch(images, ["cow"] * 3))
    finally:
        handle.remove()
    assert calls == [3, 3 * 49, 3 * 36]  # whole images, then every 2x2 and every 3x3 window of all images at once
    chunked = create_model("winclip", backbone=tiny_backbone, max_sequences=60)
    torch.testing.assert_close(chunked.encode(images).windows[3], model.encode(images).windows[3])


@torch.no_grad()
def test_patch_memory_layers_differ(tiny_backbone, images):
    last = create_model("winclip.plus", backbone=tiny_backbone).encode(images[:1], patches=True).patches
    mid = create_model("winclip.plus", backbone=tiny_backbone, patch_layer=4).encode(images[:1], patches=True).patches
    joint = create_model("winclip.plus", backbone=tiny_backbone, patch_features="joint").encode(images[:1], patches=True)
    assert last.shape == (1, 64, tiny_backbone.model.visual.transformer.width)
    assert joint.patches.shape == (1, 64, tiny_backbone.embed_dim)
    assert not torch.allclose(last, mid, atol=1e-3)
    torch.testing.assert_close(last, hand_patches(tiny_backbone, images[:1], -1, project=False), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(mid, hand_patches(tiny_backbone, images[:1], 4, project=False), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- the whole algorithm vs loops
def reference_winclip(bb, image, normal, anomalous, scale, memory=None, scales=(2, 3)):
    """WinCLIP(+) for one image with Python loops over windows and patches, from hand-run encoders."""
    g = bb.grid_size[0]
    x = image[None]
    p_img = two_way_probability(hand_embedding(bb, x)[0], normal, anomalous, scale)
    zero_maps, few_maps = [], []
    if memory is not None:
        patches = hand_patches(bb, x, -1, project=False)[0]
        few_maps.append([0.5 * (1 - float((memory["patch"] @ patches[j]).max())) for j in range(g * g)])
    for s in scales:
        text, visual = {}, {}
        for r0, c0 in itertools.product(range(g - s + 1), repeat=2):
            e = hand_embedding(bb, x, [(r0 + i) * g + c0 + j for i in range(s) for j in range(s)])[0]
            text[r0, c0] = two_way_probability(e, normal, anomalous, scale)
            if memory is not None:
                visual[r0, c0] = 0.5 * (1 - float((memory[f"window{s}"] @ e).max()))

        def harmonic(scores, s=s):
            out = []
            for p in range(g * g):
                r, c = divmod(p, g)
                cover = [v for (r0, c0), v in scores.items() if r0 <= r < r0 + s and c0 <= c < c0 + s]
                out.append(len(cover) / sum(1 / v for v in cover))
            return out

        zero_maps.append(harmonic(text))
        if memory is not None:
            few_maps.append(harmonic(visual))
    zero = [(1 + len(scales)) / (1 / p_img + sum(1 / m[j] for m in zero_maps)) for j in range(g * g)]
    if memory is None:
        return p_img, torch.tensor(zero).view(g, g)
    few = [sum(m[j] for m in few_maps) / len(few_maps) for j in range(g * g)]
    return 0.5 * (p_img + max(few)), torch.tensor([(a + b) / 2 for a, b in zip(zero, few)]).view(g, g)


def reference_memory(bb, support, scales=(2, 3)):
    g = bb.grid_size[0]
    mem = {"patch": hand_patches(bb, support, -1, project=False).reshape(-1, bb.model.visual.transformer.width)}
    for s in scales:
        wins = [[(r0 + i) * g + c0 + j for i in range(s) for j in range(s)]
                for r0, c0 in itertools.product(range(g - s + 1), repeat=2)]
        mem[f"window{s}"] = torch.cat([hand_embedding(bb, support, w) for w in wins])
    return mem


def _upsample(grid_map, size):
    return F.interpolate(grid_map[None, None].float(), size=(size, size), mode="bilinear", align_corners=False)[0, 0]


@pytest.mark.parametrize("logit_scale", ["backbone", 100.0, None])
@torch.no_grad()
def test_zero_shot_equals_loop_reference(tiny_backbone, images, logit_scale):
    winclip = create_model("winclip", backbone=tiny_backbone, logit_scale=logit_scale)  # None: the default
    out = winclip.predict(make_batch(images[:2], ["cow", "car"]))
    assert out.scores.shape == (2,) and out.maps.shape == (2, 128, 128)
    assert torch.isfinite(out.scores).all() and torch.isfinite(out.maps).all()
    for i, subject in enumerate(["cow", "car"]):
        normal, anomalous = winclip.text_prototypes([subject])[0]
        scale = {"backbone": tiny_backbone.logit_scale, None: 1 / 0.07}.get(logit_scale, logit_scale)
        score, grid_map = reference_winclip(tiny_backbone, images[i], normal, anomalous, scale)
        assert out.scores[i].item() == pytest.approx(score, abs=1e-5)
        torch.testing.assert_close(out.maps[i], _upsample(grid_map, 128), rtol=1e-4, atol=1e-5)
    assert out.maps[0].std() > 0, "the zero-shot map must vary over the image"


@torch.no_grad()
def test_few_shot_equals_loop_reference(plus, tiny_backbone, images):
    support = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(4))
    out = plus.predict(make_batch(images[:1], ["car"]))
    normal, anomalous = plus.text_prototypes(["car"])[0]
    memory = reference_memory(tiny_backbone, support[1:2])  # the "car" support image
    score, grid_map = reference_winclip(tiny_backbone, images[0], normal, anomalous, tiny_backbone.logit_scale, memory)
    assert out.scores[0].item() == pytest.approx(score, abs=1e-5)
    torch.testing.assert_close(out.maps[0], _upsample(grid_map, 128), rtol=1e-4, atol=1e-5)


@torch.no_grad()
def test_mixed_subject_batch_equals_separate_batches(plus, images):
    together = plus.predict(make_batch(images, ["cow", "car", "cow"]))
    for i, subject in enumerate(["cow", "car", "cow"]):
        alone = plus.predict(make_batch(images[i:i + 1], [subject]))
        torch.testing.assert_close(together.scores[i:i + 1], alone.scores, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(together.maps[i:i + 1], alone.maps, rtol=1e-4, atol=1e-5)


@torch.no_grad()
def test_few_shot_with_the_test_image_as_support_is_zero_everywhere(tiny_backbone, images):
    model = create_model("winclip.plus", backbone=tiny_backbone)
    model.fit(FitData(subjects=["cow"], support=[make_batch(images[:2], ["cow", "cow"])]))
    feats = model.encode(images[:2], patches=True)
    few = model.few_shot_map(feats, ["cow", "cow"])
    assert few.shape == (2, 64) and few.abs().max().item() < 1e-5
    out = model.predict(make_batch(images[:2], ["cow", "cow"]))
    assert out.extras["few_shot_score"].abs().max().item() < 1e-5
    torch.testing.assert_close(out.scores, 0.5 * out.extras["zero_shot_score"], rtol=1e-4, atol=1e-5)


def test_save_load_gives_identical_predictions(plus, tiny_backbone, images, tmp_path):
    path = plus.save(tmp_path / "winclip_plus.safetensors")
    state = plus.fitted_state()
    assert set(state) == {f"{kind}/{s}" for kind in ("patch", "window2", "window3") for s in ("cow", "car")}
    assert state["patch/cow"].shape == (64, tiny_backbone.model.visual.transformer.width)
    assert state["window2/cow"].shape == (49, tiny_backbone.embed_dim)
    fresh = create_model("winclip.plus", backbone=tiny_backbone)
    with pytest.raises(ModelError, match="must be fitted"):
        fresh.predict(make_batch(images[:1], ["cow"]))
    fresh.load(path)
    batch = make_batch(images, ["cow", "car", "car"])
    a, b = plus.predict(batch), fresh.predict(batch)
    assert torch.equal(a.scores, b.scores) and torch.equal(a.maps, b.maps)
    other_scales = create_model("winclip.plus", backbone=tiny_backbone, scales=(2,))
    with pytest.raises(ModelError, match=r"scales: \[2, 3\] in the checkpoint, \[2\] here"):
        other_scales.load(path)


def test_unseen_subject(plus, winclip, images):
    with pytest.raises(ModelError, match="no few-shot memory.*subjects with support: car, cow"):
        plus.predict(make_batch(images[:1], ["zebra"]))
    out = winclip.predict(make_batch(images[:1], ["zebra"]))  # zero-shot: prototypes computed on first sight
    assert "zebra" in winclip.prototypes.subjects and torch.isfinite(out.maps).all()


def test_fit_without_support_and_bad_options(tiny_backbone):
    model = create_model("winclip.plus", backbone=tiny_backbone)
    with pytest.raises(ModelError, match="needs support images"):
        model.fit(FitData(subjects=["cow"], support=[]))
    with pytest.raises(ModelError, match="does not fit a 8x8 patch grid"):
        create_model("winclip", backbone=tiny_backbone, scales=(2, 9))
    with pytest.raises(ModelError, match="patch_features"):
        create_model("winclip", backbone=tiny_backbone, patch_features="middle")
    with pytest.raises(ModelError, match="unknown prompt set"):
        create_model("winclip", backbone=tiny_backbone, prompt_set="nope")
    with pytest.raises(ModelError, match="logit_scale must be a positive number or 'backbone'"):
        create_model("winclip", backbone=tiny_backbone, logit_scale="learned")


def test_winclip_temperature_is_one_over_0_07_unless_asked_for_the_backbones():
    """With pretrained weights the backbone's scale is 100; WinCLIP's public reproductions divide by 0.07."""
    import math

    from caadbench.models.backbone import ClipBackbone

    backbone = ClipBackbone("caad-tiny", init_seed=0)
    with torch.no_grad():
        backbone.model.logit_scale.fill_(math.log(100.0))  # as a pretrained CLIP's
    assert create_model("winclip", backbone=backbone).logit_scale == pytest.approx(1 / 0.07)
    assert create_model("winclip.plus", backbone=backbone).logit_scale == pytest.approx(1 / 0.07)
    assert create_model("winclip", backbone=backbone, logit_scale="backbone").logit_scale == pytest.approx(100.0)
    assert create_model("clip", backbone=backbone).logit_scale == pytest.approx(100.0)  # CLIP keeps CLIP's own
    assert create_model("winclip", backbone=backbone).config.to_dict()["logit_scale"] == 1 / 0.07  # recorded


def test_hand_reference_is_independent_of_the_backbone_hooks(tiny_backbone, images):
    """Guard for the reference itself: all tokens by hand equals open_clip's own image embedding."""
    with torch.no_grad():
        torch.testing.assert_close(hand_embedding(tiny_backbone, images), tiny_backbone.encode_image(images),
                                   rtol=1e-4, atol=1e-5)
        assert len(hand_forward(tiny_backbone, images[:1])) == len(tiny_backbone.image_blocks)


@torch.no_grad()
def test_bf16_autocast_keeps_float32_scores_close(plus, images):
    batch = make_batch(images[:2], ["cow", "car"])
    ref = plus.predict(batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = plus.predict(batch)
    assert out.scores.dtype == out.maps.dtype == torch.float32
    torch.testing.assert_close(out.scores, ref.scores, rtol=0, atol=2e-2)
    torch.testing.assert_close(out.maps, ref.maps, rtol=0, atol=2e-2)
