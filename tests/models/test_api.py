"""The baselines' allowed API: ``baselines/`` imports from caadbench only ``caadbench.models.api`` (and its own
package ``caadbench.baselines``), only names that module declares, and every declared name exists."""

from __future__ import annotations

import ast
from pathlib import Path

import caadbench.models.api as api

ROOT = Path(__file__).resolve().parents[2]


def caadbench_imports(folder: Path) -> list[tuple[str, str, list[str]]]:
    """``(file:line, module, names)`` of every absolute ``caadbench`` import under ``folder``."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            top = (getattr(node, "module", None) or "").split(".")[0]
            if isinstance(node, ast.ImportFrom) and node.level == 0 and top == "caadbench":
                found.append((where, node.module, [a.name for a in node.names]))
            elif isinstance(node, ast.Import):
                found += [(where, a.name, []) for a in node.names if a.name.split(".")[0] == "caadbench"]
    return found


def test_baselines_import_only_the_declared_api():
    imports = caadbench_imports(ROOT / "baselines")
    assert any(module == "caadbench.models.api" for _, module, _ in imports)
    for where, module, names in imports:
        if module == "caadbench.baselines" or module.startswith("caadbench.baselines."):
            continue
        assert module == "caadbench.models.api", f"{where} imports {module}: import it from caadbench.models.api"
        assert set(names) <= set(api.__all__), f"{where} imports {set(names) - set(api.__all__)}, not declared"


def test_declared_names_exist_and_are_the_library_objects():
    from caadbench.models.backbone import ClipBackbone
    from caadbench.models.registry import register_model

    assert all(hasattr(api, name) for name in api.__all__)
    assert api.ClipBackbone is ClipBackbone and api.register_model is register_model
