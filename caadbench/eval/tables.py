"""The one markdown-table builder and the one value formatter of leaderboards, reports and the console.

Values are fractions in [0, 1] shown as percentages with one decimal; a value over seeds (anything with ``mean``,
``std`` and ``per_seed``, e.g. :class:`~caadbench.eval.schema.MetricStat`) shows ``mean ± std`` (population std)
when it has more than one seed, and ``n/a`` when it is undefined.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

NA = "n/a"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """GitHub-flavoured markdown table lines; ``|`` in cells is escaped and newlines become spaces."""
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def pct(value: float, *, signed: bool = False) -> str:
    """``0.873`` → ``"87.3"`` (``"+87.3"`` when ``signed``); NaN → ``"n/a"``."""
    if value is None or math.isnan(value):
        return NA
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


def mean_std(stat: Any, *, signed: bool = False) -> str:
    """``"87.3 ± 1.2"`` over several seeds, ``"87.3"`` for one, ``"n/a"`` when undefined."""
    text = pct(stat.mean, signed=signed)
    if text != NA and len(stat.per_seed) > 1 and not math.isnan(stat.std):
        text += f" ± {100 * stat.std:.1f}"
    return text


__all__ = ["NA", "markdown_table", "mean_std", "pct"]
