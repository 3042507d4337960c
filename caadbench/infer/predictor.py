"""Predict on a user's own images: build or load the model, score every image, return scores and maps.

The model comes from exactly one of:

* ``model="clip"`` (or any zero-shot name): prompts only, fitted on the subjects to predict;
* ``references=DIR`` (with a few-shot ``model``, default ``winclip.plus``): normal reference images per subject
  (one sub-folder per subject, or ``reference_subject``) fill the few-shot memories;
* ``checkpoint=FILE``: fitted or trained state written by :meth:`AnomalyModel.save` (``caadbench run`` writes
  trained models' checkpoints); the model name and config come from the file;
* an :class:`~caadbench.models.AnomalyModel` instance, fitted already.

Images are read and resized exactly as evaluation reads shards (:func:`caadbench.data.loader.image_tensor`), then
scored with :meth:`AnomalyModel.predict` on a :meth:`Batch.from_images` batch: no labels or masks are made up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from caadbench.data.batch import EVAL_RESOLUTION, MIN_IMAGE_SIZE, Batch
from caadbench.data.imageio import binarize_mask, read_mask
from caadbench.data.loader import image_tensor, resize_mask
from caadbench.errors import CaadError, DataError, ModelError, check_at_least
from caadbench.infer.inputs import ImageRef, as_refs, expand_paths
from caadbench.infer.overlay import resize_map
from caadbench.infer.threshold import DEFAULT_QUANTILE, Threshold, calibrate_threshold, model_fingerprint, read_threshold
from caadbench.models import AnomalyModel, FitData, Learning, get_model_spec
from caadbench.models.base import read_checkpoint
from caadbench.utils.devices import resolve_device
from caadbench.utils.progress import progress as progress_bar

logger = logging.getLogger(__name__)

DEFAULT_FEW_SHOT = "winclip.plus"
"""The model ``references`` use when no ``model`` is named."""


@dataclass
class LoadedModel:
    """A model ready to predict, and what a result must say about it.

    Attributes:
        model: the fitted model, on ``device``, in eval mode.
        device: the resolved device.
        info: JSON-ready provenance (model, learning, backbone, weights, precision, device, checkpoint,
            references, fingerprint).
    """

    model: AnomalyModel
    device: str
    info: dict[str, Any]

    @property
    def fingerprint(self) -> str:
        return self.info["fingerprint"]


def load_model(*, model: str | AnomalyModel | None = None, checkpoint: str | Path | None = None,
               references: str | Path | Sequence[str | Path] | None = None, reference_subject: str | None = None,
               subjects: Iterable[str] = (), backbone: str | None = None, pretrained: str | None = None,
               image_size: int | None = None, precision: str | None = None, options: Mapping[str, Any] | None = None,
               device: str | None = "auto", batch_size: int = 16, progress: bool = False) -> LoadedModel:
    """Build (or load) and fit the model that ``predict`` uses (see the module docstring).

    Args:
        subjects: the subjects that will be predicted (zero-shot prompts are prepared for them; few-shot
            references must cover them).

    Raises:
        ModelError: no model source, several, a model of the wrong learning type for it, a bad checkpoint, or
            subjects without references.
        DataError: an unreadable reference image.
    """
    if image_size is not None:
        check_at_least(image_size, "--image-size", MIN_IMAGE_SIZE)
    check_at_least(batch_size, "--batch-size")
    device = resolve_device(device)
    subjects = sorted(set(subjects))
    overrides = {**dict(options or {}), **{k: v for k, v in (("backbone", backbone), ("pretrained", pretrained),
                                                             ("image_size", image_size), ("precision", precision))
                                           if v is not None}}
    notes: dict[str, Any] = {}
    if isinstance(model, AnomalyModel):
        if checkpoint is not None or references is not None:
            raise ModelError(model.name, "a model instance is used as it is: pass no checkpoint or references")
        if precision is not None:
            model.config.precision = precision
        net = model.to(device)
        if not net.is_fitted:
            raise ModelError(net.name or type(net).__name__, f"a {net.learning} model must be fitted before predicting")
    elif checkpoint is not None:
        if references is not None:
            raise ModelError(checkpoint, "pass either --checkpoint or --reference, not both")
        net = _from_checkpoint(Path(checkpoint), model, overrides, device)
        from caadbench.models.backbone import sha256_file

        notes["checkpoint"] = {"file": str(checkpoint), "sha256": sha256_file(checkpoint)}
    else:
        name = model or (DEFAULT_FEW_SHOT if references is not None else None)
        if name is None:
            raise ModelError("predict", "name a model (--model), a checkpoint (--checkpoint) or few-shot references "
                                        "(--reference)")
        spec = get_model_spec(name)
        if spec.learning == Learning.TRAINED:
            raise ModelError(name, "is a trained model: pass --checkpoint FILE (its fitted state, e.g. from "
                                   "`caadbench run --out DIR`: DIR/checkpoints/...)")
        if spec.learning == Learning.FEW_SHOT and references is None:
            raise ModelError(name, "is a few-shot model: pass --reference DIR (normal images, one sub-folder per "
                                   "subject) or --checkpoint FILE")
        if spec.learning == Learning.ZERO_SHOT and references is not None:
            raise ModelError(name, "is a zero-shot model and uses no references; pick a few-shot model "
                                   "(clip.few_shot, winclip.plus)")
        net = spec.build(**overrides).to(device)
        support = None
        if references is not None:
            support, notes["references"] = _reference_batches(references, reference_subject, net.image_size,
                                                              batch_size, subjects)
        net.fit(FitData(subjects=subjects, support=support, device=device))
    net.eval()
    identity = net.identity
    notice = weights_notice(identity.weights, subjects)
    if notice:
        logger.warning(notice)
    info = {
        "model": net.name, "learning": str(net.learning), "config": net.config.to_dict(),
        "backbone": identity.arch, "image_size": identity.image_size, "weights": identity.weights,
        "weights_sha256": identity.sha256, "random_init": identity.is_random_init,
        "precision": net.precision_for("predict"), "device": device, **notes,
        "fingerprint": model_fingerprint(net), "notice": notice,
    }
    return LoadedModel(net, device, info)


def weights_notice(weights: str, subjects: Iterable[str]) -> str | None:
    """What to expect of scores from these weights on a user's images (``None`` for real weights): random-init
    weights check the pipeline only; world weights know only the synthetic world's drawings."""
    from caadbench.data.sources.synthetic.contexts import CONTEXTS
    from caadbench.data.sources.synthetic.subjects import SUBJECTS
    from caadbench.eval.provenance import WeightsKind, weights_kind

    kind = weights_kind(weights)
    if kind is WeightsKind.RANDOM_INIT:
        return (f"random-init backbone weights {kind.mark}: the scores check the pipeline only; pass --pretrained "
                "with real CLIP weights (an open_clip tag or a weights file)")
    if kind is WeightsKind.WORLD:
        outside = sorted(set(subjects) - set(SUBJECTS))
        return (f"world weights {kind.mark} know only the synthetic world's drawings ({len(SUBJECTS)} subjects, "
                f"{len(CONTEXTS)} contexts): on photos their scores say little"
                + (f"; not one of its subjects: {', '.join(outside)}" if outside else "")
                + "; for photos pass real CLIP weights (--backbone ViT-B-16-plus-240 --pretrained FILE or TAG)")
    return None


