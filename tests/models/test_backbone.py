"""The open_clip adapter: seeded random init, local checkpoints, offline failure, tokens, subsets, hooks."""

from __future__ import annotations

import time

import pytest
import torch

from caadbench.errors import ModelError, WeightsUnavailable
from caadbench.models.backbone import ClipBackbone, sha256_file


def reference_subset_embedding(bb: ClipBackbone, images: torch.Tensor, patch_idx: list[int]) -> torch.Tensor:
    """Independent reference: build the token sequence by hand and run the blocks on [CLS] + chosen patches."""
    v = bb.model.visual
    x = v.conv1(bb.normalize(images))  # (B, C, gh, gw)
    x = x.flatten(2).transpose(1, 2)  # (B, N, C)
    cls = v.class_embedding.view(1, 1, -1).expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + v.positional_embedding
    x = v.ln_pre(x)
    x = x[:, [0] + [i + 1 for i in patch_idx]]
    for blk in v.transformer.resblocks:
        x = blk(x)
    return torch.nn.functional.normalize(v.ln_post(x[:, 0]) @ v.proj, dim=-1)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(3, 3, 128, 128, generator=torch.Generator().manual_seed(0))


def test_random_init_is_seeded(tiny_backbone):
    same = ClipBackbone("caad-tiny", init_seed=0)
    other = ClipBackbone("caad-tiny", init_seed=1)
    p0 = dict(tiny_backbone.named_parameters())
    assert all(torch.equal(p0[n], p) for n, p in same.named_parameters())
    assert not torch.equal(p0["model.visual.proj"], dict(other.named_parameters())["model.visual.proj"])
    assert tiny_backbone.identity.weights == "random-init" and tiny_backbone.identity.sha256 is None


def test_backbone_is_frozen_and_stays_in_eval(tiny_backbone):
    assert not any(p.requires_grad for p in tiny_backbone.parameters())
    tiny_backbone.train()
    assert not tiny_backbone.training and not tiny_backbone.model.visual.training


def test_local_checkpoint_file(tmp_path, tiny_backbone):
    path = tmp_path / "tiny.pt"
    other = ClipBackbone("caad-tiny", init_seed=7)
    torch.save(other.model.state_dict(), path)
    loaded = ClipBackbone("caad-tiny", pretrained=str(path), init_seed=0)
    assert loaded.identity.sha256 == sha256_file(path)
    assert loaded.identity.weights == "file:tiny.pt"
    assert torch.equal(loaded.model.visual.proj, other.model.visual.proj)
    assert not loaded.identity.same_weights(tiny_backbone.identity)


def test_offline_tag_fails_at_once_with_a_way_out(monkeypatch):
    """A known tag that is not cached, offline: refused before open_clip is ever asked to build or download."""
    import open_clip

    from caadbench.models import backbone

    def no_build(*args, **kwargs):
        raise AssertionError("open_clip.create_model must not be called for weights that cannot be had")

    monkeypatch.setattr(backbone, "_cached_tag_file", lambda pcfg: None)  # even if this machine has them cached
    monkeypatch.setattr(open_clip, "create_model", no_build)
    tag = open_clip.list_pretrained_tags_by_model("ViT-B-16-plus-240")[0]
    start = time.monotonic()
    with pytest.raises(WeightsUnavailable, match="--pretrained /path/to"):
        ClipBackbone("ViT-B-16-plus-240", pretrained=tag)
    assert time.monotonic() - start < 30


@pytest.mark.parametrize("value", ["no-such-tag", "/no/such/file.pt"])
def test_unknown_weights(value):
    with pytest.raises(WeightsUnavailable):
        ClipBackbone("caad-tiny", pretrained=value)


def test_unknown_architecture():
    with pytest.raises(ModelError, match="unknown open_clip architecture"):
        ClipBackbone("ViT-Nope")


def test_wrong_input_size_is_refused(tiny_backbone):
    with pytest.raises(ModelError, match="expects 128x128"):
        tiny_backbone.encode_image(torch.rand(1, 3, 96, 96))


@torch.no_grad()
def test_intermediate_layers_differ_and_final_matches_embedding(tiny_backbone, images):
    toks = tiny_backbone.image_tokens(images, layers=[1, 4, -1])
    assert sorted(toks.patches) == [1, 4, 7]
    assert toks.patches[1].shape == (3, 64, tiny_backbone.embed_dim)
    assert not torch.allclose(toks.patches[1], toks.patches[4])
    assert not torch.allclose(toks.patches[4], toks.patches[7])
    # the projected class token of the last block is the pooled image embedding
    torch.testing.assert_close(toks.cls[7], toks.embedding, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.nn.functional.normalize(toks.embedding, dim=-1),
                               tiny_backbone.encode_image(images), rtol=1e-5, atol=1e-5)
    raw = tiny_backbone.image_tokens(images, layers=[1], project=False)
    assert raw.patches[1].shape[-1] == tiny_backbone.model.visual.transformer.width


