"""World pretraining: it learns, writes weights ``--pretrained FILE`` loads, resumes exactly and refuses bad input."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from caadbench.cli import main
from caadbench.errors import ModelError
from caadbench.models import ClipBackbone
from caadbench.models.world.config import PretrainConfig
from caadbench.models.world.train import Pretrainer, sidecar

TINY = {"arch": "caad-tiny", "image_size": 64, "scenes": 24, "batch_size": 16, "closeup_share": 0.25,
        "lr": 2e-3, "warmup": 0.0, "eval_every": 0, "checkpoint_every": 0, "workers": 1}


def tiny(**overrides) -> PretrainConfig:
    return PretrainConfig(**{**TINY, **overrides})


def losses(out) -> list[float]:
    lines = sidecar(out, ".log.csv").read_text().splitlines()
    column = lines[0].split(",").index("loss")
    return [float(line.split(",")[column]) for line in lines[1:]]


def test_few_steps_lower_the_loss_and_write_weights_that_load(tmp_path):
    out = tmp_path / "world.safetensors"
    Pretrainer(tiny(steps=14, eval_every=7, eval_scenes=20), out, progress=False).run()
    loss = losses(out)
    assert len(loss) == 14 and sum(loss[-3:]) / 3 < sum(loss[:3]) / 3 - 0.1
    recipe = json.loads(sidecar(out, ".json").read_text())
    assert recipe["config"]["steps"] == 14 and recipe["held_out"]["scenes"] == 20
    assert not sidecar(out, ".state.pt").exists()  # removed once complete
    backbone = ClipBackbone("caad-tiny", str(out), image_size=64)
    assert backbone.identity.weights == f"world-file:{out.name}" and not backbone.identity.is_random_init
    stored = load_file(str(out))
    assert all(v.dtype == torch.float16 for v in stored.values())
    loaded = backbone.model.state_dict()
    for key, value in stored.items():
        assert torch.equal(loaded[key], value.float()), key


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    cfg = tiny(steps=6, checkpoint_every=2)
    straight = tmp_path / "a.safetensors"
    Pretrainer(cfg, straight, progress=False).run()

    crashed = tmp_path / "b.safetensors"
    real_step, calls = Pretrainer._step, {"n": 0}

    def crash_at_five(self, *args):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("simulated crash")
        return real_step(self, *args)

    monkeypatch.setattr(Pretrainer, "_step", crash_at_five)
    with pytest.raises(RuntimeError, match="simulated crash"):
        Pretrainer(cfg, crashed, progress=False).run()
    monkeypatch.setattr(Pretrainer, "_step", real_step)
    assert sidecar(crashed, ".state.pt").is_file() and not crashed.exists()  # no complete-looking weights
    assert torch.load(sidecar(crashed, ".state.pt"), weights_only=True)["step"] == 4
    Pretrainer(cfg, crashed, resume=True, progress=False).run()
    a, b = load_file(str(straight)), load_file(str(crashed))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert losses(straight) == losses(crashed)


def test_bad_input_is_one_line_and_leaves_no_weights(tmp_path):
    runner = CliRunner()
    out = tmp_path / "w.safetensors"
    cases = [
        (["--arch", "no-such-arch"], "unknown open_clip architecture"),
        (["--steps", "0"], "--steps must be at least 1"),
        (["--scenes", "0"], "--scenes must be at least 1"),
    ]
    for args, message in cases:
        result = runner.invoke(main, ["pretrain", "--out", str(out), "--quiet", *args])
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines() if result.stderr_bytes else result.output.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and lines[0].startswith("error: ")
        assert not out.exists()

    out.write_bytes(b"someone's file")
    result = runner.invoke(main, ["pretrain", "--out", str(out), "--quiet"])
    assert result.exit_code == 2 and "already exists; pass --resume" in result.output
    assert out.read_bytes() == b"someone's file"

    state = sidecar(tmp_path / "v.safetensors", ".state.pt")
    state.write_bytes(b"\x80\x02 truncated pickle")
    result = runner.invoke(main, ["pretrain", "--out", str(tmp_path / "v.safetensors"), "--resume", "--quiet"])
    assert result.exit_code == 2 and "unreadable trainer state" in result.output
    assert not (tmp_path / "v.safetensors").exists()


def test_a_resume_with_another_recipe_is_refused(tmp_path, monkeypatch):
    out = tmp_path / "w.safetensors"
    with pytest.raises(ModelError, match="nothing to resume"):
        Pretrainer(tiny(steps=4), out, resume=True, progress=False).run()
    real_step, calls = Pretrainer._step, {"n": 0}

    def crash_at_three(self, *args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("stop")
        return real_step(self, *args)

    monkeypatch.setattr(Pretrainer, "_step", crash_at_three)
    with pytest.raises(RuntimeError):
        Pretrainer(tiny(steps=4, checkpoint_every=1), out, progress=False).run()
    monkeypatch.setattr(Pretrainer, "_step", real_step)
    with pytest.raises(ModelError, match="another recipe .differs in lr"):
        Pretrainer(tiny(steps=4, checkpoint_every=1, lr=1e-4), out, resume=True, progress=False).run()