def _from_checkpoint(path: Path, name: str | None, overrides: dict[str, Any], device: str) -> AnomalyModel:
    import json

    meta, _ = read_checkpoint(path)
    stored = meta["model"]
    if name is not None and name.split(".")[0] != stored.split(".")[0]:
        raise ModelError(path, f"checkpoint is for model {stored!r}, not {name!r}")
    spec = get_model_spec(name or stored)
    config = json.loads(meta["config"])
    for key in ("backbone", "image_size"):
        if key in overrides and overrides[key] != config.get(key):
            raise ModelError(path, f"the checkpoint fixes {key} = {config.get(key)!r}; drop --{key.replace('_', '-')}")
    net = spec.build(**{**config, **overrides}).to(device)
    return net.load(path)


def _reference_batches(references: str | Path | Sequence[str | Path], subject: str | None, size: int,
                       batch_size: int, predicted: Sequence[str]) -> tuple[list[Batch], dict[str, Any]]:
    """Few-shot support batches of the reference images (every one must be readable: a memory is not guessed)."""
    args = [references] if isinstance(references, (str, Path)) else list(references)
    refs = expand_paths(args, subject)
    missing = sorted(set(predicted) - {r.subject for r in refs})
    if missing:
        raise ModelError("--reference", f"no reference images of subject(s) {', '.join(missing)} (references "
                                        f"cover {', '.join(sorted({r.subject for r in refs}))})")
    batches = []
    for lo in range(0, len(refs), batch_size):
        chunk = refs[lo:lo + batch_size]
        images = torch.stack([image_tensor(r.read(), size) for r in chunk])
        batches.append(Batch.from_images(images, [r.subject for r in chunk], keys=[r.name for r in chunk]))
    counts: dict[str, int] = {}
    for r in refs:
        counts[r.subject] = counts.get(r.subject, 0) + 1
    return batches, {"images": [r.name for r in refs], "per_subject": dict(sorted(counts.items()))}


