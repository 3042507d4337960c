"""What the CLIP and WinCLIP baselines share: text prototypes per subject, scores, and per-subject memories.

* :class:`TextPrototypes` computes the (normal, anomalous) prototypes of a subject the first time a batch
  names it and caches them (the backbone is frozen, so they never change; the process-wide cache of
  ``caadbench.models.text_cache`` shares them across models and seeds); unseen subjects at test time
  (cross-subject split) simply get computed then.
* :func:`anomaly_probability` is WinCLIP's ``ascore_0``: the softmax over (normal, anomalous) of the
  temperature-scaled cosine similarities, probability of the anomalous side.
* :func:`visual_association` is WinCLIP+'s reference association ``½ (1 − max cos)`` to a memory.
* :class:`PromptedBaseline` is the common model: prompt set, temperature, lazy prototypes, the few-shot
  fit loop that fills a :class:`SubjectMemory`, and its safetensors state.

Fitted state layout (safetensors): one tensor per (memory kind, subject) under the key ``"<kind>/<subject>"``,
e.g. ``"image/cow"``, ``"patch/cow"``, ``"window2/cow"``; each ``(n, C)`` holds the L2-normalised features of
all support images of that subject stacked along the first dimension. Kinds never contain ``/``, so the
subject is everything after the first ``/`` and may be any string.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from caadbench.models.api import (AnomalyModel, ClipBackbone, FitData, Learning, ModelConfig, ModelError,
                                  frozen_prototypes, get_prompt_set, progress)


def anomaly_probability(embeddings: torch.Tensor, prototypes: torch.Tensor, logit_scale: float) -> torch.Tensor:
    """Probability of the anomalous prototype, ``softmax(s · [⟨f, t_n⟩, ⟨f, t_a⟩])[1]``.

    Args:
        embeddings: ``(B, ..., D)`` L2-normalised image / window / patch embeddings.
        prototypes: ``(B, 2, D)`` L2-normalised (normal, anomalous) prototypes of each image's subject.
        logit_scale: the inverse temperature ``s = 1 / τ``.

    Returns:
        ``(B, ...)`` float32 anomalous probabilities in (0, 1).
    """
    logits = logit_scale * torch.einsum("b...d,bkd->b...k", embeddings, prototypes.to(embeddings.dtype))
    return logits.float().softmax(dim=-1)[..., 1]


def visual_association(features: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """WinCLIP+'s association score ``½ (1 − max_r ⟨f, r⟩)`` of each feature to its nearest memory entry.

    Args:
        features: ``(..., C)`` L2-normalised query features.
        memory: ``(R, C)`` L2-normalised reference features.

    Returns:
        ``(...)`` float32 scores in [0, 1]; 0 when the feature is in the memory.
    """
    sims = features @ memory.to(device=features.device, dtype=features.dtype).T
    return 0.5 * (1.0 - sims.amax(dim=-1).float())


def upsample_map(grid_scores: torch.Tensor, size: int) -> torch.Tensor:
    """``(B, gh, gw)`` patch-grid scores → ``(B, size, size)`` by bilinear interpolation (align_corners=False)."""
    return F.interpolate(grid_scores.unsqueeze(1), size=(size, size), mode="bilinear", align_corners=False).squeeze(1)


class TextPrototypes:
    """Lazily computed, cached (normal, anomalous) text prototypes per subject.

    Args:
        prompt_set: name of a prompt set in :mod:`caadbench.models.prompts`.
    """

    def __init__(self, prompt_set: str) -> None:
        self.prompts = get_prompt_set(prompt_set)
        self._cache: dict[str, torch.Tensor] = {}

    @property
    def subjects(self) -> list[str]:
        """Subjects computed so far."""
        return sorted(self._cache)

    def __call__(self, backbone: ClipBackbone, subjects: Sequence[str]) -> torch.Tensor:
        """``(len(subjects), 2, D)`` prototypes, index 0 normal, 1 anomalous, on the backbone's device."""
        missing = [s for s in dict.fromkeys(subjects) if s not in self._cache]
        if missing:  # encoded once per process across models and seeds (caadbench.models.text_cache)
            self._cache.update(zip(missing, frozen_prototypes(backbone, self.prompts, missing)))
        device = backbone.mean.device
        return torch.stack([self._cache[s].to(device) for s in subjects])


