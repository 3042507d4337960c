"""APRIL-GAN: prompt ensemble, layer taps and linear maps, the whole prediction and the training loss against loop
references, learning on a toy industrial set, the safetensors round trip. Random-init caad-tiny (8x8 grid)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from caadbench.baselines.aprilgan import VARIANTS, AprilGan
from caadbench.baselines.segmentation import resize_mask
from caadbench.errors import ModelError
from caadbench.models import FitData, Learning, create_model, get_model_spec
from caadbench.models.prompts import APRIL_GAN_PROMPTS, NORMAL_STATES
from tests.baselines.reference import (
    bilinear_reference,
    hand_embedding,
    hand_forward,
    hand_prototype,
    make_batch,
    ready_model,
    two_way_probability,
)
from tests.baselines.toy_industrial import aurocs, toy_industrial_batch, toy_industrial_loader


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(7))


@pytest.fixture(scope="module")
def model(tiny_backbone) -> AprilGan:
    return ready_model("aprilgan", tiny_backbone, seed=5)


def test_prompt_ensemble_is_april_gans():
    normal, anomalous = APRIL_GAN_PROMPTS.prompts("metal_nut", False), APRIL_GAN_PROMPTS.prompts("metal_nut", True)
    assert len(normal) == 7 * 35 and len(anomalous) == 5 * 35
    assert APRIL_GAN_PROMPTS.normal_states == NORMAL_STATES
    assert normal[0] == "a bad photo of a metal nut." and normal[-1] == "this is one metal nut without damage in the scene."
    assert "a photo of a broken metal nut." in anomalous and len(set(normal + anomalous)) == 420


def test_variants_are_registered_trained_and_build(tiny_backbone):
    assert set(VARIANTS) == {"default", "last_layer", "no_focal", "no_dice", "map_score"}
    for key in VARIANTS:
        name = "aprilgan" if key == "default" else f"aprilgan.{key}"
        spec = get_model_spec(name)
        assert spec.learning == Learning.TRAINED and spec.family == "aprilgan"
        m = spec.build(backbone=tiny_backbone)
        assert not m.is_fitted and m.learning == Learning.TRAINED
    assert create_model("aprilgan", backbone=tiny_backbone).feature_blocks == (1, 3, 5, 7)
    assert create_model("aprilgan.last_layer", backbone=tiny_backbone).feature_blocks == (7,)
    with pytest.raises(ModelError, match="before predicting"):
        create_model("aprilgan", backbone=tiny_backbone).predict(make_batch(torch.rand(1, 3, 128, 128), ["cow"]))


@pytest.mark.parametrize(("options", "words"), [
    ({"feature_layers": [8]}, "feature_layers"),
    ({"image_score": "max"}, "image_score"),
    ({"w_focal": 0.0, "w_dice": 0.0}, "not both 0"),
    ({"epochs": 0}, "nothing would be trained"),
    ({"prompt_set": "nope"}, "unknown prompt set"),
])
def test_bad_options_are_refused(tiny_backbone, options, words):
    with pytest.raises(ModelError, match=words):
        create_model("aprilgan", backbone=tiny_backbone, **options)


PROTOTYPES: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}


def reference_prototypes(bb, subject: str) -> tuple[torch.Tensor, torch.Tensor]:
    if subject not in PROTOTYPES:
        PROTOTYPES[subject] = tuple(hand_prototype(bb, APRIL_GAN_PROMPTS.prompts(subject, a)) for a in (False, True))
    return PROTOTYPES[subject]


def reference_aprilgan(bb, model: AprilGan, image: torch.Tensor, subject: str):
    """APRIL-GAN for one image: hand-run encoders, linear maps per token, loops for upsampling and softmax."""
    normal, anomalous = reference_prototypes(bb, subject)
    outs = hand_forward(bb, image[None])
    size, g = image.shape[-1], bb.grid_size[0]
    maps, probs_by_layer = [], []
    for layer, block in zip(model.maps, model.feature_blocks):
        tokens = outs[block][0, 1:]  # raw block output, no ln_post
        z = [F.normalize(tokens[n] @ layer.weight.T + layer.bias, dim=0) for n in range(len(tokens))]
        logits = np.array([[100.0 * float(zn @ normal), 100.0 * float(zn @ anomalous)] for zn in z])  # (N, 2)
        up = np.stack([bilinear_reference(logits[:, k].reshape(g, g), size, size, True) for k in range(2)])
        e = np.exp(up - up.max(axis=0))
        probs = e / e.sum(axis=0)  # (2, S, S)
        probs_by_layer.append(probs)
        maps.append(probs[1])
    score = two_way_probability(hand_embedding(bb, image[None])[0], normal, anomalous, 100.0)
    return score, np.mean(maps, axis=0), probs_by_layer


@torch.no_grad()
def test_prediction_equals_the_loop_reference(model, tiny_backbone, images):
    out = model.predict(make_batch(images, ["metal_nut", "cow"]))
    assert out.maps.shape == (2, 128, 128) and set(out.extras) == {"clip_score"}
    for i, subject in enumerate(["metal_nut", "cow"]):
        score, ref_map, _ = reference_aprilgan(tiny_backbone, model, images[i], subject)
        assert out.scores[i].item() == pytest.approx(score, abs=1e-5)
        np.testing.assert_allclose(out.maps[i].numpy(), ref_map, rtol=1e-4, atol=1e-5)
    assert torch.equal(out.scores, out.extras["clip_score"])


@torch.no_grad()
def test_map_score_variant_scores_the_maximum_of_the_map(model, tiny_backbone, images):
    variant = create_model("aprilgan.map_score", backbone=tiny_backbone)
    variant.load_fitted_state(model.fitted_state())
    variant.is_fitted = True
    batch = make_batch(images, ["cow", "cow"])
    a, b = model.predict(batch), variant.predict(batch)
    torch.testing.assert_close(a.maps, b.maps)
    torch.testing.assert_close(b.scores, b.maps.flatten(1).amax(dim=1))


@torch.no_grad()
def test_training_loss_equals_focal_plus_dice_of_the_reference_maps(model, tiny_backbone):
    batch = toy_industrial_batch(2, 3)
    total, parts = model.training_loss(batch)
    gt = resize_mask(batch.gt_masks, 128).numpy()
    focal = dice = 0.0
    for i in range(2):
        _, _, probs_by_layer = reference_aprilgan(tiny_backbone, model, batch.images[i], batch.subjects[i])
        g = gt[i].astype(float)
        for probs in probs_by_layer:
            s = 1e-5
            pt = np.where(g > 0, s * probs[0] + (1 - s) * probs[1], (1 - s) * probs[0] + s * probs[1]) + s
            focal += np.mean(-((1 - pt) ** 2) * np.log(pt)) / 2  # mean over both images' pixels
            dice += (1 - (2 * (probs[1] * g).sum() + 1) / (probs[1].sum() + g.sum() + 1)) / 2
    assert parts["focal"].item() == pytest.approx(focal, rel=1e-4)
    assert parts["dice"].item() == pytest.approx(dice, rel=1e-4)
    assert total.item() == pytest.approx(focal + dice, rel=1e-4)
    no_dice = create_model("aprilgan.no_dice", backbone=tiny_backbone)
    no_dice.load_fitted_state(model.fitted_state())
    t, p = no_dice.training_loss(batch)
    assert set(p) == {"focal"} and t.item() == pytest.approx(focal, rel=1e-4)


def test_learns_the_toy_industrial_set(tiny_backbone):
    test = toy_industrial_batch(16, 999)
    model = ready_model("aprilgan", tiny_backbone, epochs=2)
    before = aurocs(model.predict(test), test)[1]
    model.fit(FitData(subjects=["plate", "tile"], train=toy_industrial_loader(3, 8), seed=0))
    after = aurocs(model.predict(test), test)[1]
    assert after >= 0.95 and after > before + 0.15, (before, after)
    log = model.train_log
    assert log["train"]["steps"] == 6 and 0 < log["trainable_share"] < 0.02
    for name in ("focal", "dice", "total"):
        assert log["train"]["losses_last"][name] < log["train"]["losses_first"][name], name


@torch.no_grad()
def test_save_load_gives_identical_predictions(model, tiny_backbone, images, tmp_path):
    path = model.save(tmp_path / "aprilgan.safetensors")
    again = create_model("aprilgan", backbone=tiny_backbone).load(path)
    again.prototypes = model.prototypes  # the frozen text cache, shared to save re-encoding 420 prompts
    batch = make_batch(images, ["cow", "car"])
    a, b = model.predict(batch), again.predict(batch)
    assert torch.equal(a.scores, b.scores) and torch.equal(a.maps, b.maps)
    assert set(model.fitted_state()) == {f"maps.{i}.{p}" for i in range(4) for p in ("weight", "bias")}
    with pytest.raises(ModelError, match="checkpoint is for model 'aprilgan', this model is 'aprilgan.last_layer'"):
        create_model("aprilgan.last_layer", backbone=tiny_backbone).load(path)
    with pytest.raises(ModelError, match="is for model 'aprilgan'"):
        create_model("anomalyclip", backbone=tiny_backbone).load(path)
