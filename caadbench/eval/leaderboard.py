"""Leaderboard markdown generated from results files and paper references.

Tables per (dataset, split, shots). Each reported row (from the references file, with its citation) is followed
by the measured rows of the models it names and, for every metric both give, a gap row (measured − reported, in
points). Measured rows say their backbone, weights and commit (and, for a model trained on another dataset, what
it was trained on); random-init rows are marked † and never get a gap. The text is a pure function of the inputs (sorted, fixed float format, no timestamps), so CI regenerates
it and fails when the committed file is stale (``caadbench leaderboard --check``).
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from caadbench.errors import ResultsError
from caadbench.eval.metrics import METRIC_LABELS, METRIC_NAMES
from caadbench.eval.results import Results, read_results

DEFAULT_RESULTS_DIR = Path("leaderboards/results")
DEFAULT_OUT = Path("leaderboards/README.md")
PACKAGED_REFERENCES = Path(__file__).with_name("references.json")
REFERENCES_SCHEMA_VERSION = 1
RANDOM_MARK = "†"
ASSUMED_MARK = "‡"

Value = float | tuple[float, float]


@dataclass(frozen=True)
class Reference:
    """One row reported by a paper (values in percent; a tuple is a reported range)."""

    method: str
    models: tuple[str, ...]
    dataset: str
    split: str
    shots: int
    cite: str
    metrics: dict[str, Value]
    note: str = ""
    backbone: str = ""
    weights: str = ""
    shots_assumed: bool = False


@dataclass
class References:
    """The references file: citations, display names and reported rows."""

    citations: dict[str, dict[str, str]]
    datasets: dict[str, str] = field(default_factory=dict)
    splits: dict[str, str] = field(default_factory=dict)
    methods: dict[str, str] = field(default_factory=dict)
    rows: list[Reference] = field(default_factory=list)

    def method_name(self, model: str) -> str:
        """Display name of a registry name: ``coreclip.mean_fusion`` → ``CoRe-CLIP (mean_fusion)``."""
        if model in self.methods:
            return self.methods[model]
        family, _, variant = model.partition(".")
        base = self.methods.get(family, family)
        return f"{base} ({variant})" if variant else base


def read_references(path: str | Path) -> References:
    """Read and check a references file.

    Raises:
        ResultsError: unreadable, another schema version, or a malformed row (naming it).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(path, "references file not found") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ResultsError(path, f"cannot read references file ({exc})") from None
    if not isinstance(data, dict) or data.get("schema_version") != REFERENCES_SCHEMA_VERSION:
        got = data.get("schema_version") if isinstance(data, dict) else None
        raise ResultsError(path, f"references schema version {got!r} is not supported "
                                 f"(expected {REFERENCES_SCHEMA_VERSION})")
    if data.get("unit") != "percent":
        raise ResultsError(path, "references must state \"unit\": \"percent\"")
    citations = data.get("citations") or {}
    for key, cite in citations.items():
        if not (isinstance(cite, dict) and isinstance(cite.get("short"), str) and isinstance(cite.get("full"), str)):
            raise ResultsError(path, f"citations.{key}: expected {{\"short\": ..., \"full\": ...}}")
    rows = []
    for i, row in enumerate(data.get("rows", [])):
        where = f"rows[{i}]"
        try:
            metrics: dict[str, Value] = {}
            for name, value in row.get("metrics", {}).items():
                if name not in METRIC_NAMES:
                    raise ValueError(f"unknown metric {name!r} (known: {', '.join(METRIC_NAMES)})")
                if isinstance(value, list):
                    lo, hi = (float(v) for v in value)
                    if not lo <= hi:
                        raise ValueError(f"range {value} is not [low, high]")
                    metrics[name] = (lo, hi)
                else:
                    metrics[name] = float(value)
                for v in (metrics[name] if isinstance(metrics[name], tuple) else (metrics[name],)):
                    if not 0.0 <= v <= 100.0:
                        raise ValueError(f"{name} value {v} is not a percentage")
            if row["cite"] not in citations:
                raise ValueError(f"citation {row['cite']!r} is not in citations")
            shots = row["shots"]
            if isinstance(shots, bool) or not isinstance(shots, int) or shots < 0:
                raise ValueError(f"shots must be an integer ≥ 0, got {shots!r}")
            rows.append(Reference(
                method=str(row["method"]), models=tuple(row.get("models", [])), dataset=str(row["dataset"]),
                split=str(row["split"]), shots=shots, cite=str(row["cite"]), metrics=metrics,
                note=str(row.get("note", "")), backbone=str(row.get("backbone", "")),
                weights=str(row.get("weights", "")), shots_assumed=bool(row.get("shots_assumed", False)),
            ))
        except KeyError as exc:
            raise ResultsError(path, f"{where}: missing field {exc.args[0]}") from None
        except (TypeError, ValueError) as exc:
            raise ResultsError(path, f"{where}: {exc}") from None
    return References(citations=dict(citations), datasets=dict(data.get("datasets", {})),
                      splits=dict(data.get("splits", {})), methods=dict(data.get("methods", {})), rows=rows)


