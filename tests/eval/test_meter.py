"""Peak memory is measured portably: no platform-only import at module level, a fallback where none applies."""

from __future__ import annotations

import subprocess
import sys

from caadbench.eval import meter
from caadbench.eval.provenance import WeightsKind, weights_kind


def test_eval_imports_without_the_resource_module():
    """``resource`` does not exist on Windows; importing caadbench.eval must not need it."""
    code = ("import sys; sys.modules['resource'] = None\n"
            "import caadbench.eval, caadbench.eval.runner\n"
            "from caadbench.eval.meter import _peak_rss_unix\n"
            "assert _peak_rss_unix() is None\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_peak_memory_falls_back_when_no_source_applies(monkeypatch):
    assert meter.peak_cpu_memory()[1] == meter.RSS_KIND and meter.peak_cpu_memory()[0] > 0  # Linux CI
    monkeypatch.setattr(meter, "_peak_rss_unix", lambda: None)
    assert meter._peak_working_set_windows() is None or sys.platform == "win32"
    monkeypatch.setattr(meter, "_peak_working_set_windows", lambda: 123)
    assert meter.peak_cpu_memory() == (123, meter.WORKING_SET_KIND)
    monkeypatch.setattr(meter, "_peak_working_set_windows", lambda: None)
    assert meter.peak_cpu_memory() == (0, meter.UNAVAILABLE_KIND)
    with meter.ResourceMeter("cpu") as m:
        m.count(3)
    assert m.peak_memory() == (0, meter.UNAVAILABLE_KIND) and m.images == 3


def test_weights_labels_have_one_classification():
    assert weights_kind("random-init") is WeightsKind.RANDOM_INIT
    assert weights_kind("world") is WeightsKind.WORLD
    assert weights_kind("world-file:mine.safetensors") is WeightsKind.WORLD  # own `caadbench pretrain` output
    for real in ("openclip:laion400m_e31", "file:open_clip_pytorch_model.bin", "worldly-tag"):
        assert weights_kind(real) is WeightsKind.REAL
    assert [k.paper_comparable for k in WeightsKind] == [True, False, False]
