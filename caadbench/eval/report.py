"""The cross-context report: markdown + PNG figures from one results file (and its examples sidecar).

``write_report(results.json)`` builds ``<stem>-report/`` beside the results file (or ``out_dir``) atomically:
``report.md`` linking ``roc.png``, ``roc_subjects.png``, ``per_subject.png``, ``per_context.png``,
``subject_context.png``, ``scores.png``, ``training.png`` for a trained run (its loss curves from the results'
``training`` logs) and, when ``<stem>.examples.npz`` exists, ``examples.png``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from caadbench.errors import CaadError
from caadbench.eval import report_plots as plots
from caadbench.eval.bootstrap import with_intervals
from caadbench.eval.evaluator import SEEN, UNSEEN
from caadbench.eval.examples import examples_path, read_examples
from caadbench.eval.flatten import flatten
from caadbench.eval.metrics import METRIC_LABELS, METRIC_NAMES, auroc, macro_mean
from caadbench.eval.provenance import WeightsKind
from caadbench.eval.report_diagnosis import diagnosis_section
from caadbench.eval.results import read_results
from caadbench.eval.schema import Results
from caadbench.eval.summaries import CHANCE_METRICS, chance_levels, gap_status, inverted_subjects
from caadbench.eval.tables import (
    interval_text,
    markdown_table,
    mean_std,
    pct,
    row_stat,
    row_stat_interval,
    stat_interval,
)
from caadbench.utils.atomic import atomic_directory

REPORT_FILE = "report.md"
MARKER_FILE = ".caadbench-report"
WORST_CONTEXTS = 8


def default_report_dir(results_path: str | Path) -> Path:
    """``runs/x.json`` → ``runs/x-report``."""
    results_path = Path(results_path)
    return results_path.with_name(results_path.stem + "-report")


def write_report(results_path: str | Path, out_dir: str | Path | None = None, *, seed_index: int = 0) -> Path:
    """Write the report of a results file.

    Args:
        results_path: a results JSON (:func:`~caadbench.eval.results.read_results`).
        out_dir: the report directory (default ``<stem>-report`` beside the results). An existing report there
            is replaced; any other existing directory is refused.
        seed_index: which seed's scores the curves and distributions show.

    Returns:
        The path of ``report.md``.

    Raises:
        ResultsError: the results or examples file is invalid.
        CaadError: ``out_dir`` exists and is not a caadbench report.
    """
    results_path = Path(results_path)
    results = read_results(results_path)
    if results.intervals is None:  # a file written before intervals gets them from its samples
        with_intervals(results, contexts=True)
    if not 0 <= seed_index < len(results.seeds):
        raise CaadError(results_path, f"seed index {seed_index} out of range ({len(results.seeds)} seeds)")
    sidecar = examples_path(results_path)
    examples = read_examples(sidecar) if sidecar.is_file() else None
    out_dir = default_report_dir(results_path) if out_dir is None else Path(out_dir)
    if out_dir.exists() and not (out_dir / MARKER_FILE).is_file():
        raise CaadError(out_dir, "exists and is not a caadbench report directory; choose another --out")
    with atomic_directory(out_dir, overwrite=True) as tmp:
        figures = {
            "roc": plots.plot_roc(results, tmp, seed_index),
            "roc_subjects": plots.plot_roc_subjects(results, tmp, seed_index),
            "per_subject": plots.plot_per_subject(results, tmp, seed_index),
            "per_context": plots.plot_per_context(results, tmp),
            "subject_context": plots.plot_subject_context(results, tmp),
            "scores": plots.plot_scores(results, tmp, seed_index),
        }
        if plots.training_curves(results):
            figures["training"] = plots.plot_training(results, tmp)
        if examples is not None and len(examples):
            figures["examples"] = plots.plot_examples(examples, tmp)
        text = render_report(results, figures, results_name=results_path.name,
                             examples_name=sidecar.name if examples is not None else None, seed_index=seed_index)
        (tmp / REPORT_FILE).write_text(text, encoding="utf-8")
        (tmp / MARKER_FILE).write_text("written by caadbench report\n", encoding="utf-8")
    return out_dir / REPORT_FILE


# ----------------------------------------------------------------------------------------------- markdown
def _role(seen: bool | None) -> str:
    return "—" if seen is None else ("seen" if seen else "unseen")


def _role_summary(results: Results, seed_index: int) -> list[list[str]]:
    """Per seen/unseen role: pooled AUROC and the macro means over subjects and over pairs."""
    rows = []
    samples = results.samples
    roles = np.array([_role(s.seen) for s in samples], dtype=object)
    subjects = np.array([s.subject for s in samples], dtype=object)
    labels = np.array([s.label for s in samples])
    scores = np.array([s.scores[seed_index] for s in samples])
    for role in ("unseen", "seen", "—"):
        mask = roles == role
        if not mask.any():
            continue
        per_subject = [auroc(scores[mask & (subjects == n)], labels[mask & (subjects == n)])
                       for n in sorted(set(subjects[mask]))]
        cells = [c.auroc.mean for c in results.per_context if _role(c.seen) == role]
        rows.append([
            "all" if role == "—" else role,
            str(int(mask.sum())),
            str(len(cells)),
            pct(auroc(scores[mask], labels[mask])),
            pct(macro_mean(per_subject)),
            pct(macro_mean(cells)),
        ])
    return rows


def _inverted(per_subject) -> str:
    below, defined = inverted_subjects(per_subject)
    return f"{below} of {defined}"


def _seen_vs_unseen(results: Results) -> list[str]:
    """The opening section: headline (unseen) and seen metrics side by side, the gap, chance, inverted subjects."""
    headline = results.headline
    if results.has_gap:
        chance_u, chance_s = chance_levels(results, UNSEEN), chance_levels(results, SEEN)
        rows = [[METRIC_LABELS[m], stat_interval(results.metrics[m]), _contexts(results.metrics[m]),
                 mean_std(results.seen.metrics[m]), mean_std(results.gap[m], signed=True),
                 pct(chance_u[m]) if m in CHANCE_METRICS else "—", pct(chance_s[m]) if m in CHANCE_METRICS else "—"]
                for m in METRIC_NAMES]
        if results.micro_i_auroc is not None:
            rows.append(["Micro I-AUROC", stat_interval(results.micro_i_auroc), _contexts(results.micro_i_auroc),
                         "—", "", pct(0.5), ""])
        rows.append(["Subjects with I-AUROC < 50", _inverted(results.per_subject), "",
                     _inverted(results.seen.per_subject), "", "", ""])
        header = ["Metric", "Unseen contexts (headline)", "Headline, over contexts", "Seen contexts",
                  "Gap (seen − unseen)", "Chance (unseen)", "Chance (seen)"]
        intro = ("The headline numbers are on test images of contexts never seen for their subject in training or "
                 "support; the seen column is on held-out images of the seen contexts (never trained on). "
                 "The gap is seen − unseen in points, per seed, then mean ± std over seeds.")
    else:
        chance = chance_levels(results)
        label = "Unseen contexts (headline)" if headline == UNSEEN else "All test images (headline)"
        rows = [[METRIC_LABELS[m], stat_interval(results.metrics[m]), _contexts(results.metrics[m]),
                 pct(chance[m]) if m in CHANCE_METRICS else "—"] for m in METRIC_NAMES]
        if results.micro_i_auroc is not None:
            rows.append(["Micro I-AUROC", stat_interval(results.micro_i_auroc), _contexts(results.micro_i_auroc),
                         pct(0.5)])
        rows.append(["Subjects with I-AUROC < 50", _inverted(results.per_subject), "", ""])
        header = ["Metric", label, "Headline, over contexts", "Chance"]
        intro = "Macro mean over subjects."
    lines = ["## Seen vs unseen contexts", "",
             intro + " Values in percent" + (", ± population std over seeds" if len(results.seeds) > 1 else
                                              "; **one seed**: no spread over seeds is known")
             + ". *Chance*: a constant score on the same images (I-AUROC 50; I-AP the anomalous share; I-F1max "
               "2π/(1+π)), macro over subjects.", ""]
    lines += markdown_table(header, rows)
    lines += ["", f"Gap {gap_status(results)}.", "", _intervals_text(results)]
    return lines


def _per_seed(stat) -> str:
    """``v [low, high]`` per seed."""
    intervals = stat.ci_image_per_seed or [None] * len(stat.per_seed)
    return ", ".join(" ".join(x for x in (pct(v), interval_text(ci)) if x) for v, ci in zip(stat.per_seed, intervals))


def _contexts(stat) -> str:
    """The context-level interval of a headline value, ``n/a`` when unavailable."""
    return interval_text(stat.ci_context) or "n/a"


def _intervals_text(results: Results) -> str:
    """How to read the intervals of this report, with what they leave out."""
    info = results.intervals
    text = ("`[low, high]`: 95 % bootstrap interval over the test images, the test contexts and the seeds fixed (how "
            "sure the number is on this benchmark); *over contexts*: each subject's contexts of a role are resampled "
            "too (how sure it is for other contexts of the same world); *Micro*: the I-AUROC of all headline images "
            "pooled over subjects. Intervals do not include the spread over seeds (± std).")
    if info is not None:
        text += (f" {info.resamples} resamples, seed {info.seed}, degrees of freedom: images {info.df['image']}, "
                 f"contexts {info.df['context']} (docs/evaluation.md, *Uncertainty*).")
        text += "".join(f" Note: {n}." for n in info.notes)
    return text


def render_report(
    results: Results,
    figures: dict[str, str],
    *,
    results_name: str,
    examples_name: str | None,
    seed_index: int = 0,
) -> str:
    """The report's markdown (figures given by name → file name)."""
    p = results.provenance
    lines = [
        f"# Cross-context report: `{results.model}` on {results.dataset} · split `{results.split}` · "
        f"{results.shots}-shot",
        "",
        f"Generated by `caadbench report` from `{results_name}`.",
        "",
    ]
    kind = p.weights_kind
    if kind is not WeightsKind.REAL:
        lines += [f"> {kind.mark} {kind.legend}", ""]
    lines += markdown_table(
        ["Model", "Learning", "Dataset", "Split", "Shots", "Seeds", "Backbone", "Weights", "Test images"],
        [[results.model, results.learning, results.dataset, results.split, str(results.shots),
          ", ".join(map(str, results.seeds)), f"{p.backbone_arch} @ {p.image_size}px", p.weights_label(),
          str(len(results.samples))]],
    )
    lines += ["", f"Evaluated categories ({len(results.categories)}): {', '.join(results.categories)}.", ""]
    lines += _seen_vs_unseen(results)
    lines += ["", "## Headline metrics per seed", "",
              "Macro mean over subjects of the headline images, in percent. *Bound*: the largest possible error of "
              "the streamed pixel histogram (0: exact).", ""]
    lines += markdown_table(
        ["Metric", "Value", "Per seed [95 % over images]", "Bound"],
        [[METRIC_LABELS[m], stat_interval(results.metrics[m]), _per_seed(results.metrics[m]),
          f"{100 * results.metrics[m].bound:.3f}"] for m in METRIC_NAMES],
    )

    lines += ["", "## Pooled view", "",
              f"Image-level AUROC restricted to test images of seen or unseen contexts (seed "
              f"{results.seeds[seed_index]}): pooled over subjects, macro mean over subjects, and the mean context "
              "AUROC over (subject, context) pairs.", ""]
    lines += markdown_table(["Contexts", "Images", "Pairs", "Pooled AUROC", "Macro AUROC", "Mean context AUROC"],
                            _role_summary(results, seed_index))
    if all(c.seen is True for c in results.per_context):
        lines += ["", "Every test context is seen for its subject (an in-context split)."]

    contexts = flatten(results, by="context")
    worst = sorted((r for r in contexts if not math.isnan(r["auroc"])),
                   key=lambda r: (r["auroc"], r["subject"], r["context"]))[:WORST_CONTEXTS]
    lines += ["", "## Where it fails", "",
              f"The {len(worst)} (subject, context) pairs with the lowest context AUROC — the pair's images against "
              "the subject's images of the other label (0.5 = chance, below = systematically inverted).", ""]
    lines += markdown_table(["Subject", "Context", "Role", "Pair label", "Images", "Context AUROC", "Mean score"],
                            [[r["subject"], r["context"], r["role"], r["pair_label"], str(r["n"]),
                              row_stat_interval(r, "auroc"), f"{r['mean_score']:.4f}"] for r in worst])

    diagnosis = diagnosis_section(results)  # empty for a run without diagnostic extras
    if diagnosis:
        lines += ["", *diagnosis]
    lines += ["", "## Figures", ""]
    captions = {
        "roc": "ROC curves pooled over subjects, and split by seen/unseen contexts",
        "roc_subjects": "ROC curve of every subject",
        "per_subject": "Per-subject I-AUROC (all / seen / unseen contexts) and pixel metrics",
        "per_context": "Context AUROC of every (subject, context) pair, seen vs unseen",
        "subject_context": "Subject × context heat map (blank: pair not in the test set)",
        "scores": "Score distributions, normal vs anomalous, per seen/unseen contexts",
        "examples": "Example images with their anomaly maps and ground truth",
        "training": "Training curves: the loss terms per step of every stage and seed (thinned; the per-step CSV "
                    "is in the run's checkpoint folder)",
    }
    for name, file in figures.items():
        lines += [f"### {captions[name]}", "", f"![{captions[name]}]({file})", ""]
    if examples_name is None:
        lines += ["### Examples", "",
                  f"No example images: the examples sidecar (`{Path(results_name).stem}.examples.npz`, written by "
                  "`caadbench run`) is absent, so the grid of images, anomaly maps and ground truth is skipped.", ""]
    else:
        lines += [f"Examples from `{examples_name}`: per category, the images ranked first by score "
                  "(maps share one colour scale).", ""]

    lines += ["## Per subject", "", f"Headline images ({results.headline} contexts)"
              + (", with each subject's I-AUROC on its seen test images and the gap" if results.has_gap else "")
              + ".", ""]
    extra = ["Seen I-AUROC", "Gap I-AUROC"] if results.has_gap else []
    rows = []
    for r in flatten(results, by="subject"):
        row = [r["subject"], str(r["n"]), str(r["n_anomalous"]), *(row_stat(r, m) for m in METRIC_NAMES)]
        if results.has_gap:
            have = r["seen_i_auroc"] is not None
            row += [row_stat(r, "seen_i_auroc") if have else "—",
                    pct(r["gap_i_auroc"], signed=True) if have else "—"]
        rows.append(row)
    lines += markdown_table(["Subject", "Images", "Anomalous", *(METRIC_LABELS[m] for m in METRIC_NAMES), *extra], rows)
    lines += ["", "## Per context", "",
              "Context AUROC (mean ± std over seeds) with its 95 % interval over the test images (images of the pair "
              "and of the subject's other-label images resampled; the contexts fixed). A pair scored perfectly "
              "gets a zero-width interval: the bootstrap cannot see beyond its sample.", ""]
    lines += markdown_table(
        ["Subject", "Context", "Role", "Pair label", "Images", "Anomalous", "Context AUROC [95 %]", "Mean score"],
        [[r["subject"], r["context"], r["role"], r["pair_label"], str(r["n"]), str(r["n_anomalous"]),
          row_stat_interval(r, "auroc"), f"{r['mean_score']:.4f}"] for r in contexts])
    if results.notes:
        lines += ["", "## Notes", "", *(f"- {n}" for n in results.notes)]
    lines += ["", "## Provenance", ""]
    lines += markdown_table(["Field", "Value"], [
        ["package", p.package_version],
        ["git commit", p.git_commit + (" (dirty tree)" if p.git_dirty else "")],
        ["torch / open_clip", f"{p.torch_version} / {p.open_clip_version}"],
        ["backbone", f"{p.backbone_arch} @ {p.image_size}px, weights {p.weights}, sha256 {p.weights_sha256}, "
                     f"init seed {p.init_seed}"],
        ["dataset", f"{results.dataset} at `{p.dataset_path}`, fingerprint {p.dataset_fingerprint}"],
        ["device", p.device],
        ["wall time", f"{p.wall_time_s:.1f} s ({p.images_per_s:.1f} images/s)"],
        ["peak memory", f"{p.peak_memory_bytes / 2**20:.0f} MiB ({p.peak_memory_kind})"],
        ["python / platform", f"{p.python} / {p.platform}"],
        ["command", f"`{p.command}`"],
    ])
    return "\n".join(lines) + "\n"


__all__ = ["default_report_dir", "render_report", "write_report"]
