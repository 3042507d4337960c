"""Packaging: the installed package list matches the tree, and no top-level ``baselines`` package is installed."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _declared() -> tuple[set[str], dict[str, str]]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    packages = {p.strip() for p in cfg["options"]["packages"].split() if p.strip()}
    mapping = {}
    for line in cfg["options"]["package_dir"].splitlines():
        if "=" in line:
            name, folder = (x.strip() for x in line.split("="))
            mapping[name] = folder
    return packages, mapping


def test_package_list_matches_the_tree():
    packages, mapping = _declared()
    found = set()
    for init in (ROOT / "caadbench").rglob("__init__.py"):
        found.add(".".join(init.parent.relative_to(ROOT).parts))
    for name, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            found.add(".".join([name, *init.parent.relative_to(ROOT / folder).parts]))
    assert packages == found


def test_baselines_install_under_the_caadbench_namespace(tmp_path):
    code = ("import importlib.util as u, caadbench.baselines.winclip as w, caadbench.models as m;"
            "print(u.find_spec('baselines') is None); print(sorted({s.family for s in m.list_models()}))")
    proc = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    no_top_level, families = proc.stdout.split("\n")[:2]
    assert no_top_level == "True"
    assert "'clip'" in families and "'winclip'" in families


def test_python_requires_agrees_with_the_tested_python_and_the_readme():
    import re

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    required = cfg["options"]["python_requires"].strip()
    tested = re.search(r"envlist\s*=\s*py3(\d+)", (ROOT / "tox.ini").read_text()).group(1)
    readme = re.search(r"need only Python (3\.\d+)", (ROOT / "README.md").read_text()).group(1)
    assert required == f">=3.{tested}" and readme == f"3.{tested}"
