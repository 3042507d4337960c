"""The CoRe-CLIP model: every variant builds, trains a step and predicts; outputs, masks, save/load."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from caadbench.errors import ModelError
from caadbench.models import FitData, Learning, create_model, list_models
from caadbench.models.backbone import ClipBackbone
from caadbench.models.coreclip import VARIANTS, CoreClipConfig
from tests.models.coreclip.toy import toy_batch, toy_loader

QUICK = {"text_steps": 1, "max_steps": 1, "grounding_images": 4, "progress": False, "prompts": "two"}
TRAINED = {**QUICK, "max_steps": 2}  # the config of the `trained` fixture: a checkpoint loads only into it
SUBJECTS = ["cow", "car"]


def quick_fit(model, steps: int = 1, batches: int = 1, batch_size: int = 4, seed: int = 0, **data):
    model.fit(FitData(subjects=SUBJECTS, train=toy_loader(batches, batch_size, seed), seed=seed, **data))
    return model


@pytest.fixture(scope="module")
def test_batch():
    return toy_batch(4, 77)


@pytest.fixture(scope="module")
def trained(tiny_backbone):
    return quick_fit(create_model("coreclip", backbone=tiny_backbone, **TRAINED), batches=2)


def test_registered_variants_are_all_trained_and_listed():
    names = {s.name for s in list_models("coreclip")}
    expected = {"coreclip", "coreclip.global_only", "coreclip.subject_only", "coreclip.context_only",
                "coreclip.no_csr", "coreclip.mean_fusion", "coreclip.concat_fusion", "coreclip.no_orthogonality",
                "coreclip.no_grounding", "coreclip.no_masks", "coreclip.masks_bbox", "coreclip.masks_dilate8",
                "coreclip.masks_erode8", "coreclip.masks_drop25"}
    assert expected <= names
    assert all(s.learning == Learning.TRAINED for s in list_models("coreclip"))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_builds_trains_a_step_and_predicts(tiny_backbone, test_batch, variant):
    name = "coreclip" if variant == "default" else f"coreclip.{variant}"
    model = create_model(name, backbone=tiny_backbone, **QUICK)
    with pytest.raises(ModelError, match="must be fitted"):
        model.predict(test_batch)
    quick_fit(model)
    out = model.predict(test_batch)
    assert out.scores.shape == (4,) and out.maps.shape == (4, 128, 128)
    assert torch.isfinite(out.scores).all() and ((out.maps >= 0) & (out.maps <= 1)).all()
    alpha = out.extras["alpha"]
    assert alpha.shape == (4, 3)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(4))
    inactive = [i for i, b in enumerate(("subject", "context", "global")) if b not in model.branch_names]
    assert (alpha[:, inactive] == 0).all()
    assert torch.isnan(out.extras["branch_scores"][:, inactive]).all()
    assert model.train_log["stage2"]["steps"] == 1


def test_branches_differ_after_one_training_step(tiny_backbone, test_batch):
    model = create_model("coreclip", backbone=tiny_backbone, **QUICK)
    with torch.no_grad():
        before, _ = model.branch_features(test_batch.images)
    torch.testing.assert_close(before.embeddings[:, 0], before.embeddings[:, 2])  # identity adapters
    quick_fit(model)
    with torch.no_grad():
        after, _ = model.branch_features(test_batch.images)
    diff = (after.embeddings[:, [0, 0, 1]] - after.embeddings[:, [1, 2, 2]]).norm(dim=-1)
    assert (diff > 1e-5).all()


def test_inference_reads_no_mask(trained, test_batch):
    ref = trained.predict(test_batch)
    for masks in (torch.ones_like(test_batch.subject_masks),
                  torch.rand(test_batch.subject_masks.shape, generator=torch.Generator().manual_seed(3)) > 0.5):
        out = trained.predict(replace(test_batch, subject_masks=masks))
        assert torch.equal(out.scores, ref.scores) and torch.equal(out.maps, ref.maps)
        assert torch.equal(out.extras["alpha"], ref.extras["alpha"])


def test_scores_follow_the_formula(trained, test_batch):
    out = trained.predict(test_batch)
    with torch.no_grad():
        protos = trained.prototypes_for(test_batch.subjects)
        feats, _ = trained.branch_features(test_batch.images)
        alpha = out.extras["alpha"]  # tri-branch: columns are the branches in order
        z = torch.nn.functional.normalize((alpha[:, :, None] * feats.embeddings).sum(1), dim=-1)
        margin = (z * protos[:, 1]).sum(-1) - (z * protos[:, 0]).sum(-1)
        ref = torch.sigmoid(margin * trained.logit_scale.exp())
    torch.testing.assert_close(out.scores, ref, rtol=1e-4, atol=1e-5)


def test_save_load_gives_identical_predictions(tmp_path, tiny_backbone, trained, test_batch):
    path = trained.save(tmp_path / "coreclip.safetensors")
    fresh = create_model("coreclip", backbone=tiny_backbone, **TRAINED)
    assert not torch.equal(fresh.csr.adapters[0].up_weight, trained.csr.adapters[0].up_weight)
    fresh.load(path)
    a, b = trained.predict(test_batch), fresh.predict(test_batch)
    assert torch.equal(a.scores, b.scores) and torch.equal(a.maps, b.maps)
    assert torch.equal(a.extras["alpha"], b.extras["alpha"])
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        keys = set(fh.keys())
    assert keys and not any(k.startswith("backbone.") for k in keys)  # trainable state only


def test_load_on_another_backbone_or_variant_is_refused(tmp_path, trained):
    path = trained.save(tmp_path / "coreclip.safetensors")
    other = create_model("coreclip", backbone=ClipBackbone("caad-tiny", init_seed=1), **TRAINED)
    with pytest.raises(ModelError, match="backbone"):
        other.load(path)
    concat = create_model("coreclip.concat_fusion", backbone=trained.backbone, **TRAINED)
    with pytest.raises(ModelError, match="checkpoint is for model 'coreclip', this model is 'coreclip.concat_fusion'"):
        concat.load(path)


def test_a_checkpoint_loads_only_into_its_variant_and_method_config(tmp_path, tiny_backbone):
    """An ablation row must come from the ablation's checkpoint: variant and method config are checked."""
    quick = {**QUICK, "csr_blocks": 1}
    no_ortho = create_model("coreclip.no_orthogonality", backbone=tiny_backbone, **quick).save(tmp_path / "a.st")
    with pytest.raises(ModelError, match="'coreclip.no_orthogonality', this model is 'coreclip'"):
        create_model("coreclip", backbone=tiny_backbone, **quick).load(no_ortho)
    subject = create_model("coreclip.subject_only", backbone=tiny_backbone, **quick).save(tmp_path / "s.st")
    with pytest.raises(ModelError, match="'coreclip.subject_only', this model is 'coreclip.context_only'"):
        create_model("coreclip.context_only", backbone=tiny_backbone, **quick).load(subject)
    # same variant, other method options: every differing option is named with both values
    lr = create_model("coreclip", backbone=tiny_backbone, **quick, lr=0.5, w_grounding=0.0).save(tmp_path / "l.st")
    with pytest.raises(ModelError, match=r"lr: 0.5 in the checkpoint, 0.001 here; w_grounding: 0.0 in the "
                                         r"checkpoint, 1.0 here"):
        create_model("coreclip", backbone=tiny_backbone, **quick).load(lr)
    # runtime options (progress, resume, checkpointing, amp) do not make another method
    runtime = {"progress": True, "resume": "auto", "checkpoint_every": 7, "amp": False}
    same = create_model("coreclip", backbone=tiny_backbone, **quick).save(tmp_path / "q.st")
    create_model("coreclip", backbone=tiny_backbone, **{**quick, **runtime}).load(same)


