"""AnomalyCLIP: learnable prompts and in-encoder tokens, the DPAM stream, the whole prediction and the losses
against loop references, learning on a toy industrial set, the safetensors round trip. Random-init caad-tiny."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter

from caadbench.baselines.anomalyclip import VARIANTS, AnomalyClip, dpam_features, plain_features, prompt_texts
from caadbench.baselines.segmentation import resize_mask
from caadbench.errors import ModelError
from caadbench.models import FitData, Learning, create_model, get_model_spec
from tests.baselines.reference import (
    bilinear_reference,
    hand_embedding,
    hand_forward,
    hand_text,
    make_batch,
    ready_model,
    value_value_reference,
)
from tests.baselines.toy_industrial import aurocs, toy_industrial_batch, toy_industrial_loader


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(11))


@pytest.fixture(scope="module")
def model(tiny_backbone) -> AnomalyClip:
    return ready_model("anomalyclip", tiny_backbone, seed=3)


def test_prompt_texts_and_shapes(model, tiny_backbone):
    assert prompt_texts(3, "object") == ("X X X object.", "X X X damaged object.")
    p = model.prompts
    assert (p.length, p.tokens, p.depth) == (12, 4, 3)  # depth: 3/4 of caad-tiny's 4 text blocks
    assert p.context.shape == (2, 12, 128) and p.deep.shape == (2, 4, 128)
    assert model.feature_blocks == (7,) and model.dpam_start == 1  # the top block; DPAM from the first quarter
    quarters = create_model("anomalyclip.quarters", backbone=tiny_backbone)
    assert quarters.feature_blocks == (1, 3, 5, 7) and quarters.dpam_start == 1
    assert model.parameter_counts()["trainable"] == 2 * 12 * 128 + 2 * 4 * 128
    assert create_model("anomalyclip.no_text_tuning", backbone=tiny_backbone).prompts.deep is None


def test_variants_are_registered_trained_and_build(tiny_backbone):
    assert set(VARIANTS) == {"default", "quarters", "no_dpam", "object_aware", "no_text_tuning", "last_layer",
                             "no_global", "no_local"}
    for key in VARIANTS:
        spec = get_model_spec("anomalyclip" if key == "default" else f"anomalyclip.{key}")
        assert spec.learning == Learning.TRAINED
        assert not spec.build(backbone=tiny_backbone).is_fitted


@pytest.mark.parametrize(("options", "words"), [
    ({"prompt_length": 40}, "does not fit the text context"),
    ({"text_tokens": 13}, "text_tokens <= prompt_length"),
    ({"text_depth": 5}, "text_depth <= 4"),
    ({"dpam_start": 0}, "dpam_start"),
    ({"w_global": 0.0, "w_local": 0.0}, "not both 0"),
    ({"temperature": 0.0}, "temperature"),
])
def test_bad_options_are_refused(tiny_backbone, options, words):
    with pytest.raises(ModelError, match=words):
        create_model("anomalyclip", backbone=tiny_backbone, **options)


def reference_text(bb, model: AnomalyClip, word: str) -> torch.Tensor:
    """``(2, D)``: the prompts' token embeddings with the context vectors written in, the text blocks run by hand
    with the learnable tokens swapped into the inputs of blocks 1 … depth − 1."""
    p = model.prompts
    tokens = bb.tokenize(list(prompt_texts(p.length, word)))
    emb = bb.model.token_embedding(tokens).clone()
    for row in range(2):
        for j in range(p.length):
            emb[row, 1 + j] = p.context[row, j]

    def swapper(i):
        def swap(x):
            x = x.clone()
            for j in range(p.tokens):
                x[:, 1 + j] = p.deep[i - 1, j]
            return x
        return swap

    return hand_text(bb, tokens, emb, before_block={i: swapper(i) for i in range(1, p.depth)})


def test_text_encoding_equals_the_hand_run_encoder_and_trains_every_token(model, tiny_backbone):
    got = model.prompts.encode(tiny_backbone, ["object", "metal nut"])
    assert got.shape == (2, 2, tiny_backbone.embed_dim)
    for i, word in enumerate(["object", "metal nut"]):
        torch.testing.assert_close(got[i], reference_text(tiny_backbone, model, word), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(got[0, 0], got[0, 1], atol=1e-3)
    got[0, 1].sum().backward()
    p = model.prompts
    assert p.context.grad[1].abs().sum() > 0 and p.context.grad[0].abs().sum() == 0  # only the anomalous prompt
    assert (p.deep.grad.flatten(1).abs().sum(1) > 0).all()  # every block's tokens reach the output
    model.zero_grad(set_to_none=True)


def reference_embedding(bb, images: torch.Tensor) -> torch.Tensor:
    """``(B, D)`` L2-normalised: the last block's class token projected without ln_post (the official form)."""
    return F.normalize(hand_forward(bb, images)[-1][:, 0] @ bb.model.visual.proj, dim=-1)


