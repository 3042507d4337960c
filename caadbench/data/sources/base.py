"""The source interface: enumerate cheap sample specs, then materialise each spec into a :class:`Sample`.

Splitting needs only metadata, so a source first lists :class:`SampleSpec` records (key, subject, context,
label, ...) without touching pixels. Shard building then calls :meth:`Source.load` on each spec in worker
processes, so a source object must be picklable and ``load`` must be deterministic: the same spec gives the
same sample, in any process, in any order.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from caadbench.data.sample import Sample, validate_key
from caadbench.errors import DataError

SourceKind = Literal["contextual", "industrial"]


@dataclass(frozen=True)
class SampleSpec:
    """Everything about a sample except its pixels.

    Attributes:
        key: the sample key (validated by the source).
        subject: class name.
        context: context name (``"-"`` for industrial sets).
        label: 0 normal, 1 anomalous.
        source: dataset and original path / generator id, for provenance and error messages.
        defect: defect type (industrial).
        mask_kind: ``"subject"`` or ``"defect"``.
        origin_split: for industrial sets, the split the dataset itself assigns (``"train"``/``"test"``).
        payload: whatever :meth:`Source.load` needs (paths, generator parameters); JSON-serialisable.
    """

    key: str
    subject: str
    context: str
    label: int
    source: str
    defect: str | None = None
    mask_kind: Literal["subject", "defect"] = "subject"
    origin_split: str | None = None
    payload: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_specs(specs: Sequence[SampleSpec], where: str | Path) -> list[SampleSpec]:
    """Return ``specs`` as a list after refusing an empty source, invalid (e.g. dotted) keys, duplicate keys and
    labels other than 0/1 — the one check every source listing and every split goes through.

    Raises:
        DataError: naming ``where`` (empty source) or the spec's own ``source`` (its file) and the problem.
    """
    if not specs:
        raise DataError(where, "empty source: no samples found")
    seen: dict[str, SampleSpec] = {}
    for spec in specs:
        validate_key(spec.key, spec.source or str(where))
        if spec.key in seen:
            raise DataError(spec.source or where, f"duplicate sample key {spec.key!r} (also used by "
                                                  f"{seen[spec.key].source}); rename one of them")
        seen[spec.key] = spec
        if spec.label not in (0, 1):
            raise DataError(spec.source or where, f"label must be 0 or 1, got {spec.label!r}")
    return list(specs)


class Source(ABC):
    """A dataset reader. Subclasses register with :func:`register_source`.

    Attributes:
        name: registry name (``synthetic``, ``composite``, ``caad``, ``mvtec``, ``visa``, ``folder``).
        kind: ``contextual`` sets are split cc/ic/cs; ``industrial`` sets keep their own train-good/test split.
    """

    name: ClassVar[str] = ""
    kind: ClassVar[SourceKind] = "contextual"

    @abstractmethod
    def specs(self) -> list[SampleSpec]:
        """All samples' metadata, in a deterministic order.

        Raises:
            DataError: naming the file at fault (malformed annotation, duplicate key, empty source, ...).
        """

    @abstractmethod
    def load(self, spec: SampleSpec) -> Sample:
        """Materialise one spec (deterministically). The sample must pass :meth:`Sample.validate`.

        Raises:
            DataError: naming the file at fault (unreadable image, missing or bad mask, size mismatch, ...).
        """

    def rulebook(self) -> dict[str, Any] | None:
        """The compatibility rulebook as JSON data (contextual sources), stored in the manifest."""
        return None

    def describe(self) -> dict[str, Any]:
        """JSON description of the source's parameters (root, seed, size, ...), stored in the manifest."""
        return {"name": self.name, "kind": self.kind}

    def fingerprint(self, specs: list[SampleSpec] | None = None) -> str:
        """sha256 over the description, rulebook and every spec: equal fingerprints mean equal inputs."""
        digest = hashlib.sha256()
        digest.update(json.dumps(self.describe(), sort_keys=True, default=str).encode())
        digest.update(json.dumps(self.rulebook(), sort_keys=True, default=str).encode())
        for spec in specs if specs is not None else self.specs():
            digest.update(json.dumps(spec.to_dict(), sort_keys=True, default=str).encode())
        return digest.hexdigest()


_SOURCES: dict[str, type[Source]] = {}


def register_source(name: str) -> Callable[[type[Source]], type[Source]]:
    """Class decorator registering a source under ``name``."""

    def decorate(cls: type[Source]) -> type[Source]:
        cls.name = name
        _SOURCES[name] = cls
        return cls

    return decorate


def get_source_class(name: str) -> type[Source]:
    """The source class registered as ``name``.

    Raises:
        DataError: unknown source name.
    """
    from caadbench.data import sources as _all  # noqa: F401  (imports every built-in source)

    if name not in _SOURCES:
        raise DataError(name, f"unknown source (known: {', '.join(sorted(_SOURCES))})")
    return _SOURCES[name]


def source_names() -> list[str]:
    from caadbench.data import sources as _all  # noqa: F401

    return sorted(_SOURCES)
