"""The ``caadbench`` group itself: ``--version`` answers without importing any command module (nor torch)."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from caadbench import __version__
from caadbench.cli import main

PROBE = ("import sys; from click.testing import CliRunner; from caadbench.cli import main; "
         "r = CliRunner().invoke(main, ['--version']); "
         "print(r.exit_code, r.output.strip(), sorted(m for m in ('torch', 'open_clip', 'numpy') if m in sys.modules))")


def test_version_imports_neither_torch_nor_the_commands():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout.strip()
    assert out == f"0 caadbench, version {__version__} []"


def test_commands_are_still_listed_and_found():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in ("build-shards", "run", "predict", "pretrain", "leaderboard", "results"):
        assert name in result.output
    assert CliRunner().invoke(main, ["models", "winclip"]).exit_code == 0
