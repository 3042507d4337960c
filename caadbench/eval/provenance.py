"""What produced a result: the :class:`Provenance` record, how it is collected, and what kind of weights ran.

:func:`weights_kind` is the one place that classifies a backbone's weights label (``BackboneIdentity.weights``):
``random-init`` (seeded random initialisation: checks the pipeline only), ``world`` (the small CLIP pretrained on
the synthetic generator's world: meaningful inside that world, never comparable to paper numbers) or ``real``
(an open_clip tag or a local checkpoint file). Leaderboards, reports and the console all ask it.
"""

from __future__ import annotations

import enum
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caadbench.eval.meter import ResourceMeter
from caadbench.eval.typed_json import ADDED_LATER

RANDOM_INIT = "random-init"
WORLD = "world"
WORLD_FILE_PREFIX = "world-file:"
"""Label prefix of a checkpoint written by ``caadbench pretrain`` (world weights trained by the user)."""


class WeightsKind(str, enum.Enum):
    """The three kinds of backbone weights a number can come from."""

    REAL = "real"
    WORLD = "world"
    RANDOM_INIT = "random-init"

    def __str__(self) -> str:
        return self.value

    @property
    def paper_comparable(self) -> bool:
        """Only real weights may be compared with (and get a gap to) paper rows."""
        return self is WeightsKind.REAL

    @property
    def mark(self) -> str:
        """The symbol that marks a row of these weights everywhere (``""`` for real weights)."""
        return {WeightsKind.REAL: "", WeightsKind.WORLD: "◇", WeightsKind.RANDOM_INIT: "†"}[self]

    @property
    def legend(self) -> str:
        """What the mark means, in one sentence (``""`` for real weights)."""
        return {
            WeightsKind.REAL: "",
            WeightsKind.WORLD: "Synthetic-world weights (a small CLIP pretrained on the generator's world): meaningful "
                               "inside this world, never comparable to paper numbers; no gap to paper rows computed.",
            WeightsKind.RANDOM_INIT: "Random-init backbone weights: the row checks the pipeline only; its numbers are "
                                     "**not comparable** to paper numbers and no gap is computed.",
        }[self]


def weights_kind(label: str) -> WeightsKind:
    """Classify a weights label: ``"random-init"``; ``"world"`` or ``"world-file:<name>"`` (the shipped world weights
    or one's own ``caadbench pretrain`` output); anything else (a tag or a file) is real."""
    if label == RANDOM_INIT:
        return WeightsKind.RANDOM_INIT
    if label == WORLD or label.startswith(WORLD_FILE_PREFIX):
        return WeightsKind.WORLD
    return WeightsKind.REAL


@dataclass
class Provenance:
    """What produced a result (collected by :func:`collect_provenance`)."""

    package_version: str
    git_commit: str
    git_dirty: bool | None
    torch_version: str
    open_clip_version: str
    backbone_arch: str
    image_size: int
    weights: str
    weights_sha256: str
    init_seed: int
    dataset_fingerprint: str
    dataset_path: str
    device: str
    wall_time_s: float
    images_per_s: float
    peak_memory_bytes: int
    peak_memory_kind: str
    python: str
    platform: str
    command: str
    precision: str = field(default="fp32", metadata={ADDED_LATER: True})
    activation: str = field(default="gelu", metadata={ADDED_LATER: True})

    @property
    def weights_kind(self) -> WeightsKind:
        return weights_kind(self.weights)

    @property
    def random_init(self) -> bool:
        return self.weights_kind is WeightsKind.RANDOM_INIT

    def weights_label(self) -> str:
        """``random-init †``, ``world ◇ (sha256 …)`` or ``openclip:<tag> (sha256 …)`` for tables."""
        kind = self.weights_kind
        if kind is WeightsKind.RANDOM_INIT:
            return f"{RANDOM_INIT} {kind.mark}"
        text = f"{self.weights} {kind.mark}".strip()
        sha = self.weights_sha256
        return f"{text} (sha256 {sha[:12]})" if sha and sha != "unknown" else text


def git_state(directory: str | Path | None = None) -> tuple[str, bool | None]:
    """``(commit, dirty)`` of the checkout holding the caadbench sources; ``("unknown", None)`` outside one."""
    root = Path(directory) if directory else Path(__file__).resolve().parents[2]

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        top = Path(git("rev-parse", "--show-toplevel"))
        if not (top / "caadbench" / "__init__.py").is_file():
            return "unknown", None
        return git("rev-parse", "HEAD"), bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return "unknown", None


def collect_provenance(
    identity: Any,
    *,
    dataset_fingerprint: str,
    dataset_path: str | Path,
    device: str,
    meter: ResourceMeter,
    command: Sequence[str] | None = None,
    precision: str = "fp32",
) -> Provenance:
    """Everything a result must say about what produced it.

    Args:
        identity: the backbone's :class:`~caadbench.models.backbone.BackboneIdentity`.
        dataset_fingerprint: the shard manifest's fingerprint.
        dataset_path: where the shards were read from.
        device: the device evaluated on.
        meter: the run's :class:`~caadbench.eval.meter.ResourceMeter` (after its ``with`` block).
        command: the command line (default ``sys.argv``).
        precision: the resolved precision predictions ran in (``fp32`` / ``bf16``).
    """
    import open_clip
    import torch

    from caadbench import __version__

    commit, dirty = git_state()
    peak, kind = meter.peak_memory()
    argv = list(sys.argv if command is None else command)
    if argv:
        argv[0] = os.path.basename(argv[0])
    return Provenance(
        package_version=__version__,
        git_commit=commit,
        git_dirty=dirty,
        torch_version=torch.__version__,
        open_clip_version=getattr(open_clip, "__version__", "unknown"),
        backbone_arch=identity.arch,
        image_size=int(identity.image_size),
        weights=identity.weights,
        weights_sha256=identity.sha256 or (RANDOM_INIT if identity.weights == RANDOM_INIT else "unknown"),
        init_seed=int(identity.init_seed),
        dataset_fingerprint=dataset_fingerprint,
        dataset_path=str(dataset_path),
        device=str(device),
        wall_time_s=meter.wall_time_s,
        images_per_s=meter.images_per_s,
        peak_memory_bytes=peak,
        peak_memory_kind=kind,
        python=platform.python_version(),
        platform=platform.platform(),
        command=shlex.join(argv),
        precision=precision,
        activation=identity.activation,
    )


__all__ = ["RANDOM_INIT", "WORLD", "Provenance", "WeightsKind", "collect_provenance", "git_state", "weights_kind"]