class SubjectMemory:
    """Few-shot reference features per subject and memory kind.

    Args:
        kinds: the memory kinds every subject has (``("image",)``, ``("patch", "window2", "window3")``).
    """

    def __init__(self, kinds: Sequence[str]) -> None:
        if any("/" in k for k in kinds):
            raise ValueError("memory kinds must not contain '/'")
        self.kinds = tuple(kinds)
        self._banks: dict[str, dict[str, torch.Tensor]] = {}

    @property
    def subjects(self) -> list[str]:
        return sorted(self._banks)

    def replace(self, banks: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
        """Set every subject's memories at once (a refit forgets the previous support)."""
        for subject, kinds in banks.items():
            if set(kinds) != set(self.kinds):
                raise ModelError(subject, f"memory kinds {sorted(kinds)} do not match {list(self.kinds)}")
        self._banks = {s: dict(k) for s, k in banks.items()}

    def get(self, subject: str, kind: str) -> torch.Tensor:
        """``(n, C)`` reference features of ``subject``.

        Raises:
            ModelError: no support image of this subject was seen in fitting.
        """
        if subject not in self._banks:
            known = ", ".join(self.subjects) or "none"
            raise ModelError(subject, f"no few-shot memory for this subject: fit with support images of it "
                                      f"(subjects with support: {known})")
        return self._banks[subject][kind]

    def state(self) -> dict[str, torch.Tensor]:
        """``{"<kind>/<subject>": (n, C)}`` for safetensors."""
        return {f"{kind}/{subject}": t for subject, kinds in self._banks.items() for kind, t in kinds.items()}

    def load_state(self, tensors: Mapping[str, torch.Tensor], where: str) -> None:
        """Inverse of :meth:`state`, refusing unknown kinds and subjects with missing kinds."""
        banks: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
        for key, tensor in tensors.items():
            kind, sep, subject = key.partition("/")
            if not sep or kind not in self.kinds or not subject:
                raise ModelError(where, f"unexpected tensor {key!r} in the fitted state (expected '<kind>/<subject>' "
                                        f"with kind in {list(self.kinds)})")
            if tensor.ndim != 2:
                raise ModelError(where, f"memory {key!r} has shape {tuple(tensor.shape)}, expected (n, C)")
            banks[subject][kind] = tensor.clone(memory_format=torch.contiguous_format)  # own storage: safetensors views may be misaligned, which changes BLAS rounding
        for subject, kinds in banks.items():
            if set(kinds) != set(self.kinds):
                missing = sorted(set(self.kinds) - set(kinds))
                raise ModelError(where, f"subject {subject!r} lacks memories {missing}")
        self._banks = dict(banks)


BACKBONE_SCALE = "backbone"
"""``logit_scale`` value meaning the backbone's learned ``exp(logit_scale)`` (100 for pretrained OpenCLIP)."""


@dataclass
class PromptedConfig(ModelConfig):
    """Options of every prompted baseline.

    Attributes:
        prompt_set: name of the prompt set (``two``, ``winclip``, ``context``, ``winclip+context``).
        logit_scale: inverse temperature of the (normal, anomalous) softmax: a positive number, or ``"backbone"``
            for the backbone's learned ``exp(logit_scale)`` (100 for pretrained OpenCLIP weights, 1/0.07 ≈ 14.29
            for a random init). CLIP's default is ``"backbone"`` (CLIP's own zero-shot temperature); WinCLIP's is
            1/0.07 (see :data:`~caadbench.baselines.winclip.model.WINCLIP_LOGIT_SCALE`).
        few_shot: build per-subject memories from the support set; it makes the model few-shot (:attr:`learning`).
    """

    prompt_set: str = "two"
    logit_scale: float | str = BACKBONE_SCALE
    few_shot: bool = False

    @property
    def learning(self) -> Learning:
        return Learning.FEW_SHOT if self.few_shot else Learning.ZERO_SHOT

    def __post_init__(self) -> None:
        get_prompt_set(self.prompt_set)  # raises ModelError naming the known sets
        if isinstance(self.logit_scale, str):
            if self.logit_scale != BACKBONE_SCALE:
                raise ModelError(type(self).__name__, f"logit_scale must be a positive number or "
                                                      f"{BACKBONE_SCALE!r}, got {self.logit_scale!r}")
        elif isinstance(self.logit_scale, bool) or not float(self.logit_scale) > 0:
            raise ModelError(type(self).__name__, f"logit_scale must be positive, got {self.logit_scale}")
        else:
            self.logit_scale = float(self.logit_scale)


class PromptedBaseline(AnomalyModel):
    """Common base of the CLIP and WinCLIP baselines (config: a :class:`PromptedConfig`).

    Subclasses set :attr:`memory_kinds` (or override :meth:`memory_kinds_of`), implement :meth:`memory_features` (what a support image adds to the
    memory) and :meth:`_predict`.
    """

    memory_kinds: tuple[str, ...] = ()

    config_cls = PromptedConfig

    def __init__(self, config: PromptedConfig, backbone: ClipBackbone | None = None) -> None:
        super().__init__(config, backbone)
        self.prototypes = TextPrototypes(config.prompt_set)
        self.memory = SubjectMemory(self.memory_kinds_of(config))

    @classmethod
    def memory_kinds_of(cls, config: PromptedConfig) -> tuple[str, ...]:
        """The memory kinds a model of this config keeps per subject."""
        return cls.memory_kinds

    @property
    def logit_scale(self) -> float:
        """The softmax's inverse temperature: ``config.logit_scale``, or the backbone's learned one."""
        if self.config.logit_scale == BACKBONE_SCALE:
            return self.backbone.logit_scale
        return float(self.config.logit_scale)

    def text_prototypes(self, subjects: Sequence[str]) -> torch.Tensor:
        """``(B, 2, D)`` (normal, anomalous) prototypes of each subject, cached per subject."""
        return self.prototypes(self.backbone, subjects)

    def memory_features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{kind: (B, n, C)}`` L2-normalised features a support image adds to its subject's memories."""
        raise NotImplementedError

    def fit(self, data: FitData) -> None:
        """Zero-shot: compute the split's text prototypes. Few-shot: also build the support memories.

        Raises:
            ModelError: a few-shot model gets no support images.
        """
        if self.config.few_shot:
            batches = list(data.support or [])
            if not batches or not any(len(b) for b in batches):
                raise ModelError(self.name or type(self).__name__, "a few-shot model needs support images "
                                                                   "(FitData.support is empty)")
            collected: dict[str, dict[str, list[torch.Tensor]]] = defaultdict(lambda: defaultdict(list))
            with torch.inference_mode():
                for batch in progress(batches, desc=f"{self.name or 'model'} support", unit="batch"):
                    feats = self.memory_features(batch.to(self.device).images)
                    for i, subject in enumerate(batch.subjects):
                        for kind, f in feats.items():
                            collected[subject][kind].append(f[i])
            self.memory.replace({s: {k: torch.cat(v) for k, v in kinds.items()} for s, kinds in collected.items()})
        if data.subjects:
            self.text_prototypes(data.subjects)
        self.is_fitted = True

    def fitted_state(self) -> dict[str, torch.Tensor]:
        """The support memories as ``{"<kind>/<subject>": (n, C)}`` (empty for zero-shot)."""
        return self.memory.state()

    def load_fitted_state(self, tensors: dict[str, torch.Tensor]) -> None:
        where = self.name or type(self).__name__
        if tensors and not self.config.few_shot:
            raise ModelError(where, "the checkpoint holds few-shot memories but this model is zero-shot "
                                    "(load it into the few-shot variant)")
        self.memory.load_state(tensors, where=where)

    def _subject_groups(self, subjects: Sequence[str]) -> dict[str, torch.Tensor]:
        """``{subject: (n,) int64 indices into the batch}``, in first-seen order."""
        groups: dict[str, list[int]] = defaultdict(list)
        for i, s in enumerate(subjects):
            groups[s].append(i)
        return {s: torch.tensor(idx, device=self.device) for s, idx in groups.items()}