def reference_dpam(bb, images: torch.Tensor, layers, start):
    """The V-V stream by hand: ``v = x_start + Σ_j VV_j(x_j)``, projected at the requested blocks."""
    v = bb.model.visual
    outs = hand_forward(bb, images)  # outs[j] = output of block j = input of block j + 1
    stream, feats = outs[start - 1], {}
    for j in range(start, max(layers) + 1):
        stream = stream + value_value_reference(bb.image_blocks[j], outs[j - 1])
        if j in layers:
            feats[j] = v.ln_post(stream[:, 1:]) @ v.proj
    for j in layers:
        if j < start:
            feats[j] = v.ln_post(outs[j][:, 1:]) @ v.proj
    return feats


@torch.no_grad()
@pytest.mark.parametrize(("layers", "start"), [((1, 3, 5, 7), 1), ((2, 7), 4)])
def test_dpam_stream_equals_the_hand_reference(tiny_backbone, images, layers, start):
    embedding, feats = dpam_features(tiny_backbone, images, layers, start)
    ref = reference_dpam(tiny_backbone, images, layers, start)
    assert set(feats) == set(layers)
    for j in layers:
        torch.testing.assert_close(feats[j], ref[j], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(F.normalize(embedding, dim=-1), reference_embedding(tiny_backbone, images),
                               rtol=1e-4, atol=1e-5)
    with_ln, _ = dpam_features(tiny_backbone, images, layers, start, embedding_ln_post=True)
    torch.testing.assert_close(F.normalize(with_ln, dim=-1), hand_embedding(tiny_backbone, images),
                               rtol=1e-4, atol=1e-5)
    _, plain = plain_features(tiny_backbone, images, layers)
    assert not torch.allclose(plain[7], feats[7], atol=1e-3)  # DPAM changes the patch features
    if start > 2:
        torch.testing.assert_close(plain[2], feats[2])  # blocks before the stream keep the original tokens


def reference_anomalyclip(bb, model: AnomalyClip, image: torch.Tensor):
    """Score, map and per-block probabilities ``(2, S, S)`` of one image, by hand."""
    text = reference_text(bb, model, "object")  # (2, D)
    feats = reference_dpam(bb, image[None], model.feature_blocks, model.dpam_start)
    f = reference_embedding(bb, image[None])[0]
    logits = (text @ f / 0.07).double()
    score = float(torch.softmax(logits, 0)[1])
    size, g = image.shape[-1], bb.grid_size[0]
    probs_by_layer = []
    for j in model.feature_blocks:
        z = F.normalize(feats[j][0], dim=-1)
        p = torch.softmax((z @ text.T / 0.07).double(), dim=-1).numpy()  # (N, 2)
        probs_by_layer.append(np.stack([bilinear_reference(p[:, k].reshape(g, g), size, size, False)
                                        for k in range(2)]))
    mean = np.mean([pr[1] for pr in probs_by_layer], axis=0)
    return score, gaussian_filter(mean, 4.0 * size / 518), probs_by_layer, logits


@torch.no_grad()
def test_prediction_equals_the_loop_reference(model, tiny_backbone, images):
    out = model.predict(make_batch(images, ["cow", "metal_nut"]))  # object-agnostic: the subject plays no part
    assert out.maps.shape == (2, 128, 128)
    for i in range(2):
        score, ref_map, _, _ = reference_anomalyclip(tiny_backbone, model, images[i])
        assert out.scores[i].item() == pytest.approx(score, abs=1e-5)
        np.testing.assert_allclose(out.maps[i].numpy(), ref_map, rtol=1e-4, atol=1e-5)
    aware = create_model("anomalyclip.object_aware", backbone=tiny_backbone)
    aware.load_fitted_state(model.fitted_state())
    aware.is_fitted = True
    cows = aware.predict(make_batch(images, ["cow", "cow"]))
    nuts = aware.predict(make_batch(images, ["metal_nut", "metal_nut"]))
    assert not torch.allclose(cows.scores, nuts.scores, atol=1e-6)


@torch.no_grad()
def test_training_loss_equals_the_formulas(model, tiny_backbone):
    batch = toy_industrial_batch(2, 5)
    total, parts = model.training_loss(batch)
    gt = resize_mask(batch.gt_masks, 128).numpy().astype(float)
    ce = focal = dice = 0.0
    s = 1e-5
    for i in range(2):
        _, _, probs_by_layer, logits = reference_anomalyclip(tiny_backbone, model, batch.images[i])
        y = int(batch.labels[i])
        ce += float(-torch.log_softmax(logits, 0)[y]) / 2
        g = gt[i]
        for probs in probs_by_layer:
            pt = np.where(g > 0, s * probs[0] + (1 - s) * probs[1], (1 - s) * probs[0] + s * probs[1]) + s
            focal += np.mean(-((1 - pt) ** 2) * np.log(pt)) / 2
            dice += (1 - (2 * (probs[1] * g).sum() + 1) / (probs[1].sum() + g.sum() + 1)) / 2
            dice += (1 - (2 * (probs[0] * (1 - g)).sum() + 1) / (probs[0].sum() + (1 - g).sum() + 1)) / 2
    assert parts["global"].item() == pytest.approx(ce, rel=1e-4)
    assert parts["focal"].item() == pytest.approx(focal, rel=1e-4)
    assert parts["dice"].item() == pytest.approx(dice, rel=1e-4)
    assert total.item() == pytest.approx(ce + 4.0 * (focal + dice), rel=1e-4)
    local_only = create_model("anomalyclip.no_global", backbone=tiny_backbone)
    local_only.load_fitted_state(model.fitted_state())
    t, p = local_only.training_loss(batch)
    assert set(p) == {"focal", "dice"} and t.item() == pytest.approx(4.0 * (focal + dice), rel=1e-4)


def test_learns_the_toy_industrial_set(tiny_backbone):
    test = toy_industrial_batch(16, 999)
    model = ready_model("anomalyclip", tiny_backbone, epochs=2)
    before = aurocs(model.predict(test), test)[1]
    model.fit(FitData(subjects=["plate", "tile"], train=toy_industrial_loader(3, 8), seed=0))
    after = aurocs(model.predict(test), test)[1]
    assert after >= 0.95 and after > before + 0.3, (before, after)
    log = model.train_log["train"]
    assert log["steps"] == 6
    for name in ("focal", "dice", "total"):
        assert log["losses_last"][name] < log["losses_first"][name], name


@torch.no_grad()
def test_save_load_gives_identical_predictions(model, tiny_backbone, images, tmp_path):
    path = model.save(tmp_path / "anomalyclip.safetensors")
    again = create_model("anomalyclip", backbone=tiny_backbone).load(path)
    batch = make_batch(images, ["cow", "car"])
    a, b = model.predict(batch), again.predict(batch)
    assert torch.equal(a.scores, b.scores) and torch.equal(a.maps, b.maps)
    assert set(model.fitted_state()) == {"prompts.context", "prompts.deep"}
    with pytest.raises(ModelError, match="checkpoint is for model 'anomalyclip', this model is 'anomalyclip.no_text_tuning'"):
        create_model("anomalyclip.no_text_tuning", backbone=tiny_backbone).load(path)
    model.reset_trainable(4)  # the text cache follows the prompts
    assert not torch.equal(model.predict(batch).scores, a.scores)
    model.load(path)
    assert torch.equal(model.predict(batch).scores, a.scores)
