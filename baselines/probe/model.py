"""Probes on frozen features: what the backbone's features allow, as reference rows that bound a trained method.

A probe is a trained model (learning type ``trained``): :meth:`ProbeModel.fit` reads the split's train part once
(``FitData.train(0)``), keeps one feature per image (:mod:`~caadbench.baselines.probe.features`), and fits a
per-subject classifier, the linear probe (:mod:`~caadbench.baselines.probe.linear`) or the k-NN probe
(:mod:`~caadbench.baselines.probe.knn`).

Selection: with a validation callback (``FitData.validate``), every value of the grid (``c_grid`` for the linear
probe, ``k_grid`` for the k-NN) is fitted on the train features and scored on the validation part; the best
score wins, ties to the value listed first, and a candidate whose score is undefined (NaN) never wins. Without the
callback (no validation part) the documented default is used (``c = 1``, ``k = 5``: scikit-learn's own defaults).
Either way ``train_log["selection"]`` says what was searched, what was selected and its validation score. The
test part is never read.

Maps: the linear probe on a block's patch tokens scores each patch token with the subject's head, a
``gh × gw`` map upsampled bilinearly to the input size; the global-embedding probes and the k-NN give no maps
(:attr:`gives_maps` false, ``AnomalyOutput.maps`` ``None``), so their pixel metrics are marked unavailable.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from caadbench.baselines.common import upsample_map
from caadbench.baselines.probe.features import GLOBAL, TrainFeatures, collect_train_features, image_features, \
    resolve_layer
from caadbench.baselines.probe.knn import METRICS, WEIGHTS, KnnProbe
from caadbench.baselines.probe.linear import LinearProbe
from caadbench.models.api import AnomalyModel, AnomalyOutput, Batch, ClipBackbone, FitData, Learning, ModelConfig, \
    ModelError

LINEAR, KNN = "linear", "knn"


@dataclass
class ProbeConfig(ModelConfig):
    """Options of the probes.

    Attributes:
        classifier: ``linear`` (per-subject logistic regression on standardised features) or ``knn`` (per-subject
            k nearest train images).
        layer: the features: ``global`` (the projected, L2-normalised image embedding), ``middle`` (the patch tokens
            of block ⌈n/2⌉ − 1 of the n-block image encoder, averaged per image) or a 0-based block index
            (negative counts from the end).
        c: the logistic regression's inverse L2 strength when nothing is selected (no validation part).
        c_grid: the values of ``c`` tried on the validation part.
        k: neighbours when nothing is selected (no validation part).
        k_grid: the values of ``k`` tried on the validation part.
        knn_metric: ``cosine`` (1 − cosine similarity) or ``euclidean``.
        knn_weights: ``distance`` (a neighbour weighs 1/distance) or ``uniform``.
        max_iter: lbfgs iterations of each logistic regression.
        batch_size: images per forward pass when reading the train part.
        progress: show the pass over the train part (a bar on a terminal, log lines elsewhere).
    """

    classifier: str = LINEAR
    layer: int | str = GLOBAL
    c: float = 1.0
    c_grid: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
    k: int = 5
    k_grid: tuple[int, ...] = (1, 3, 5, 10, 20, 50)
    knn_metric: str = "cosine"
    knn_weights: str = "distance"
    max_iter: int = 1000
    batch_size: int = 32
    progress: bool = True

    RUNTIME_FIELDS: ClassVar[tuple[str, ...]] = ("precision", "batch_size", "progress")

    @property
    def learning(self) -> Learning:
        return Learning.TRAINED

    def __post_init__(self) -> None:
        where = type(self).__name__
        self.c_grid = tuple(float(v) for v in self.c_grid)
        self.k_grid = tuple(int(v) for v in self.k_grid)
        choices = {"classifier": (LINEAR, KNN), "knn_metric": METRICS, "knn_weights": WEIGHTS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ModelError(where, f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if not self.c > 0 or not self.c_grid or any(not v > 0 for v in self.c_grid):
            raise ModelError(where, f"c and every c_grid value must be positive, got {self.c}, {list(self.c_grid)}")
        if self.k < 1 or not self.k_grid or any(v < 1 for v in self.k_grid):
            raise ModelError(where, f"k and every k_grid value must be >= 1, got {self.k}, {list(self.k_grid)}")
        if self.max_iter < 1 or self.batch_size < 1:
            raise ModelError(where, f"max_iter and batch_size must be >= 1, got {self.max_iter}, {self.batch_size}")


class ProbeModel(AnomalyModel):
    """A linear or k-NN probe on frozen features (see the module docstring)."""

    config_cls = ProbeConfig
    config: ProbeConfig

    def __init__(self, config: ProbeConfig, backbone: ClipBackbone | None = None) -> None:
        super().__init__(config, backbone)
        self.block = resolve_layer(config.layer, len(self.backbone.image_blocks), type(self).__name__)
        if config.classifier == LINEAR:
            self.probe: LinearProbe | KnnProbe = LinearProbe(config.max_iter)
        else:
            self.probe = KnnProbe(config.knn_metric, config.knn_weights)
        self.train_log: dict[str, Any] | None = None

    @property
    def gives_maps(self) -> bool:
        """Only the linear probe on a block's patch tokens scores patches."""
        return self.config.classifier == LINEAR and self.block is not None

    @property
    def grid(self) -> tuple[str, tuple, Any]:
        """``(option, values searched on validation, default without validation)`` of the classifier."""
        cfg = self.config
        return ("c", cfg.c_grid, cfg.c) if cfg.classifier == LINEAR else ("k", cfg.k_grid, cfg.k)

    # ----------------------------------------------------------------- fitting
    def fit(self, data: FitData) -> None:
        """Read the train part once, fit the classifier for each candidate, keep the one validation prefers.

        Raises:
            ModelError: no train data, or train images of one label only.
        """
        where = self.name or type(self).__name__
        if data.train is None:
            raise ModelError(where, "a probe is fitted on the train part (FitData.train is None)")
        start = time.perf_counter()
        with self.autocast("predict"):  # the same features as prediction computes
            feats = collect_train_features(self.backbone, self.block, data.train(0), self.device, where,
                                           self.config.progress)
        if len(set(feats.labels.tolist())) < 2:
            raise ModelError(where, "the train part holds images of one label only; a probe needs normal and "
                                    "anomalous train images")
        option, grid, default = self.grid
        selection, fit_log = self._select(feats, option, grid, default, data)
        self.train_log = {
            "probe": {"classifier": self.config.classifier, "layer": GLOBAL if self.block is None else self.block,
                      "feature_dim": int(feats.x.shape[1])},
            "train_images": len(feats),
            "per_subject": feats.two_label_subjects(),
            "shared_for": sorted(set(feats.subjects) - set(feats.two_label_subjects())),
            "shared_note": "train subjects with one label (shared_for) and subjects absent from the train part are "
                           "scored by the shared classifier, fitted on every train image",
            **fit_log,
            "selection": selection,
            "wall_s": time.perf_counter() - start,
        }

    def _select(self, feats: TrainFeatures, option: str, grid: tuple, default: Any,
                data: FitData) -> tuple[dict[str, Any], dict[str, Any]]:
        """Fit every candidate (the default alone without ``data.validate``) and leave the model on the selected one.

        Returns:
            ``(selection record, the selected fit's log)``.
        """
        if data.validate is None:
            fit_log = self.probe.fit(feats, default)
            self.is_fitted = True
            return {"searched": {}, "selected": {option: default}, "val_score": None,
                    "note": "no validation part (FitData.validate is None): the documented default"}, fit_log
        scores = []
        for value in grid:
            self.probe.fit(feats, value)
            self.is_fitted = True
            scores.append(float(data.validate(self)))
        finite = [i for i, s in enumerate(scores) if math.isfinite(s)]
        if not finite:
            fit_log = self.probe.fit(feats, default)
            return {"searched": {option: list(grid)}, "val_scores": scores, "selected": {option: default},
                    "val_score": None, "note": "every validation score is undefined: the documented default"}, fit_log
        best = max(finite, key=lambda i: (scores[i], -i))
        fit_log = self.probe.fit(feats, grid[best])  # deterministic: the state the validation scored
        return {"searched": {option: list(grid)}, "val_scores": scores, "selected": {option: grid[best]},
                "val_score": scores[best]}, fit_log

    # ----------------------------------------------------------------- prediction
    def _predict(self, batch: Batch) -> AnomalyOutput:
        feats = image_features(self.backbone, batch.images, self.block)
        B, S = len(batch), batch.images.shape[-1]
        groups: dict[str, list[int]] = defaultdict(list)
        for i, subject in enumerate(batch.subjects):
            groups[subject].append(i)
        scores = torch.empty(B, dtype=torch.float64)
        patch = torch.empty(B, feats.patches.shape[1], dtype=torch.float64) if self.gives_maps else None
        for subject, idx in groups.items():
            scores[idx] = self.probe.scores(subject, feats.image[idx])
            if patch is not None:
                patch[idx] = self.probe.patch_scores(subject, feats.patches[idx])
        maps = None
        if patch is not None:
            gh, gw = self.backbone.grid_size
            maps = upsample_map(patch.float().view(B, gh, gw), S).to(self.device)
        return AnomalyOutput(scores=scores.float().to(self.device), maps=maps)

    # ----------------------------------------------------------------- state
    def fitted_state(self) -> dict[str, torch.Tensor]:
        """The classifier's tensors (layout: :mod:`~caadbench.baselines.probe.state`)."""
        return self.probe.state()

    def load_fitted_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.probe.load_state({k: v.cpu() for k, v in tensors.items()}, self.name or type(self).__name__)
