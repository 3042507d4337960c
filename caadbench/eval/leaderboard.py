"""Leaderboard markdown generated from results files and paper references.

Tables per (dataset, split, shots). Each reported row (from the references file, with its citation) is followed
by the measured rows of the models it names and, for every metric both give, a gap row (measured − reported, in
points). Measured rows say their backbone, weights (real; world ◇; random-init †: the last two never get a gap to
a paper row), seeds (one seed of a seed-dependent result marked §) and commit (and, for a model trained on another dataset, what it was trained on);
cross-context tables add the seen-context I-AUROC and the gap
seen − unseen; every table has a chance row and the count of subjects below chance, and is sorted by the headline
I-AUROC. The text is a pure function of the inputs (sorted, fixed float format, no timestamps), so CI regenerates
it and fails when the committed file is stale (``caadbench leaderboard --check``).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from caadbench.data.splits import INDUSTRIAL_SPLITS
from caadbench.errors import ResultsError
from caadbench.eval.duplicates import duplicate_groups
from caadbench.eval.evaluator import SEEN, UNSEEN
from caadbench.eval.bootstrap import Replicates, with_intervals
from caadbench.eval.flatten import HEADLINE_METRIC, flatten
from caadbench.eval.metrics import METRIC_LABELS, METRIC_NAMES
from caadbench.eval.provenance import WeightsKind
from caadbench.eval.results import read_results
from caadbench.eval.schema import MICRO, Results
from caadbench.eval.significance import ALPHA, RowTests, table_tests
from caadbench.eval.summaries import CHANCE_METRICS, chance_levels
from caadbench.eval.tables import markdown_table, pct, row_interval, row_stat, row_stat_interval

logger = logging.getLogger(__name__)

DEFAULT_RESULTS_DIR = Path("leaderboards/results")
DEFAULT_OUT = Path("leaderboards/README.md")
PACKAGED_REFERENCES = Path(__file__).with_name("references.json")
REFERENCES_SCHEMA_VERSION = 1
ASSUMED_MARK = "‡"
SINGLE_SEED_MARK = "§"
BEST_MARK, NOT_BELOW_MARK, BELOW_MARK, ABOVE_MARK = "★", "≈", "▼", "▲"
TABLE_LEGEND = (
    "*How to read it.* `[low, high]` beside a value: 95 % bootstrap interval over the test images, the test "
    "contexts and the row's seeds fixed (how sure the number is on this benchmark); *contexts*: 95 % interval when "
    "the contexts of each subject are resampled too (how sure it is for other contexts of the same world; a "
    "subject's single test context of a role borrows the context effects of its role's other subjects, `n/a` "
    "without any role of two contexts). *vs best* "
    f"(I-AUROC, paired bootstrap on the same test images with each row's spread over seeds, two-sided 5 %): "
    f"{BEST_MARK} the table's best mean; {NOT_BELOW_MARK} not significantly below it; {BELOW_MARK} significantly "
    "below; rows on other test images are not compared. *vs full model*: an ablation's I-AUROC − its full model's "
    "(same backbone, weights and test images) in points, Holm-adjusted over that model's ablations in this table: "
    f"{BELOW_MARK} / {ABOVE_MARK} significantly below / above at 5 %, {NOT_BELOW_MARK} not; an ablation on other "
    "test images than its full model is not compared (docs/evaluation.md, *Uncertainty*).")
GAP_UNAVAILABLE = "gap unavailable"
CHANCE = "chance"

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
def _reported(value: Value | None) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return f"{value[0]:.1f}–{value[1]:.1f}"
    return f"{value:.1f}"


def _gap(results: Results, ref: Reference, metric: str) -> str:
    value = ref.metrics.get(metric)
    mean = results.metrics[metric].mean
    if value is None or isinstance(value, tuple) or math.isnan(mean):
        return ""
    return f"{100 * mean - value:+.1f}"


def _headline_key(value: float) -> tuple:
    """Sort key of a unit by its headline metric in percent: best first, undefined last."""
    return (math.isnan(value), -value if not math.isnan(value) else 0.0)


def _reported_headline(ref: Reference) -> float:
    value = ref.metrics.get(HEADLINE_METRIC)
    if value is None:
        return math.nan
    return (value[0] + value[1]) / 2 if isinstance(value, tuple) else float(value)


@dataclass
class _Section:
    """One table: every row of one (dataset, split, shots); ``tests`` holds each measured row's tests."""

    refs: list[Reference] = field(default_factory=list)
    measured: list[tuple[Path, Results]] = field(default_factory=list)
    tests: list[RowTests] = field(default_factory=list)

    @property
    def cross(self) -> bool:
        """Whether the table's measured headline is on unseen contexts (so seen and gap columns apply)."""
        return any(r.headline == UNSEEN for _, r in self.measured)


