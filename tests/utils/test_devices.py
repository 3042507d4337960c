"""``--device auto`` and ``--precision auto``: one resolver, decided per device and CPU kind."""

from __future__ import annotations

import pytest
import torch

from caadbench.errors import CaadError
from caadbench.utils import devices
from caadbench.utils.devices import autocast, resolve_device, resolve_precision


def test_auto_is_cuda_when_available_else_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == resolve_device(None) == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == "cuda" and resolve_device("CUDA:1") == "cuda:1"
    with pytest.raises(CaadError, match="--device cuda:2: this machine has 2 CUDA device"):
        resolve_device("cuda:2")


@pytest.mark.parametrize(("name", "words"), [("cuda", "CUDA is not available"), ("tpu", "unknown device"),
                                             ("cuda:x", "unknown device")])
def test_bad_devices_are_one_line(monkeypatch, name, words):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(CaadError, match=words) as err:
        resolve_device(name)
    assert str(err.value).startswith(f"--device {name}: ")


def test_cpu_auto_is_fp32_unless_the_table_says_bf16_was_measured_faster(monkeypatch):
    monkeypatch.setattr(devices, "cpu_kind", lambda: "AVX2")
    assert resolve_precision("auto", "cpu", "predict") == resolve_precision(None, "cpu", "train") == "fp32"
    monkeypatch.setattr(devices, "cpu_kind", lambda: "amx_bf16")  # native bf16 but not measured: still fp32
    assert resolve_precision("auto", "cpu") == "fp32"
    monkeypatch.setattr(devices, "CPU_BF16_FASTER", {"amx_bf16": frozenset({"predict"})})
    assert resolve_precision("auto", "cpu", "predict") == "bf16" and resolve_precision("auto", "cpu", "train") == "fp32"
    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"


def test_this_machines_cpu_resolves_auto_to_fp32():
    assert devices.cpu_kind() not in devices.CPU_BF16_FASTER or not devices.CPU_BF16_FASTER[devices.cpu_kind()]
    assert resolve_precision("auto", "cpu") == "fp32"


def test_cuda_auto_follows_bf16_support(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", "cuda:0") == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", "cuda") == "fp32"
    with pytest.raises(CaadError, match="does not support bf16"):
        resolve_precision("bf16", "cuda")


def test_unknown_precision_is_refused():
    with pytest.raises(CaadError, match="--precision fp16: expected one of auto, fp32, bf16"):
        resolve_precision("fp16", "cpu")


def test_autocast_runs_matmuls_in_bf16_only_when_asked():
    x = torch.rand(4, 4)
    with autocast("cpu", "bf16"):
        assert (x @ x).dtype == torch.bfloat16
    with autocast("cpu", "fp32"):
        assert (x @ x).dtype == torch.float32
    with pytest.raises(ValueError):
        autocast("cpu", "auto")