def test_parameter_counts_and_freezing(tiny_backbone):
    model = create_model("coreclip", backbone=tiny_backbone)
    counts = model.parameter_counts()
    backbone_params = sum(p.numel() for p in tiny_backbone.parameters())
    assert counts["total"] == backbone_params + counts["trainable"]
    assert not any(p.requires_grad for p in model.backbone.parameters())
    csr = 6 * 3 * (192 * 64 + 64 + 64 * 192 + 192)
    text = 3 * (128 * 32 + 32 + 32 * 128 + 128 + 1)
    crm = 2 * 128 * 128
    assert counts["trainable"] == csr + text + crm + 1
    assert create_model("coreclip.no_csr", backbone=tiny_backbone).csr.blocks == 0


@pytest.mark.parametrize("bad, match", [
    ({"branches": "subject+sky"}, "branches"),
    ({"fusion": "max"}, "fusion"),
    ({"masks": "sam"}, "masks"),
    ({"entropy_low": 0.9, "entropy_high": 0.2}, "entropy_low"),
    ({"w_bce": -1.0}, "w_bce"),
    ({"csr_blocks": 12}, "image tower has 8"),
    ({"text_blocks": 5}, "text tower has 4"),
    ({"epochs": 0}, "would not train"),
])
def test_bad_configs_are_refused(tiny_backbone, bad, match):
    with pytest.raises(ModelError, match=match):
        create_model("coreclip", backbone=tiny_backbone, **bad)


def test_branch_subsets_parse():
    assert CoreClipConfig(branches="context+subject").branch_names == ("subject", "context")
    assert CoreClipConfig().branch_names == ("subject", "context", "global")
