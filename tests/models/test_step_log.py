"""Per-step training logs: a CSV per stage beside the checkpoint (exact after a resume) and TensorBoard events."""

from __future__ import annotations

import csv
import logging

import pytest
import torch

from caadbench.models import FitData, create_model
from caadbench.models.step_log import FIXED_COLUMNS, TENSORBOARD_DIR, StepLog, csv_path
from caadbench.models.training import warmup_cosine
from tests.baselines.toy_industrial import toy_industrial_loader
from tests.models.coreclip.test_train import Interrupting
from tests.models.coreclip.toy import toy_loader
from tests.models.test_training import fit


def rows(path):
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_single_stage_csv_has_every_step_with_losses_lr_and_throughput(tmp_path, tiny_backbone, caplog):
    with caplog.at_level(logging.INFO, logger="caadbench"):
        model = fit(tiny_backbone, tmp_path, max_steps=3, lr=2e-3)
    assert any("trainable parameters" in r.getMessage() for r in caplog.records)  # a log record, not a print
    table = rows(csv_path(tmp_path, "train"))
    assert [int(r["step"]) for r in table] == [1, 2, 3]
    assert list(table[0])[:len(FIXED_COLUMNS)] == list(FIXED_COLUMNS)
    curve = model.train_log["train"]["curve"]  # every step (3 < CURVE_POINTS): the CSV holds the same losses
    for row, point in zip(table, curve):
        assert set(point) - {"step"} <= set(row)
        for key, value in point.items():
            assert float(row[key]) == pytest.approx(value, rel=1e-5), key
        assert float(row["lr"]) == 2e-3 and int(row["images"]) == 4
        assert float(row["step_s"]) > 0 and float(row["images_per_s"]) == pytest.approx(4 / float(row["step_s"]),
                                                                                         rel=1e-3)
    assert [int(r["epoch"]) for r in table] == [0, 0, 1]  # 2 batches per epoch


def test_resume_rewrites_the_csv_to_the_checkpoint_then_continues(tmp_path, tiny_backbone):
    config = {"max_steps": 4, "checkpoint_every": 2}
    fit(tiny_backbone, tmp_path / "a", **config)
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(tiny_backbone, tmp_path / "b", loader=Interrupting(toy_industrial_loader(2, 4), 1, on_call=2), **config)
    fit(tiny_backbone, tmp_path / "b", resume="auto", **config)
    straight, resumed = rows(csv_path(tmp_path / "a", "train")), rows(csv_path(tmp_path / "b", "train"))
    assert [int(r["step"]) for r in resumed] == [1, 2, 3, 4]  # no step twice, none missing
    for a, b in zip(straight, resumed):
        assert float(a["total"]) == pytest.approx(float(b["total"]), rel=1e-5)


def test_two_stage_trainer_writes_one_csv_per_stage(tmp_path, tiny_backbone):
    model = create_model("coreclip", backbone=tiny_backbone, **QUICK_CORE, max_steps=3, w_cross_branch=0.0)
    model.fit(FitData(subjects=["cow", "car"], train=toy_loader(2, 2), seed=0, output_dir=tmp_path))
    stage1, stage2 = rows(csv_path(tmp_path, "stage1")), rows(csv_path(tmp_path, "stage2"))
    assert len(stage1) == QUICK_CORE["text_steps"] and len(stage2) == 3
    assert {"orthogonality", "grounding"} <= set(stage1[0]) and stage1[0]["images"] == ""  # text only
    assert {"bce", "pixel", "total"} <= set(stage2[0]) and int(stage2[0]["images"]) == 2
    c = model.config  # the lr a step used: the schedule's factor before that step's scheduler update
    expected = [c.lr * warmup_cosine(3, c.warmup)(i) for i in range(3)]
    assert [float(r["lr"]) for r in stage2] == pytest.approx(expected, rel=1e-5)


QUICK_CORE = {"text_steps": 2, "grounding_images": 4, "progress": False, "prompts": "two"}


def test_no_output_dir_writes_nothing(tmp_path, tiny_backbone):
    fit(tiny_backbone, None, max_steps=1)
    log = StepLog(None, "train")
    log.step(1, 0, 0.1, {"total": 1.0}, images=2)
    log.close()
    assert log.path is None


def test_tensorboard_events_when_installed(tmp_path):
    pytest.importorskip("tensorboard")
    log = StepLog(tmp_path, "train")
    for step in (1, 2):
        log.step(step, 0, 1e-3, {"total": 1.0 / step}, images=2)
    log.close()
    assert list((tmp_path / TENSORBOARD_DIR).glob("events.out.tfevents.*"))
    assert len(rows(csv_path(tmp_path, "train"))) == 2


def test_without_tensorboard_only_the_csv(tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("no tensorboard")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    log = StepLog(tmp_path, "train")
    log.step(1, 0, 1e-3, {"total": torch.tensor(0.5).item()}, images=2)
    log.close()
    assert not (tmp_path / TENSORBOARD_DIR).exists() and csv_path(tmp_path, "train").is_file()