CTX_COLUMN, MICRO_COLUMN, MICRO_CTX_COLUMN = "I-AUROC, contexts", "Micro I-AUROC", "Micro, contexts"
BEST_COLUMN, FULL_COLUMN = "vs best", "vs full model"


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p {p:.3f}"


def _vs_best(tests: RowTests) -> str:
    if tests.best:
        return f"{BEST_MARK} best"
    if tests.not_compared:
        return f"not compared ({tests.not_compared})"
    if tests.vs_best is None:
        return "—"
    return f"{BELOW_MARK if tests.below_best else NOT_BELOW_MARK} ({_p(tests.vs_best.p)})"


def _vs_full(tests: RowTests) -> str:
    if tests.ablations:
        return f"full model ({tests.ablations} ablation{'s' if tests.ablations > 1 else ''})"
    if tests.full_not_compared:
        return f"not compared ({tests.full_not_compared})"
    if tests.vs_full is None or tests.holm_p is None:
        return ""
    d = tests.vs_full
    mark = NOT_BELOW_MARK if tests.holm_p >= ALPHA else (BELOW_MARK if d.estimate < 0 else ABOVE_MARK)
    return f"{mark} {100 * d.estimate:+.1f} (Holm {_p(tests.holm_p)})"


class _Renderer:
    """Builds the rows of every table (as column → cell) and remembers which marks need a legend."""

    def __init__(self, refs: References, out_dir: Path) -> None:
        self.refs, self.out_dir = refs, out_dir
        self.cite_number = {key: i + 1 for i, key in enumerate(sorted(refs.citations))}
        self.used: set[str] = set()

    @staticmethod
    def header(section: _Section) -> list[str]:
        labels = [METRIC_LABELS[m] for m in METRIC_NAMES]
        if section.measured:
            labels[1:1] = [CTX_COLUMN, MICRO_COLUMN, MICRO_CTX_COLUMN, BEST_COLUMN, FULL_COLUMN]
        extra = ["Seen I-AUROC", "Gap I-AUROC"] if section.cross else []
        return ["Method", "Model", "Source", "Backbone", "Weights", "Seeds", *labels, *extra, "I-AUROC < 50",
                "Notes"]

    def measured_row(self, path: Path, results: Results, tests: RowTests) -> dict[str, str]:
        row = flatten(results, path=path)[0]
        kind = results.provenance.weights_kind
        if kind.mark:
            self.used.add(kind.mark)
        link = Path(os.path.relpath(path, self.out_dir)).as_posix()
        commit = row["commit"][:7] + ("+dirty" if row["dirty"] else "")
        seeds = row["seeds"].replace(",", ", ")
        if row["n_seeds"] == 1 and row["learning"] != "zero-shot":  # zero-shot results depend on no seed
            seeds += f" {SINGLE_SEED_MARK}"
            self.used.add(SINGLE_SEED_MARK)
        cells = {
            "Method": self.refs.method_name(row["model"]) + (f" {kind.mark}" if kind.mark else ""),
            "Model": row["model"],
            "Source": f"measured: [{path.name}]({link}) @ {commit}",
            "Backbone": f"{row['backbone']} @ {row['image_size']}px",
            "Weights": row["weights_label"],
            "Seeds": seeds,
            **{METRIC_LABELS[m]: row_stat_interval(row, m) for m in METRIC_NAMES},
            CTX_COLUMN: row_interval(row, HEADLINE_METRIC, "context") or "n/a",
            MICRO_COLUMN: row_stat_interval(row, MICRO),
            MICRO_CTX_COLUMN: row_interval(row, MICRO, "context") or "n/a",
            BEST_COLUMN: _vs_best(tests),
            FULL_COLUMN: _vs_full(tests),
            "I-AUROC < 50": f"{row['subjects_below_chance']}/{row['subjects_defined']}",
        }
        if results.has_gap:
            cells["Seen I-AUROC"] = row_stat(row, f"seen_{HEADLINE_METRIC}")
            cells["Gap I-AUROC"] = row_stat(row, f"gap_{HEADLINE_METRIC}", signed=True)
        elif results.headline == UNSEEN:
            cells["Seen I-AUROC"], cells["Gap I-AUROC"] = "—", "unavailable"
            self.used.add(GAP_UNAVAILABLE)
        images = (f"{row['headline_images']} unseen + {row['seen_images']} seen test images"
                  if results.has_gap else f"{row['test_images']} test images")
        cells["Notes"] = f"{row['learning']}; {images}" + _categories_note(results) + _trained_on(results)
        return cells

    def reported_row(self, ref: Reference) -> dict[str, str]:
        mark = f" {ASSUMED_MARK}" if ref.shots_assumed else ""
        if mark:
            self.used.add(ASSUMED_MARK)
        return {"Method": ref.method + mark, "Model": ", ".join(ref.models) or "—",
                "Source": f"reported: {self.refs.citations[ref.cite]['short']} [{self.cite_number[ref.cite]}]",
                "Backbone": ref.backbone or "—", "Weights": ref.weights or "—", "Seeds": "—",
                **{METRIC_LABELS[m]: _reported(ref.metrics.get(m)) for m in METRIC_NAMES}, "Notes": ref.note}

    def chance_row(self, results: Results, label: str) -> dict[str, str]:
        self.used.add(CHANCE)
        chance = chance_levels(results)
        n = sum(e.n for e in results.per_subject.values())
        cells = {"Method": label, "Model": "—", "Source": f"constant score on the {n} headline test images",
                 "Backbone": "—", "Weights": "—", "Seeds": "—",
                 **{METRIC_LABELS[m]: pct(chance[m]) if m in CHANCE_METRICS else "—" for m in METRIC_NAMES},
                 MICRO_COLUMN: pct(0.5), "Gap I-AUROC": "—", "I-AUROC < 50": "—",
                 "Notes": "the level below which a row is worse than guessing"}
        cells["Seen I-AUROC"] = pct(chance_levels(results, SEEN)[HEADLINE_METRIC]) if results.has_gap else "—"
        return cells

    def units(self, section: _Section) -> list[tuple[float, str, list[dict[str, str]]]]:
        """``(headline %, tie-break, rows)`` blocks: a reported row with its measured rows and their Δ rows,
        a measured row, or a chance row."""
        units, placed = [], set()
        for ref in section.refs:
            rows = [self.reported_row(ref)]
            matches = sorted(((i, p, r) for i, (p, r) in enumerate(section.measured)
                              if r.model in ref.models and i not in placed),
                             key=lambda t: (*_headline_key(100 * t[2].metrics[HEADLINE_METRIC].mean),
                                            *_measured_order(t[1], t[2])))
            mark = f" {ASSUMED_MARK}" if ref.shots_assumed else ""
            for i, path, res in matches:
                placed.add(i)
                rows.append(self.measured_row(path, res, section.tests[i]))
                if not res.provenance.weights_kind.paper_comparable:
                    continue
                gaps = {METRIC_LABELS[m]: _gap(res, ref, m) for m in METRIC_NAMES}
                if any(gaps.values()):
                    rows.append({"Method": f"Δ {res.model} − reported{mark}", **gaps})
            units.append((_reported_headline(ref), ref.method, rows))
        for i, (path, res) in enumerate(section.measured):
            if i not in placed:
                units.append((100 * res.metrics[HEADLINE_METRIC].mean, _measured_order(path, res),
                              [self.measured_row(path, res, section.tests[i])]))
        test_sets: dict[tuple, Results] = {}
        for _, res in sorted(section.measured, key=lambda t: not t[1].has_gap):  # a run with seen images first
            test_sets.setdefault(_test_set(res), res)
        for n, res in enumerate(test_sets.values()):
            images = sum(e.n for e in res.per_subject.values())
            label = "chance" + (f" ({images} headline images of {res.provenance.dataset_fingerprint[:8]})"
                                if len(test_sets) > 1 else "")
            units.append((100 * chance_levels(res)[HEADLINE_METRIC], ("~chance", n), [self.chance_row(res, label)]))
        return sorted(units, key=lambda u: (*_headline_key(u[0]), str(u[1])))

    def table(self, section: _Section) -> list[str]:
        """The table's markdown lines, with its legend when it has measured rows."""
        header = self.header(section)
        rows = [[cells.get(column, "") for column in header] for _, _, block in self.units(section)
                for cells in block]
        lines = markdown_table(header, rows)
        if section.measured:
            lines += ["", TABLE_LEGEND]
        return lines


