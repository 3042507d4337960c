"""Model options as data: names, types, defaults and descriptions of a config dataclass, and checking values.

The description of an option has one owner: the ``Attributes:`` section of the Google-style docstring of the
config dataclass that declares it (or of a base class), e.g.::

    Attributes:
        csr_blocks: K, the first K image blocks get a residual adapter per branch.
        w_bce, w_pixel: image BCE and patch BCE (stage 2).

``caadbench models --options NAME`` prints :func:`describe_options`; :func:`check_options` is what every config
built from a dict (``--option``, run configs, checkpoints, results) goes through: unknown names are refused
naming the closest valid one, and values are converted to the field's type where that is unambiguous
(``"1e-3"`` from YAML to a float, ``[2, 3]`` to a tuple) or refused naming the option and the expected type.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Any

from caadbench.errors import ModelError

_ROLE = re.compile(r":(?:func|class|meth|attr|mod|data):`~?([^`]+)`")


def plain(text: str) -> str:
    """Docstring markup as terminal text: ``:func:`~a.b.c``` → ``c``, double backquotes → single ones."""
    text = _ROLE.sub(lambda m: f"`{m.group(1).rsplit('.', 1)[-1] if m.group(0).count('~') else m.group(1)}`", text)
    return text.replace("``", "`")


_ENTRY = re.compile(r"^(\s*)([A-Za-z_][A-Za-z0-9_]*(?:\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*)\s*:\s*(.*)$")
_SECTION = re.compile(r"^\s*[A-Z][A-Za-z ]*:\s*$")


@dataclass(frozen=True)
class OptionInfo:
    """One option of a model config.

    Attributes:
        name: the field name (what ``--option name=value`` sets).
        type: the annotation as text (``int``, ``str | None``, ``tuple[int, ...]``).
        default: the value a model of the variant gets when the option is not given.
        description: the first sentence-ish line of the docstring entry, continuation lines joined.
        owner: the config class whose docstring documents it.
    """

    name: str
    type: str
    default: Any
    description: str
    owner: str


def docstring_attributes(cls: type) -> dict[str, str]:
    """``{name: description}`` from the ``Attributes:`` section of ``cls``'s own docstring.

    An entry ``a, b: text`` documents both ``a`` and ``b``; continuation lines (indented deeper than the entry)
    are joined to it.
    """
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    out: dict[str, str] = {}
    in_section, indent, current = False, None, None
    for line in doc.splitlines():
        if line.strip() == "Attributes:":
            in_section, indent, current = True, None, None
            continue
        if not in_section:
            continue
        if not line.strip():
            continue
        if _SECTION.match(line) and (indent is None or len(line) - len(line.lstrip()) < indent):
            break
        match = _ENTRY.match(line)
        depth = len(line) - len(line.lstrip())
        if match and (indent is None or depth == indent):
            indent = depth
            current = [n.strip() for n in match.group(2).split(",")]
            for name in current:
                out[name] = match.group(3).strip()
        elif current and indent is not None and depth > indent:
            for name in current:
                out[name] = f"{out[name]} {line.strip()}".strip()
        elif indent is not None and depth <= indent:
            break
    return out


def _type_text(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "").replace("NoneType", "None")


def config_options(config_cls: type, overrides: Mapping[str, Any] | None = None) -> list[OptionInfo]:
    """Every option of ``config_cls`` in declaration order, with the variant's ``overrides`` as defaults.

    Raises:
        ModelError: an option no docstring in the class hierarchy describes (a documentation bug).
    """
    described: dict[str, tuple[str, str]] = {}
    for klass in reversed(config_cls.__mro__):
        for name, text in docstring_attributes(klass).items():
            described[name] = (text, klass.__name__)
    hints = typing.get_type_hints(config_cls)
    out = []
    for f in dataclasses.fields(config_cls):
        if f.name not in described:
            raise ModelError(config_cls.__name__, f"option {f.name!r} has no description in any docstring's "
                                                  "Attributes section")
        if overrides and f.name in overrides:
            default = overrides[f.name]
        elif f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = None
        text, owner = described[f.name]
        out.append(OptionInfo(f.name, _type_text(hints[f.name]), default, plain(text), owner))
    return out


def closest(name: str, known: list[str] | tuple[str, ...] | set[str]) -> str | None:
    """The known name closest to ``name`` (difflib), or ``None`` when nothing is close."""
    found = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return found[0] if found else None


def unknown_name_problem(name: str, known: list[str] | tuple[str, ...] | set[str], what: str = "option") -> str:
    """``unknown option 'lrr' (did you mean 'lr'?)`` — the one wording for an unknown name."""
    guess = closest(name, known)
    hint = f" (did you mean {guess!r}?)" if guess else f" (known: {', '.join(sorted(known))})"
    return f"unknown {what} {name!r}{hint}"


def _convert(value: Any, tp: Any, where: str, name: str) -> Any:
    """``value`` as an instance of annotation ``tp`` or a :class:`ModelError` naming the option."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.strip().lower() in ("none", "null") and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where, name)
            except ModelError as exc:
                errors.append(exc)
        raise errors[0] if errors else ModelError(where, f"option {name!r} cannot be {value!r}")

    def fail(expected: str):
        raise ModelError(where, f"{name!r} expects {expected}, got {value!r}")

    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "on", "off"):
            return value.strip().lower() in ("true", "yes", "on")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        fail("true or false")
    if tp is int:
        if isinstance(value, bool):
            fail("an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        fail("an integer")
    if tp is float:
        if isinstance(value, bool):
            fail("a number")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())  # YAML 1.1 reads 1e-3 (no dot) as a string
            except ValueError:
                pass
        fail("a number")
    if tp is str:
        if isinstance(value, str):
            return value
        fail("a string")
    if tp is Path:
        if isinstance(value, (str, Path)) and str(value):
            return Path(value)
        fail("a path")
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [v for v in re.split(r"[,\s]+", value.strip()) if v]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            fail(f"a list ({_type_text(tp)})")
        args = [a for a in typing.get_args(tp) if a is not Ellipsis] or [Any]
        items = [_convert(v, args[0] if len(args) == 1 else args[i], where, name) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            fail("a mapping of names to values")
        return dict(value)
    return value


def check_options(config_cls: type, values: Mapping[str, Any], where: str | None = None, what: str = "option",
                  skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """``values`` checked against ``config_cls``'s fields: names known, values of the field's type.

    Args:
        config_cls: a dataclass.
        values: ``{field name: value}``.
        where: named in errors (default: the class name).
        what: what a name is called in errors (``option``, ``key``).
        skip: fields that may not be set this way.

    Raises:
        ModelError: naming ``where`` and the first unknown name (with the closest valid one) or the first value of
            the wrong type.
    """
    where = where or config_cls.__name__
    hints = typing.get_type_hints(config_cls)
    known = [f.name for f in dataclasses.fields(config_cls) if f.name not in skip]
    out = {}
    for name, value in values.items():
        if name not in known:
            raise ModelError(where, unknown_name_problem(str(name), known, what))
        out[name] = _convert(value, hints[name], where, name)
    return out


__all__ = ["OptionInfo", "check_options", "closest", "config_options", "docstring_attributes",
           "unknown_name_problem"]
