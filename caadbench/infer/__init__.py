"""Inference on a user's own images: :func:`predict` (scores and maps), :func:`calibrate` (a threshold from normal
images), and the overlays and tables ``caadbench predict`` writes. See ``docs/predict.md``."""

from caadbench.infer.predictor import Predictions, calibrate, load_model, predict
from caadbench.infer.threshold import Threshold, read_threshold

__all__ = ["Predictions", "Threshold", "calibrate", "load_model", "predict", "read_threshold"]
