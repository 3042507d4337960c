"""The one markdown-table builder and the one value formatter of leaderboards, reports and the console.

Values are fractions in [0, 1] shown as percentages with one decimal; a value over seeds (anything with ``mean``,
``std`` and ``per_seed``, e.g. :class:`~caadbench.eval.schema.MetricStat`) shows ``mean ± std`` (population std)
when it has more than one seed, and ``n/a`` when it is undefined; a bootstrap interval ``[low, high]`` follows it
where one is known.
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
    return mean_std_of(stat.mean, stat.std, len(stat.per_seed), signed=signed)


def mean_std_of(mean: float | None, std: float | None, n_seeds: int, *, signed: bool = False) -> str:
    """:func:`mean_std` from plain values (a flat row's ``<metric>``, ``<metric>_std`` and ``n_seeds``)."""
    text = pct(mean, signed=signed)
    if text != NA and n_seeds > 1 and std is not None and not math.isnan(std):
        text += f" ± {100 * std:.1f}"
    return text


def row_stat(row: dict[str, Any], key: str, *, signed: bool = False) -> str:
    """``mean ± std`` of column ``key`` of a flat results row (:mod:`caadbench.eval.flatten`)."""
    return mean_std_of(row[key], row.get(f"{key}_std"), row["n_seeds"], signed=signed)


def interval_text(interval: Sequence[float | None] | None, *, signed: bool = False) -> str:
    """``[0.551, 0.702]`` → ``"[55.1, 70.2]"``; ``""`` when unknown."""
    if interval is None or any(v is None or math.isnan(v) for v in interval):
        return ""
    low, high = interval
    return f"[{pct(low, signed=signed)}, {pct(high, signed=signed)}]"


def row_interval(row: dict[str, Any], key: str, level: str = "image") -> str:
    """The ``level`` interval of column ``key`` of a flat results row (``<key>_ci_<level>_low/high``)."""
    return interval_text((row.get(f"{key}_ci_{level}_low"), row.get(f"{key}_ci_{level}_high")))


def row_stat_interval(row: dict[str, Any], key: str, level: str = "image") -> str:
    """``mean ± std [low, high]`` of column ``key`` of a flat results row (the interval where known)."""
    return " ".join(x for x in (row_stat(row, key), row_interval(row, key, level)) if x)


def stat_interval(stat: Any, level: str = "image") -> str:
    """``mean ± std [low, high]`` of a :class:`~caadbench.eval.schema.MetricStat` (the interval where known)."""
    return " ".join(x for x in (mean_std(stat), interval_text(stat.interval(level))) if x)


FRACTION_PREFIXES = ("i_", "p_", "seen_", "gap_", "auroc", "aupro", "micro_")
"""Flat columns holding fractions in [0, 1] (shown in percent by :func:`cell_text`)."""


def cell_text(key: str, value: Any) -> str:
    """One flat-row value for a markdown table: fractions in percent (one decimal), other floats with 4
    significant digits, missing values ``n/a``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NA
    if isinstance(value, float):
        return pct(value, signed=key.startswith("gap_")) if key.startswith(FRACTION_PREFIXES) else f"{value:.4g}"
    return str(value)


__all__ = ["FRACTION_PREFIXES", "NA", "cell_text", "interval_text", "markdown_table", "mean_std", "mean_std_of", "pct",
           "row_interval", "row_stat", "row_stat_interval", "stat_interval"]
