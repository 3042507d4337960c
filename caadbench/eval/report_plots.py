"""The cross-context report's figures (matplotlib, Agg canvas; no pyplot global state).

Every function takes a :class:`~caadbench.eval.results.Results` (and the examples sidecar for the grid), draws
one PNG into a directory and returns its file name. Curves and distributions use one seed's scores
(``seed_index``); bars and the heat map use the means over seeds stored in the results.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from caadbench.eval.evaluator import ExampleSet
from caadbench.eval.metrics import auroc, roc_curve
from caadbench.eval.schema import Results

DPI = 110
ROLE_COLORS = {"seen": "#1f77b4", "unseen": "#ff7f0e", "all": "#444444"}
LABEL_COLORS = {0: "#2a9d8f", 1: "#d62828"}
AUROC_CMAP = LinearSegmentedColormap.from_list("auroc", ["#b2182b", "#f7f7f7", "#1a9850"])
"""Red below chance (0.5), white at chance, green towards 1."""


def _role(seen: bool | None) -> str:
    return "all" if seen is None else ("seen" if seen else "unseen")


def _save(fig: Figure, out_dir: Path, name: str) -> str:
    FigureCanvasAgg(fig)
    fig.savefig(out_dir / name, dpi=DPI)
    return name


def _arrays(results: Results, seed_index: int):
    s = results.samples
    return (
        np.array([x.subject for x in s], dtype=object),
        np.array([_role(x.seen) for x in s], dtype=object),
        np.array([x.label for x in s], dtype=np.int64),
        np.array([x.scores[seed_index] for x in s], dtype=np.float64),
    )


def _both_labels(labels: np.ndarray) -> bool:
    return bool(labels.any() and not labels.all())


def _roc_on(ax, scores, labels, color, label, lw=2.0) -> None:
    fpr, tpr = roc_curve(scores, labels)
    ax.plot(fpr, tpr, color=color, lw=lw, label=f"{label} (AUROC {auroc(scores, labels):.3f})")


def _roc_axes(ax, title: str) -> None:
    ax.plot([0, 1], [0, 1], color="#999999", ls=":", lw=1)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)


def plot_roc(results: Results, out_dir: Path, seed_index: int = 0) -> str:
    """Pooled ROC curves: all test images, and split by seen/unseen contexts."""
    subjects, roles, labels, scores = _arrays(results, seed_index)
    fig = Figure(figsize=(11, 5.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    if _both_labels(labels):
        _roc_on(left, scores, labels, ROLE_COLORS["all"], "all images")
    _roc_axes(left, "Pooled over subjects")
    drawn = False
    for role in ("seen", "unseen"):
        mask = roles == role
        if mask.any() and _both_labels(labels[mask]):
            _roc_on(right, scores[mask], labels[mask], ROLE_COLORS[role], f"{role} contexts")
            drawn = True
    _roc_axes(right, "Seen vs unseen contexts (pooled)")
    if not drawn:
        present = sorted(set(roles))
        right.text(0.5, 0.5, f"test set holds only {'/'.join(present)} contexts", ha="center", va="center",
                   fontsize=10, color="#555555", transform=right.transAxes)
    for ax in (left, right):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right", fontsize=9)
    fig.suptitle(f"{results.model} · ROC (seed {results.seeds[seed_index]}); headline I-AUROC is the macro mean "
                 f"over subjects", fontsize=11)
    return _save(fig, out_dir, "roc.png")


def plot_roc_subjects(results: Results, out_dir: Path, seed_index: int = 0) -> str:
    """One ROC panel per subject, with its seen/unseen curves when both exist."""
    subjects, roles, labels, scores = _arrays(results, seed_index)
    names = sorted(set(subjects))
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(3.3 * cols, 3.4 * rows + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, name in zip(axes, names):
        mask = subjects == name
        if _both_labels(labels[mask]):
            _roc_on(ax, scores[mask], labels[mask], ROLE_COLORS["all"], "all", lw=2.2)
            for role in ("seen", "unseen"):
                m = mask & (roles == role)
                if m.any() and _both_labels(labels[m]) and len(set(roles[mask])) > 1:
                    _roc_on(ax, scores[m], labels[m], ROLE_COLORS[role], role, lw=1.4)
        else:
            ax.text(0.5, 0.5, "undefined:\nonly one label", ha="center", va="center", transform=ax.transAxes)
        _roc_axes(ax, name)
        ax.set_xlabel("FPR", fontsize=8)
        ax.set_ylabel("TPR", fontsize=8)
        ax.tick_params(labelsize=7)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right", fontsize=7)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    fig.suptitle(f"ROC per subject (seed {results.seeds[seed_index]})", fontsize=11)
    return _save(fig, out_dir, "roc_subjects.png")


def _role_auroc(subjects, roles, labels, scores, subject: str, role: str) -> float:
    mask = (subjects == subject) & (roles == role)
    return auroc(scores[mask], labels[mask]) if mask.any() else math.nan


def plot_per_subject(results: Results, out_dir: Path, seed_index: int = 0) -> str:
    """Per-subject bars: I-AUROC over all / seen / unseen contexts, and the pixel metrics."""
    subjects, roles, labels, scores = _arrays(results, seed_index)
    names = sorted(results.per_subject)
    x = np.arange(len(names))
    fig = Figure(figsize=(max(7.0, 1.1 * len(names) + 2), 7.5), layout="constrained")
    top, bottom = fig.subplots(2, 1)
    series = [("all contexts (mean ± std over seeds)",
               [results.per_subject[n].metrics["i_auroc"].mean for n in names],
               [results.per_subject[n].metrics["i_auroc"].std for n in names], ROLE_COLORS["all"])]
    for role in ("seen", "unseen"):
        values = [_role_auroc(subjects, roles, labels, scores, n, role) for n in names]
        if any(not math.isnan(v) for v in values):
            series.append((f"{role} contexts only (seed {results.seeds[seed_index]})", values, None, ROLE_COLORS[role]))
    width = 0.8 / len(series)
    for i, (label, values, err, color) in enumerate(series):
        pos = x - 0.4 + width * (i + 0.5)
        vals = np.nan_to_num(np.array(values, dtype=float), nan=0.0)
        top.bar(pos, vals, width, yerr=None if err is None else np.nan_to_num(err), color=color, label=label,
                capsize=3)
        for p, v in zip(pos, values):
            if math.isnan(v):
                top.text(p, 0.02, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    top.axhline(0.5, color="#999999", ls=":", lw=1)
    top.set(ylim=(0, 1.22), ylabel="I-AUROC", title="Image-level I-AUROC per subject (dotted: chance)")
    top.set_yticks(np.linspace(0, 1, 6))
    top.set_xticks(x, names, rotation=30, ha="right")
    top.legend(fontsize=8, loc="upper center", ncols=len(series), frameon=False)
    top.grid(axis="y", alpha=0.3)

    pixel = [("P-AUROC", "p_auroc", "#6a4c93"), ("AUPRO", "aupro", "#e9c46a"), ("P-F1max", "p_f1max", "#8ab17d")]
    width = 0.8 / len(pixel)
    for i, (label, metric, color) in enumerate(pixel):
        stats = [results.per_subject[n].metrics[metric] for n in names]
        vals = np.array([s.mean for s in stats], dtype=float)
        bottom.bar(x - 0.4 + width * (i + 0.5), np.nan_to_num(vals), width,
                   yerr=np.nan_to_num([s.std for s in stats]), color=color, label=label, capsize=3)
    bottom.set(ylim=(0, 1.16), ylabel="value", title="Pixel-level metrics per subject (mean ± std over seeds)")
    bottom.set_yticks(np.linspace(0, 1, 6))
    bottom.set_xticks(x, names, rotation=30, ha="right")
    bottom.legend(fontsize=8, loc="upper center", ncols=3, frameon=False)
    bottom.grid(axis="y", alpha=0.3)
    return _save(fig, out_dir, "per_subject.png")


def plot_per_context(results: Results, out_dir: Path) -> str:
    """Context AUROC of every (subject, context) pair: bars coloured seen/unseen, hatched when anomalous."""
    cells = sorted(results.per_context, key=lambda c: (c.subject, c.context))
    n = len(cells)
    fig = Figure(figsize=(9, max(3.0, 0.26 * n + 1.9)), layout="constrained")
    ax = fig.subplots()
    y = np.arange(n)[::-1]
    for yi, cell in zip(y, cells):
        value, std = cell.auroc.mean, cell.auroc.std
        shown = 0.0 if math.isnan(value) else value
        err = None if math.isnan(value) or math.isnan(std) or std == 0 else [[min(std, value)], [min(std, 1 - value)]]
        ax.barh(yi, shown, xerr=err, color=ROLE_COLORS[_role(cell.seen)], hatch="///" if cell.label == 1 else None,
                edgecolor="white", height=0.8, error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "#333333"})
        ax.text(1.015, yi, "n/a" if math.isnan(value) else f"{value:.2f}", va="center", fontsize=7)
    ax.set_yticks(y, [f"{c.subject} · {c.context}" for c in cells], fontsize=7)
    ax.set_ylim(-0.6, n - 0.4)
    ax.axvline(0.5, color="#555555", ls=":", lw=1)
    ax.set(xlim=(0, 1.07), xlabel="context AUROC: the pair's images vs the subject's images of the other label "
                                  "(± std over seeds; dotted: chance)")
    ax.set_xticks(np.linspace(0, 1, 6))
    previous = None
    for yi, cell in zip(y, cells):
        if previous is not None and cell.subject != previous:
            ax.axhline(yi + 0.5, color="#999999", lw=0.8)
        previous = cell.subject
    roles = sorted({_role(c.seen) for c in cells})
    handles = [Patch(color=ROLE_COLORS[r], label=f"{r} context" if r != "all" else "context") for r in roles]
    handles += [Patch(facecolor="#bbbbbb", hatch="///", edgecolor="white", label="anomalous pair"),
                Patch(facecolor="#bbbbbb", label="normal pair")]
    fig.legend(handles=handles, fontsize=8, loc="outside lower center", ncols=len(handles), frameon=False)
    ax.set_title("Per context: where the method separates and where it fails", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, out_dir, "per_context.png")


def plot_subject_context(results: Results, out_dir: Path) -> str:
    """Subject × context heat map of the context AUROC; absent (excluded) pairs are left blank."""
    m = results.subject_context
    values = np.array(m.auroc, dtype=float)
    present = np.array(m.n) > 0
    shown = np.ma.masked_where(~present | np.isnan(values), values)
    rows, cols = values.shape
    fig = Figure(figsize=(max(6.0, 0.75 * cols + 3), max(3.5, 0.5 * rows + 2.2)), layout="constrained")
    ax = fig.subplots()
    cmap = AUROC_CMAP.with_extremes(bad="white")
    image = ax.imshow(shown, cmap=cmap, vmin=0, vmax=1, aspect="auto")
    for i in range(rows):
        for j in range(cols):
            if not present[i, j]:
                continue
            v = values[i, j]
            label = "n/a" if math.isnan(v) else f"{v:.2f}"
            kind = {0: "N", 1: "A"}.get(m.label[i][j], "mix")
            ax.text(j, i, f"{label}\n{kind}", ha="center", va="center", fontsize=7,
                    color="black" if math.isnan(v) or 0.2 < v < 0.85 else "white")
            if m.seen[i][j]:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2.2, edgecolor=ROLE_COLORS["seen"]))
    ax.set_xticks(range(cols), m.contexts, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(rows), m.subjects, fontsize=8)
    ax.set_xticks(np.arange(cols + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(rows + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="#dddddd", lw=0.5)
    ax.tick_params(which="minor", length=0)
    fig.colorbar(image, ax=ax, label="context AUROC (0.5 = chance)", shrink=0.85)
    any_seen = any(bool(s) for row in m.seen for s in row)
    ax.set_title("Subject × context (N normal / A anomalous pair; blank: not in the test set"
                 + ("; blue frame: seen context)" if any_seen else ")"), fontsize=9)
    return _save(fig, out_dir, "subject_context.png")


def plot_scores(results: Results, out_dir: Path, seed_index: int = 0) -> str:
    """Score distributions of normal vs anomalous images, per seen/unseen contexts."""
    subjects, roles, labels, scores = _arrays(results, seed_index)
    panels = [r for r in ("seen", "unseen", "all") if (roles == r).any()]
    fig = Figure(figsize=(5.2 * len(panels), 4.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels), squeeze=False)).ravel()
    lo, hi = float(scores.min()), float(scores.max())
    bins = np.linspace(lo, hi if hi > lo else lo + 1e-6, 21)
    for ax, role in zip(axes, panels):
        mask = roles == role
        for label, name in ((0, "normal"), (1, "anomalous")):
            values = scores[mask & (labels == label)]
            if len(values):
                ax.hist(values, bins=bins, color=LABEL_COLORS[label], alpha=0.35, density=True, histtype="stepfilled",
                        label=f"{name} (n={len(values)}, mean {values.mean():.3f})")
                ax.hist(values, bins=bins, color=LABEL_COLORS[label], density=True, histtype="step", lw=1.6)
        title = f"{role} contexts" if role != "all" else "all contexts"
        if _both_labels(labels[mask]):
            title += f" · pooled AUROC {auroc(scores[mask], labels[mask]):.3f}"
        ax.set(xlabel="image anomaly score", ylabel="density", title=title)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(f"Score distributions (seed {results.seeds[seed_index]})", fontsize=11)
    return _save(fig, out_dir, "scores.png")


def plot_examples(examples: ExampleSet, out_dir: Path) -> str:
    """``examples.png``: :func:`examples_figure`."""
    return _save(examples_figure(examples), out_dir, "examples.png")


def examples_figure(examples: ExampleSet) -> Figure:
    """Grid of example images: the image, its anomaly map (ground truth outlined; "no map" where the model gives
    none, its maps all NaN), the ground truth."""
    n = len(examples)
    maps = examples.maps.astype(np.float32)
    finite = maps[np.isfinite(maps)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    vmax = vmax if vmax > vmin else vmin + 1e-6
    fig = Figure(figsize=(8.8, 2.7 * n + 0.3), layout="constrained")
    axes = fig.subplots(n, 3, squeeze=False)
    image = None
    for i in range(n):
        a, b, c = axes[i]
        a.imshow(examples.images[i])
        if np.isfinite(maps[i]).any():
            image = b.imshow(maps[i], cmap="inferno", vmin=vmin, vmax=vmax)
        else:
            b.imshow(np.zeros_like(examples.gt[i], dtype=float), cmap="gray", vmin=-1, vmax=1)
            b.text(0.5, 0.5, "no map\n(the model gives none)", ha="center", va="center", transform=b.transAxes,
                   fontsize=8)
        if examples.gt[i].any():
            b.contour(examples.gt[i].astype(float), levels=[0.5], colors="cyan", linewidths=1.0)
        c.imshow(examples.gt[i], cmap="gray", vmin=0, vmax=1)
        label = "anomalous" if examples.labels[i] else "normal"
        a.set_title(f"{examples.categories[i]}\n{examples.keys[i]}", fontsize=8, loc="left")
        b.set_title(f"{examples.subjects[i]} · {examples.contexts[i]}\n{label}, score {examples.scores[i]:.3f}",
                    fontsize=8)
        c.set_title("ground truth" + ("" if examples.gt[i].any() else " (empty)"), fontsize=8)
        for ax in (a, b, c):
            ax.set_xticks([])
            ax.set_yticks([])
    if image is not None:
        fig.colorbar(image, ax=axes[:, 2].tolist(), location="right", shrink=min(0.6, 3.0 / n),
                     label="anomaly map (one scale for all; cyan: ground truth)")
    return fig


__all__ = [
    "examples_figure",
    "plot_examples",
    "plot_per_context",
    "plot_per_subject",
    "plot_roc",
    "plot_roc_subjects",
    "plot_scores",
    "plot_subject_context",
]


def training_curves(results: Results) -> dict[str, dict[str, list[dict[str, float]]]]:
    """``{stage: {seed: curve rows}}`` of a trained run (each row ``step`` and one value per loss term, thinned to
    at most 100 rows by the trainer); empty for a run that trained nothing."""
    curves: dict[str, dict[str, list[dict[str, float]]]] = {}
    for seed, log in sorted(results.training.items()):
        for stage, entry in sorted(log.items()):
            if isinstance(entry, dict) and entry.get("curve"):
                curves.setdefault(stage, {})[seed] = entry["curve"]
    return curves


def plot_training(results: Results, out_dir: Path) -> str:
    """One panel per training stage: every loss term against the step (the total bold), one line style per seed."""
    curves = training_curves(results)
    fig = Figure(figsize=(5.5 * len(curves), 4.0), layout="constrained")
    styles = ["-", "--", ":", "-."]
    for i, (stage, by_seed) in enumerate(curves.items()):
        ax = fig.add_subplot(1, len(curves), i + 1)
        terms = sorted({k for rows in by_seed.values() for r in rows for k in r if k not in ("step", "total")})
        colors = {t: f"C{j}" for j, t in enumerate(["total", *terms])}
        for s, (seed, rows) in enumerate(by_seed.items()):
            steps = [r["step"] for r in rows]
            for term in ["total", *terms]:
                values = [r.get(term, math.nan) for r in rows]
                ax.plot(steps, values, color=colors[term], ls=styles[s % len(styles)],
                        lw=2.2 if term == "total" else 1.2, label=term if s == 0 else None)
        ax.set_title(f"{stage} (seeds {', '.join(by_seed)}; line style per seed)", fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("loss (unweighted terms; total weighted)")
        ax.legend(fontsize=7)
    return _save(fig, out_dir, "training.png")
