"""Evaluation: metrics, the per-seed evaluator, the results schema, leaderboards and reports.

The runner's path: :class:`Evaluator` per seed (``update(batch, output)``, ``compute()``) →
:func:`build_results` → :func:`write_results`. Reports (:mod:`caadbench.eval.report`) and leaderboards
(:mod:`caadbench.eval.leaderboard`) read results files; import them explicitly (they pull in matplotlib).
"""

from caadbench.eval.evaluator import Evaluator, ExampleSet, SeedEvaluation
from caadbench.eval.examples import examples_path, read_examples, write_examples
from caadbench.eval.metrics import METRIC_LABELS, METRIC_NAMES, PixelMetricAccumulator, image_metrics
from caadbench.eval.meter import ResourceMeter
from caadbench.eval.provenance import Provenance, WeightsKind, collect_provenance, weights_kind
from caadbench.eval.results import build_results, read_results, write_results
from caadbench.eval.schema import SCHEMA_VERSION, Results

__all__ = [
    "METRIC_LABELS",
    "METRIC_NAMES",
    "SCHEMA_VERSION",
    "Evaluator",
    "ExampleSet",
    "PixelMetricAccumulator",
    "Provenance",
    "ResourceMeter",
    "Results",
    "SeedEvaluation",
    "WeightsKind",
    "build_results",
    "collect_provenance",
    "examples_path",
    "image_metrics",
    "read_examples",
    "read_results",
    "write_examples",
    "weights_kind",
    "write_results",
]