def _test_set(res: Results) -> tuple:
    """What a chance level depends on: the headline images and their labels."""
    return (res.headline, tuple((s.key, s.label) for s in res.samples
                                if res.headline != UNSEEN or s.seen is False))


def _categories_note(results: Results) -> str:
    if results.split not in INDUSTRIAL_SPLITS:
        return ""
    cats = results.categories
    return f"; {len(cats)} categories: {', '.join(cats)}" if len(cats) <= 5 else f"; {len(cats)} categories"


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
    renderer = _Renderer(refs, Path(out_dir))
    sections: dict[tuple[str, str, int], _Section] = defaultdict(_Section)
    for ref in refs.rows:
        sections[ref.dataset, ref.split, ref.shots].refs.append(ref)
    replicates: dict[int, Replicates] = {}
    for i, (path, res) in enumerate(measured):
        sections[res.dataset, res.split, res.shots].measured.append((path, res))
        replicates[id(res)] = with_intervals(res)  # fills what a file written before intervals lacks
    for section in sections.values():
        section.tests = table_tests([(res, replicates[id(res)]) for _, res in section.measured])

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
        "seeds when there are several, then its 95 % bootstrap interval over test images `[low, high]`; *contexts*: "
        "the 95 % interval over contexts; *Micro*: the I-AUROC of all headline images pooled over subjects (the "
        "legend under each table says how to read them and the marks); run here with the stated backbone and "
        "weights. **Reported** rows: copied "
        "from the cited paper. **Δ** rows: measured − reported, in points, for the same method, dataset, split, "
        "shot setting and metric. Rows are sorted by the headline I-AUROC within each table (a reported row "
        "carries its measured rows and their Δ rows); the **chance** row is a constant score on the same test "
        "images. *I-AUROC < 50*: subjects whose I-AUROC is below chance (inverted), of those where it is defined.",
        "",
    ]
    if not measured:
        lines += ["No measured results yet: write results files into `leaderboards/results/` "
                  "(`caadbench run ... --out leaderboards/results`) and regenerate.", ""]
    for dataset, split, shots in sorted(sections):
        section = sections[dataset, split, shots]
        split_name = refs.splits.get(split)
        shots_text = "0 shots (zero-shot or trained: no support images)" if shots == 0 else f"{shots}-shot"
        lines += [f"## {refs.datasets.get(dataset, dataset)} · split `{split}`"
                  + (f" ({split_name})" if split_name else "") + f" · {shots_text}", ""]
        if section.cross:
            lines += ["Headline metrics on test images of **unseen** contexts; *Seen I-AUROC* on held-out test "
                      "images of seen contexts (never trained on); *Gap* = seen − unseen, per seed, mean ± std.", ""]
        lines += renderer.table(section) + [""]

    lines += ["## Notes", ""]
    for kind in (WeightsKind.RANDOM_INIT, WeightsKind.WORLD):
        if kind.mark in renderer.used:
            lines.append(f"- {kind.mark} {kind.legend}")
    if SINGLE_SEED_MARK in renderer.used:
        lines.append(f"- {SINGLE_SEED_MARK} One seed of a result that depends on the seed (support set or "
                     "training): no spread over seeds is known, so a difference between two such rows may be seed "
                     "noise. Zero-shot rows depend on no seed and are not marked.")
    if ASSUMED_MARK in renderer.used:
        lines.append(f"- {ASSUMED_MARK} The source does not state the shot setting of this reported number; "
                     "zero-shot is assumed, so read its gap with care.")
    if GAP_UNAVAILABLE in renderer.used:
        lines.append("- Gap `unavailable`: the run has no test images of seen contexts (results or shards written "
                     "before the cc split held them out); re-run on rebuilt shards to measure it.")
    if CHANCE in renderer.used:
        lines.append("- Chance: I-AUROC 50; I-AP the share π of anomalous images; I-F1max 2π/(1+π); macro over "
                     "subjects like the metric. Pixel metrics have no chance level here (—).")
    lines.append("- A reported range (low–high) spans several variants as the source summarises it; no gap is "
                 "computed against a range.")
    lines.append("- `n/a`: the metric is undefined for every subject of the run (see the run's notes).")
    lines += ["", "## References", ""]
    lines += [f"{renderer.cite_number[key]}. {refs.citations[key]['full']}" for key in sorted(refs.citations)]
    return "\n".join(lines) + "\n"


