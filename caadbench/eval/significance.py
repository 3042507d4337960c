"""Which measured rows of a leaderboard table can be told apart: tests against the best row and of ablations.

Within one table (dataset, split, shots), on the headline I-AUROC at the image level (the benchmark's test
contexts fixed; :mod:`caadbench.eval.compare` adds each row's spread over seeds):

* the **best** row is the highest mean I-AUROC; every row on the same test images is tested against it
  (two-sided, :data:`ALPHA`) and is *not significantly below the best* when the test does not reject;
* every **ablation** (a ``<family>.<variant>`` of :data:`ABLATION_FAMILIES`) is tested against its full model
  (the row of model ``<family>`` with the same backbone, weights and test images); the p-values of one full
  model's ablations are Holm-adjusted together.

Rows on other test images than the row they would be compared with are not compared.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from caadbench.eval.bootstrap import Replicates
from caadbench.eval.compare import Difference, comparable, holm, paired_difference
from caadbench.eval.schema import Results

ABLATION_FAMILIES = ("coreclip", "aprilgan", "anomalyclip", "winclip")
ALPHA = 0.05
METRIC = "i_auroc"
LEVEL = "image"


@dataclass
class RowTests:
    """The tests of one measured row of a table.

    Attributes:
        best: the row is the table's best.
        vs_best: its difference to the best row (``None`` for the best row itself or when not compared).
        not_compared: why it was not compared with the best row (other test images), else ``None``.
        full_model: index of its full model's row when the row is an ablation with such a row, else ``None``.
        vs_full: its difference to the full model; ``holm_p`` the Holm-adjusted p-value.
        full_not_compared: why an ablation was not compared with its full model's row (other test images).
        ablations: for a full model's row, how many of its ablations were tested.
    """

    best: bool = False
    vs_best: Difference | None = None
    not_compared: str | None = None
    full_model: int | None = None
    vs_full: Difference | None = None
    holm_p: float | None = None
    full_not_compared: str | None = None
    ablations: int = 0

    @property
    def below_best(self) -> bool:
        return self.vs_best is not None and self.vs_best.p < ALPHA and self.vs_best.estimate < 0


def _setup(results: Results) -> tuple:
    p = results.provenance
    return p.backbone_arch, p.weights, p.weights_sha256, p.image_size


def table_tests(runs: Sequence[tuple[Results, Replicates]]) -> list[RowTests]:
    """The tests of every run of one table (same order); replicates must share the resampling settings."""
    tests = [RowTests() for _ in runs]
    defined = [i for i, (r, _) in enumerate(runs) if not math.isnan(r.metrics[METRIC].mean)]
    if defined:
        best = max(defined, key=lambda i: (runs[i][0].metrics[METRIC].mean, -i))
        tests[best].best = True
        for i in defined:
            if i == best:
                continue
            why = comparable(runs[best][0], runs[i][0])
            if why is not None:
                tests[i].not_compared = "other test images than the best row"
                continue
            tests[i].vs_best = paired_difference(runs[i][1], runs[best][1], METRIC, LEVEL)
    for family in ABLATION_FAMILIES:
        for full, (full_run, full_reps) in enumerate(runs):
            if full_run.model != family:
                continue
            variants = [i for i, (r, _) in enumerate(runs)
                        if r.model.startswith(family + ".") and _setup(r) == _setup(full_run)]
            members = [i for i in variants if comparable(full_run, runs[i][0]) is None]
            for i in set(variants) - set(members):
                tests[i].full_not_compared = "other test images than the full model"
            found = [(i, paired_difference(runs[i][1], full_reps, METRIC, LEVEL)) for i in members]
            found = [(i, d) for i, d in found if d is not None]
            for (i, diff), adjusted in zip(found, holm([d.p for _, d in found])):
                tests[i].full_model, tests[i].vs_full, tests[i].holm_p = full, diff, adjusted
            tests[full].ablations = len(found)
    return tests


__all__ = ["ABLATION_FAMILIES", "ALPHA", "LEVEL", "METRIC", "RowTests", "table_tests"]
