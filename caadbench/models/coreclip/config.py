"""CoRe-CLIP's configuration: architecture, losses and training schedule, every ablation as a field.

The named variants in :mod:`caadbench.models.coreclip` are sets of overrides of these fields, so an ablation
table is a list of runs. ``docs/coreclip.md`` explains each choice and which parts are our reading of the paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from caadbench.errors import ModelError
from caadbench.models.base import TrainedModelConfig
from caadbench.models.coreclip.masks import MaskSpec, parse_masks

BRANCHES: tuple[str, ...] = ("subject", "context", "global")
"""Every branch, in the order of ``extras["alpha"]`` columns."""

BRANCH_SETS: dict[str, tuple[str, ...]] = {
    "tri": BRANCHES,
    "global": ("global",),
    "subject": ("subject",),
    "context": ("context",),
}
FUSIONS = ("crm", "mean", "concat")


def parse_branches(value: str) -> tuple[str, ...]:
    """``"tri"``, one branch name, or ``+``-joined names (``"subject+context"``) → branches in canonical order.

    Raises:
        ModelError: an unknown or repeated branch name.
    """
    if value in BRANCH_SETS:
        return BRANCH_SETS[value]
    names = [n.strip() for n in value.split("+")]
    unknown = [n for n in names if n not in BRANCHES]
    if unknown or len(set(names)) != len(names) or not names:
        raise ModelError("CoreClipConfig.branches", f"{value!r} is not 'tri' or a '+'-joined subset of "
                                                    f"{', '.join(BRANCHES)} without repeats")
    return tuple(b for b in BRANCHES if b in names)


@dataclass
class CoreClipConfig(TrainedModelConfig):
    """CoRe-CLIP options (see ``docs/coreclip.md``).

    Attributes:
        branches: ``tri`` or a subset of ``subject``/``context``/``global`` (``+``-joined).
        csr_blocks: K, the first K image blocks get a residual adapter per branch; 0 disables CSR (frozen features).
        csr_bottleneck: hidden width of each CSR adapter.
        csr_scale: fixed scale of each CSR adapter's residual (how far the adapted tokens move per unit of weight;
            with AdamW, a smaller scale is a smaller step in feature space at the same rate).
        fusion: ``crm`` (t1-conditioned attention), ``mean`` or ``concat`` (concatenation → linear map to D).
        crm_dim: query/key width of the CRM (0: the joint-space width D).
        text_refine: gated text adapters and stage 1; off: frozen prompt-ensemble prototypes.
        text_blocks: L, the first L text blocks get a gated adapter.
        text_bottleneck: hidden width of each text adapter.
        prompts: prompt set of :func:`~caadbench.models.prompts.get_prompt_set` giving t0/t1.
        masks: the masks training reads: ``gt`` (the shards' subject masks), ``none`` (full images, no views), or a
            controlled degradation of them for the mask-quality ablation: ``bbox``, ``dilate:N``, ``erode:N``,
            ``drop:P`` (:mod:`~caadbench.models.coreclip.masks`; seeded per image; the test ground truth stays
            exact).
        temperature: initial τ of the score σ((cos(z,t1) − cos(z,t0)) / τ).
        learn_temperature: train log(1/τ) with the stage-2 parameters.
        w_bce: weight of the image BCE (stage 2).
        w_pixel: weight of the patch BCE against the pixel ground truth (stage 2).
        w_orthogonality: weight of the text orthogonality loss, separating t0 and t1 (stage 1).
        w_consistency: weight of the text consistency loss, keeping the shared class identity (stage 1).
        w_grounding: weight of the text grounding loss, class prototype vs visual class mean (stage 1).
        w_entropy: weight of the CRM entropy-band loss on α (stage 2).
        w_cross_branch: weight of the cross-branch (view) consistency loss (stage 2).
        entropy_low: lower end of the per-image α entropy band, as a fraction of log(number of branches).
        entropy_high: upper end of the per-image α entropy band, as a fraction of log(number of branches).
        grounding_temperature: temperature of the class-contrastive grounding term.
        grounding_images: at most this many normal train images give the visual class means for grounding.
        text_steps: stage-1 (text) optimisation steps.
        text_lr: stage-1 peak learning rate.
        epochs: stage-2 passes over the train part (``max_steps > 0`` overrides); 6 with validation every 20
            steps (``val_every``) were chosen on the ``cc`` validation part (``docs/coreclip.md``).
        max_steps: stage-2 optimisation steps (0: ``epochs`` passes).
        lr: stage-2 peak learning rate.
        weight_decay: AdamW weight decay on matrices (not on biases, gates and the temperature).
        warmup: fraction of each stage's steps with a linear warm-up before the cosine decay.
    """

    branches: str = "tri"
    csr_blocks: int = 6
    csr_bottleneck: int = 64
    csr_scale: float = 1.0
    fusion: str = "crm"
    crm_dim: int = 0
    text_refine: bool = True
    text_blocks: int = 3
    text_bottleneck: int = 32
    prompts: str = "context"
    masks: str = "gt"
    temperature: float = 0.07
    learn_temperature: bool = True
    w_bce: float = 1.0
    w_pixel: float = 0.5
    w_orthogonality: float = 1.0
    w_consistency: float = 1.0
    w_grounding: float = 1.0
    w_entropy: float = 0.5
    w_cross_branch: float = 0.5
    entropy_low: float = 0.3
    entropy_high: float = 0.9
    grounding_temperature: float = 0.07
    grounding_images: int = 512
    text_steps: int = 40
    text_lr: float = 1e-2
    epochs: int = 6
    max_steps: int = 0
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.1
    val_every: int = 20

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CoreClipConfig:
        """As :meth:`ModelConfig.from_dict`; a legacy ``amp`` (results and checkpoints written before every
        model had ``precision``) becomes ``precision`` ``auto`` (true) or ``fp32`` (false)."""
        values = dict(values)
        if "amp" in values:
            amp = values.pop("amp")
            values.setdefault("precision", "auto" if amp else "fp32")
        return super().from_dict(values)

    def __post_init__(self) -> None:
        where = "CoreClipConfig"
        parse_branches(self.branches)
        if self.fusion not in FUSIONS:
            raise ModelError(where, f"fusion {self.fusion!r} is not one of {', '.join(FUSIONS)}")
        parse_masks(self.masks)  # raises ModelError naming the accepted forms
        for name in ("csr_blocks", "text_blocks", "crm_dim", "text_steps", "epochs", "max_steps",
                     "checkpoint_every", "grounding_images"):
            if int(getattr(self, name)) < 0:
                raise ModelError(where, f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("csr_bottleneck", "text_bottleneck"):
            if int(getattr(self, name)) < 1:
                raise ModelError(where, f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.entropy_low <= self.entropy_high <= 1.0:
            raise ModelError(where, f"need 0 <= entropy_low <= entropy_high <= 1, got {self.entropy_low}, "
                                    f"{self.entropy_high}")
        if self.csr_scale <= 0:
            raise ModelError(where, f"csr_scale must be positive, got {self.csr_scale}")
        if self.temperature <= 0 or self.grounding_temperature <= 0:
            raise ModelError(where, "temperatures must be positive")
        if not 0.0 <= self.warmup < 1.0:
            raise ModelError(where, f"warmup is a fraction in [0, 1), got {self.warmup}")
        if self.epochs == 0 and self.max_steps == 0:
            raise ModelError(where, "epochs and max_steps are both 0: stage 2 would not train")
        weights = [n for n in self.__dataclass_fields__ if n.startswith("w_")]
        negative = [n for n in weights if getattr(self, n) < 0]
        if negative:
            raise ModelError(where, f"loss weights must be >= 0 ({', '.join(negative)})")

    @property
    def branch_names(self) -> tuple[str, ...]:
        """The active branches in canonical order."""
        return parse_branches(self.branches)

    @property
    def mask_spec(self) -> MaskSpec:
        """The parsed ``masks`` option (:mod:`caadbench.models.coreclip.masks`)."""
        return parse_masks(self.masks)

    @property
    def uses_masks(self) -> bool:
        """Whether training builds subject/context views (some masked branch and ``masks != "none"``)."""
        return self.masks != "none" and any(b != "global" for b in self.branch_names)
