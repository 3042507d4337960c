"""The single-stage trainer of the trained baselines: the official optimiser, seeding, checkpoints, exact resume."""

from __future__ import annotations

import pytest
import torch

from caadbench.errors import ModelError
from caadbench.models import FitData, create_model
from caadbench.models.training import ADAM_BETAS, STATE_SUFFIX, LossLog, constant, param_groups
from tests.baselines.toy_industrial import toy_industrial_loader
from tests.models.coreclip.test_train import Interrupting

SUBJECTS = ["plate", "tile"]
QUICK = {"progress": False, "prompt_set": "two"}


def fit(backbone, tmp_path=None, seed=0, loader=None, identity=None, **options):
    model = create_model("aprilgan", backbone=backbone, **{**QUICK, **options})
    model.fit(FitData(subjects=SUBJECTS, train=loader or toy_industrial_loader(2, 4), seed=seed,
                      output_dir=tmp_path, train_identity=identity))
    return model


def test_helpers():
    assert constant(0) == constant(10**6) == 1.0
    w, b = torch.nn.Parameter(torch.zeros(2, 2)), torch.nn.Parameter(torch.zeros(2))
    groups = param_groups([w, b], 0.1)
    assert groups[0]["params"] == [w] and groups[0]["weight_decay"] == 0.1 and groups[1]["weight_decay"] == 0.0
    log = LossLog()
    for step in range(1, 21):
        log.add(step, {"total": float(step)})
    summary = log.summary()
    assert summary["steps"] == 20 and summary["losses_first"]["total"] == 1.5 and summary["losses_last"]["total"] == 19.5
    log.entries[-2]["cos"] = 0.5  # a value monitored after the step's losses were logged (CoRe-CLIP's cos_t0_t1)
    log.add(21, {"total": 21.0})
    assert log.running(window=3) == {"total": 20.0, "cos": 0.5}


def test_official_optimiser_and_checkpoint(tmp_path, tiny_backbone):
    model = fit(tiny_backbone, tmp_path, max_steps=3, lr=2e-3)
    state = torch.load(tmp_path / (model.checkpoint_name + STATE_SUFFIX), weights_only=True)
    group = state["optimizer"]["param_groups"][0]
    assert tuple(group["betas"]) == ADAM_BETAS and group["lr"] == 2e-3 and group["weight_decay"] == 0
    assert (state["stage"], state["step"]) == (2, 3) and state["scheduler"]["last_epoch"] == 3
    loaded = create_model("aprilgan", backbone=tiny_backbone, **{**QUICK, "max_steps": 3, "lr": 2e-3}).load(
        tmp_path / model.checkpoint_name)  # a checkpoint loads only into the method config it was fitted with
    for key, value in model.fitted_state().items():
        assert torch.equal(loaded.fitted_state()[key], value)
    assert model.train_log["train"]["steps"] == 3 and model.train_log["world_size"] == 1


def test_epochs_count_batches_and_seeds_decide(tiny_backbone):
    assert fit(tiny_backbone, epochs=2).train_log["train"]["steps"] == 4  # 2 batches per epoch, counted
    a, b, c = (fit(tiny_backbone, seed=s, max_steps=1).fitted_state() for s in (0, 0, 1))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["maps.0.weight"], c["maps.0.weight"])


def test_resume_continues_exactly(tmp_path, tiny_backbone):
    config = {"max_steps": 4, "checkpoint_every": 2}
    straight = fit(tiny_backbone, tmp_path / "a", **config)
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(tiny_backbone, tmp_path / "b", loader=Interrupting(toy_industrial_loader(2, 4), 1, on_call=2), **config)
    state = torch.load(tmp_path / "b" / (straight.checkpoint_name + STATE_SUFFIX), weights_only=True)
    assert (state["stage"], state["step"], state["epoch"], state["batch_in_epoch"]) == (1, 2, 0, 2)
    resumed = fit(tiny_backbone, tmp_path / "b", resume="auto", **config)
    assert resumed.train_log["train"]["steps"] == 4  # 2 before the crash + 2 after
    for key, value in straight.fitted_state().items():
        torch.testing.assert_close(resumed.fitted_state()[key], value, rtol=1e-6, atol=1e-7, msg=key)


def test_a_killed_runs_checkpoint_is_no_finished_model_and_other_data_cannot_resume_it(tmp_path, tiny_backbone):
    config = {"max_steps": 4, "checkpoint_every": 2}
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(tiny_backbone, tmp_path, loader=Interrupting(toy_industrial_loader(2, 4), 1, on_call=2),
            identity="dataset aaaa cc/train", **config)
    left = tmp_path / create_model("aprilgan", backbone=tiny_backbone, **QUICK).checkpoint_name
    fresh = create_model("aprilgan", backbone=tiny_backbone, **{**QUICK, **config})
    with pytest.raises(ModelError, match=rf"^{left}: was written while training ran \(stage 1, step 2\), not by a "
                                         r"finished training: resume that run"):
        fresh.load(left)
    with pytest.raises(ModelError, match=r"trained on other data \(dataset aaaa cc/train\) than this run trains on "
                                         r"\(dataset bbbb cc/train\)"):
        fit(tiny_backbone, tmp_path, resume="auto", identity="dataset bbbb cc/train", **config)
    done = fit(tiny_backbone, tmp_path, resume="auto", identity="dataset aaaa cc/train", **config)
    assert done.train_log["train"]["steps"] == 4
    fresh.load(left)  # finished now: a model


def test_no_batches(tiny_backbone):
    with pytest.raises(ModelError, match="no batches"):
        fit(tiny_backbone, loader=lambda epoch: iter([]))
    with pytest.raises(ModelError, match="FitData.train"):
        create_model("aprilgan", backbone=tiny_backbone, **QUICK).fit(FitData(subjects=SUBJECTS))
