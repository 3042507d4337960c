"""Decision thresholds: a given number, or one calibrated on *normal* images only (never on test labels).

Rule (``caadbench calibrate``): the threshold of a subject is the ``quantile`` (default
:data:`DEFAULT_QUANTILE`) of its normal images' scores (linear interpolation between order statistics, numpy's
default); the ``all`` threshold is the same quantile over every normal image and serves subjects that were not
calibrated. An image is labelled anomalous (1) when its score is **strictly above** its threshold, so about
``1 - quantile`` of normal images like the calibration ones are flagged. With ``n`` calibration images per
subject, quantiles above ``1 - 1/n`` are close to the largest normal score: calibrate on at least
``1 / (1 - quantile)`` images (20 for the default).

A threshold file records the fingerprint of the model that produced the scores (:func:`model_fingerprint`:
model, scoring options, backbone weights and fitted state); ``predict`` refuses a file calibrated with another
model, because scores of two models are not on one scale.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from caadbench.errors import CaadError, ModelError
from caadbench.utils.atomic import atomic_write_text

FORMAT = "caadbench-threshold-1"
DEFAULT_QUANTILE = 0.95
ALL = "all"
NON_SCORING_OPTIONS = frozenset({"progress", "resume", "checkpoint_every", "max_sequences", "precision"})
"""Config options that change how a model runs, not its scores (precision changes them within the tolerance
stated in ``docs/predict.md``): left out of :func:`model_fingerprint`."""


def model_fingerprint(model: Any) -> str:
    """sha256 over the model name, its scoring options, the backbone identity and every fitted tensor.

    Two models with equal fingerprints score an image alike (zero-shot: same prompts and weights; few-shot: the
    same reference memories; trained: the same adapters).
    """
    digest = hashlib.sha256()
    config = {k: v for k, v in model.config.to_dict().items() if k not in NON_SCORING_OPTIONS}
    header = {"model": model.name, "config": config, "backbone": model.identity.to_dict()}
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    for key, tensor in sorted(model.fitted_state().items()):
        digest.update(key.encode() + b"\0")
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Threshold:
    """Where an image becomes anomalous: ``score > value_for(subject)``.

    Attributes:
        value: the threshold of subjects without their own (``all``), or the one given number.
        per_subject: calibrated thresholds per subject.
        source: ``"--threshold <value>"`` or the threshold file's path.
        quantile: the calibration quantile (``None`` for a given number).
        counts: normal images per subject used in calibration (with ``all``).
        fingerprint: :func:`model_fingerprint` of the calibrating model (``None`` for a given number).
        model: what calibrated it (name, backbone, weights), for people reading the file.
    """

    value: float
    per_subject: Mapping[str, float] = field(default_factory=dict)
    source: str = "given"
    quantile: float | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    fingerprint: str | None = None
    model: Mapping[str, Any] = field(default_factory=dict)

    def value_for(self, subject: str) -> float:
        return float(self.per_subject.get(subject, self.value))

    def label(self, score: float, subject: str) -> int:
        """1 (anomalous) when ``score`` is strictly above the subject's threshold, else 0."""
        return int(float(score) > self.value_for(subject))

    def check_model(self, fingerprint: str) -> None:
        """Refuse scores of another model than the calibrating one.

        Raises:
            ModelError: naming the threshold file.
        """
        if self.fingerprint is not None and self.fingerprint != fingerprint:
            shown = f"{self.model.get('name', '?')} on {self.model.get('backbone', '?')} ({self.model.get('weights', '?')})"
            raise ModelError(self.source, f"calibrated with another model or fitted state ({shown}, fingerprint "
                                          f"{self.fingerprint[:12]}, this model {fingerprint[:12]}); calibrate "
                                          "again with this model")

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "rule": f"score > quantile {self.quantile} of normal scores (linear)",
                "quantile": self.quantile, "threshold": {ALL: self.value, **dict(sorted(self.per_subject.items()))},
                "normal_images": dict(self.counts), "model_fingerprint": self.fingerprint, "model": dict(self.model)}


def calibrate_threshold(scores: Sequence[float], subjects: Sequence[str], quantile: float = DEFAULT_QUANTILE,
                        **info: Any) -> Threshold:
    """The :class:`Threshold` of normal images' ``scores`` (see the module docstring).

    Args:
        scores: one score per normal image.
        subjects: the image's subject, one per score.
        quantile: in (0, 1].
        info: ``fingerprint``, ``model``, ``source`` for the :class:`Threshold`.

    Raises:
        CaadError: no score, or ``quantile`` outside (0, 1].
    """
    if not 0.0 < float(quantile) <= 1.0:
        raise CaadError(f"--quantile {quantile}", "must be in (0, 1]")
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        raise CaadError("calibrate", "no normal image was scored")
    subjects = list(subjects)
    per_subject, counts = {}, {ALL: int(values.size)}
    for subject in sorted(set(subjects)):
        mine = values[[s == subject for s in subjects]]
        per_subject[subject] = float(np.quantile(mine, quantile))
        counts[subject] = int(mine.size)
    return Threshold(float(np.quantile(values, quantile)), per_subject, quantile=float(quantile), counts=counts,
                     **info)


def write_threshold(path: str | Path, threshold: Threshold) -> Path:
    """Write a threshold file (JSON, atomically)."""
    return atomic_write_text(path, json.dumps(threshold.to_dict(), indent=1, sort_keys=True) + "\n")


def read_threshold(value: str | float | Path | Threshold) -> Threshold:
    """A :class:`Threshold` from a number, a threshold file written by :func:`write_threshold`, or itself.

    Raises:
        CaadError: naming the file or value: not a number and not a readable threshold file.
    """
    if isinstance(value, Threshold):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number(float(value), str(value))
    text = str(value)
    try:
        return _number(float(text), text)
    except ValueError:
        pass
    path = Path(text)
    if not path.is_file():
        raise CaadError(text, "threshold is neither a number nor a threshold file (caadbench calibrate --out ...)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CaadError(path, f"not a readable threshold file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CaadError(path, f"not a caadbench threshold file (format {data.get('format') if isinstance(data, dict) else None!r}, "
                              f"expected {FORMAT!r})")
    values = data.get("threshold")
    if not isinstance(values, dict) or ALL not in values or not all(
            isinstance(v, (int, float)) and math.isfinite(v) for v in values.values()):
        raise CaadError(path, "threshold file lacks finite thresholds (an 'all' entry and one per subject)")
    return Threshold(float(values[ALL]), {k: float(v) for k, v in values.items() if k != ALL}, source=str(path),
                     quantile=data.get("quantile"), counts=data.get("normal_images") or {},
                     fingerprint=data.get("model_fingerprint"), model=data.get("model") or {})


def _number(value: float, text: str) -> Threshold:
    if not math.isfinite(value):
        raise CaadError(f"--threshold {text}", "must be a finite number")
    return Threshold(value, source=f"--threshold {text}")


__all__ = ["DEFAULT_QUANTILE", "Threshold", "calibrate_threshold", "model_fingerprint", "read_threshold",
           "write_threshold"]