def measured_table(measured: list[tuple[Path, Results]]) -> str:
    """A compact console table of measured runs, best headline I-AUROC first (no paper rows, no links)."""
    from tabulate import tabulate

    rows = []
    for path, res in sorted(measured, key=lambda item: (*_headline_key(item[1].metrics[HEADLINE_METRIC].mean),
                                                        item[1].model)):
        row = flatten(res, path=path)[0]
        gap = row_stat(row, f"gap_{HEADLINE_METRIC}", signed=True) if res.has_gap else "unavailable"
        rows.append([row["model"], row["learning"], row["shots"], f"{row['dataset']}/{row['split']}",
                     f"{row['backbone']} ({row['weights_label']})", row["seeds"].replace(",", ", "),
                     *(row_stat(row, m) for m in METRIC_NAMES), gap])
    return tabulate(rows, headers=["model", "learning", "shots", "data", "backbone", "seeds",
                                   *(METRIC_LABELS[m] for m in METRIC_NAMES), "gap I-AUROC"], tablefmt="github")


def _measured_order(path: Path, res: Results) -> tuple:
    p = res.provenance
    return (res.model, p.backbone_arch, p.weights, p.image_size, path.name)


def generate_leaderboard(
    results_dir: str | Path = DEFAULT_RESULTS_DIR,
    references: str | Path | None = None,
    out: str | Path = DEFAULT_OUT,
) -> str:
    """Read the inputs and render the markdown for ``out`` (not written); warn about duplicate results files."""
    refs_path = PACKAGED_REFERENCES if references is None else Path(references)
    refs = read_references(refs_path)
    measured = read_results_dir(results_dir)
    for why, paths in duplicate_groups(measured):
        logger.warning(f"{', '.join(map(str, paths))}: duplicate results ({why}): each is a row of the "
                       "leaderboard; keep one")
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
