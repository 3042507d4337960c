"""One interface for every method: configure, optionally fit, predict; save and load the fitted state.

A model is built from a config dataclass (backbone, weights, image size and its method options). Its
``learning`` type — derived from the config, :attr:`ModelConfig.learning`, and nowhere else — says what
:meth:`AnomalyModel.fit` needs:

* ``zero-shot``: nothing (text prototypes are computed from the subject names, lazily and cached);
* ``few-shot``: ``FitData.support``, k normal reference batches per subject;
* ``trained``: ``FitData.train``, passes over the split's train part (never the test part).

:meth:`AnomalyModel.predict` returns per image an anomaly score and an anomaly map at the input resolution.
Fitted state (support memories, trained adapters) is explicit, and saves to / loads from safetensors together
with the model name (family and variant), its config and the backbone's identity; :meth:`AnomalyModel.load`
refuses a checkpoint of another variant, another method config or other backbone weights.
"""

from __future__ import annotations

import enum
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from caadbench.data.batch import Batch
from caadbench.errors import ModelError
from caadbench.models.backbone import BackboneIdentity, ClipBackbone
from caadbench.models.pos_embed import DEFAULT_POS_EMBED_RESIZE, check_resize
from caadbench.models.options import check_options
from caadbench.utils.devices import PRECISIONS, autocast, resolve_precision

CHECKPOINT_FORMAT = "caadbench-checkpoint-1"
IN_PROGRESS = "in-progress"
"""The ``training`` metadata of a checkpoint a trainer wrote before training ended (resumable, not a model)."""


class Learning(str, enum.Enum):
    """What a model needs before it can predict."""

    ZERO_SHOT = "zero-shot"
    FEW_SHOT = "few-shot"
    TRAINED = "trained"

    def __str__(self) -> str:
        return self.value


