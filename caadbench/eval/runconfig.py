"""Run configs: a :class:`~caadbench.eval.runner.RunConfig` to and from a YAML / JSON file or a results file.

A run config file is a mapping whose keys are ``run``'s settings — the fields of :class:`RunConfig` (``model``,
``split``, ``data``, ``shots``, ``seeds``, ``backbone``, ``pretrained``, ``image_size``, ``precision``,
``checkpoint``, ``device``, ``batch_size``, ``workers``, ``out``, ``dataset_id``, ...) — plus ``options``, a
mapping of model options (``caadbench models --options NAME`` lists them)::

    model: coreclip.mean_fusion
    split: cc
    data: data/caad-synth
    seeds: [0, 1, 2]
    backbone: caad-tiny
    options:
      epochs: 3
      lr: 1.0e-3

Values are checked against the field types (``seeds: 0``, ``seeds: "0,1"`` and ``seeds: [0, 1]`` all work;
``1e-3``, which YAML 1.1 reads as text, becomes a number); an unknown key or option is refused naming the closest
valid one. Relative paths are relative to the working directory, as on the command line. Flags given on the
command line override the file (``options`` key by key).

A results file is also a run config: its ``run_config`` (every setting of the run, after merging) and its full
model ``config`` (so a rerun uses the options the result was produced with, even if defaults change later)
rebuild the run. Results files written before ``run_config`` existed are rebuilt from their model, split,
shots, seeds, dataset path and model config.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from caadbench.errors import CaadError, ModelError
from caadbench.eval.runner import RunConfig
from caadbench.models.options import check_options

TOP_LEVEL_MODEL_OPTIONS = ("backbone", "pretrained", "image_size", "precision")
"""Model options that are also ``RunConfig`` fields (and ``run`` flags): one under ``options`` moves up (a run
setting given as well wins)."""
NOT_IN_FILES = ("progress",)
"""RunConfig fields that describe the terminal, not the run: never read from or written to a config."""
REQUIRED = ("model", "split")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The settings of a run config file (YAML or JSON) or of a results file, as a plain mapping.

    Raises:
        CaadError: naming ``path``: missing, unreadable, not YAML/JSON, not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise CaadError(path, "config file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaadError(path, f"cannot read config file ({exc})") from exc
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CaadError(path, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise CaadError(path, f"not valid YAML ({getattr(exc, 'problem', None) or exc}{at})") from None
    if not isinstance(data, dict):
        raise CaadError(path, "a run config must be a mapping of run settings (model, split, data, ..., options)")
    if "schema_version" in data:
        return _from_results(data, path)
    return data


def _from_results(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """The run settings of a results file (see the module docstring)."""
    from caadbench.eval.results import read_results

    results = read_results(path)
    settings = dict(results.run_config) or {
        "model": results.model, "split": results.split, "shots": results.shots, "seeds": list(results.seeds),
        "data": results.provenance.dataset_path, "dataset_id": results.dataset,
    }
    settings["options"] = {**dict(results.config), **dict(settings.get("options") or {})}
    return settings


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``; ``options`` are merged key by key (``override`` wins)."""
    out = {**base, **{k: v for k, v in override.items() if k != "options"}}
    options = {**dict(base.get("options") or {}), **dict(override.get("options") or {})}
    if options or "options" in base or "options" in override:
        out["options"] = options
    return out


def run_config_from_dict(values: Mapping[str, Any], where: str | Path = "run config") -> RunConfig:
    """A :class:`RunConfig` from settings (a config file's, merged with flags).

    Raises:
        CaadError: a missing ``model`` / ``split``, an unknown key (naming the closest valid one), a value of the
            wrong type, or an ``options`` entry that is not a model option of ``model`` (closest valid one named).
    """
    where = str(where)
    values = dict(values)
    options = values.pop("options", None) or {}
    if not isinstance(options, Mapping):
        raise CaadError(where, f"'options' must be a mapping of model options, got {options!r}")
    try:
        checked = check_options(RunConfig, values, where, what="run setting", skip=NOT_IN_FILES)
    except ModelError as exc:
        raise CaadError(exc.where, exc.problem) from None
    missing = [k for k in REQUIRED if checked.get(k) is None]
    if missing:
        raise CaadError(where, f"missing {' and '.join(missing)}: pass --{missing[0]} or set it in a --config file")
    from caadbench.models import get_model_spec

    spec = get_model_spec(checked["model"])
    options = check_options(spec.cls.config_cls, dict(options), f"{where}: model {spec.name}")
    for key in TOP_LEVEL_MODEL_OPTIONS:  # one place for each: the run setting wins over a copy under options
        value = options.pop(key, None)
        if checked.get(key) is None and value is not None:
            checked[key] = value
    checked["options"] = options
    return RunConfig(**checked)


def run_config_to_dict(cfg: RunConfig) -> dict[str, Any]:
    """The settings of ``cfg`` as a JSON-ready mapping (the results' ``run_config``; readable by
    :func:`run_config_from_dict`)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        if f.name in NOT_IN_FILES:
            continue
        value = getattr(cfg, f.name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Mapping):
            value = {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()}
        out[f.name] = value
    return out


__all__ = ["merge", "read_config_file", "run_config_from_dict", "run_config_to_dict"]
