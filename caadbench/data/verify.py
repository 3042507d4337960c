"""Verify a shard directory (local or a URL) against its manifest: hashes, sizes, per-shard samples, missing
shards and, for a local directory, extra ones (a URL cannot be listed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from caadbench.data.location import Location
from caadbench.data.manifest import MANIFEST
from caadbench.data.selection import read_set, shard_urls
from caadbench.data.shards import MEMBERS, iter_records, read_shard
from caadbench.errors import ShardError
from caadbench.utils.progress import progress as progress_bar


@dataclass
class VerifyReport:
    """What :func:`verify_shards` checked.

    Attributes:
        root: the shard directory.
        shards: number of shards checked.
        samples: records read across all shards.
        bytes: bytes hashed.
        problems: ``(shard path, what differs)`` for every mismatch found (empty when everything matches).
    """

    root: Location
    shards: int = 0
    samples: int = 0
    bytes: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_shards(root: str | Path | Location, *, progress: bool = False) -> VerifyReport:
    """Check every shard of ``root`` and collect the problems instead of raising on the first.

    ``root`` may also be shard URLs naming whole parts of a set (:mod:`caadbench.data.selection`): their shards are
    checked, and the set's other shards are not counted as extra.

    Raises:
        ShardError: only for a missing or unreadable ``index.json`` (nothing can be checked without it).
    """
    whole = shard_urls(root) is None
    root, manifest = read_set(root)
    report = VerifyReport(root)
    for entry in progress_bar(manifest.shards, desc="verify", unit="shard", enabled=progress):
        where = root / entry.path
        report.shards += 1
        try:
            data = read_shard(root, entry)
            report.bytes += len(data)
            keys = []
            for key, members in iter_records(data, where):
                if set(members) != set(MEMBERS):
                    raise ShardError(where, f"sample {key!r} has members {sorted(members)}, expected "
                                            f"{list(MEMBERS)}")
                keys.append(key)
            report.samples += len(keys)
            if len(keys) != entry.samples:
                raise ShardError(where, f"holds {len(keys)} samples, index.json says {entry.samples}")
            if tuple(keys) != entry.keys:
                raise ShardError(where, "sample keys differ from those listed in index.json")
        except ShardError as exc:
            report.problems.append((str(exc.where), exc.problem))
    if root.is_local and whole:
        listed = {e.path for e in manifest.shards}
        for path in sorted(root.path.rglob("*.tar")):
            rel = path.relative_to(root.path).as_posix()
            if rel not in listed:
                report.problems.append((str(path), "extra shard not listed in index.json"))
    for name, split in manifest.splits.items():
        for part, info in split.parts.items():
            counted = sum(e.samples for e in manifest.shards if e.split == name and e.part == part)
            if counted != info.samples:
                report.problems.append((str(root / MANIFEST), f"split {name} part {part}: shards hold "
                                        f"{counted} samples, the manifest says {info.samples}"))
    return report


def verify_shards(root: str | Path | Location, *, progress: bool = False) -> VerifyReport:
    """Re-hash every shard and check sizes, per-shard sample counts, missing and extra shards.

    Returns:
        The report of a directory in which everything matches.

    Raises:
        ShardError: naming the first shard that differs and what differs (plus how many other problems).
    """
    report = check_shards(root, progress=progress)
    if report.problems:
        where, problem = report.problems[0]
        more = len(report.problems) - 1
        raise ShardError(where, problem + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""))
    return report