@dataclass
class ImagePrediction:
    """One scored image.

    Attributes:
        ref: the input.
        rgb: ``(H, W, 3)`` uint8, as read (EXIF-oriented).
        score: the image anomaly score (higher is more anomalous).
        map: ``(S, S)`` float32 anomaly map at the model's input size; ``None`` when the model gives no maps.
    """

    ref: ImageRef
    rgb: np.ndarray
    score: float
    map: np.ndarray | None


def iter_predictions(loaded: LoadedModel, refs: Sequence[ImageRef], *, batch_size: int = 16,
                     on_error: Callable[[CaadError], None] | None = None,
                     progress: bool = False) -> Iterator[ImagePrediction]:
    """Score ``refs`` batch by batch (only one batch of pixels is held at a time).

    Args:
        on_error: called with the error of an unreadable image, which is then skipped; ``None``: raise it.
    """
    model, size = loaded.model, loaded.model.image_size
    chunk: list[tuple[ImageRef, np.ndarray]] = []

    def run(items: list[tuple[ImageRef, np.ndarray]]) -> Iterator[ImagePrediction]:
        images = torch.stack([image_tensor(rgb, size) for _, rgb in items])
        out = model.predict(Batch.from_images(images, [r.subject for r, _ in items], keys=[r.name for r, _ in items]))
        scores = out.scores.cpu().numpy()
        maps = None if out.maps is None else out.maps.cpu().numpy()
        for i, (ref, rgb) in enumerate(items):
            yield ImagePrediction(ref, rgb, float(scores[i]), None if maps is None else maps[i])

    with progress_bar(total=len(refs), desc="predict", unit="img", enabled=progress) as bar:
        for ref in refs:
            try:
                rgb = ref.read()
            except DataError as exc:
                if on_error is None:
                    raise
                on_error(exc)
                bar.update(1)
                continue
            chunk.append((ref, rgb))
            if len(chunk) >= batch_size:
                yield from run(chunk)
                bar.update(len(chunk))
                chunk = []
        if chunk:
            yield from run(chunk)
            bar.update(len(chunk))


@dataclass
class Predictions:
    """What :func:`predict` returns.

    Attributes:
        names: each image's path (or ``image-<i>`` for in-memory images), in input order; skipped ones left out.
        subjects: each image's subject.
        scores: ``(N,)`` float32 image anomaly scores.
        maps: ``(N, S, S)`` float32 anomaly maps at the model's input size (``None``: the model gives no maps);
            :meth:`full_map` gives one at its image's size.
        sizes: each image's ``(height, width)`` after EXIF orientation.
        labels: ``(N,)`` int64 predicted labels (1 anomalous: score above the threshold) when a threshold was
            given, else ``None``.
        thresholds: ``(N,)`` the threshold each image was compared with, or ``None``.
        evaluation: metrics against the given ``labels`` (and ``masks``), a
            :class:`~caadbench.eval.evaluator.SeedEvaluation`, or ``None`` without them.
        skipped: one line per input that could not be read (``on_error="skip"``).
        model: provenance of the model (see :class:`LoadedModel`).
    """

    names: list[str]
    subjects: list[str]
    scores: np.ndarray
    maps: torch.Tensor | None
    sizes: list[tuple[int, int]]
    labels: np.ndarray | None = None
    thresholds: np.ndarray | None = None
    evaluation: Any = None
    skipped: list[str] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.names)

    def full_map(self, i: int) -> np.ndarray:
        """``(H, W)`` float32 anomaly map of image ``i`` at its own size (bilinear).

        Raises:
            ModelError: the model gives no maps.
        """
        if self.maps is None:
            raise ModelError(self.model.get("model", "model"), "gives no anomaly maps (image scores only)")
        return resize_map(self.maps[i], *self.sizes[i])


