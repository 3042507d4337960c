"""The open_clip adapter: seeded random init, local checkpoints, hf-hub:/local-dir: backbones, offline refusals
(the hub switched off, its endpoint unreachable), foreign towers refused, tokens, subsets, hooks."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from caadbench.errors import ModelError, WeightsUnavailable
from caadbench.models.backbone import ClipBackbone
from caadbench.utils.hashing import sha256_file


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


class _Marker:
    """Unpickling this touches a file: what a hostile pickle would do."""

    def __init__(self, path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_plain_pickle_is_refused_unopened_and_torch_formats_are_read(tmp_path):
    import pickle

    marker, path = tmp_path / "ran", tmp_path / "weights.pkl"
    path.write_bytes(pickle.dumps({"visual.proj": _Marker(marker)}))
    with pytest.raises(WeightsUnavailable, match=rf"^{path}: is a plain pickle, which caadbench never unpickles"):
        ClipBackbone("caad-tiny", pretrained=str(path))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(WeightsUnavailable, match="is not a weights file"):
        ClipBackbone("caad-tiny", pretrained=str(text))
    assert not marker.exists()
    legacy = tmp_path / "legacy.pt"
    torch.save(ClipBackbone("caad-tiny", init_seed=3).model.state_dict(), legacy, _use_new_zipfile_serialization=False)
    assert ClipBackbone("caad-tiny", pretrained=str(legacy)).identity.weights == "file:legacy.pt"


@pytest.fixture()
def empty_hub(monkeypatch, tmp_path):
    """An empty hub cache, and open_clip forbidden to build or download anything."""
    import open_clip
    from huggingface_hub import constants

    def no_build(*args, **kwargs):
        raise AssertionError("open_clip.create_model must not be called for weights that cannot be had")

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setattr(open_clip, "create_model", no_build)
    return constants


TINY_TAG = "unreleased"


@pytest.fixture()
def tiny_tag(monkeypatch) -> str:
    """A pretrained tag of ``caad-tiny`` registered with open_clip for this test only, its weights in a hub
    repository that does not exist: what a real tag looks like to the adapter, without naming real weights."""
    from open_clip import pretrained

    cfg = {"hf_hub": "caad/caad-tiny-unreleased/", "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}
    monkeypatch.setitem(pretrained._PRETRAINED, "caad-tiny", {TINY_TAG: cfg})
    return TINY_TAG


def test_offline_tag_fails_at_once_with_a_way_out(empty_hub, tiny_tag, monkeypatch):
    """The hub switched off (HF_HUB_OFFLINE) and the tag not cached: refused without a single request."""
    from caadbench.models import backbone

    monkeypatch.setattr(empty_hub, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(backbone, "get_session", lambda: pytest.fail("no request may be made offline"))
    start = time.monotonic()
    with pytest.raises(WeightsUnavailable, match=r"HF_HUB_OFFLINE.*--pretrained /path/to"):
        ClipBackbone("caad-tiny", pretrained=tiny_tag)
    assert time.monotonic() - start < 5


def test_unreachable_hub_endpoint_fails_at_once_with_a_way_out(empty_hub, tiny_tag, monkeypatch, closed_port):
    """Hub on, HF_ENDPOINT pointing at a closed port on 127.0.0.1: one HEAD request fails, no download retries."""
    from caadbench.models import backbone

    endpoint = f"http://127.0.0.1:{closed_port}"
    monkeypatch.setattr(empty_hub, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(empty_hub, "ENDPOINT", endpoint)
    monkeypatch.setattr(backbone, "hf_hub_download", lambda *a, **k: pytest.fail("nothing may be downloaded"))
    start = time.monotonic()
    with pytest.raises(WeightsUnavailable, match=rf"the hub at {endpoint} cannot be reached .*--pretrained /path/to"):
        ClipBackbone("caad-tiny", pretrained=tiny_tag)
    with pytest.raises(WeightsUnavailable, match=r"hf-hub:org/none: not cached here and the hub at .* --backbone "
                                                 r"local-dir:DIR"):
        ClipBackbone("hf-hub:org/none")
    assert time.monotonic() - start < 10


def open_clip_folder(folder: Path, weights: dict | None, name: str, model_cfg: dict | None = None) -> Path:
    """Write an ``open_clip_config.json`` (caad-tiny's, unless given) and optionally a weights file."""
    from caadbench.models.backbone import CONFIG_DIR

    folder.mkdir(parents=True, exist_ok=True)
    cfg = model_cfg or json.loads((CONFIG_DIR / "caad-tiny.json").read_text())
    config = {"model_cfg": cfg, "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    if weights is not None:
        if name.endswith(".safetensors"):
            save_file({k: v.contiguous() for k, v in weights.items()}, str(folder / name))
        else:
            torch.save(weights, folder / name)
    return folder


def test_local_dir_backbone(tmp_path, tiny_backbone):
    source = ClipBackbone("caad-tiny", init_seed=7)
    folder = open_clip_folder(tmp_path / "tiny", source.model.state_dict(), "open_clip_pytorch_model.bin")
    loaded = ClipBackbone(f"local-dir:{folder}")
    assert torch.equal(loaded.model.visual.proj, source.model.visual.proj)
    assert loaded.identity.weights == "file:open_clip_pytorch_model.bin"
    assert loaded.identity.sha256 == sha256_file(folder / "open_clip_pytorch_model.bin")
    assert loaded.mean.flatten().tolist() == [0.5] * 3 and loaded.std.flatten().tolist() == [0.25] * 3
    random = ClipBackbone(f"local-dir:{folder}", pretrained="random", init_seed=0)
    assert random.identity.is_random_init and random.identity.sha256 is None
    assert torch.equal(random.model.visual.proj, tiny_backbone.model.visual.proj)  # same config, same seed
    with pytest.raises(WeightsUnavailable, match="cannot be combined with --backbone local-dir:"):
        ClipBackbone(f"local-dir:{folder}", pretrained=TINY_TAG)
    with pytest.raises(ModelError, match="open_clip_config.json not found"):
        ClipBackbone(f"local-dir:{tmp_path / 'nothing'}")
    (folder / "open_clip_pytorch_model.bin").unlink()
    with pytest.raises(WeightsUnavailable, match="no weights file in"):
        ClipBackbone(f"local-dir:{folder}")


def test_hf_hub_backbone_from_the_cache_offline(tmp_path, monkeypatch):
    """``hf-hub:ORG/NAME`` as open_clip spells it, served from a hub cache laid out as huggingface_hub lays it out."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    snapshot = cache / "models--caad--tiny" / "snapshots" / ("0" * 40)
    source = ClipBackbone("caad-tiny", init_seed=3)
    open_clip_folder(snapshot, source.model.state_dict(), "open_clip_model.safetensors")
    (cache / "models--caad--tiny" / "refs").mkdir()
    (cache / "models--caad--tiny" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    loaded = ClipBackbone("hf-hub:caad/tiny")
    assert loaded.identity.arch == "hf-hub:caad/tiny" and loaded.identity.weights == "hf-hub:caad/tiny"
    assert loaded.identity.sha256 == sha256_file(snapshot / "open_clip_model.safetensors")
    assert torch.equal(loaded.model.visual.proj, source.model.visual.proj)
    assert loaded.encode_text(["a photo of a cow"]).shape == (1, loaded.embed_dim)


def tiny_tower_configs() -> dict[str, dict]:
    """Tiny open_clip configs whose towers are timm or Hugging Face models (SigLIP-, EVA- and BERT-like)."""
    text = {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}
    vision = {"image_size": 32, "timm_model_pretrained": False, "timm_proj": "linear"}
    return {
        "siglip-like": {"embed_dim": 32, "vision_cfg": {**vision, "timm_model_name": "vit_tiny_patch16_siglip_32",
                                                        "timm_pool": "map"}, "text_cfg": text},
        "eva-like": {"embed_dim": 32, "vision_cfg": {**vision, "timm_model_name": "eva02_tiny_patch14_32",
                                                     "timm_pool": "token"}, "text_cfg": text},
        "hf-text": {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 16},
                    "text_cfg": {"hf_model_name": "bert-tiny", "hf_tokenizer_name": "bert-tiny", "hf_pooler_type":
                                 "mean_pooler"}},
        "resnet": {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 16},
                   "text_cfg": text},
    }


@pytest.mark.parametrize("name", sorted(tiny_tower_configs()))
def test_foreign_towers_are_refused_up_front(name, tmp_path, empty_hub):
    folder = open_clip_folder(tmp_path / name, None, "", tiny_tower_configs()[name])
    with pytest.raises(ModelError) as err:
        ClipBackbone(f"local-dir:{folder}", pretrained="random")
    line = str(err.value)
    assert "\n" not in line and "none can use it" in line and "clip, coreclip, probe, winclip" in line
    assert {"siglip-like": "timm model vit_tiny", "eva-like": "timm model eva02", "hf-text": "Hugging Face model",
            "resnet": "ResNet"}[name] in line


@pytest.mark.parametrize("arch", ["ViT-B-16-SigLIP", "EVA02-B-16", "RN50"])
def test_builtin_foreign_towers_are_refused_before_any_download(arch, empty_hub, monkeypatch):
    """The tower check reads the architecture's config only: no weights are asked for (random init), and any
    download or model build would fail the test."""
    import open_clip

    from caadbench.models import backbone

    monkeypatch.setattr(backbone, "hf_hub_download", lambda *a, **k: pytest.fail("nothing may be downloaded"))
    monkeypatch.setattr(open_clip, "create_model", lambda *a, **k: pytest.fail("the model must not be built"))
    start = time.monotonic()
    with pytest.raises(ModelError, match="none can use it"):
        ClipBackbone(arch, pretrained=None)
    assert time.monotonic() - start < 5


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
