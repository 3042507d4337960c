"""What ``caadbench predict`` writes into its output folder.

::

    <out>/overlays/<relative path>.png   one heat-map overlay per image (the input's path below its argument)
    <out>/scores.csv                     path, subject, score[, threshold, label], overlay — one row per image
    <out>/predict.json                   what produced the scores: model, backbone, weights, precision, device,
                                         threshold source, skipped inputs, command

Every file is written atomically; ``scores.csv`` and ``predict.json`` are written last, so a folder with a
``scores.csv`` holds a finished run (an interrupted one leaves overlays but no table). Two inputs that would share
an overlay name get ``-2``, ``-3``, ... suffixes; the ``overlay`` column says which file is whose.
"""

from __future__ import annotations

import csv
import io
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import torch

from caadbench import __version__
from caadbench.errors import ModelError
from caadbench.eval.provenance import git_state
from caadbench.infer.overlay import render_overlay
from caadbench.infer.predictor import ImagePrediction
from caadbench.infer.threshold import Threshold
from caadbench.utils.atomic import atomic_write_bytes, atomic_write_text

SCORES = "scores.csv"
PROVENANCE = "predict.json"
OVERLAYS = "overlays"


class PredictionWriter:
    """Writes overlays as predictions arrive, then the scores table and provenance.

    Args:
        out: the output folder (created).
        threshold: labels are written only with one.
        overlays: write the overlay PNGs (a model without maps, ``AnomalyModel.gives_maps`` false, has none to
            write: pass false).
    """

    def __init__(self, out: str | Path, threshold: Threshold | None = None, overlays: bool = True) -> None:
        self.out = Path(out)
        self.threshold = threshold
        self.overlays = overlays
        self.rows: list[dict[str, Any]] = []
        self._names: set[str] = set()

    def _overlay_name(self, rel: str) -> str:
        name, n = f"{rel}.png", 1
        while name.lower() in self._names:
            n += 1
            name = f"{rel}-{n}.png"
        self._names.add(name.lower())
        return name

    def add(self, p: ImagePrediction) -> dict[str, Any]:
        """Write ``p``'s overlay and keep its row; returns the row."""
        row: dict[str, Any] = {"path": p.ref.name, "subject": p.ref.subject, "score": f"{p.score:.6g}"}
        title = f"{p.ref.subject} — score {p.score:.4g}"
        if self.threshold is not None:
            value = self.threshold.value_for(p.ref.subject)
            label = self.threshold.label(p.score, p.ref.subject)
            row.update(threshold=f"{value:.6g}", label=label)
            title += f" (threshold {value:.4g}): {'anomalous' if label else 'normal'}"
        if self.overlays:
            if p.map is None:
                raise ModelError(p.ref.name, "the model gives no anomaly map to overlay (write scores only)")
            name = self._overlay_name(p.ref.rel)
            atomic_write_bytes(self.out / OVERLAYS / name, render_overlay(p.rgb, p.map, title))
            row["overlay"] = f"{OVERLAYS}/{name}"
        self.rows.append(row)
        return row

    def finish(self, model: dict[str, Any], skipped: list[str]) -> Path:
        """Write ``scores.csv`` and ``predict.json``; return the table's path."""
        columns = ["path", "subject", "score"] + (["threshold", "label"] if self.threshold is not None else []) + (
            ["overlay"] if self.overlays else [])
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        table = atomic_write_text(self.out / SCORES, buffer.getvalue())
        t = self.threshold
        commit, dirty = git_state()
        provenance = {
            "package_version": __version__, "git_commit": commit, "git_dirty": dirty,
            "torch_version": torch.__version__,
            "model": model,
            "threshold": None if t is None else {"source": t.source, "quantile": t.quantile, **t.to_dict()["threshold"]},
            "label_rule": None if t is None else "1 (anomalous) when score > threshold, else 0",
            "images": len(self.rows),
            "skipped": skipped,
            "command": shlex.join(["caadbench", *sys.argv[1:]]),
        }
        atomic_write_text(self.out / PROVENANCE, json.dumps(provenance, indent=1, sort_keys=True, default=str) + "\n")
        return table


__all__ = ["OVERLAYS", "PROVENANCE", "SCORES", "PredictionWriter"]
