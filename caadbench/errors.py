"""User-facing errors.

Every failure caused by bad input is a :class:`CaadError`: it names the file (or object) at fault and the
problem in one line. The CLI prints ``error: <where>: <problem>`` and exits non-zero; library callers can
catch the subclasses.
"""

from __future__ import annotations

from pathlib import Path


class CaadError(Exception):
    """A bad-input failure that names where it happened and what is wrong.

    Args:
        where: the file, directory or object at fault (``None`` when there is no such thing).
        problem: what is wrong, as one sentence without a trailing period.
    """

    def __init__(self, where: str | Path | None, problem: str) -> None:
        self.where = None if where is None else str(where)
        self.problem = " ".join(str(problem).split())
        super().__init__(str(self))

    def __str__(self) -> str:
        return self.problem if self.where is None else f"{self.where}: {self.problem}"

    def __reduce__(self):
        """Rebuild from ``(where, problem)`` so errors survive crossing process boundaries."""
        return (type(self), (self.where, self.problem))


class DataError(CaadError):
    """A malformed source: unreadable image, bad mask, bad key, bad rulebook, empty source."""


class SplitError(CaadError):
    """A split cannot be built as the protocol requires."""


class ShardError(CaadError):
    """A shard or manifest is missing, truncated, altered or inconsistent."""


class ModelError(CaadError):
    """An unknown model or variant, a bad config, or a checkpoint that does not fit."""


class WeightsUnavailable(ModelError):
    """Pretrained weights cannot be had (offline, unknown tag, missing file)."""


class ResultsError(CaadError):
    """A results file of another schema version or with missing fields."""


def check_at_least(value: int, what: str, minimum: int = 1, error: type[CaadError] = CaadError) -> int:
    """``value`` as an int when it is at least ``minimum``, before any work uses it.

    Raises:
        CaadError: (or ``error``) naming ``what`` (the option, e.g. ``--workers``) and the bound.
    """
    if int(value) < minimum:
        raise error(what, f"must be at least {minimum}, got {value}")
    return int(value)