def predict(images: Any, *, model: str | AnomalyModel | None = None, checkpoint: str | Path | None = None,
            references: str | Path | Sequence[str | Path] | None = None, subjects: str | Sequence[str] | None = None,
            reference_subject: str | None = None, labels: Sequence[int] | None = None,
            masks: Sequence[Any] | None = None, threshold: float | str | Path | Threshold | None = None,
            backbone: str | None = None, pretrained: str | None = None, image_size: int | None = None,
            precision: str | None = None, options: Mapping[str, Any] | None = None, device: str | None = "auto",
            batch_size: int = 16, on_error: str = "raise", progress: bool = False) -> Predictions:
    """Score a user's images: an anomaly score and an anomaly map per image.

    Args:
        images: paths (files, folders with one sub-folder per subject, globs), PIL images, arrays
            (``(H, W[, 3|4])``), tensors (``(3, H, W)`` or a ``(B, 3, H, W)`` batch), or a sequence of these.
        model: a registered model name (zero-shot; few-shot with ``references``) or a fitted model instance.
        checkpoint: fitted / trained state written by :meth:`AnomalyModel.save`.
        references: normal reference images for a few-shot model (folders with one sub-folder per subject).
        subjects: one subject for every image, one per input, or ``None`` (from the folders).
        reference_subject: the subject of every reference image (else from their folders).
        labels: optional ground-truth labels (0/1), one per image: then ``evaluation`` holds the metrics.
        masks: optional ground-truth masks (paths, arrays, PIL images or ``None``), one per image; with labels.
        threshold: a number, a threshold file from :func:`calibrate`, or a :class:`Threshold`: then ``labels`` of
            the result are set (``score > threshold``).
        backbone, pretrained, image_size, precision, options: model config overrides (``precision``: ``auto``,
            ``fp32`` or ``bf16``).
        device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:i``.
        batch_size: images per forward pass.
        on_error: ``"raise"`` on an unreadable image, or ``"skip"`` it (listed in ``skipped``).
        progress: a progress bar on stderr.

    Raises:
        CaadError: bad inputs, unknown or unfit models, a threshold file of another model, unreadable images
            (with ``on_error="raise"``).
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    refs = as_refs(images, subjects)
    if labels is not None and len(labels) != len(refs):
        raise CaadError("labels", f"{len(labels)} labels for {len(refs)} images")
    if masks is not None and (labels is None or len(masks) != len(refs)):
        raise CaadError("masks", "masks need labels, one mask (or None) per image")
    loaded = load_model(model=model, checkpoint=checkpoint, references=references, reference_subject=reference_subject,
                        subjects=[r.subject for r in refs], backbone=backbone, pretrained=pretrained,
                        image_size=image_size, precision=precision, options=options, device=device,
                        batch_size=batch_size)
    rule = None if threshold is None else read_threshold(threshold)
    if rule is not None:
        rule.check_model(loaded.fingerprint)
    skipped: list[str] = []
    index = {id(r): i for i, r in enumerate(refs)}
    kept, scores, maps, sizes = [], [], [], []
    for p in iter_predictions(loaded, refs, batch_size=batch_size,
                              on_error=(lambda e: skipped.append(str(e))) if on_error == "skip" else None,
                              progress=progress):
        kept.append(index[id(p.ref)])
        scores.append(p.score)
        maps.append(None if p.map is None else torch.from_numpy(p.map))
        sizes.append(tuple(p.rgb.shape[:2]))
    if not kept:
        raise CaadError("predict", f"no image could be read ({len(skipped)} skipped)")
    result = Predictions(
        names=[refs[i].name for i in kept], subjects=[refs[i].subject for i in kept],
        scores=np.asarray(scores, dtype=np.float32), maps=None if maps[0] is None else torch.stack(maps), sizes=sizes,
        skipped=skipped,
        model=loaded.info)
    if rule is not None:
        result.thresholds = np.array([rule.value_for(s) for s in result.subjects], dtype=np.float64)
        result.labels = (result.scores.astype(np.float64) > result.thresholds).astype(np.int64)
    if labels is not None:
        result.evaluation = _evaluate(result, [int(labels[i]) for i in kept],
                                      None if masks is None else [masks[i] for i in kept])
    return result


def _evaluate(result: Predictions, labels: list[int], masks: list[Any] | None):
    """Metrics of ``result`` against the given labels (and masks) with the benchmark's own evaluator."""
    from caadbench.eval.evaluator import Evaluator
    from caadbench.models.base import AnomalyOutput

    if any(y not in (0, 1) for y in labels):
        raise CaadError("labels", "must be 0 (normal) or 1 (anomalous)")
    n = len(result)
    gt = torch.zeros(n, EVAL_RESOLUTION, EVAL_RESOLUTION, dtype=torch.bool)
    has_gt = torch.zeros(n, dtype=torch.bool) if masks is not None else None
    for i in range(n if masks is not None else 0):
        mask = masks[i]
        if mask is None:
            has_gt[i] = labels[i] == 0  # a normal image's ground truth is empty; an anomalous one's is unknown
            continue
        m = _mask_array(mask, result.names[i])
        if m.shape != result.sizes[i]:
            raise DataError(result.names[i], f"mask size {m.shape[1]}x{m.shape[0]} differs from the image's "
                                             f"{result.sizes[i][1]}x{result.sizes[i][0]}")
        gt[i], has_gt[i] = resize_mask(m, EVAL_RESOLUTION), True
    batch = Batch.from_images(torch.zeros(n, 3, 1, 1), result.subjects, keys=result.names,
                              labels=torch.tensor(labels, dtype=torch.int64),
                              gt_masks=gt if masks is not None else None)
    batch.has_gt = has_gt
    evaluator = Evaluator(None, examples_per_category=0)
    evaluator.update(batch, AnomalyOutput(scores=torch.from_numpy(result.scores), maps=result.maps))
    return evaluator.compute()


