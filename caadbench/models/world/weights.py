"""The shipped world weights: ``--pretrained world`` → a checkpoint inside the package, sha256-checked on load.

``caadbench/models/weights/world.json`` lists, per architecture, the file, its sha256 and the recipe that
produced it (command, seed, steps, wall time, machine, held-out zero-shot figures). Nothing is downloaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caadbench.errors import ModelError, WeightsUnavailable
from caadbench.utils.hashing import sha256_file

WORLD_TAG = "world"
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
MANIFEST = WEIGHTS_DIR / "world.json"
WEIGHTS_FORMAT = "caadbench-world-weights-1"
"""The ``format`` metadata of every weights file ``caadbench pretrain`` writes."""


@dataclass(frozen=True)
class ShippedWeights:
    """One entry of the world-weights manifest.

    Attributes:
        arch: open_clip architecture.
        path: the checkpoint inside the package.
        sha256: its expected hash.
        recipe: how it was made (see ``docs/world.md``).
    """

    arch: str
    path: Path
    sha256: str
    recipe: dict[str, Any]


def manifest() -> dict[str, ShippedWeights]:
    """Every shipped world checkpoint by architecture (empty when none is shipped)."""
    if not MANIFEST.is_file():
        return {}
    data = json.loads(MANIFEST.read_text())
    return {arch: ShippedWeights(arch, WEIGHTS_DIR / entry["file"], entry["sha256"], entry.get("recipe", {}))
            for arch, entry in data.get("weights", {}).items()}


def world_weights(arch: str) -> ShippedWeights:
    """The shipped world weights of ``arch``, after checking the file's sha256 against the manifest.

    Raises:
        WeightsUnavailable: no world weights for ``arch`` (naming the architectures that have them), or the file
            is missing.
        ModelError: the file's hash differs from the manifest (a corrupt or replaced file).
    """
    shipped = manifest()
    if arch not in shipped:
        have = ", ".join(sorted(shipped)) or "none"
        raise WeightsUnavailable(f"{arch}:{WORLD_TAG}", f"no world weights are shipped for {arch} (shipped: {have}); "
                                                       "train them with `caadbench pretrain --arch "
                                                       f"{arch} --out FILE` and pass --pretrained FILE")
    entry = shipped[arch]
    if not entry.path.is_file():
        raise WeightsUnavailable(entry.path, "the shipped world weights file is missing from the installation")
    digest = sha256_file(entry.path)
    if digest != entry.sha256:
        raise ModelError(entry.path, f"sha256 {digest[:12]}… differs from the manifest's {entry.sha256[:12]}… "
                                     "(corrupt or replaced file; reinstall caadbench)")
    return entry


def is_world_file(path: str | Path) -> bool:
    """Whether a checkpoint file was written by ``caadbench pretrain`` (its safetensors metadata says so)."""
    if not str(path).endswith(".safetensors"):
        return False
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            return (fh.metadata() or {}).get("format") == WEIGHTS_FORMAT
    except Exception:  # not readable as safetensors: open_clip will say why when it loads it
        return False