def read_results_dir(directory: str | Path) -> list[tuple[Path, Results]]:
    """Every ``*.json`` results file of a directory, sorted by name.

    Raises:
        ResultsError: the directory is missing or a file is not a valid results file (naming it).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ResultsError(directory, "results directory not found")
    return [(p, read_results(p)) for p in sorted(directory.glob("*.json"))]


# ----------------------------------------------------------------------------------------------- render
def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _reported(value: Value | None) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return f"{value[0]:.1f}–{value[1]:.1f}"
    return f"{value:.1f}"


def _measured(results: Results, metric: str) -> str:
    stat = results.metrics[metric]
    if math.isnan(stat.mean):
        return "n/a"
    text = f"{100 * stat.mean:.1f}"
    return text + (f" ± {100 * stat.std:.1f}" if len(results.seeds) > 1 else "")


def _gap(results: Results, ref: Reference, metric: str) -> str:
    value = ref.metrics.get(metric)
    mean = results.metrics[metric].mean
    if value is None or isinstance(value, tuple) or math.isnan(mean):
        return ""
    return f"{100 * mean - value:+.1f}"


def _weights(results: Results) -> str:
    p = results.provenance
    if p.random_init:
        return f"random-init {RANDOM_MARK}"
    sha = p.weights_sha256
    return f"{p.weights} (sha256 {sha[:12]})" if sha and sha not in ("unknown",) else p.weights


def _measured_row(path: Path, results: Results, refs: References, out_dir: Path) -> list[str]:
    p = results.provenance
    link = Path(os.path.relpath(path, out_dir)).as_posix()
    commit = p.git_commit[:7] + ("+dirty" if p.git_dirty else "")
    method = refs.method_name(results.model) + (f" {RANDOM_MARK}" if results.random_init else "")
    return [
        method,
        results.model,
        f"measured: [{path.name}]({link}) @ {commit}",
        f"{p.backbone_arch} @ {p.image_size}px",
        _weights(results),
        ", ".join(str(s) for s in results.seeds),
        *(_measured(results, m) for m in METRIC_NAMES),
        f"{results.learning}; {len(results.samples)} test images{_trained_on(results)}",
    ]


def _trained_on(results: Results) -> str:
    """``; trained on <dataset> <split>/<part> (...)`` for a model trained on other data than it is evaluated on."""
    t = results.train_data
    if not results.cross_dataset or t is None:
        return ""
    return f"; trained on {t.dataset} {t.split}/{t.part} ({t.samples} images, fingerprint {t.fingerprint[:12]})"


def render_leaderboard(
    measured: list[tuple[Path, Results]],
    refs: References,
    *,
    results_label: str,
    references_label: str,
    out_dir: str | Path = ".",
) -> str:
    """The leaderboard markdown (a pure function of its arguments)."""
    out_dir = Path(out_dir)
    cite_number = {key: i + 1 for i, key in enumerate(sorted(refs.citations))}
    sections: dict[tuple[str, str, int], dict] = defaultdict(lambda: {"refs": [], "measured": []})
    for ref in refs.rows:
        sections[ref.dataset, ref.split, ref.shots]["refs"].append(ref)
    for path, res in measured:
        sections[res.dataset, res.split, res.shots]["measured"].append((path, res))

    header = ["Method", "Model", "Source", "Backbone", "Weights", "Seeds",
              *(METRIC_LABELS[m] for m in METRIC_NAMES), "Notes"]
    lines = [
        "<!-- Generated by `caadbench leaderboard`: do not edit by hand. Regenerate with `caadbench leaderboard`;",
        "     CI runs `caadbench leaderboard --check` and fails when this file is stale. -->",
        "",
        "# Leaderboard",
        "",
        f"Generated from {len(measured)} results file(s) in `{results_label}` and {len(refs.rows)} reported row(s) "
        f"in `{references_label}`.",
        "",
        "Values are percentages. **Measured** rows: macro mean over subjects (categories), ± population std over "
        "seeds when there are several, run here with the stated backbone and weights. **Reported** rows: copied "
        "from the cited paper. **Δ** rows: measured − reported, in points, for the same method, dataset, split, "
        "shot setting and metric.",
        "",
    ]
    if not measured:
        lines += ["No measured results yet: write results files into `leaderboards/results/` "
                  "(`caadbench run ... --out leaderboards/results`) and regenerate.", ""]
    used_marks: set[str] = set()
    for dataset, split, shots in sorted(sections):
        section = sections[dataset, split, shots]
        split_name = refs.splits.get(split)
        shots_text = "0 shots (zero-shot or trained: no support images)" if shots == 0 else f"{shots}-shot"
        lines += [f"## {refs.datasets.get(dataset, dataset)} · split `{split}`"
                  + (f" ({split_name})" if split_name else "") + f" · {shots_text}", ""]
        rows: list[list[str]] = []
        placed: set[int] = set()
        for ref in section["refs"]:
            mark = f" {ASSUMED_MARK}" if ref.shots_assumed else ""
            used_marks |= {ASSUMED_MARK} if ref.shots_assumed else set()
            rows.append([
                ref.method + mark, ", ".join(ref.models) or "—",
                f"reported: {refs.citations[ref.cite]['short']} [{cite_number[ref.cite]}]",
                ref.backbone or "—", ref.weights or "—", "—",
                *(_reported(ref.metrics.get(m)) for m in METRIC_NAMES), ref.note,
            ])
            matches = sorted(
                ((i, p, r) for i, (p, r) in enumerate(section["measured"]) if r.model in ref.models and i not in placed),
                key=lambda t: _measured_order(t[1], t[2]),
            )
            for i, path, res in matches:
                placed.add(i)
                rows.append(_measured_row(path, res, refs, out_dir))
                if res.random_init:
                    used_marks.add(RANDOM_MARK)
                    continue
                gaps = [_gap(res, ref, m) for m in METRIC_NAMES]
                if any(gaps):
                    rows.append([f"Δ {res.model} − reported{mark}", "", "", "", "", "", *gaps, ""])
        rest = sorted(((p, r) for i, (p, r) in enumerate(section["measured"]) if i not in placed),
                      key=lambda t: _measured_order(*t))
        for path, res in rest:
            rows.append(_measured_row(path, res, refs, out_dir))
            used_marks |= {RANDOM_MARK} if res.random_init else set()
        lines += _table(header, rows) + [""]

    lines += ["## Notes", ""]
    if RANDOM_MARK in used_marks:
        lines.append(f"- {RANDOM_MARK} Random-init backbone weights: the row checks the pipeline only; its numbers "
                     "are **not comparable** to paper numbers and no gap is computed.")
    if ASSUMED_MARK in used_marks:
        lines.append(f"- {ASSUMED_MARK} The source does not state the shot setting of this reported number; "
                     "zero-shot is assumed, so read its gap with care.")
    lines.append("- A reported range (low–high) spans several variants as the source summarises it; no gap is "
                 "computed against a range.")
    lines.append("- `n/a`: the metric is undefined for every subject of the run (see the run's notes).")
    lines += ["", "## References", ""]
    lines += [f"{cite_number[key]}. {refs.citations[key]['full']}" for key in sorted(refs.citations)]
    return "\n".join(lines) + "\n"


def measured_table(measured: list[tuple[Path, Results]]) -> str:
    """A compact console table of measured runs, best macro I-AUROC first (no paper rows, no links)."""
    from tabulate import tabulate

    def key(item: tuple[Path, Results]) -> tuple:
        v = item[1].metrics["i_auroc"].mean
        return (math.isnan(v), -v if not math.isnan(v) else 0.0, item[1].model)

    rows = []
    for _, res in sorted(measured, key=key):
        p = res.provenance
        rows.append([res.model, res.learning, res.shots, f"{res.dataset}/{res.split}",
                     f"{p.backbone_arch} ({'random-init' if res.random_init else p.weights})",
                     *(_measured(res, m) for m in METRIC_NAMES)])
    return tabulate(rows, headers=["model", "learning", "shots", "data", "backbone",
                                   *(METRIC_LABELS[m] for m in METRIC_NAMES)], tablefmt="github")


def _measured_order(path: Path, res: Results) -> tuple:
    p = res.provenance
    return (res.model, p.backbone_arch, p.weights, p.image_size, path.name)


def generate_leaderboard(
    results_dir: str | Path = DEFAULT_RESULTS_DIR,
    references: str | Path | None = None,
    out: str | Path = DEFAULT_OUT,
) -> str:
    """Read the inputs and render the markdown for ``out`` (not written)."""
    refs_path = PACKAGED_REFERENCES if references is None else Path(references)
    refs = read_references(refs_path)
    measured = read_results_dir(results_dir)
    label = "caadbench/eval/references.json" if references is None else str(references)
    return render_leaderboard(measured, refs, results_label=str(results_dir), references_label=label,
                              out_dir=Path(out).parent)


def check_leaderboard(text: str, out: str | Path) -> None:
    """Raise unless ``out`` holds exactly ``text``.

    Raises:
        ResultsError: the committed file is missing or stale.
    """
    out = Path(out)
    if not out.is_file():
        raise ResultsError(out, "leaderboard not found; generate it with `caadbench leaderboard`")
    current = out.read_text(encoding="utf-8")
    if current != text:
        old, new = current.splitlines(), text.splitlines()
        differ = sum(a != b for a, b in zip(old, new)) + abs(len(old) - len(new))
        raise ResultsError(out, f"leaderboard is stale ({differ} line(s) differ from the results and references); "
                                f"regenerate it with `caadbench leaderboard`")


__all__ = [
    "DEFAULT_OUT",
    "DEFAULT_RESULTS_DIR",
    "PACKAGED_REFERENCES",
    "Reference",
    "References",
    "check_leaderboard",
    "generate_leaderboard",
    "measured_table",
    "read_references",
    "read_results_dir",
    "render_leaderboard",
]