def _mask_array(mask: Any, where: str) -> np.ndarray:
    """A ground-truth mask (path, PIL image, array, tensor) as ``(H, W)`` uint8 {0, 255}."""
    if isinstance(mask, (str, Path)):
        return read_mask(mask).mask
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    return binarize_mask(np.asarray(mask), where).mask  # PIL images convert by their stored values


def calibrate(images: Any, *, quantile: float = DEFAULT_QUANTILE, out: str | Path | None = None,
              subjects: str | Sequence[str] | None = None, **model_args: Any) -> Threshold:
    """A :class:`Threshold` from *normal* images (the rule: :mod:`caadbench.infer.threshold`).

    Args:
        images: normal images only, as for :func:`predict`.
        quantile: the quantile of normal scores that becomes the threshold.
        out: also write the threshold file there (JSON; ``predict(threshold=out)`` reads it).
        subjects: as for :func:`predict`.
        model_args: the model arguments of :func:`predict` (``model``, ``checkpoint``, ``references``, ...).

    Raises:
        CaadError: as :func:`predict`; an unreadable image is an error here (a threshold is not guessed), and so
            is a calibration image that is also a reference image.
    """
    result = predict(images, subjects=subjects, **model_args)
    m = result.model
    references = {str(Path(r).resolve()) for r in (m.get("references") or {}).get("images", [])}
    shared = [n for n in result.names if str(Path(n).resolve()) in references]
    if shared:
        raise CaadError(shared[0], "is also a reference image: its score would be too low for calibration; "
                                   "calibrate on other normal images")
    threshold = calibrate_threshold(
        result.scores, result.subjects, quantile, fingerprint=m["fingerprint"],
        source=str(out) if out is not None else "calibrate",
        model={"name": m["model"], "backbone": m["backbone"], "weights": m["weights"],
               "checkpoint": m.get("checkpoint"), "references": (m.get("references") or {}).get("per_subject")})
    if out is not None:
        from caadbench.infer.threshold import write_threshold

        write_threshold(out, threshold)
    return threshold


__all__ = ["DEFAULT_FEW_SHOT", "ImagePrediction", "LoadedModel", "Predictions", "calibrate", "iter_predictions",
           "load_model", "predict", "weights_notice"]