@dataclass
class ModelConfig:
    """Options every model has. Methods subclass this with their own options.

    Attributes:
        backbone: open_clip architecture name.
        pretrained: open_clip pretrained tag, a local checkpoint file (``TAG=PATH``: a file of that tag's
            weights), or ``None`` for random init.
        image_size: input side in pixels; ``None`` keeps the architecture's native size.
        init_seed: seed of the backbone's random initialisation (ignored with real weights).
        pos_embed_resize: how a checkpoint's positional embedding is resized when ``image_size`` differs from its
            own: ``bicubic-antialias`` (open_clip's) or ``bilinear`` (AnomalyCLIP's); each method defaults to what
            its official code does (``docs/backbones.md``).
        precision: ``auto`` (bf16 autocast where measured faster: CUDA with bf16, fp32 on CPUs so far), ``fp32``
            or ``bf16`` (see ``docs/predict.md``).

    Class attributes:
        BACKBONE_FIELDS: the options that choose the backbone (a checkpoint checks them through the backbone's
            identity instead).
        RUNTIME_FIELDS: options that change how a run executes but not what the method is (precision, progress bars,
            resuming, memory bounds); subclasses list theirs. Every other option is *method config*.
    """

    backbone: str = "ViT-B-16-plus-240"
    pretrained: str | None = None
    image_size: int | None = None
    init_seed: int = 0
    precision: str = "auto"
    pos_embed_resize: str = DEFAULT_POS_EMBED_RESIZE

    BACKBONE_FIELDS: ClassVar[tuple[str, ...]] = ("backbone", "pretrained", "image_size", "init_seed",
                                                  "pos_embed_resize")
    RUNTIME_FIELDS: ClassVar[tuple[str, ...]] = ("precision",)

    @property
    def learning(self) -> Learning:
        """What fitting a model of this config needs; methods with support sets or training override it."""
        return Learning.ZERO_SHOT

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def method_config(self) -> dict[str, Any]:
        """The options that define the method (JSON values): everything but backbone and runtime fields."""
        return method_options(self.to_dict(), (*self.BACKBONE_FIELDS, *self.RUNTIME_FIELDS))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Build from a dict, refusing unknown keys (naming the closest valid one: a typo must not silently
        become a default) and values of the wrong type (see :func:`caadbench.models.options.check_options`)."""
        values = check_options(cls, values)
        if "precision" in values and values["precision"] not in PRECISIONS:
            raise ModelError(cls.__name__, f"option 'precision' must be one of {', '.join(PRECISIONS)}, "
                                           f"got {values['precision']!r}")
        if "pos_embed_resize" in values:
            check_resize(values["pos_embed_resize"], cls.__name__)
        return cls(**values)


@dataclass
class TrainedModelConfig(ModelConfig):
    """The config of a method that trains (learning type ``trained``), with the runtime options every trainer has.

    Attributes:
        checkpoint_every: also checkpoint every N optimisation steps (0: only at the end of each stage).
        resume: ``None``, ``"auto"`` (the last checkpoint in ``FitData.output_dir`` if there is one) or a path.
        progress: show training progress on rank 0: a bar on a terminal, log lines elsewhere (logs, CI, nohup).
        val_every: with ``FitData.validate``, score the model on the validation part every N optimisation steps
            of the (last) training stage and at its end, keep the best-scoring state and end training with it
            (0: at the end of every epoch). Without ``FitData.validate`` nothing is scored.
        patience: stop after this many validations in a row without improvement (0: train every step, still
            ending with the best-scoring state).

    Class attributes:
        SEARCH: the run-level search space of ``caadbench run --select search`` (``docs/evaluation.md``), the
            same for every gradient-trained method: multipliers of its learning-rate options (``LR_FIELDS``).
    """

    checkpoint_every: int = 0
    resume: str | None = None
    progress: bool = True
    val_every: int = 0
    patience: int = 0

    RUNTIME_FIELDS: ClassVar[tuple[str, ...]] = ("precision", "checkpoint_every", "resume", "progress",
                                                 "val_every", "patience")
    LR_FIELDS: ClassVar[tuple[str, ...]] = ("lr",)
    SEARCH: ClassVar[dict[str, tuple[float, ...]]] = {"lr_scale": (0.5, 1.0, 2.0)}

    @property
    def learning(self) -> Learning:
        return Learning.TRAINED


def method_options(values: dict[str, Any], skip: Iterable[str]) -> dict[str, Any]:
    """``values`` without the ``skip`` keys, as JSON values (tuples become lists), so two configs compare."""
    skip = set(skip)
    return json.loads(json.dumps({k: v for k, v in values.items() if k not in skip}, sort_keys=True))


@dataclass
class AnomalyOutput:
    """What :meth:`AnomalyModel.predict` returns.

    Attributes:
        scores: ``(B,)`` float32 image anomaly scores, higher is more anomalous.
        maps: ``(B, H, W)`` float32 pixel anomaly maps at the input resolution; ``None`` exactly when the model
            gives no maps (:attr:`AnomalyModel.gives_maps` is false): its pixel metrics are then unavailable,
            never computed from a made-up constant map.
        extras: method-specific per-image tensors, each with a leading batch dimension ``B``, named by
            :attr:`AnomalyModel.extras_spec` (which states every shape); empty for a model that gives none. The
            names of :data:`DIAGNOSTIC_EXTRAS` have fixed meanings the evaluator's diagnosis reads.
    """

    scores: torch.Tensor
    maps: torch.Tensor | None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


DIAGNOSTIC_EXTRAS: dict[str, str] = {
    "alpha": "(B, n) fusion weight of each branch; a row sums to 1 (0 for a branch the variant lacks)",
    "branch_scores": "(B, n) each branch's own image score, as the fused score is computed (NaN for a branch "
                     "the variant lacks)",
    "embedding": "(B, D) the adapted image embedding the score is computed from, L2-normalised",
    "frozen_embedding": "(B, D) the frozen backbone's image embedding, L2-normalised (with diagnostics only)",
}
"""Extras with a meaning shared across methods: what :mod:`caadbench.eval.diagnosis` summarises. The ``n`` columns
of ``alpha`` and ``branch_scores`` are named by :attr:`AnomalyModel.extras_columns`."""


@dataclass
class FitData:
    """Everything a model may learn from; the runner never puts test samples here.

    Attributes:
        subjects: the subject (class) names the model may learn from: for trained models the train part's
            subjects only (a held-out subject's name appears at inference only); zero- and few-shot models get
            every subject of the split (to compute text prototypes, which involves no learning).
        support: k-shot normal reference batches (few-shot models).
        train: ``train(epoch)`` returns a fresh iterator over this rank's share of the train part for that epoch
            (trained models). The trainer owns the epoch counter (and saves it with its checkpoints); the same
            epoch always yields the same batches in the same order, so a resumed run replays them exactly.
        train_size: number of training samples (for schedules and progress), when known.
        seed: seed for anything random in fitting.
        device: where to fit.
        output_dir: where a trainer may write checkpoints (``None``: nowhere).
        validate: ``validate(model)`` scores the model as it is now on the split's *validation* part (whole
            seen contexts held out from ``train``, see ``docs/data.md``) and returns its selection score, the
            macro I-AUROC over the validation subjects in [0, 1] (higher is better). Trainers use it for early
            stopping and model selection; ``None`` when the split has no validation part or selection is off.
            It never reads the test part.
        train_identity: what ``train`` reads (the dataset fingerprint, split and part); trainers record it in
            their state and refuse to resume a checkpoint trained on other data (``None``: unknown, not checked).
    """

    subjects: list[str]
    support: list[Batch] | None = None
    train: Callable[[int], Iterable[Batch]] | None = None
    train_size: int | None = None
    seed: int = 0
    device: str = "cpu"
    output_dir: Path | None = None
    validate: Callable[[AnomalyModel], float] | None = None
    train_identity: str | None = None


class AnomalyModel(nn.Module, ABC):
    """Base class of every method.

    Subclasses set ``config_cls`` and implement :meth:`_predict`; few-shot and trained ones implement
    :meth:`fit` and, when their state is not plain module parameters/buffers, :meth:`fitted_state` and
    :meth:`load_fitted_state`.
    """

    config_cls: ClassVar[type[ModelConfig]] = ModelConfig
    name: str = ""

    def __init__(self, config: ModelConfig, backbone: ClipBackbone | None = None) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone or ClipBackbone(
            config.backbone, config.pretrained, config.image_size, config.init_seed, config.pos_embed_resize
        )
        resized = self.backbone.identity.pos_embed_resize
        if resized not in (None, config.pos_embed_resize):
            raise ModelError(type(self).__name__, f"the backbone's positional embedding was resized {resized}, the "
                                                  f"config asks for {config.pos_embed_resize}")
        self.is_fitted = self.learning == Learning.ZERO_SHOT

    # ----------------------------------------------------------------- identity
    @property
    def learning(self) -> Learning:
        """The config's learning type (:attr:`ModelConfig.learning`)."""
        return self.config.learning

    @property
    def identity(self) -> BackboneIdentity:
        return self.backbone.identity

    @property
    def image_size(self) -> int:
        """The input side the reader must resize images to."""
        return self.backbone.image_size

    @property
    def device(self) -> torch.device:
        return self.backbone.mean.device

    @property
    def gives_maps(self) -> bool:
        """Whether :meth:`predict` returns anomaly maps. A method that scores whole images only (an image-level
        probe) says false here and returns ``maps=None``; the evaluator then marks its pixel metrics unavailable."""
        return True

    @property
    def extras_spec(self) -> dict[str, str]:
        """The extras :meth:`predict` returns: name → shape and meaning (``(B, ...)``). Those marked *with
        diagnostics only* come with ``predict(batch, diagnostics=True)``. Empty: the model gives no extras."""
        return {}

    @property
    def extras_columns(self) -> dict[str, tuple[str, ...]]:
        """Names of the columns of a two-dimensional extra (``{"alpha": ("subject", "context", "global")}``)."""
        return {}

    def parameter_counts(self) -> dict[str, int]:
        """``{"trainable": n, "total": n}`` parameter counts."""
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return {"trainable": trainable, "total": total}

    # ----------------------------------------------------------------- learning
    def fit(self, data: FitData) -> None:
        """Learn what the learning type needs. Zero-shot models need nothing."""
        self.is_fitted = True

    @abstractmethod
    def _predict(self, batch: Batch) -> AnomalyOutput:
        """Scores ``(B,)`` and maps ``(B, S, S)`` for a batch already on the model's device.

        Only ``batch.images`` and ``batch.subjects`` may be used: labels and masks are ground truth, absent
        when predicting on a user's images (:meth:`~caadbench.data.batch.Batch.from_images`).
        """

    def precision_for(self, path: str = "predict") -> str:
        """The resolved precision (``fp32`` / ``bf16``) of ``path`` (``predict``, ``train``) on this device."""
        return resolve_precision(self.config.precision, self.device, path)

    def autocast(self, path: str = "predict"):
        """The autocast context of ``path``: bf16 when :meth:`precision_for` says so, else a no-op."""
        return autocast(self.device, self.precision_for(path))

    def _diagnostics(self, batch: Batch, output: AnomalyOutput) -> dict[str, torch.Tensor]:
        """Extras that cost extra work (e.g. a frozen forward), computed after :meth:`_predict` and only when
        asked for; they never change ``output``'s scores or maps. None by default."""
        return {}

    def predict(self, batch: Batch, *, diagnostics: bool = False) -> AnomalyOutput:
        """Predict a batch: scores ``(B,)`` and maps ``(B, S, S)`` (float32, on the model's device; maps ``None``
        when the model gives none, see :attr:`gives_maps`), and the model's extras (:attr:`extras_spec`).

        Runs under :meth:`autocast` (bf16 when the resolved precision is bf16); outputs are float32 either way.

        Args:
            diagnostics: also compute the extras that cost extra work (:meth:`_diagnostics`); scores and maps are
                the same bits either way.

        Raises:
            ModelError: the model needs fitting first, or the method returned wrongly shaped outputs (or maps that
                disagree with :attr:`gives_maps`, or an extra without the batch dimension).
        """
        if not self.is_fitted:
            raise ModelError(self.name or type(self).__name__, f"a {self.learning} model must be fitted before predicting")
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode(), self.autocast("predict"):
                batch = batch.to(self.device)
                out = self._predict(batch)
                if diagnostics:
                    out.extras = {**out.extras, **self._diagnostics(batch, out)}
        finally:
            self.train(was_training)
        B, S = len(batch), batch.images.shape[-1]
        if (out.maps is None) == self.gives_maps:
            raise ModelError(self.name, "predict returned maps although the model gives none" if out.maps is not None
                             else "predict returned no maps although the model gives them")
        maps_shape = None if out.maps is None else tuple(out.maps.shape)
        if tuple(out.scores.shape) != (B,) or maps_shape not in (None, (B, batch.images.shape[-2], S)):
            raise ModelError(self.name, f"predict returned scores {tuple(out.scores.shape)} and maps "
                                        f"{maps_shape} for a batch of {B} images of {S}px")
        wrong = sorted(k for k, v in out.extras.items() if v.ndim == 0 or v.shape[0] != B)
        if wrong:
            raise ModelError(self.name, f"predict returned extras {', '.join(wrong)} without a leading batch "
                                        f"dimension of {B}")
        out.scores = out.scores.float()
        if out.maps is not None:
            out.maps = out.maps.float()
        return out

    # ----------------------------------------------------------------- state
    def fitted_state(self) -> dict[str, torch.Tensor]:
        """The tensors that fitting produced: every parameter and buffer outside the frozen backbone."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("backbone.")}

    def load_fitted_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore :meth:`fitted_state` (strict: missing or unexpected tensors are an error)."""
        expected = set(self.fitted_state())
        if set(tensors) != expected:
            missing, unexpected = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
            raise ModelError(self.name, f"checkpoint tensors do not match the model (missing {missing[:5]}, "
                                        f"unexpected {unexpected[:5]})")
        self.load_state_dict(tensors, strict=False)

    def save(self, path: str | Path, in_progress: str | None = None) -> Path:
        """Write the fitted state, name, config and backbone identity to a safetensors file (atomically).

        Args:
            in_progress: set by a trainer on the checkpoints it writes before training ends (where it stands,
                e.g. ``"stage 2, step 40 of 120"``): :meth:`load` then refuses the file unless it resumes training.
        """
        from caadbench.utils.atomic import atomic_write_bytes
        from safetensors.torch import save

        path = Path(path)
        meta = {
            "format": CHECKPOINT_FORMAT,
            "model": self.name,
            "config": json.dumps(self.config.to_dict(), sort_keys=True),
            "backbone": json.dumps(self.identity.to_dict(), sort_keys=True),
        }
        if in_progress is not None:
            meta |= {"training": IN_PROGRESS, "training_at": in_progress}
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.fitted_state().items()}
        atomic_write_bytes(path, save(tensors, metadata=meta))
        return path

    def load(self, path: str | Path, resuming: bool = False) -> AnomalyModel:
        """Load a checkpoint written by :meth:`save` of the same variant, method config and backbone weights.

        Args:
            resuming: a trainer resumes from it (only then may it be a checkpoint written before training ended).

        Raises:
            ModelError: the file is not a caadbench checkpoint, it was left by a training run that did not finish
                (unless ``resuming``), or it is for another variant (``coreclip`` vs ``coreclip.no_orthogonality``),
                another method config (naming every differing option with both values) or another backbone.
        """
        meta, tensors = read_checkpoint(path)
        if meta.get("training") == IN_PROGRESS and not resuming:
            raise ModelError(path, f"was written while training ran ({meta.get('training_at', 'unfinished')}), not by "
                                   "a finished training: resume that run (same --out, --option resume=auto) or pass "
                                   "the checkpoint of a finished one")
        if self.name and meta["model"] != self.name:
            raise ModelError(path, f"checkpoint is for model {meta['model']!r}, this model is {self.name!r}")
        self._check_method_config(path, json.loads(meta["config"]))
        theirs = BackboneIdentity(**json.loads(meta["backbone"]))
        if not theirs.same_weights(self.identity):
            raise ModelError(path, f"checkpoint was made on backbone {theirs.arch} ({theirs.weights}, "
                                   f"{theirs.image_size}px), this model uses {self.identity.arch} "
                                   f"({self.identity.weights}, {self.identity.image_size}px)")
        self.load_fitted_state({k: v.to(self.device) for k, v in tensors.items()})
        self.is_fitted = True
        return self


    def _check_method_config(self, path: str | Path, theirs: dict[str, Any]) -> None:
        skip = (*self.config.BACKBONE_FIELDS, *self.config.RUNTIME_FIELDS)
        mine, theirs = self.config.method_config(), method_options(theirs, skip)
        differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k, _ABSENT) != theirs.get(k, _ABSENT))
        if differ:
            shown = "; ".join(f"{k}: {_shown(theirs, k)} in the checkpoint, {_shown(mine, k)} here" for k in differ)
            raise ModelError(path, f"checkpoint was fitted with another method config than {self.name or 'this model'} "
                                   f"({shown}); build the model with the options it was fitted with")


_ABSENT = object()


def _shown(values: dict[str, Any], key: str) -> str:
    return json.dumps(values[key]) if key in values else "absent"


def read_checkpoint(path: str | Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Read a caadbench checkpoint: ``(metadata, tensors)``.

    Raises:
        ModelError: missing file, not safetensors, or not a caadbench checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(path, "checkpoint file not found")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(path, f"not a readable safetensors checkpoint ({exc})") from exc
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(path, f"not a caadbench checkpoint (format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT!r})")
    return meta, tensors


__all__ = [
    "AnomalyModel",
    "AnomalyOutput",
    "DIAGNOSTIC_EXTRAS",
    "FitData",
    "Learning",
    "ModelConfig",
    "read_checkpoint",
]
