"""Typed JSON for the results schema: dataclasses to canonical JSON values and back, checking every field.

:func:`to_plain` turns a (nested) value into JSON-ready Python (floats to a fixed number of significant digits,
NaN and infinities as ``None``); :func:`parse_typed` rebuilds a type-annotated dataclass tree from decoded JSON and
refuses a missing or wrongly typed field with a :class:`~caadbench.errors.ResultsError` naming the file and the
field's path (``metrics.i_auroc.std``). Supported annotations: dataclasses, ``list[T]``, ``dict[str, T]``,
``T | None``, ``float`` (``null`` reads as NaN), ``int``, ``bool``, ``str`` and ``Any``.
"""

from __future__ import annotations

import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from caadbench.errors import ResultsError


ADDED_LATER = "added_later"
"""Field metadata key: a field added to a schema after files were written; a file without it reads the default
(``field(default=..., metadata={ADDED_LATER: True})``). Every other field must be present."""


def to_plain(value: Any, digits: int) -> Any:
    """JSON-ready copy of ``value``: floats to ``digits`` significant digits, NaN/inf as ``None``."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        x = float(value)
        return None if not math.isfinite(x) else float(f"{x:.{digits}g}")
    if isinstance(value, Mapping):
        return {str(k): to_plain(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v, digits) for v in value]
    if isinstance(value, np.ndarray):
        return to_plain(value.tolist(), digits)
    return value


def parse_typed(tp: Any, value: Any, path: str | Path, where: str = "") -> Any:
    """Build ``tp`` from decoded JSON ``value``, checking presence and type of every field.

    Raises:
        ResultsError: naming ``path`` and the field (``where``) that is missing or of the wrong type.
    """
    def fail(expected: str):
        shown = json.dumps(value)[:40] if value is not None else "null"
        raise ResultsError(path, f"field {where or '(top level)'}: expected {expected}, got {shown}")

    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return parse_typed(options[0], value, path, where)
    if is_dataclass(tp):
        if not isinstance(value, dict):
            fail(f"an object ({tp.__name__})")
        hints = typing.get_type_hints(tp)
        kwargs = {}
        for f in fields(tp):
            name = f"{where}.{f.name}" if where else f.name
            if f.name not in value:
                if f.metadata.get(ADDED_LATER) and (f.default is not MISSING or f.default_factory is not MISSING):
                    continue  # a field added later with a default: older files stay readable
                raise ResultsError(path, f"missing field {name}")
            kwargs[f.name] = parse_typed(hints[f.name], value[f.name], path, name)
        return tp(**kwargs)
    if origin is list:
        if not isinstance(value, list):
            fail("a list")
        (item,) = typing.get_args(tp)
        return [parse_typed(item, v, path, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            fail("an object")
        _, item = typing.get_args(tp)
        return {k: parse_typed(item, v, path, f"{where}.{k}") for k, v in value.items()}
    if tp is float:
        if value is None:
            return math.nan
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail("a number")
        return float(value)
    if tp is bool:
        if not isinstance(value, bool):
            fail("true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail("an integer")
        return value
    if tp is str:
        if not isinstance(value, str):
            fail("a string")
        return value
    raise TypeError(f"unsupported schema type {tp!r}")  # pragma: no cover - a schema bug, not bad input


__all__ = ["parse_typed", "to_plain"]
