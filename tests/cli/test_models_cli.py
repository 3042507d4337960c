"""``caadbench models`` lists every registered model with its learning type."""

from __future__ import annotations

from click.testing import CliRunner

from caadbench.cli import main
from caadbench.models import list_models


def _rows(output: str) -> dict[str, list[str]]:
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0] not in ("model", "") and not set(cells[0]) <= set("-:"):
            rows[cells[0]] = cells
    return rows


def test_models_lists_every_model_with_its_learning_type():
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0, result.output
    rows = _rows(result.output)
    specs = list_models()
    assert set(rows) == {s.name for s in specs}
    for spec in specs:
        assert rows[spec.name][1:4] == [spec.family, spec.variant, str(spec.learning)]
    assert rows["winclip.plus"][3] == "few-shot" and rows["clip"][3] == "zero-shot"


def test_models_pattern_filters():
    result = CliRunner().invoke(main, ["models", "winclip"])
    assert result.exit_code == 0
    assert set(_rows(result.output)) == {"winclip", "winclip.context", "winclip.plus"}
