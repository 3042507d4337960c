"""AnomalyCLIP against its released inference (zqhang/AnomalyCLIP at 45ed4dd), re-implemented in
``tests/baselines/official_anomalyclip.py`` on the same random weights: the top block's map, the class token
projected without ``ln_post``, DPAM from the first quarter block whatever blocks make the maps, the positional
embedding resized bilinearly, QuickGELU for OpenAI's weights; the variants that keep the other behaviours."""

from __future__ import annotations

import types

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F

from caadbench.baselines.anomalyclip import prompt_texts
from caadbench.errors import ModelError
from caadbench.models import create_model, get_model_spec
from tests.baselines.official_anomalyclip import prompt_text, released_inference
from tests.baselines.reference import make_batch, ready_model
from tests.models import state_dict_clip as ref
from tests.models.openai_archive import archive_state, save_openai_archive

L14 = "caad-test-l14"
L14_CONFIG = {"embed_dim": 32,
              "vision_cfg": {"image_size": 336, "layers": 8, "width": 64, "head_width": 32, "patch_size": 14},
              "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 4}}
"""ViT-L/14@336's geometry (patch 14, 24 × 24 grid, run at 518 px: 37 × 37) at a tiny width and depth."""
RELEASED = [("anomalyclip", [8], 1), ("anomalyclip.last_layer", [8], 1), ("anomalyclip.quarters", [2, 4, 6, 8], 4)]
"""(model, official ``--features_list`` on 8 blocks, blocks summed by the official map): the released default
(``--features_list 24``), ``last_layer`` (the same blocks), ``quarters`` (``6 12 18 24``; we average, it sums)."""


@pytest.fixture(scope="module")
def l14_archive(tmp_path_factory):
    """OpenAI's release format (TorchScript, float16 weights) of a random-init tiny ViT-*/14 at 336 px."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(open_clip.factory._MODEL_CONFIGS, L14, L14_CONFIG)
        source = open_clip.create_model(L14)
        yield save_openai_archive(source, tmp_path_factory.mktemp("l14") / "ViT-tiny-14-336px.pt")


def reference(model, state: dict, images: torch.Tensor, features_list, heads, act, sigma):
    p = model.prompts
    tokens = model.backbone.tokenize(list(prompt_texts(p.length, "object")))
    return released_inference(state, images, tokens, p.context.detach(), p.deep.detach(), features_list,
                              dpam_start=1, heads=heads, act=act, sigma=sigma)


@torch.no_grad()
@pytest.mark.parametrize(("name", "features_list", "per_block"), RELEASED)
def test_equals_the_released_inference_on_openai_weights_at_518px(l14_archive, name, features_list, per_block):
    """The paper's protocol in miniature: OpenAI-format weights of a /14 model at 336 px, run at 518 px."""
    model = create_model(name, backbone=L14, pretrained=str(l14_archive), image_size=518, progress=False)
    model.reset_trainable(3)
    model.is_fitted = True
    identity = model.backbone.identity
    assert (identity.activation, identity.pos_embed_resize, model.dpam_start) == ("quickgelu", "bilinear", 1)
    images = torch.rand(2, 3, 518, 518, generator=torch.Generator().manual_seed(4))
    out = model.predict(make_batch(images, ["cow", "metal_nut"]))
    scores, maps = reference(model, archive_state(l14_archive), images, features_list, (2, 2), ref.quick_gelu, 4.0)
    np.testing.assert_allclose(out.scores.numpy(), scores, atol=1e-4)
    np.testing.assert_allclose(out.maps.numpy() * per_block, maps, atol=1e-4)


@torch.no_grad()
@pytest.mark.parametrize(("name", "features_list", "per_block"), RELEASED)
def test_map_blocks_embedding_and_dpam_depth_on_random_init(tiny_backbone, name, features_list, per_block):
    """The same on the random-init caad-tiny at its own size (GELU, no resizing): the blocks that make the map, the
    embedding without ``ln_post`` and DPAM from block 2 of 8 (the first quarter) alone. Our σ scales with the input
    side (4 px per 518 px, documented); the reference gets that σ."""
    model = ready_model(name, tiny_backbone, seed=3)
    images = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(5))
    out = model.predict(make_batch(images, ["cow", "car"]))
    scores, maps = reference(model, tiny_backbone.model.state_dict(), images, features_list, (3, 2), ref.gelu,
                             4.0 * 128 / 518)
    np.testing.assert_allclose(out.scores.numpy(), scores, atol=1e-4)
    np.testing.assert_allclose(out.maps.numpy() * per_block, maps, atol=1e-4)


