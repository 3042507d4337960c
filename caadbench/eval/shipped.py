"""Shipped checkpoints: trained methods the project trained once and ships, so the main job evaluates them.

``caadbench/models/weights/checkpoints.json`` (:data:`MANIFEST`) lists, per trained model and seed, a safetensors
file beside it holding only the model's fitted (non-frozen) state, its sha256, the commit and exact command that
made it (``caadbench ship-checkpoints``), the dataset it was trained and selected on (fingerprint, split and the
sha256 of that split's shard list, :func:`data_identity`), the backbone identity, the full model config, the
run settings that change the fit (selection mode, evaluation batch size) and the trainer's log (so a results file
of a shipped model equals the one training writes, but for its ``shipped`` record and the wall times).

:func:`find` picks the entry that matches a run exactly (model, seed, config fingerprint, dataset identity,
training data, backbone identity, run settings) or says in one line why none does; :func:`load` checks the file's
sha256 and its embedded dataset identity before loading (a mismatch is a :class:`~caadbench.errors.ModelError`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caadbench.errors import ModelError

MANIFEST = Path(__file__).resolve().parents[1] / "models" / "weights" / "checkpoints.json"
"""The shipped manifest (package data; tests point this at their own)."""
FORMAT = "caadbench-shipped-checkpoints"
FORMAT_VERSION = 1
DATA_KEY = "shipped_data"
"""Safetensors metadata key of the dataset identity embedded in a shipped file."""
NOT_FINGERPRINTED = ("progress", "resume", "checkpoint_every")
"""Config options that do not change a trained model (bars, resuming is bit-exact, extra checkpoints)."""
ENTRY_FIELDS = {"model": str, "seed": int, "file": str, "sha256": str, "bytes": int, "commit": str, "dirty": bool,
                "command": str, "dataset": dict, "train_data": dict, "backbone": dict, "config": dict,
                "config_sha256": str, "run": dict, "training": dict, "i_auroc": float}


def config_sha256(config: Mapping[str, Any]) -> str:
    """Fingerprint of a model config (``to_dict()``) without the options that do not change the trained model."""
    kept = {k: v for k, v in config.items() if k not in NOT_FINGERPRINTED}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=list).encode()).hexdigest()


def data_identity(ds: Any, split: str) -> dict[str, str]:
    """What a shipped model was trained, selected and evaluated on: the set's fingerprint, the split and the
    sha256 of that split's shards (paths and sha256 in the manifest's order: train, val, support and test)."""
    shards = [(e.path, e.sha256) for part in sorted(ds.parts(split)) for e in ds.manifest.part_shards(split, part)]
    return {"fingerprint": ds.fingerprint, "split": split,
            "split_sha256": hashlib.sha256(json.dumps(shards).encode()).hexdigest()}


@dataclass(frozen=True)
class Wanted:
    """What a run needs of a shipped checkpoint (every field must equal the entry's)."""

    model: str
    seed: int
    config: dict[str, Any]
    dataset: dict[str, str]
    train_data: dict[str, Any]
    backbone: dict[str, Any]
    run: dict[str, Any]

    def key(self) -> dict[str, Any]:
        return {"model": self.model, "seed": self.seed, "config_sha256": config_sha256(self.config),
                "dataset": self.dataset, "train_data": self.train_data, "backbone": self.backbone, "run": self.run}


def train_data_key(record: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a results' ``train_data`` record a match compares (not the path it was read from)."""
    return {k: record[k] for k in ("fingerprint", "split", "part", "samples")}


def read_manifest(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The entries of a shipped manifest (none when the file does not exist).

    Raises:
        ModelError: naming the file: not JSON, another format, or an entry lacking a field or of the wrong type.
    """
    path = Path(path or MANIFEST)
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(path, f"unreadable shipped-checkpoint manifest ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
        raise ModelError(path, f"not a shipped-checkpoint manifest of format {FORMAT} version {FORMAT_VERSION}")
    entries = data.get("checkpoints")
    if not isinstance(entries, list):
        raise ModelError(path, "manifest field 'checkpoints' should be a list")
    for i, entry in enumerate(entries):
        check_entry(entry, f"{path}: checkpoints[{i}]")
    return entries


def check_entry(entry: Any, where: str) -> None:
    """Refuse an entry that lacks a field of :data:`ENTRY_FIELDS` or has one of the wrong type, or whose file
    name could leave the manifest's folder."""
    if not isinstance(entry, dict):
        raise ModelError(where, "should be an object")
    for name, kind in ENTRY_FIELDS.items():
        value = entry.get(name)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else (
            isinstance(value, kind) and (kind is bool or not isinstance(value, bool)))
        if not ok:
            raise ModelError(where, f"field {name!r} should be {kind.__name__}, got {json.dumps(value)[:40]}")
    if Path(entry["file"]).name != entry["file"] or not entry["file"].endswith(".safetensors"):
        raise ModelError(where, f"file {entry['file']!r} should be a plain .safetensors name")
    if entry["config_sha256"] != config_sha256(entry["config"]):
        raise ModelError(where, "config_sha256 does not match its config")


KEY_WORDS = {"model": "model", "seed": "seed", "config_sha256": "model config", "dataset": "dataset or split",
             "train_data": "training data", "backbone": "backbone or weights",
             "run": "run setting (selection mode, batch size or device)"}


def entry_key(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {"model": entry["model"], "seed": entry["seed"], "config_sha256": entry["config_sha256"],
            "dataset": {k: entry["dataset"].get(k) for k in ("fingerprint", "split", "split_sha256")}, "train_data": train_data_key(entry["train_data"]),
            "backbone": entry["backbone"], "run": entry["run"]}


def find(wanted: Wanted, manifest: str | Path | None = None) -> tuple[dict[str, Any] | None, str]:
    """The entry matching ``wanted`` exactly, or ``None`` and one line saying why none does."""
    entries = read_manifest(manifest)
    key = wanted.key()
    for entry in entries:
        if entry_key(entry) == key:
            return entry, ""
    same = [e for e in entries if e["model"] == wanted.model and e["seed"] == wanted.seed]
    if not same:
        return None, f"no shipped checkpoint of {wanted.model} seed {wanted.seed}"
    theirs = entry_key(same[0])
    differ = [KEY_WORDS[k] for k in key if theirs[k] != key[k]]
    return None, (f"the shipped checkpoint of {wanted.model} seed {wanted.seed} was made with another "
                  f"{', '.join(differ)}")


def load(model: Any, entry: Mapping[str, Any], dataset: Mapping[str, str], manifest: str | Path | None = None) -> Path:
    """Load a shipped entry's file into ``model`` after checking its sha256 and embedded dataset identity.

    Returns:
        The file's path.

    Raises:
        ModelError: one line naming the file: missing, sha256 mismatch, trained on another dataset or split, or
            (:meth:`~caadbench.models.base.AnomalyModel.load`) another model, config or backbone.
    """
    from caadbench.models.base import read_checkpoint
    from caadbench.utils.hashing import sha256_file

    path = Path(manifest or MANIFEST).parent / entry["file"]
    if not path.is_file():
        raise ModelError(path, "shipped checkpoint listed in the manifest is missing; reinstall caadbench or pass "
                               "--retrain")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise ModelError(path, f"sha256 {digest[:16]}… differs from the manifest's {entry['sha256'][:16]}…: the "
                               "file is damaged or was replaced; reinstall caadbench or pass --retrain")
    meta, _ = read_checkpoint(path)
    theirs = json.loads(meta.get(DATA_KEY, "null") or "null")
    if theirs != dict(dataset):
        shown = "none recorded" if not theirs else f"{theirs['fingerprint'][:12]} {theirs['split']}"
        raise ModelError(path, f"was trained on another dataset or split ({shown}; this run: "
                               f"{dataset['fingerprint'][:12]} {dataset['split']}): refusing it, pass --retrain")
    model.load(path)
    return path


def provenance(entry: Mapping[str, Any]) -> dict[str, Any]:
    """What a results file records of a shipped checkpoint it evaluated."""
    return {k: entry[k] for k in ("file", "sha256", "commit", "command")}


def save(model: Any, path: str | Path, dataset: Mapping[str, str]) -> Path:
    """Write ``model``'s fitted state with the dataset identity embedded (the file a manifest entry names)."""
    from safetensors.torch import save as st_save

    from caadbench.models.base import read_checkpoint
    from caadbench.utils.atomic import atomic_write_bytes

    path = Path(path)
    tmp = model.save(path.with_suffix(".tmp.safetensors"))
    meta, tensors = read_checkpoint(tmp)
    tmp.unlink()
    atomic_write_bytes(path, st_save(tensors, metadata={**meta, DATA_KEY: json.dumps(dict(dataset), sort_keys=True)}))
    return path


def write_manifest(entries: list[dict[str, Any]], path: str | Path | None = None) -> Path:
    """Write (atomically) a manifest of ``entries``, each checked, sorted by model and seed."""
    from caadbench.utils.atomic import atomic_write_text

    path = Path(path or MANIFEST)
    for i, entry in enumerate(entries):
        check_entry(entry, f"{path}: checkpoints[{i}]")
    data = {"format": FORMAT, "format_version": FORMAT_VERSION,
            "checkpoints": sorted(entries, key=lambda e: (e["model"], e["seed"]))}
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")
    return path


__all__ = ["MANIFEST", "Wanted", "config_sha256", "data_identity", "find", "load", "provenance", "read_manifest",
           "save", "write_manifest"]
