"""Results files as flat rows: the one way caadbench tabulates results (leaderboard, report, ``caadbench results``,
:func:`results_frame`).

:func:`flatten` turns one :class:`~caadbench.eval.schema.Results` into rows of plain values (``str``, ``int``,
``float``, ``bool``, ``None``): one row per run (``by=None``), per run × subject (``by="subject"``) or per run ×
(subject, context) pair (``by="context"``). Every row starts with the run's identity columns (:data:`RUN_COLUMNS`);
metric values are fractions in [0, 1], each ``<metric>`` (mean over seeds) followed by ``<metric>_std``
(population std over seeds) and, for the headline metrics and ``micro_i_auroc``, the bootstrap intervals
``<metric>_ci_<image|context>_<low|high>`` as stored (``None`` where the file has none: files written before
intervals; :func:`caadbench.eval.bootstrap.with_intervals` fills a ``Results`` from its samples); NaN where a
value is undefined, ``None`` where the run has none (e.g. ``seen_*`` and ``gap_*`` of a run without seen test
images). The column list of a ``by`` never depends on the data
(:func:`columns`), so files of different runs stack into one table.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from caadbench.errors import CaadError, ResultsError
from caadbench.eval.metrics import METRIC_NAMES
from caadbench.eval.results import read_results
from caadbench.eval.schema import LEVELS, MICRO, MetricStat, Results
from caadbench.eval.summaries import inverted_subjects
from caadbench.eval.tables import cell_text, markdown_table

BY = ("subject", "context")
"""The breakdowns of :func:`flatten` besides one row per run (``None``)."""

RUN_COLUMNS = ("file", "model", "learning", "dataset", "split", "shots", "seeds", "n_seeds", "headline",
               "backbone", "image_size", "weights", "weights_kind", "weights_label", "activation", "precision",
               "device", "commit", "dirty")
"""Identity of the run: first in every row."""

HEADLINE_METRIC = "i_auroc"

SHORT_COLUMNS = {
    None: ("model", "learning", "shots", "dataset", "split", "backbone", "weights_label", "seeds", *METRIC_NAMES,
           "seen_i_auroc", "gap_i_auroc"),
    "subject": ("model", "dataset", "split", "weights_label", "subject", "n", "n_anomalous", *METRIC_NAMES,
                "seen_i_auroc", "gap_i_auroc"),
    "context": ("model", "dataset", "split", "weights_label", "subject", "context", "role", "pair_label", "n",
                "n_anomalous", "auroc", "mean_score"),
}
"""The columns ``caadbench results`` shows in a terminal (``--columns short``): a run's identity in brief and its
headline numbers; every column with ``--columns all`` (and in files, pipes, csv and json)."""


def _stat(prefix: str, stat: MetricStat | None) -> dict[str, float | None]:
    if stat is None:
        return {prefix: None, f"{prefix}_std": None}
    return {prefix: stat.mean, f"{prefix}_std": stat.std}


def _intervals(prefix: str, stat: MetricStat | None, levels=LEVELS) -> dict[str, float | None]:
    """``<prefix>_ci_<level>_low`` / ``_high`` of each level (``None`` where unknown)."""
    out: dict[str, float | None] = {}
    for level in levels:
        ci = stat.interval(level) if stat is not None else None
        out[f"{prefix}_ci_{level}_low"] = ci[0] if ci else None
        out[f"{prefix}_ci_{level}_high"] = ci[1] if ci else None
    return out


def _metrics(metrics: dict[str, MetricStat] | None, prefix: str = "") -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for m in METRIC_NAMES:
        out |= _stat(prefix + m, metrics[m] if metrics is not None else None)
    return out


def run_identity(results: Results, path: str | Path | None = None) -> dict[str, Any]:
    """The :data:`RUN_COLUMNS` of one run (``file``: the results file's name, ``""`` without a path)."""
    p = results.provenance
    return {
        "file": Path(path).name if path is not None else "",
        "model": results.model,
        "learning": results.learning,
        "dataset": results.dataset,
        "split": results.split,
        "shots": results.shots,
        "seeds": ",".join(str(s) for s in results.seeds),
        "n_seeds": len(results.seeds),
        "headline": results.headline,
        "backbone": p.backbone_arch,
        "image_size": p.image_size,
        "weights": p.weights,
        "weights_kind": p.weights_kind.value,
        "weights_label": p.weights_label(),
        "activation": p.activation,
        "precision": p.precision,
        "device": p.device,
        "commit": p.git_commit,
        "dirty": p.git_dirty,
    }


def _run_row(results: Results) -> dict[str, Any]:
    below, defined = inverted_subjects(results.per_subject)
    t = results.train_data
    return {
        "test_images": len(results.samples),
        "headline_images": sum(e.n for e in results.per_subject.values()),
        "seen_images": results.seen.n if results.seen is not None else 0,
        "subjects": len(results.categories),
        **_metrics(results.metrics),
        **{k: v for m in METRIC_NAMES for k, v in _intervals(m, results.metrics[m]).items()},
        **_stat(MICRO, results.micro_i_auroc),
        **_intervals(MICRO, results.micro_i_auroc),
        **_metrics(results.seen.metrics if results.seen is not None else None, "seen_"),
        **_metrics(results.gap, "gap_"),
        "subjects_below_chance": below,
        "subjects_defined": defined,
        "trained_on": f"{t.dataset} {t.split}/{t.part}" if results.cross_dataset and t is not None else "",
        "wall_time_s": results.provenance.wall_time_s,
        "images_per_s": results.provenance.images_per_s,
    }


def _subject_rows(results: Results) -> list[dict[str, Any]]:
    seen = results.seen.per_subject if results.seen is not None else {}
    rows = []
    for subject, e in sorted(results.per_subject.items()):
        theirs = seen.get(subject)
        seen_auroc = theirs.metrics[HEADLINE_METRIC] if theirs is not None else None
        gap = (seen_auroc.mean - e.metrics[HEADLINE_METRIC].mean) if seen_auroc is not None else None
        rows.append({"subject": subject, "n": e.n, "n_anomalous": e.n_anomalous, **_metrics(e.metrics),
                     **_stat(f"seen_{HEADLINE_METRIC}", seen_auroc), f"gap_{HEADLINE_METRIC}": gap})
    return rows


def _context_rows(results: Results) -> list[dict[str, Any]]:
    return [{"subject": c.subject, "context": c.context,
             "role": "—" if c.seen is None else ("seen" if c.seen else "unseen"),
             "pair_label": {0: "normal", 1: "anomalous"}.get(c.label, "mixed"), "n": c.n,
             "n_anomalous": c.n_anomalous, **_stat("auroc", c.auroc), **_intervals("auroc", c.auroc, ("image",)),
             **_stat("mean_score", c.mean_score)}
            for c in results.per_context]


_BREAKDOWNS = {None: lambda r: [_run_row(r)], "subject": _subject_rows, "context": _context_rows}


def flatten(results: Results, *, by: str | None = None, path: str | Path | None = None) -> list[dict[str, Any]]:
    """Rows of one run: :data:`RUN_COLUMNS`, then the run's values (``by=None``), or one row per subject
    (``"subject"``: counts, the six metrics, the subject's seen I-AUROC and gap) or per (subject, context) pair
    (``"context"``: role, pair label, counts, context AUROC, mean score).

    Raises:
        CaadError: ``by`` is not ``None``, ``"subject"`` or ``"context"``.
    """
    if by not in _BREAKDOWNS:
        raise CaadError(f"by={by!r}", f"expected one of None, {', '.join(BY)}")
    head = run_identity(results, path)
    return [head | row for row in _BREAKDOWNS[by](results)]


def result_files(path_or_dir: str | Path) -> list[Path]:
    """A results file, or every ``*.json`` results file of a directory (not its sidecars), sorted by name.

    Raises:
        ResultsError: the path does not exist, or a directory holds no results file.
    """
    path = Path(path_or_dir)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ResultsError(path, "no such results file or directory")
    files = sorted(p for p in path.glob("*.json"))
    if not files:
        raise ResultsError(path, "no results files (*.json) in this directory")
    return files


def results_rows(path_or_dir: str | Path, by: str | None = None) -> list[dict[str, Any]]:
    """:func:`flatten` of every results file at ``path_or_dir`` (a file or a directory of ``*.json``), in file
    order; what ``caadbench results`` prints.

    Raises:
        ResultsError: a missing path or an invalid results file (naming it).
        CaadError: an unknown ``by``.
    """
    return [row for p in result_files(path_or_dir) for row in flatten(read_results(p), by=by, path=p)]


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """The column names of ``rows`` in first-seen order."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def results_frame(path_or_dir: str | Path, by: str | None = None):
    """The rows of :func:`results_rows` as a pandas ``DataFrame`` (one column per key, same order and values;
    ``None`` stays ``None`` in object columns, NaN in float ones).

    Needs pandas (``pip install caadbench[pandas]``)::

        import caadbench
        df = caadbench.results_frame("runs/", by="subject")
        df.pivot_table(index="subject", columns="model", values="i_auroc")

    Raises:
        CaadError: pandas is not installed.
        ResultsError: a missing path or an invalid results file.
    """
    try:
        import pandas as pd
    except ImportError:
        raise CaadError("results_frame", "needs pandas: pip install 'caadbench[pandas]'") from None
    rows = results_rows(path_or_dir, by=by)
    return pd.DataFrame(rows, columns=columns(rows))


def is_missing(value: Any) -> bool:
    """``None`` or NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


FORMATS = ("md", "csv", "json")


def select_columns(rows: list[dict[str, Any]], names: list[str] | tuple[str, ...]) -> list[dict[str, Any]]:
    """``rows`` with only the columns ``names``, in that order.

    Raises:
        CaadError: a name that is no column of ``rows`` (naming the closest one).
    """
    from caadbench.models.options import unknown_name_problem

    known = columns(rows)
    for name in names:
        if rows and name not in known:
            raise CaadError("--columns", unknown_name_problem(name, known, "column"))
    return [{name: row.get(name) for name in names} for row in rows]


def format_rows(rows: list[dict[str, Any]], fmt: str = "md") -> str:
    """``rows`` as text: ``md`` (a markdown table, fractions in percent, see
    :func:`~caadbench.eval.tables.cell_text`), ``csv`` (raw values; missing ones empty) or ``json`` (a list of
    objects, raw values; missing ones ``null``).

    Raises:
        CaadError: an unknown format.
    """
    header = columns(rows)
    if fmt == "md":
        return "\n".join(markdown_table(header, [[cell_text(k, r.get(k)) for k in header] for r in rows])) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=header, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if is_missing(v) else v for k, v in r.items()} for r in rows)
        return out.getvalue()
    if fmt == "json":
        return json.dumps([{k: None if is_missing(v) else v for k, v in r.items()} for r in rows], indent=1,
                          ensure_ascii=False) + "\n"
    raise CaadError(f"format {fmt!r}", f"expected one of {', '.join(FORMATS)}")


__all__ = ["BY", "FORMATS", "format_rows", "HEADLINE_METRIC", "RUN_COLUMNS", "SHORT_COLUMNS", "columns", "flatten",
           "is_missing", "result_files", "results_frame", "results_rows", "run_identity", "select_columns"]
