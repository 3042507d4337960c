"""The shard manifest (``index.json``) as typed, read-only objects.

:meth:`Manifest.from_dict` checks the presence and type of every field the code reads and refuses shard paths
that could leave the shard directory; :meth:`Manifest.to_dict` gives back the JSON form that
:func:`~caadbench.data.shards.build_shards` writes. The field list is documented in ``docs/data.md``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from caadbench.errors import ShardError

FORMAT = "caadbench-shards"
FORMAT_VERSION = 1
MANIFEST = "index.json"

_SHARD_PATH = re.compile(r"^(?:[A-Za-z0-9_-]+/)*[A-Za-z0-9_-]+\.tar$")
"""Relative POSIX paths of plain names: no ``..``, no absolute path, nothing a shell or URL would reinterpret."""


@dataclass(frozen=True)
class LabelCounts:
    normal: int
    anomalous: int


@dataclass(frozen=True)
class PartCounts:
    """Counts of one split's part: samples, by label, by subject (and label) and by context."""

    samples: int
    label: LabelCounts
    subject: dict[str, LabelCounts]
    context: dict[str, int]


@dataclass(frozen=True)
class ShardEntry:
    """One tar: ``path`` relative to the shard directory, its part, size, sha256 and keys in tar order."""

    path: str
    split: str
    part: str
    samples: int
    bytes: int
    sha256: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class PartInfo:
    """A split's part: its sample count and its shard paths in reading order."""

    samples: int
    shards: tuple[str, ...]


@dataclass(frozen=True)
class SplitInfo:
    """One split: the protocol's ``definition`` (protocol-specific, see ``docs/data.md``), the k-shot support
    keys ``support[str(k)][str(seed)][subject]`` and the parts."""

    definition: dict[str, Any]
    support: dict[str, dict[str, dict[str, list[str]]]]
    parts: dict[str, PartInfo]


