"""The two-stage trainer: it learns a contextual toy task, lowers its losses, logs, checkpoints and resumes exactly."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.metrics import roc_auc_score

from caadbench.errors import ModelError
from caadbench.models import FitData, create_model
from caadbench.models.coreclip.train import CHECKPOINT_NAME, STATE_SUFFIX, warmup_cosine
from tests.models.coreclip.toy import toy_batch, toy_loader

SUBJECTS = ["cow", "car"]
QUICK = {"text_steps": 2, "grounding_images": 4, "progress": False, "prompts": "two"}


def test_warmup_cosine_schedule():
    f = warmup_cosine(100, 0.1)
    assert [round(f(s), 3) for s in (0, 4, 9)] == [0.1, 0.5, 1.0]
    assert f(10) == 1.0 and math.isclose(f(55), 0.5, abs_tol=1e-9) and f(100) == 0.0
    assert all(f(s) >= f(s + 1) for s in range(10, 100))
    assert warmup_cosine(5, 0.0)(0) == 1.0


def test_training_on_an_easy_contextual_set_learns_it(tiny_backbone):
    """Neither subject nor context alone predicts the label; the trained model must combine them."""
    test = toy_batch(24, 999)
    model = create_model("coreclip", backbone=tiny_backbone, **{**QUICK, "text_steps": 5}, max_steps=10,
                         lr=3e-3, w_cross_branch=0.0)
    model.is_fitted = True
    before = roc_auc_score(test.labels, model.predict(test).scores)
    model.fit(FitData(subjects=SUBJECTS, train=toy_loader(3, 8), seed=0))
    after = roc_auc_score(test.labels, model.predict(test).scores)
    assert after >= 0.85 and after > before + 0.2, (before, after)
    log = model.train_log
    first, last = log["stage2"]["losses_first"], log["stage2"]["losses_last"]
    for name in ("bce", "pixel", "entropy", "total"):
        assert last[name] < first[name], (name, first[name], last[name])
    s1_first, s1_last = log["stage1"]["losses_first"], log["stage1"]["losses_last"]
    for name in ("orthogonality", "grounding"):
        assert s1_last[name] < s1_first[name], name
    assert log["trainable_params"] == model.parameter_counts()["trainable"]
    assert 0 < log["trainable_share"] < 0.1 and log["world_size"] == 1 and log["stage2"]["steps"] == 10
    alpha = model.predict(test).extras["alpha"].mean(0)
    assert alpha.max() < 0.95 and alpha.min() > 0.0


def test_epochs_without_train_size_count_the_batches(tiny_backbone):
    model = create_model("coreclip", backbone=tiny_backbone, **QUICK, epochs=2, w_cross_branch=0.0, csr_blocks=1)
    model.fit(FitData(subjects=SUBJECTS, train=toy_loader(2, 2), seed=0))
    assert model.train_log["stage2"]["steps"] == 4
    model.fit(FitData(subjects=SUBJECTS, train=toy_loader(2, 2), train_size=4, seed=0))
    assert model.train_log["stage2"]["steps"] == 4


class Interrupting:
    """A train reader whose ``on_call``-th pass fails when its ``fail_at``-th batch is requested."""

    def __init__(self, loader, fail_at: int, on_call: int) -> None:
        self.loader, self.fail_at, self.on_call, self.calls = loader, fail_at, on_call, 0

    def __call__(self, epoch: int):
        self.calls += 1
        return self._iterate(epoch, self.calls == self.on_call)

    def _iterate(self, epoch: int, fail: bool):
        for i, batch in enumerate(self.loader(epoch)):
            if fail and i == self.fail_at:
                raise RuntimeError("simulated crash")
            yield batch


def test_resume_continues_exactly(tmp_path, tiny_backbone):
    config = {**QUICK, "max_steps": 4, "checkpoint_every": 2, "csr_blocks": 2}
    straight = create_model("coreclip", backbone=tiny_backbone, **config)
    straight.fit(FitData(subjects=SUBJECTS, train=toy_loader(4, 2), seed=0, output_dir=tmp_path / "a"))
    assert (tmp_path / "a" / CHECKPOINT_NAME).is_file()

    crashed = create_model("coreclip", backbone=tiny_backbone, **config)
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashed.fit(FitData(subjects=SUBJECTS, train=Interrupting(toy_loader(4, 2), 2, on_call=2), seed=0,
                            output_dir=tmp_path / "b"))  # pass 1: grounding means, pass 2: stage 2
    side = tmp_path / "b" / (CHECKPOINT_NAME + STATE_SUFFIX)
    state = torch.load(side, weights_only=True)
    assert (state["stage"], state["step"], state["batch_in_epoch"]) == (2, 2, 2)  # crashed inside stage 2
    resumed = create_model("coreclip", backbone=tiny_backbone, **config, resume="auto")
    resumed.fit(FitData(subjects=SUBJECTS, train=toy_loader(4, 2), seed=0, output_dir=tmp_path / "b"))
    assert resumed.train_log["stage2"]["steps"] == 4  # 2 before the crash + 2 after
    a, b = straight.fitted_state(), resumed.fitted_state()
    assert all(torch.equal(b[key], a[key]) for key in a)  # bit for bit
    assert not torch.equal(a["csr.adapters.0.up_weight"], torch.zeros_like(a["csr.adapters.0.up_weight"]))


def test_resume_refuses_a_checkpoint_without_its_trainer_state(tmp_path, tiny_backbone):
    config = {**QUICK, "max_steps": 1, "csr_blocks": 1}
    model = create_model("coreclip", backbone=tiny_backbone, **config)
    model.fit(FitData(subjects=SUBJECTS, train=toy_loader(1, 2), seed=0, output_dir=tmp_path))
    ckpt = tmp_path / CHECKPOINT_NAME
    model.save(ckpt)  # a new save: the sidecar now belongs to other bytes only if they differ
    with torch.no_grad():
        model.csr.adapters[0].up_bias.add_(1.0)
    model.save(ckpt)
    again = create_model("coreclip", backbone=tiny_backbone, **config, resume=str(ckpt))
    with pytest.raises(ModelError, match="does not belong"):
        again.fit(FitData(subjects=SUBJECTS, train=toy_loader(1, 2), seed=0))
    ckpt.with_name(ckpt.name + STATE_SUFFIX).unlink()
    with pytest.raises(ModelError, match="trainer state"):
        again.fit(FitData(subjects=SUBJECTS, train=toy_loader(1, 2), seed=0))


def test_fit_needs_train_data(tiny_backbone):
    model = create_model("coreclip", backbone=tiny_backbone, **QUICK, max_steps=1)
    with pytest.raises(ModelError, match="FitData.train"):
        model.fit(FitData(subjects=SUBJECTS))
    with pytest.raises(ModelError, match="FitData.subjects"):
        model.fit(FitData(subjects=[], train=toy_loader(1, 2)))
    with pytest.raises(ModelError, match="no batches"):
        model.fit(FitData(subjects=SUBJECTS, train=lambda epoch: iter([]), train_size=0))


def test_same_seed_same_model_other_seed_other_model(tiny_backbone):
    config = {**QUICK, "max_steps": 2, "csr_blocks": 1}
    runs = []
    for seed in (0, 0, 1):
        model = create_model("coreclip", backbone=tiny_backbone, **config)
        model.fit(FitData(subjects=SUBJECTS, train=toy_loader(2, 2), seed=seed))
        runs.append(model.fitted_state())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not torch.equal(runs[0]["fusion.query.weight"], runs[2]["fusion.query.weight"])
