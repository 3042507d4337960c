"""``benchmarks/model_throughput.py``: its FLOP count against torch's own counter, and one tiny run of every table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from caadbench.models import create_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("model_throughput", ROOT / "benchmarks" / "model_throughput.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["model_throughput"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("model_throughput", None)


@pytest.mark.parametrize("length", [5, 10, 65])
def test_encoder_flops_equal_torchs_count(bench, tiny_backbone, length):
    tokens = torch.zeros(1, length, tiny_backbone.width("image"))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        tiny_backbone.model.visual.transformer(tokens)
    width, blocks = tiny_backbone.width("image"), len(tiny_backbone.image_blocks)
    attention = blocks * 4 * length * length * width  # scores and weighted sum
    counted_attention = any("attention" in str(op) for ops in counter.get_flop_counts().values() for op in ops)
    # torch counts the matmuls; its counter skips the CPU's fused attention kernel, so that part is added back
    expected = counter.get_total_flops() + (0 if counted_attention else attention)
    assert bench.encoder_flops(tiny_backbone, [length]) == expected


def test_winclip_flop_ratio_counts_every_window(bench, tiny_backbone):
    model = create_model("winclip", backbone=tiny_backbone)
    grid = tiny_backbone.grid_size[0]
    lengths = [1 + grid * grid] + [1 + k * k for k in model.config.scales for _ in range((grid - k + 1) ** 2)]
    expected = bench.encoder_flops(tiny_backbone, lengths) / bench.encoder_flops(tiny_backbone, lengths[:1])
    assert bench.winclip_flop_ratio(tiny_backbone, model) == pytest.approx(expected)
    assert expected > 5  # 49 + 36 windows of 5 and 10 tokens beside one 65-token image


@pytest.mark.slow
def test_one_run_prints_every_table(bench, capsys):
    bench.main(["--archs", "caad-tiny", "--batch", "2", "--repeats", "1", "--predict-images", "2", "--precision",
                "--models", "aprilgan"])
    out = capsys.readouterr().out
    models = ("clip", "winclip", "coreclip", "aprilgan")  # the three every run measures, and the one asked for
    for model in models:
        assert out.count(f"| {model} ") >= 2  # its throughput row and its precision row
    assert "| anomalyclip " not in out
    assert "token-FLOP ratio" in out and "goal <= 3.5x" in out and "steps/s" in out
    assert torch.is_grad_enabled()  # the run's grad mode did not leak into the caller's