@torch.no_grad()
def test_token_subsets_equal_encoding_those_tokens_alone(tiny_backbone, images):
    subsets = torch.tensor([[0, 1, 8, 9], [54, 55, 62, 63], [9, 10, 17, 18]])
    got = tiny_backbone.encode_token_subsets(images, subsets, max_sequences=4)  # forces several chunks
    assert got.shape == (3, 3, tiny_backbone.embed_dim)
    for m, idx in enumerate(subsets.tolist()):
        ref = reference_subset_embedding(tiny_backbone, images, idx)
        torch.testing.assert_close(got[:, m], ref, rtol=1e-4, atol=1e-5)


@torch.no_grad()
def test_full_subset_is_the_image_embedding_and_windows_differ(tiny_backbone, images):
    full = torch.arange(64).view(1, 64)
    torch.testing.assert_close(tiny_backbone.encode_token_subsets(images, full)[:, 0],
                               tiny_backbone.encode_image(images), rtol=1e-5, atol=1e-5)
    windows = torch.tensor([[r * 8 + c, r * 8 + c + 1, r * 8 + c + 8, r * 8 + c + 9] for r in range(7) for c in range(7)])
    emb = tiny_backbone.encode_token_subsets(images, windows)
    spread = (emb - emb.mean(dim=1, keepdim=True)).norm(dim=-1)
    assert (spread > 1e-3).all(), "window embeddings of one image must not all be equal"


def test_block_hooks_change_outputs_carry_gradients_and_are_removed(tiny_backbone, images):
    with torch.no_grad():
        base = tiny_backbone.encode_image(images)
    scale = torch.nn.Parameter(torch.tensor(0.5))
    with tiny_backbone.block_hooks("image", {0: lambda y: y + scale * y, 2: lambda y: y * 1.0}):
        out = tiny_backbone.encode_image(images)
    assert not torch.allclose(out, base)
    out.sum().backward()
    assert scale.grad is not None and scale.grad.abs() > 0
    with torch.no_grad():
        torch.testing.assert_close(tiny_backbone.encode_image(images), base)
    texts = ["a photo of a cow", "a photo of a car"]
    with torch.no_grad():
        t0 = tiny_backbone.encode_text(texts)
        with tiny_backbone.block_hooks("text", {0: lambda y: y * 1.5}):
            t1 = tiny_backbone.encode_text(texts)
    assert t0.shape == (2, tiny_backbone.embed_dim) and not torch.allclose(t0, t1)
    with pytest.raises(ModelError, match="cannot hook block 99"):
        with tiny_backbone.block_hooks("image", {99: lambda y: y}):
            pass


# ----------------------------------------------------------------------------- learnable prompts and DPAM
def test_widths_and_context_length(tiny_backbone):
    assert tiny_backbone.width("image") == 192 and tiny_backbone.width("text") == 128
    assert tiny_backbone.context_length == 32


def test_encode_text_from_embeddings(tiny_backbone):
    from tests.baselines.reference import hand_text

    tokens = tiny_backbone.tokenize(["a photo of a cow.", "x x x object."])
    with torch.no_grad():
        plain = tiny_backbone.encode_text(tokens)
        emb = tiny_backbone.token_embeddings(tokens)
        torch.testing.assert_close(tiny_backbone.encode_text(tokens, embeddings=emb), plain)
        changed = emb.clone()
        changed[:, 1:3] = torch.randn(2, 2, emb.shape[-1], generator=torch.Generator().manual_seed(0))
        got = tiny_backbone.encode_text(tokens, embeddings=changed)
        torch.testing.assert_close(got, hand_text(tiny_backbone, tokens, changed), rtol=1e-4, atol=1e-5)
        assert not torch.allclose(got, plain, atol=1e-3)
        torch.testing.assert_close(tiny_backbone.encode_text(tokens), plain)  # the hook is gone
    with pytest.raises(ModelError, match="do not match tokens"):
        tiny_backbone.encode_text(tokens, embeddings=emb[:, :5])


def test_text_block_hooks_see_batch_first_tokens(tiny_backbone):
    from tests.baselines.reference import hand_text

    tokens = tiny_backbone.tokenize(["x x object.", "x x damaged object."])
    new = torch.randn(2, tiny_backbone.width("text"), generator=torch.Generator().manual_seed(1))

    def swap(y):
        assert y.shape[:2] == tokens.shape  # (B, L, C)
        return torch.cat([y[:, :1], new.expand(y.shape[0], -1, -1), y[:, 3:]], dim=1)

    with torch.no_grad(), tiny_backbone.block_hooks("text", {0: swap}):
        got = tiny_backbone.encode_text(tokens)
    ref = hand_text(tiny_backbone, tokens, before_block={1: swap})
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)


def test_value_value_attention_equals_the_loop_reference(tiny_backbone, images):
    from tests.baselines.reference import hand_forward, value_value_reference

    with torch.no_grad():
        x = hand_forward(tiny_backbone, images[:2])[2]  # input of block 3
        for block in (3, -1):
            got = tiny_backbone.value_value_attention(block, x)
            ref = value_value_reference(tiny_backbone.image_blocks[block], x)
            torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)
        qk = tiny_backbone.image_blocks[3].attention(tiny_backbone.image_blocks[3].ln_1(x))
        assert not torch.allclose(qk, tiny_backbone.value_value_attention(3, x), atol=1e-3)
