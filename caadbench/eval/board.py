"""Regenerate a whole leaderboard from its specification: every row's run, then the tables.

A board spec (YAML, ``leaderboards/board.yaml`` for the default board) is data: ``defaults`` (run settings every
row shares: data, split, backbone, pretrained, ...) and ``rows`` (one mapping of run settings each: model,
shots, seeds, options, ...), merged as ``caadbench run --config`` merges a file with flags. :func:`run_board` runs
every row into one results directory, skips a row whose results file there was produced by the same settings at
the same commit (so a killed regeneration resumes where it stopped), and reports each row's wall and CPU time.
"""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caadbench.errors import CaadError
from caadbench.eval.provenance import git_state
from caadbench.eval.runconfig import merge, run_config_from_dict, run_config_to_dict
from caadbench.eval.runner import RunConfig, run
from caadbench.models import Learning, get_model_spec

logger = logging.getLogger(__name__)

SPEC_KEYS = {"defaults", "rows", "description"}


@dataclass
class RowTiming:
    """One row of a regeneration: its model, whether it ran, and its wall and CPU seconds."""

    model: str
    path: Path | None
    ran: bool
    wall_s: float
    cpu_s: float


def read_board_spec(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(defaults, rows)`` of a board spec file.

    Raises:
        CaadError: naming the file: unreadable, not YAML, unknown top-level keys, rows not a list of mappings.
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CaadError(path, f"cannot read the board spec ({exc})") from exc
    except yaml.YAMLError as exc:
        raise CaadError(path, f"not valid YAML ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list) or not data["rows"]:
        raise CaadError(path, "a board spec is a mapping with 'rows': a non-empty list of run settings")
    unknown = sorted(set(data) - SPEC_KEYS)
    if unknown:
        raise CaadError(path, f"unknown board spec key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(SPEC_KEYS))})")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, Mapping) or not all(isinstance(r, Mapping) for r in data["rows"]):
        raise CaadError(path, "'defaults' and every row must be mappings of run settings")
    return dict(defaults), [dict(r) for r in data["rows"]]


def board_configs(path: str | Path, out: Path, data: str | None = None) -> list[RunConfig]:
    """Every row of the spec as a checked :class:`RunConfig` writing into ``out`` (``data`` overrides the
    spec's dataset path). Fails on the first bad row, before any run."""
    defaults, rows = read_board_spec(path)
    configs = []
    for i, row in enumerate(rows):
        # the board trains every row: it is what the shipped checkpoints are checked against
        settings = merge(defaults, row) | {"out": str(out), "retrain": True} | ({"data": data} if data else {})
        configs.append(run_config_from_dict(settings, f"{path} (row {i + 1}: {row.get('model', '?')})"))
    return configs


def _done(cfg: RunConfig, commit: str) -> Path | None:
    """The results file in ``cfg.out`` produced by exactly ``cfg`` at ``commit`` (clean tree), else ``None``."""
    from caadbench.eval.results import read_results

    if commit == "unknown":
        return None
    want = run_config_to_dict(cfg)
    for path in sorted(Path(cfg.out).glob("*.json")):
        try:
            res = read_results(path)
        except CaadError:
            continue
        p = res.provenance
        if p.git_commit == commit and not p.git_dirty and res.run_config == want:
            return path
    return None


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_board(configs: list[RunConfig], *, force: bool = False,
              echo: Callable[[str], None] | None = None) -> list[RowTiming]:
    """Run every config (skipping those already done at this commit unless ``force``); return the timings."""
    echo = echo or logger.info
    commit, dirty = git_state()
    if dirty:
        echo("the checkout has uncommitted changes: its results will say so (git_dirty), and none is skipped")
        commit = "unknown"
    timings = []
    for i, cfg in enumerate(configs, 1):
        done = None if force else _done(cfg, commit)
        learning = get_model_spec(cfg.model).make_config(**cfg.options).learning
        fit = f"{cfg.shots}-shot" if learning == Learning.FEW_SHOT else str(learning)
        label = f"[{i}/{len(configs)}] {cfg.model} ({cfg.split}, {fit}, seeds {list(cfg.seeds)})"
        if done is not None:
            echo(f"{label}: done at this commit ({done.name}), skipped")
            timings.append(RowTiming(cfg.model, done, False, 0.0, 0.0))
            continue
        echo(f"{label}: running")
        wall, cpu = time.perf_counter(), _cpu_seconds()
        path = run(cfg)
        timings.append(RowTiming(cfg.model, path, True, time.perf_counter() - wall, _cpu_seconds() - cpu))
        echo(f"{label}: {timings[-1].wall_s:.0f} s wall, {timings[-1].cpu_s:.0f} s CPU -> {path}")
    return timings


__all__ = ["RowTiming", "board_configs", "read_board_spec", "run_board"]
