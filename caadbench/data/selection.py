"""Shard URLs as ``--data``: a webdataset pattern (``set/cc/test-{000000..000006}.tar``) names whole parts of a set.

A value whose expansion names ``.tar`` files is read as webdataset reads its URLs
(``webdataset.shardlists.expand_urls``: ``::``-separated lists, ``WDS_`` environment variables, brace ranges).
Every shard named must lie in one set directory as ``build-shards`` lays it out, ``<set>/<split>/<part>-NNNNNN.tar``,
and be listed in that set's ``index.json``, which is read from ``<set>/``. caadbench defines its metrics, support
sets and protocols on whole parts, so the set is seen through a view of its manifest that keeps exactly the parts
whose shards are all named (``cc/test-{...}.tar`` → split ``cc`` with its ``test`` part only); a pattern naming
some but not all shards of a part is refused with the pattern that names them all.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from webdataset.shardlists import expand_urls

from caadbench.data.location import Location
from caadbench.data.manifest import MANIFEST, Manifest
from caadbench.data.shards import read_manifest
from caadbench.errors import ShardError


def shard_urls(value: str | Path | Location) -> list[str] | None:
    """The shard URLs a ``--data`` value names, expanded as webdataset expands them, or ``None`` for a directory."""
    if isinstance(value, Location):
        return None
    urls = expand_urls(str(value))
    return urls if urls and all(u.endswith(".tar") for u in urls) else None


def _split_url(url: str) -> tuple[str, str]:
    """``(set directory with its trailing slash, "<split>/<file>.tar")`` of one shard URL."""
    parts = url.rsplit("/", 2)
    if len(parts) == 2:
        parts = [".", *parts]
    if len(parts) != 3 or not parts[0]:
        raise ShardError(url, "a shard URL must lie in a set directory as <set>/<split>/<part>-NNNNNN.tar")
    return parts[0] + "/", f"{parts[1]}/{parts[2]}"


def restrict(manifest: Manifest, rels: set[str], pattern: str, root: Location) -> Manifest:
    """The view of ``manifest`` holding the parts whose shards ``rels`` all name.

    Raises:
        ShardError: naming ``pattern`` when a shard is not in the manifest or only some shards of a part are named.
    """
    listed = {e.path for e in manifest.shards}
    unknown = sorted(rels - listed)
    if unknown:
        raise ShardError(pattern, f"{unknown[0]} is not a shard listed in {root / MANIFEST}"
                                  + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""))
    splits, counts = {}, {}
    for name, split in manifest.splits.items():
        kept = {}
        for part, info in split.parts.items():
            named = [p for p in info.shards if p in rels]
            if named and len(named) < len(info.shards):
                every = root / f"{name}/{part}-{{{0:06d}..{len(info.shards) - 1:06d}}}.tar"
                raise ShardError(pattern, f"names {len(named)} of the {len(info.shards)} shards of {name}/{part}; "
                                          f"caadbench reads whole parts: name them all ({every}) or pass the set "
                                          f"directory {root}")
            if named:
                kept[part] = info
        if kept:
            splits[name] = dataclasses.replace(split, parts=kept)
            counts[name] = {part: c for part, c in manifest.counts.get(name, {}).items() if part in kept}
    shards = tuple(e for e in manifest.shards if e.split in splits and e.part in splits[e.split].parts)
    return dataclasses.replace(manifest, splits=splits, counts=counts, shards=shards,
                               num_samples=len({k for e in shards for k in e.keys}))


def read_set(value: str | Path | Location) -> tuple[Location, Manifest]:
    """The set directory and the manifest a ``--data`` value names: a directory (or its URL) and its whole
    manifest, or for shard URLs their set and the view of the parts they name (see the module docstring).

    Raises:
        ShardError: an unreadable manifest, shards of several sets or outside a set's layout, shards the manifest
            does not list, or a part named in part.
    """
    urls = shard_urls(value)
    if urls is None:
        return Location.of(value), read_manifest(value)
    located = [_split_url(u) for u in urls]
    bases = sorted({base for base, _ in located})
    if len(bases) > 1:
        raise ShardError(value, f"names shards of {len(bases)} set directories ({', '.join(bases[:3])}); name one "
                                "set's shards")
    root = Location.of(bases[0])
    return root, restrict(read_manifest(root), {rel for _, rel in located}, str(value), root)


__all__ = ["read_set", "restrict", "shard_urls"]
