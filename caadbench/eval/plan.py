"""The line ``caadbench run`` logs before any work: which backbone and weights it will use, and what it will cost.

A run given no ``--backbone`` / ``--pretrained`` uses the model's defaults (for the built-in models a randomly
initialised ViT-B-16-plus-240, or the papers' ViT-L-14-336 for APRIL-GAN and AnomalyCLIP), so the line says where
each came from. Random-init weights check the pipeline only:
the line is then a warning (shown under ``-q`` too), so such a run is never silent until its results table.
"""

from __future__ import annotations

import math
from typing import Any

from caadbench.eval.provenance import RANDOM_INIT, WORLD, WeightsKind
from caadbench.models import Learning
from caadbench.models.backbone import RANDOM_INIT as RANDOM_INIT_VALUES


def weights_text(pretrained: str | None, given: bool) -> tuple[str, bool]:
    """``(what the weights are, whether they are random-init)`` for a ``pretrained`` value."""
    origin = "" if given else ", the model's default"
    if pretrained is None or pretrained in RANDOM_INIT_VALUES:
        return (f"{RANDOM_INIT} {WeightsKind.RANDOM_INIT.mark}{origin} (scores check the pipeline only; pass "
                f"--pretrained {WORLD} with --backbone caad-tiny, an open_clip tag or a weights file)"), True
    if pretrained == WORLD:
        return f"{WORLD} {WeightsKind.WORLD.mark} (the shipped synthetic-world weights{origin})", False
    return f"{pretrained}{origin}", False


def training_steps(config: Any, train_images: int, batch_size: int) -> str:
    """``"<n> steps (...)"``: the optimisation steps of one seed's training, from the model's config."""
    batch = int(getattr(config, "batch_size", batch_size))
    per_epoch = max(1, math.ceil(train_images / batch))
    max_steps, epochs = int(getattr(config, "max_steps", 0) or 0), int(getattr(config, "epochs", 1))
    steps = max_steps or epochs * per_epoch
    how = f"max_steps {max_steps}" if max_steps else f"{epochs} epoch(s) × {per_epoch} batches of {batch}"
    text = int(getattr(config, "text_steps", 0) or 0) if getattr(config, "text_refine", False) else 0
    total = steps + text
    return (f"{total} step{'s' if total != 1 else ''} ({how}{f' + {text} text steps' if text else ''}) on "
            f"{train_images} train images")


def plan_line(*, model: str, learning: Learning, data: str, split: str, test_images: int, seeds: int,
              backbone: str, backbone_given: bool, pretrained: str | None, pretrained_given: bool, shots: int = 0,
              subjects: int = 0, training: str | None = None, checkpoint: str | None = None) -> tuple[str, bool]:
    """``(the line, whether the weights are random-init)``.

    Args:
        training: :func:`training_steps` of a model trained here (``None`` otherwise).
        checkpoint: the ``--checkpoint`` file a fitted state comes from.
    """
    weights, random_init = weights_text(pretrained, pretrained_given)
    fit = {Learning.ZERO_SHOT: "no fitting",
           Learning.FEW_SHOT: f"support {shots} × {subjects} subjects",
           Learning.TRAINED: f"training {training}" if training else "training"}[learning]
    if checkpoint is not None:
        fit = f"fitted state from {checkpoint}"
    seeds_text = f"{seeds} seed{'s' if seeds != 1 else ''}"
    origin = "" if backbone_given else " (the model's default)"
    return (f"run: {model} ({learning}) on {data} {split}: {test_images} test images × {seeds_text}, {fit} per seed; "
            f"backbone {backbone}{origin}, weights {weights}"), random_init


__all__ = ["plan_line", "training_steps", "weights_text"]