@torch.no_grad()
def test_the_embedding_through_ln_post_is_an_option(tiny_backbone):
    """``embedding_ln_post=True``: CLIP's standard embedding (``ln_post`` of the class token, projected)."""
    model = ready_model("anomalyclip", tiny_backbone, seed=3, embedding_ln_post=True)
    images = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(6))
    out = model.predict(make_batch(images, ["cow", "car"]))
    state, p = tiny_backbone.model.state_dict(), model.prompts
    text = prompt_text(state, tiny_backbone.tokenize(list(prompt_texts(p.length, "object"))), p.context, p.deep, 2,
                       ref.gelu)
    f = F.normalize(ref.image_embedding(state, (images - tiny_backbone.mean) / tiny_backbone.std, 3, ref.gelu), dim=-1)
    np.testing.assert_allclose(out.scores.numpy(), ((f @ text.T) / 0.07).softmax(dim=-1)[:, 1].numpy(), atol=1e-5)
    default = ready_model("anomalyclip", tiny_backbone, seed=3).predict(make_batch(images, ["cow", "car"]))
    assert not np.allclose(out.scores.numpy(), default.scores.numpy(), atol=1e-3)


@torch.no_grad()
def test_positional_embedding_is_resized_as_each_official_code_does(tiny_backbone, tmp_path):
    """A checkpoint run at another size: AnomalyCLIP resizes its positional embedding bilinearly (its vision
    transformer's forward), APRIL-GAN and the rest as open_clip's loader does (bicubic, antialiased)."""
    path = tmp_path / "tiny.pt"
    torch.save(tiny_backbone.model.state_dict(), path)
    state = {k: v.clone() for k, v in tiny_backbone.model.state_dict().items()}
    anomalyclip = create_model("anomalyclip", backbone="caad-tiny", pretrained=str(path), image_size=160,
                               progress=False)
    assert anomalyclip.backbone.identity.pos_embed_resize == "bilinear" and anomalyclip.backbone.grid_size == (10, 10)
    torch.testing.assert_close(anomalyclip.backbone.model.visual.positional_embedding,
                               ref.bilinear_positions(state, 10), rtol=1e-5, atol=1e-6)
    anomalyclip.reset_trainable(3)
    anomalyclip.is_fitted = True
    images = torch.rand(2, 3, 160, 160, generator=torch.Generator().manual_seed(7))
    out = anomalyclip.predict(make_batch(images, ["cow", "car"]))
    scores, maps = reference(anomalyclip, state, images, [8], (3, 2), ref.gelu, 4.0 * 160 / 518)
    np.testing.assert_allclose(out.scores.numpy(), scores, atol=1e-4)
    np.testing.assert_allclose(out.maps.numpy(), maps, atol=1e-4)

    aprilgan = create_model("aprilgan", backbone="caad-tiny", pretrained=str(path), image_size=160, progress=False)
    assert aprilgan.backbone.identity.pos_embed_resize == "bicubic-antialias"
    opened = dict(state)
    open_clip.model.resize_pos_embed(opened, types.SimpleNamespace(visual=types.SimpleNamespace(grid_size=(10, 10))))
    torch.testing.assert_close(aprilgan.backbone.model.visual.positional_embedding,
                               opened["visual.positional_embedding"])
    shared = create_model("anomalyclip", backbone=aprilgan.backbone)  # a shared backbone says what ran
    assert shared.config.pos_embed_resize == "bicubic-antialias"
    with pytest.raises(ModelError, match="positional embedding was resized bicubic-antialias, the config asks for "
                                         "bilinear"):
        create_model("anomalyclip", backbone=aprilgan.backbone, pos_embed_resize="bilinear")
    for name in ("clip", "clip.ensemble", "winclip", "winclip.plus", "coreclip", "aprilgan"):
        assert get_model_spec(name).make_config().pos_embed_resize == "bicubic-antialias", name
    for name in ("anomalyclip", "anomalyclip.quarters", "anomalyclip.last_layer", "anomalyclip.no_dpam"):
        assert get_model_spec(name).make_config().pos_embed_resize == "bilinear", name
