"""CLIP baseline: prompts, image score and patch map against a hand-run encoder, few-shot memory, save/load."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from caadbench.baselines.clip import ClipBaseline, ClipConfig
from caadbench.errors import ModelError
from caadbench.models import FitData, Learning, create_model
from tests.baselines.reference import hand_embedding, hand_patches, make_batch, two_way_probability


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(3, 3, 128, 128, generator=torch.Generator().manual_seed(5))


@pytest.fixture(scope="module")
def few_shot(tiny_backbone) -> ClipBaseline:
    model = create_model("clip.few_shot", backbone=tiny_backbone)
    support = torch.rand(3, 3, 128, 128, generator=torch.Generator().manual_seed(6))
    model.fit(FitData(subjects=["cow", "car"], support=[make_batch(support[:2], ["cow", "cow"]),
                                                        make_batch(support[2:], ["car"])]))
    return model


def test_prompt_sets_of_the_variants(tiny_backbone):
    two = create_model("clip", backbone=tiny_backbone).prototypes.prompts
    assert two.prompts("cow", anomalous=False) == ["a photo of a normal cow."]
    assert two.prompts("cow", anomalous=True) == ["a photo of an anomalous cow."]
    assert two.prompts("traffic_light", anomalous=True) == ["a photo of an anomalous traffic light."]
    ensemble = create_model("clip.ensemble", backbone=tiny_backbone).prototypes.prompts
    assert len(ensemble.prompts("cow", False)) == 7 * 22 and len(ensemble.prompts("cow", True)) == 4 * 22


@pytest.mark.parametrize("name,logit_scale", [("clip", "backbone"), ("clip.ensemble", 100.0)])
@torch.no_grad()
def test_score_and_map_equal_a_hand_reference(tiny_backbone, images, name, logit_scale):
    model = create_model(name, backbone=tiny_backbone, logit_scale=logit_scale)
    subjects = ["cow", "car", "cow"]
    out = model.predict(make_batch(images, subjects))
    assert out.scores.shape == (3,) and out.maps.shape == (3, 128, 128)
    assert torch.isfinite(out.scores).all() and torch.isfinite(out.maps).all()
    scale = tiny_backbone.logit_scale if logit_scale == "backbone" else logit_scale
    image = hand_embedding(tiny_backbone, images)
    patches = hand_patches(tiny_backbone, images, -1, project=True)  # (3, 64, D)
    for i, subject in enumerate(subjects):
        normal, anomalous = model.text_prototypes([subject])[0]
        assert out.scores[i].item() == pytest.approx(two_way_probability(image[i], normal, anomalous, scale), abs=1e-5)
        grid = torch.tensor([two_way_probability(p, normal, anomalous, scale) for p in patches[i]]).view(1, 1, 8, 8)
        expected = F.interpolate(grid.float(), size=(128, 128), mode="bilinear", align_corners=False)[0, 0]
        torch.testing.assert_close(out.maps[i], expected, rtol=1e-4, atol=1e-5)
    assert out.maps[0].std() > 0


def test_subjects_get_their_own_prototypes(tiny_backbone):
    model = create_model("clip", backbone=tiny_backbone)
    protos = model.text_prototypes(["cow", "car"])
    assert protos.shape == (2, 2, tiny_backbone.embed_dim)
    assert not torch.allclose(protos[0], protos[1])
    torch.testing.assert_close(protos.norm(dim=-1), torch.ones(2, 2))


@torch.no_grad()
def test_few_shot_score_formula_and_identity_support(few_shot, tiny_backbone, images):
    out = few_shot.predict(make_batch(images[:2], ["cow", "car"]))
    support = torch.rand(3, 3, 128, 128, generator=torch.Generator().manual_seed(6))
    memory = {"cow": hand_embedding(tiny_backbone, support[:2]), "car": hand_embedding(tiny_backbone, support[2:])}
    image = hand_embedding(tiny_backbone, images[:2])
    for i, subject in enumerate(["cow", "car"]):
        visual = 0.5 * (1 - float((memory[subject] @ image[i]).max()))
        assert out.extras["few_shot_score"][i].item() == pytest.approx(visual, abs=1e-5)
        assert out.scores[i].item() == pytest.approx(0.5 * (out.extras["zero_shot_score"][i].item() + visual), abs=1e-5)
    same = create_model("clip.few_shot", backbone=tiny_backbone)
    same.fit(FitData(subjects=["cow"], support=[make_batch(images[:1], ["cow"])]))
    assert same.predict(make_batch(images[:1], ["cow"])).extras["few_shot_score"].abs().item() < 1e-5


def test_few_shot_save_load_round_trip(few_shot, tiny_backbone, images, tmp_path):
    path = few_shot.save(tmp_path / "clip_fs.safetensors")
    assert {k: tuple(v.shape) for k, v in few_shot.fitted_state().items()} == {
        "image/cow": (2, tiny_backbone.embed_dim), "image/car": (1, tiny_backbone.embed_dim)}
    fresh = create_model("clip.few_shot", backbone=tiny_backbone).load(path)
    batch = make_batch(images, ["car", "cow", "car"])
    a, b = few_shot.predict(batch), fresh.predict(batch)
    assert torch.equal(a.scores, b.scores) and torch.equal(a.maps, b.maps)
    with pytest.raises(ModelError, match="checkpoint is for model 'clip.few_shot'"):
        create_model("winclip.plus", backbone=tiny_backbone).load(path)
    with pytest.raises(ModelError, match="checkpoint is for model 'clip.few_shot', this model is 'clip'"):
        create_model("clip", backbone=tiny_backbone).load(path)
    with pytest.raises(ModelError, match="few_shot: true in the checkpoint, false here"):
        ClipBaseline(ClipConfig(backbone="caad-tiny"), tiny_backbone).load(path)  # unnamed: the config decides


def test_few_shot_option_makes_a_few_shot_model(tiny_backbone):
    """The config decides the learning type: `clip --option few_shot=true` is few-shot, not relabelled."""
    model = create_model("clip", backbone=tiny_backbone, few_shot=True)
    assert model.learning == Learning.FEW_SHOT and not model.is_fitted
    assert create_model("clip.few_shot", backbone=tiny_backbone, few_shot=False).learning == Learning.ZERO_SHOT


def test_zero_shot_needs_no_fit_and_few_shot_does(tiny_backbone, images):
    zero = create_model("clip", backbone=tiny_backbone)
    assert zero.is_fitted and zero.fitted_state() == {}
    model = create_model("clip.few_shot", backbone=tiny_backbone)
    with pytest.raises(ModelError, match="must be fitted"):
        model.predict(make_batch(images[:1], ["cow"]))
    with pytest.raises(ModelError, match="needs support images"):
        model.fit(FitData(subjects=["cow"]))
    with pytest.raises(ModelError, match="logit_scale must be positive"):
        create_model("clip", backbone=tiny_backbone, logit_scale=-1.0)
