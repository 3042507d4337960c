"""The report's *Diagnosis* section: per-branch I-AUROC, the α distribution and the family neighbourhood.

Rendered from :attr:`Results.diagnosis <caadbench.eval.schema.Results.diagnosis>` (:mod:`caadbench.eval.diagnosis`
says how each value is computed); a run without one gets no section.
"""

from __future__ import annotations

import math

from caadbench.eval.diagnosis import FUSED
from caadbench.eval.schema import Diagnosis, MetricStat, Results
from caadbench.eval.tables import NA, markdown_table, mean_std, pct

SCOPE_LABELS = {"unseen": "Unseen contexts", "seen": "Seen contexts", "all": "All test images"}
EMBEDDING_LABELS = {"adapted": "Adapted (the model's embedding)", "frozen": "Frozen backbone"}


def weight(stat: MetricStat) -> str:
    """A fusion weight over seeds: ``0.42 ± 0.03`` (``n/a`` when undefined)."""
    if math.isnan(stat.mean):
        return NA
    text = f"{stat.mean:.2f}"
    return text + f" ± {stat.std:.2f}" if len(stat.per_seed) > 1 and not math.isnan(stat.std) else text


def diagnosis_section(results: Results) -> list[str]:
    """The markdown lines of the section (empty when the results have no diagnosis)."""
    d = results.diagnosis
    if d is None:
        return []
    seeds = "mean ± std over seeds" if len(results.seeds) > 1 else "one seed"
    lines = ["## Diagnosis", "",
             f"What the model's own outputs say about where generalisation to unseen contexts is lost ({seeds}; "
             "docs/coreclip.md, *Diagnosis*)."]
    lines += _branches(d) + _alpha(d) + _neighbourhood(d)
    return lines


def _scopes(by_scope: dict) -> list[str]:
    return [sc for sc in ("unseen", "seen", "all") if sc in by_scope]


def _branches(d: Diagnosis) -> list[str]:
    if not d.branch_i_auroc:
        return []
    scopes = _scopes(d.branch_i_auroc)
    names = [b for b in d.branches if any(b in d.branch_i_auroc[sc] for sc in scopes)] + [FUSED]
    gap = "unseen" in scopes and "seen" in scopes
    rows = []
    for b in names:
        row = [b if b != FUSED else "fused (the model's score)"]
        row += [mean_std(d.branch_i_auroc[sc][b]) if b in d.branch_i_auroc[sc] else NA for sc in scopes]
        if gap:
            u, s = d.branch_i_auroc["unseen"].get(b), d.branch_i_auroc["seen"].get(b)
            row.append(pct(s.mean - u.mean, signed=True) if u is not None and s is not None else NA)
        rows.append(row)
    header = ["Branch", *(f"I-AUROC, {SCOPE_LABELS[sc].lower()}" for sc in scopes)] + (["Gap (seen − unseen)"]
                                                                                       if gap else [])
    return ["", "### Per-branch I-AUROC", "",
            "Each branch's own image score (its embedding against the same refined prototypes as the fused one), "
            "macro mean over subjects, in percent.", "", *markdown_table(header, rows)]


def _alpha(d: Diagnosis) -> list[str]:
    if not d.alpha:
        return []
    scopes = _scopes(d.alpha)
    rows = []
    for b in d.branches:
        row = [b]
        for sc in scopes:
            st = d.alpha[sc].get(b)
            row += [NA, NA] if st is None else [weight(st["mean"]),
                                                 " / ".join(f"{st[k].mean:.2f}" for k in ("q10", "q50", "q90"))]
        rows.append(row)
    header = ["Branch"] + [h for sc in scopes for h in (f"α mean, {SCOPE_LABELS[sc].lower()}",
                                                          f"α q10 / q50 / q90, {SCOPE_LABELS[sc].lower()}")]
    return ["", "### Fusion weights α", "",
            "Each branch's fusion weight per image (CRM attention; 1/n for mean fusion; rows sum to 1 over the branches): mean and quantiles over the "
            "scope's images (quantiles: mean over seeds).", "", *markdown_table(header, rows)]


def _neighbourhood(d: Diagnosis) -> list[str]:
    if not d.neighbourhood:
        return []
    kinds = [k for k in ("adapted", "frozen") if k in d.neighbourhood]
    lines = ["", "### Family neighbourhood", "",
             "For each (subject, unseen context) pair: the share of its test images whose nearest seen-context "
             "centroid of the same subject (cosine; centroids from the held-out test images of each seen context) "
             "is a context of the same family, in percent. High on the frozen features and low on the adapted ones means "
             "training pulled unseen contexts away from their seen relatives. *Chance*: a centroid drawn at "
             "random.", ""]
    lines += markdown_table(["Embedding", "Same-family share (mean over pairs)", "Chance"],
                            [[EMBEDDING_LABELS.get(k, k), mean_std(d.neighbourhood[k]), pct(d.neighbourhood_chance)]
                             for k in kinds])
    pairs = sorted(d.neighbourhood_pairs, key=lambda p: (_drop(p, kinds), p.subject, p.context))
    lines += ["", f"Per pair ({len(pairs)}), the largest drop from frozen to adapted first:", ""]
    lines += markdown_table(["Subject", "Unseen context", "Family", "Images", "Relatives / seen contexts",
                             *(EMBEDDING_LABELS.get(k, k) for k in kinds)],
                            [[p.subject, p.context, p.family, str(p.n), f"{p.relatives} / {p.candidates}",
                              *(mean_std(p.share[k]) if k in p.share else NA for k in kinds)] for p in pairs])
    return lines


def _drop(pair, kinds: list[str]) -> float:
    """adapted − frozen share (sorts the largest drop first); 0 when either is missing."""
    if "adapted" not in kinds or "frozen" not in kinds:
        return 0.0
    value = pair.share["adapted"].mean - pair.share["frozen"].mean
    return 0.0 if math.isnan(value) else value


__all__ = ["diagnosis_section"]