@dataclass(frozen=True)
class Manifest:
    """The parsed ``index.json`` of a shard directory (format version :data:`FORMAT_VERSION`)."""

    created_by: str
    kind: str
    source: dict[str, Any]
    rulebook: dict[str, Any] | None
    fingerprint: str
    seed: int
    image_size: tuple[int, int] | None
    image_sizes: dict[str, int]
    num_samples: int
    max_shard_samples: int
    max_shard_bytes: int
    members: tuple[str, ...]
    splits: dict[str, SplitInfo]
    counts: dict[str, dict[str, PartCounts]]
    shards: tuple[ShardEntry, ...]

    def part_shards(self, split: str, part: str) -> list[ShardEntry]:
        """The shard entries of a split's part in reading order (``split`` and ``part`` must exist)."""
        by_path = {e.path: e for e in self.shards}
        return [by_path[p] for p in self.splits[split].parts[part].shards]

    @property
    def total_bytes(self) -> int:
        return sum(e.bytes for e in self.shards)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (lists for tuples), as written to ``index.json``."""
        return json.loads(json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, **asdict(self)}))

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Manifest:
        """Build from decoded JSON.

        Raises:
            ShardError: naming ``where`` when the format or version differs, or a field is missing or mistyped.
        """
        found = data.get("format") if isinstance(data, dict) else None
        if found != FORMAT:
            raise ShardError(where, f"not a caadbench shard manifest (format {found!r}, expected {FORMAT!r})")
        if data.get("format_version") != FORMAT_VERSION:
            raise ShardError(where, f"manifest format version {data.get('format_version')!r} is not supported "
                                    f"(this caadbench reads version {FORMAT_VERSION})")
        r = _Reader(where)
        shards = tuple(_shard(r, e, f"shards[{i}]") for i, e in enumerate(r.field(data, "shards", list)))
        splits = {name: _split(r, s, f"splits.{name}") for name, s in r.field(data, "splits", dict).items()}
        listed = {e.path for e in shards}
        for name, split in splits.items():
            for part, info in split.parts.items():
                for path in info.shards:
                    if path not in listed:
                        raise ShardError(where, f"split {name} part {part} lists shard {path!r}, which is not "
                                                f"in the manifest's shards")
        by_split = r.field(data, "counts", dict)
        counts = {name: {part: _counts(r, c, f"counts.{name}.{part}")
                         for part, c in r.field(by_split, name, dict, "counts.").items()} for name in by_split}
        size = r.field(data, "image_size", list, optional=True)
        if size is not None and (len(size) != 2 or not all(_is_int(v) for v in size)):
            raise ShardError(where, f"manifest field image_size should be [height, width], got {size!r}")
        return cls(
            created_by=r.field(data, "created_by", str),
            kind=r.field(data, "kind", str),
            source=r.field(data, "source", dict),
            rulebook=r.field(data, "rulebook", dict, optional=True),
            fingerprint=r.field(data, "fingerprint", str),
            seed=r.field(data, "seed", int),
            image_size=None if size is None else (int(size[0]), int(size[1])),
            image_sizes=r.mapping(data, "image_sizes", int),
            num_samples=r.field(data, "num_samples", int),
            max_shard_samples=r.field(data, "max_shard_samples", int),
            max_shard_bytes=r.field(data, "max_shard_bytes", int),
            members=tuple(r.strings(data, "members")),
            splits=splits,
            counts=counts,
            shards=shards,
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Reader:
    """Typed field access that fails with one line naming the manifest and the field."""

    _NAMES = {int: "an integer", str: "a string", dict: "an object", list: "a list"}

    def __init__(self, where: str) -> None:
        self.where = where

    def field(self, obj: Mapping[str, Any], name: str, kind: type, prefix: str = "", optional: bool = False) -> Any:
        if name not in obj:
            raise ShardError(self.where, f"manifest lacks the field {prefix}{name!r}")
        value = obj[name]
        if value is None and optional:
            return None
        if not (_is_int(value) if kind is int else isinstance(value, kind)):
            shown = json.dumps(value)[:40]
            raise ShardError(self.where, f"manifest field {prefix}{name} should be {self._NAMES[kind]}, got {shown}")
        return value

    def strings(self, obj: Mapping[str, Any], name: str, prefix: str = "") -> list[str]:
        values = self.field(obj, name, list, prefix)
        if not all(isinstance(v, str) for v in values):
            raise ShardError(self.where, f"manifest field {prefix}{name} should be a list of strings")
        return values

    def mapping(self, obj: Mapping[str, Any], name: str, kind: type, prefix: str = "",
                convert: Callable[[Any, str], Any] | None = None) -> dict[str, Any]:
        values = self.field(obj, name, dict, prefix)
        if convert is not None:
            return {k: convert(v, f"{prefix}{name}.{k}") for k, v in values.items()}
        return {k: self.field(values, k, kind, f"{prefix}{name}.") for k in values}


def _shard(r: _Reader, e: Any, at: str) -> ShardEntry:
    if not isinstance(e, dict):
        raise ShardError(r.where, f"manifest field {at} should be an object")
    p = f"{at}."
    path = r.field(e, "path", str, p)
    if not _SHARD_PATH.match(path):
        raise ShardError(r.where, f"manifest field {at}.path {path!r} is not a relative path of plain names "
                                  "ending in .tar")
    return ShardEntry(path=path, split=r.field(e, "split", str, p), part=r.field(e, "part", str, p),
                      samples=r.field(e, "samples", int, p), bytes=r.field(e, "bytes", int, p),
                      sha256=r.field(e, "sha256", str, p), keys=tuple(r.strings(e, "keys", p)))


def _split(r: _Reader, s: Any, at: str) -> SplitInfo:
    if not isinstance(s, dict):
        raise ShardError(r.where, f"manifest field {at} should be an object")
    p = f"{at}."
    parts = {part: PartInfo(samples=r.field(info, "samples", int, f"{p}parts.{part}."),
                            shards=tuple(r.strings(info, "shards", f"{p}parts.{part}.")))
             for part, info in r.field(s, "parts", dict, p).items()}
    return SplitInfo(definition=r.field(s, "definition", dict, p), support=r.field(s, "support", dict, p),
                     parts=parts)


def _counts(r: _Reader, c: Any, at: str) -> PartCounts:
    if not isinstance(c, dict):
        raise ShardError(r.where, f"manifest field {at} should be an object")
    p = f"{at}."

    def labels(value: Any, name: str) -> LabelCounts:
        if not isinstance(value, dict):
            raise ShardError(r.where, f"manifest field {name} should be an object")
        return LabelCounts(r.field(value, "normal", int, f"{name}."), r.field(value, "anomalous", int, f"{name}."))

    return PartCounts(samples=r.field(c, "samples", int, p), label=labels(r.field(c, "label", dict, p), f"{p}label"),
                      subject=r.mapping(c, "subject", dict, p, convert=labels), context=r.mapping(c, "context", int, p))
