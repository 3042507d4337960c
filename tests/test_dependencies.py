"""The declared dependencies are the imported ones: ``install_requires`` names exactly the distributions that
``caadbench/`` and ``baselines/`` import, optional imports (inside ``try: ... except ImportError``) are in an extra,
and the tests import nothing beyond ``install_requires`` and the ``test`` extra."""

from __future__ import annotations

import ast
import configparser
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _names(block: str) -> set[str]:
    return {_norm(re.match(r"[A-Za-z0-9._-]+", line.strip()).group(0)) for line in block.splitlines()
            if line.strip() and not line.strip().startswith("#")}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> tuple[set[str], dict[str, set[str]]]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    extras = {name: _names(value) for name, value in cfg["options.extras_require"].items()}
    return _names(cfg["options"]["install_requires"]), extras


def _guarded(tree: ast.AST) -> set[int]:
    """Line numbers of imports inside ``try`` blocks that catch ImportError (optional imports)."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in node.handlers):
            for inner in node.body:
                for sub in ast.walk(inner):
                    if isinstance(sub, (ast.Import, ast.ImportFrom)):
                        lines.add(sub.lineno)
    return lines


def imported(*folders: str) -> tuple[set[str], set[str]]:
    """Third-party top-level modules imported anywhere in ``folders``: ``(required, optional)``."""
    required, optional = set(), set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            guarded = _guarded(tree)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    mods = [node.module]
                else:
                    continue
                for mod in mods:
                    top = mod.split(".")[0]
                    if top in sys.stdlib_module_names or top in ("caadbench", "tests", "__future__"):
                        continue
                    (optional if node.lineno in guarded else required).add(top)
    return required, optional - required


def distributions(modules: set[str]) -> set[str]:
    """Distribution names of import names (from the installed metadata; the import name when not installed)."""
    known = packages_distributions()
    return {_norm(d) for m in modules for d in known.get(m, [m])}


def test_install_requires_is_exactly_what_the_package_imports():
    requires, extras = declared()
    required, optional = imported("caadbench", "baselines")
    assert distributions(required) == requires
    in_extras = set().union(*extras.values())
    assert distributions(optional) <= in_extras, "an optional import must be listed in an extra"
    assert "fsspec" in {_norm(m) for m in optional}  # the remote-URL backend is optional, not required


def test_tests_import_only_declared_distributions():
    requires, extras = declared()
    required, optional = imported("tests")
    assert distributions(required | optional) <= requires | extras["test"]


def test_the_checker_sees_function_level_and_guarded_imports():
    required, optional = imported("caadbench")
    assert {"huggingface_hub", "pycocotools", "scipy", "webdataset"} <= required
    assert "pandas" not in required  # optional (imported lazily)
    assert "sklearn" in imported("baselines")[0]  # the probes fit with scikit-learn
