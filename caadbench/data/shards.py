"""WebDataset shards: build them reproducibly from a source, read their manifest and records back.

Layout of a shard directory (see ``docs/data.md``)::

    index.json                      the manifest, written last
    <split>/<part>-000000.tar       WebDataset tars: <key>.image.png, <key>.json, <key>.mask.png per sample

Every sample is materialised once (``source.load`` → ``Sample.validate`` → PNG/JSON bytes) in a process pool
and staged on disk; the tars are then written by ``webdataset.TarWriter`` in one process, in sorted key order
with fixed tar headers, so the same input and seed give byte-identical shards and manifest whatever the worker
count. Reading goes through :class:`~caadbench.data.location.Location`, so the directory may be a URL.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing as mp
import os
import shutil
import tarfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import webdataset as wds

from caadbench import __version__, errors
from caadbench.data.imageio import decode_png, encode_png
from caadbench.data.location import Location
from caadbench.data.manifest import FORMAT, FORMAT_VERSION, MANIFEST, Manifest, ShardEntry
from caadbench.data.rulebook import Rulebook
from caadbench.data.sample import BINARISED_PIXELS, Sample
from caadbench.data.sources.base import SampleSpec, Source
from caadbench.data.splits import (DEFAULT_SHOTS, DEFAULT_SUPPORT_SEEDS, PARTS, Split, make_splits,
                                   part_counts)
from caadbench.errors import CaadError, DataError, ShardError, check_at_least
from caadbench.paths import DEFAULT_DATA
from caadbench.utils.atomic import atomic_directory
from caadbench.utils.hashing import sha256_file
from caadbench.utils.progress import progress as progress_bar

MAX_SHARD_SAMPLES = 256
MAX_SHARD_BYTES = 64 * 1024 * 1024
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
MEMBERS = ("image.png", "json", "mask.png")
"""Member extensions of one sample, in the order they are written (sorted)."""

TAR_HEADER = {"mtime": 0, "user": "", "group": "", "mode": 0o444}
"""Fixed tar header fields given to ``webdataset.TarWriter`` (uid and gid are tarfile's default 0)."""
_STAGING = ".staging"


# ----------------------------------------------------------------------------------------------- encoding


def encode_sample(sample: Sample) -> dict[str, bytes]:
    """The shard members of one sample: ``{"image.png": ..., "json": ..., "mask.png": ...}`` (deterministic)."""
    meta = json.dumps(sample.metadata(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return {"image.png": encode_png(sample.image), "json": meta.encode("utf-8"), "mask.png": encode_png(sample.mask)}


def decode_record(key: str, members: dict[str, bytes], where: str) -> Sample:
    """Rebuild a :class:`Sample` from the members of one shard record.

    Raises:
        ShardError: naming ``where`` (``<shard>:<key>``) when a member is missing or undecodable.
    """
    missing = [m for m in MEMBERS if m not in members]
    if missing:
        raise ShardError(where, f"sample {key!r} lacks member(s) {', '.join(missing)}")
    try:
        meta = json.loads(members["json"].decode("utf-8"))
        image = decode_png(members["image.png"], f"{where}.image.png")
        mask = decode_png(members["mask.png"], f"{where}.mask.png")
        sample = Sample(key=key, image=image, mask=mask, subject=meta["subject"], context=meta["context"],
                        label=int(meta["label"]), source=meta["source"], defect=meta.get("defect"),
                        mask_kind=meta.get("mask_kind", "subject"), extra=meta.get("extra", {}),
                        mask_missing=bool(meta.get("mask_missing", False)))
        return sample.validate(where)
    except (ValueError, KeyError, TypeError) as exc:
        raise ShardError(where, f"corrupt record for sample {key!r} ({type(exc).__name__}: {exc})") from exc
    except DataError as exc:
        raise ShardError(exc.where, exc.problem) from exc


# ------------------------------------------------------------------------------------------ materialising

_WORKER: dict[str, Any] = {}


def _init_worker(source: Source, staging: str) -> None:
    _WORKER["source"] = source
    _WORKER["staging"] = Path(staging)


def _materialise(spec: SampleSpec) -> tuple[str, Any]:
    """Load, validate, encode and stage one spec; return ``("ok", (key, (h, w), binarised pixels, mask
    missing))`` or ``("error", ...)``.

    Errors travel back as plain tuples (exceptions with custom ``__init__`` do not unpickle reliably).
    """
    where = spec.source or spec.key
    try:
        sample = _WORKER["source"].load(spec)
        if not isinstance(sample, Sample):
            raise DataError(where, f"source returned {type(sample).__name__}, not a Sample")
        sample.validate(where)
        for attr in ("key", "subject", "context", "label", "mask_kind"):
            if getattr(sample, attr) != getattr(spec, attr):
                raise DataError(where, f"loaded sample {attr} {getattr(sample, attr)!r} differs from its spec "
                                       f"({getattr(spec, attr)!r})")
        members = encode_sample(sample)
    except CaadError as exc:
        return "error", (type(exc).__name__, exc.where, exc.problem)
    except Exception as exc:  # a source bug: still one line naming the sample
        return "error", ("DataError", where, f"loading sample {spec.key!r} failed: {type(exc).__name__}: {exc}")
    staging = _WORKER["staging"]
    try:
        for ext, data in members.items():
            (staging / f"{spec.key}.{ext}").write_bytes(data)
    except OSError as exc:
        return "error", ("CaadError", str(staging), f"cannot write staged sample ({exc.strerror or exc})")
    return "ok", (spec.key, sample.image.shape[:2], int(sample.extra.get(BINARISED_PIXELS, 0)), sample.mask_missing)


def _raise(payload: tuple[str, str | None, str]) -> None:
    name, where, problem = payload
    cls = getattr(errors, name, CaadError)
    raise (cls if isinstance(cls, type) and issubclass(cls, CaadError) else CaadError)(where, problem)


def _materialise_all(source: Source, specs: Sequence[SampleSpec], staging: Path, workers: int,
                     progress: bool) -> tuple[dict[str, tuple[int, int]], dict[str, int]]:
    """Stage every spec once; return ``({key: (height, width)}, mask counts)``.

    Mask counts (the manifest's ``masks``): ``binarised`` masks that had intermediate values and their
    ``binarised_pixels``, and anomalous images whose mask is ``missing``.

    Results are consumed in key order, so the failure reported is always the first failing sample in key order.
    On a failure (or Ctrl-C) pending work is cancelled and the pool shut down before the error propagates.
    """
    sizes: dict[str, tuple[int, int]] = {}
    masks = {"binarised": 0, "binarised_pixels": 0, "missing": 0}
    workers = max(1, min(workers, len(specs)))
    executor = None
    if workers == 1:
        _init_worker(source, str(staging))
        results: Iterator[tuple[str, Any]] = map(_materialise, specs)
    else:
        # created before the progress bar's monitor thread exists, so workers fork from a quiet process
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        executor = ProcessPoolExecutor(workers, mp_context=mp.get_context(method), initializer=_init_worker,
                                       initargs=(source, str(staging)))
        results = executor.map(_materialise, specs, chunksize=max(1, min(16, len(specs) // (workers * 8))))
    bar = progress_bar(total=len(specs), desc="encode", unit="img", enabled=progress)
    try:
        for status, payload in results:
            if status == "error":
                _raise(payload)
            key, hw, binarised, missing = payload
            sizes[key] = (int(hw[0]), int(hw[1]))
            masks["binarised"] += int(binarised > 0)
            masks["binarised_pixels"] += binarised
            masks["missing"] += int(missing)
            bar.update(1)
    except BaseException:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        bar.close()
        _WORKER.clear()
    if executor is not None:
        executor.shutdown(wait=True)
    return sizes, masks


# ------------------------------------------------------------------------------------------------- writing


def _write_tar(path: Path, keys: Sequence[str], staging: Path) -> None:
    with open(path, "wb") as raw, wds.TarWriter(raw, encoder=False, **TAR_HEADER) as tar:
        for key in keys:
            tar.write({"__key__": key, **{ext: (staging / f"{key}.{ext}").read_bytes() for ext in MEMBERS}})


def _shard_groups(keys: Sequence[str], sizes: dict[str, int], max_samples: int, max_bytes: int) -> list[list[str]]:
    """Cut ``keys`` (in order) into shards of at most ``max_samples`` samples and about ``max_bytes`` bytes."""
    groups: list[list[str]] = []
    current: list[str] = []
    total = 0
    for key in keys:
        if current and (len(current) >= max_samples or total + sizes[key] > max_bytes):
            groups.append(current)
            current, total = [], 0
        current.append(key)
        total += sizes[key]
    return groups + ([current] if current else [])


def _write_part(tmp: Path, split: str, part: str, specs: Sequence[SampleSpec], staging: Path,
                max_shard_samples: int, max_shard_bytes: int, bar: Any) -> list[ShardEntry]:
    entries = []
    (tmp / split).mkdir(exist_ok=True)
    sizes = {s.key: sum((staging / f"{s.key}.{ext}").stat().st_size + 1024 for ext in MEMBERS) for s in specs}
    groups = _shard_groups([s.key for s in specs], sizes, max_shard_samples, max_shard_bytes)
    for index, keys in enumerate(groups):
        rel = f"{split}/{part}-{index:06d}.tar"
        _write_tar(tmp / rel, keys, staging)
        entries.append(ShardEntry(path=rel, split=split, part=part, samples=len(keys),
                                  bytes=(tmp / rel).stat().st_size, sha256=sha256_file(tmp / rel), keys=tuple(keys)))
        bar.update(len(keys))
    return entries


def _source_where(source: Source) -> str:
    try:
        root = source.describe().get("root")
    except Exception:  # describe() is the source's own code; the label is only for messages
        root = None
    return str(root) if root else f"source {source.name or type(source).__name__}"


def _image_size(sizes: dict[str, tuple[int, int]]) -> tuple[list[int] | None, dict[str, int]]:
    counts: dict[str, int] = {}
    for h, w in sizes.values():
        counts[f"{h}x{w}"] = counts.get(f"{h}x{w}", 0) + 1
    uniform = None
    if len(counts) == 1:
        h, w = next(iter(sizes.values()))
        uniform = [h, w]
    return uniform, dict(sorted(counts.items()))


def build_shards(source: Source, out: str | Path, *, splits: Sequence[str] | None = None, seed: int = 0,
                 shots: Sequence[int] = DEFAULT_SHOTS, support_seeds: Sequence[int] = DEFAULT_SUPPORT_SEEDS,
                 workers: int | None = None, max_shard_samples: int = MAX_SHARD_SAMPLES,
                 max_shard_bytes: int = MAX_SHARD_BYTES, overwrite: bool = False,
                 progress: bool = True) -> Manifest:
    """Split ``source`` and write every split/part as WebDataset shards with an ``index.json`` manifest.

    Args:
        source: the source to read (must be picklable: samples are loaded in worker processes).
        out: the output directory; built in a temporary sibling and renamed when complete.
        splits: split names (default: every split that applies to ``source.kind``).
        seed: split seed (contexts, subjects, image partitions, support permutations).
        shots: support set sizes stored in the manifest.
        support_seeds: support seeds stored in the manifest.
        workers: processes that load and encode samples (default ``os.cpu_count()``; 1 = in-process).
        max_shard_samples: samples per tar.
        max_shard_bytes: a tar is closed before it would exceed this size (a larger single sample gets its own
            tar); readers hold one shard in memory at a time.
        overwrite: replace an existing ``out``.
        progress: show progress (:func:`caadbench.utils.progress.progress`: bars on a terminal, log lines
            elsewhere).

    Returns:
        The manifest (also written to ``out/index.json``).

    Raises:
        DataError: empty source, invalid or duplicate keys, a sample that fails to load or validate.
        SplitError: a split cannot be built (e.g. a subject without an anomalous context on one side).
        CaadError: ``out`` exists (without ``overwrite``) or is not writable.
    """
    if max_shard_samples < 1 or max_shard_bytes < 1:
        raise CaadError(None, f"max_shard_samples and max_shard_bytes must be positive, got {max_shard_samples} "
                              f"and {max_shard_bytes}")
    if workers is not None:
        check_at_least(workers, "--workers")
    out = Path(out)
    where = _source_where(source)
    specs = list(source.specs())
    rulebook = source.rulebook()
    families = dict(Rulebook.from_dict(rulebook, f"{where} (rulebook)").contexts) if rulebook else None
    built = make_splits(specs, source.kind, splits, seed=seed, shots=shots, support_seeds=support_seeds,
                        where=where, families=families)
    parts = {name: split.parts() for name, split in built.items()}
    needed = {s.key: s for by_part in parts.values() for specs_ in by_part.values() for s in specs_}
    todo = [needed[k] for k in sorted(needed)]
    with atomic_directory(out, overwrite=overwrite) as tmp:
        staging = tmp / _STAGING
        try:
            staging.mkdir()
            sizes, masks = _materialise_all(source, todo, staging, workers or os.cpu_count() or 1, progress)
            total = sum(len(p) for by_part in parts.values() for p in by_part.values())
            shards: list[ShardEntry] = []
            with progress_bar(total=total, desc="write", unit="img", enabled=progress) as bar:
                for name in sorted(parts):
                    for part in PARTS:
                        shards += _write_part(tmp, name, part, parts[name][part], staging, max_shard_samples,
                                              max_shard_bytes, bar)
            shutil.rmtree(staging)
            written = _manifest(source, rulebook, specs, built, parts, shards, sizes, seed, max_shard_samples,
                                max_shard_bytes)
            written["masks"] = {**masks, "threshold": source.describe().get("mask_threshold")}
            manifest = Manifest.from_dict(json.loads(json.dumps(written)), str(out / MANIFEST))
            text = json.dumps(manifest.to_dict(), indent=1, sort_keys=True, ensure_ascii=False)
            (tmp / MANIFEST).write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise CaadError(out, f"cannot write shards ({exc.strerror or exc})") from exc
    return manifest


def _manifest(source: Source, rulebook: dict[str, Any] | None, specs: list[SampleSpec], built: dict[str, Split],
              parts: dict[str, dict[str, list[SampleSpec]]], shards: list[ShardEntry],
              sizes: dict[str, tuple[int, int]], seed: int, max_shard_samples: int,
              max_shard_bytes: int) -> dict[str, Any]:
    uniform, size_counts = _image_size(sizes)
    splits: dict[str, Any] = {}
    for name, split in built.items():
        splits[name] = {
            "definition": split.definition,
            "support": split.support,
            "parts": {part: {"samples": len(parts[name][part]),
                             "shards": [e.path for e in shards if e.split == name and e.part == part]}
                      for part in PARTS},
        }
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_by": f"caadbench {__version__}",
        "kind": source.kind,
        "source": source.describe(),
        "rulebook": rulebook,
        "fingerprint": source.fingerprint(specs),
        "seed": seed,
        "image_size": uniform,
        "image_sizes": size_counts,
        "num_samples": len(sizes),
        "max_shard_samples": max_shard_samples,
        "max_shard_bytes": max_shard_bytes,
        "members": list(MEMBERS),
        "splits": splits,
        "counts": {name: {part: part_counts(p) for part, p in by_part.items()} for name, by_part in parts.items()},
        "shards": [asdict(e) for e in shards],
    }


# ------------------------------------------------------------------------------------------------- reading


def manifest_path(root: str | Path) -> Path:
    """``index.json`` of a local shard directory."""
    return Path(root) / MANIFEST


def read_manifest(root: str | Path | Location) -> Manifest:
    """Load and check ``root/index.json`` (``root`` a folder or a URL, see :mod:`caadbench.data.location`).

    Raises:
        ShardError: naming ``index.json`` (or ``root``) when it is missing, unreachable, unparsable or of another
            format.
    """
    root = Location.of(root)
    if root.is_local and not root.path.is_dir():
        build = ("`caadbench build-shards` (the default synthetic set)" if root.path == DEFAULT_DATA else
                 f"`caadbench build-shards --out {root}` (with --source and --root for your own data)")
        raise ShardError(root, f"shard directory not found; build it with {build}")
    index = root / MANIFEST
    try:
        data = index.read_bytes(limit=MAX_MANIFEST_BYTES)
    except FileNotFoundError:
        raise ShardError(index, "missing: not a complete caadbench shard directory (build it with "
                                "`caadbench build-shards`)") from None
    except OSError as exc:
        raise ShardError(index, f"cannot read the manifest ({exc.strerror or exc})") from None
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ShardError(index, f"unreadable manifest ({exc})") from None
    return Manifest.from_dict(manifest, str(index))


def read_shard(root: str | Path | Location, entry: ShardEntry) -> bytes:
    """The bytes of one shard, after checking its size and sha256 against the manifest entry.

    Raises:
        ShardError: naming the shard when it is missing, unreachable, truncated/extended or altered.
    """
    where = Location.of(root) / entry.path
    try:
        data = where.read_bytes(limit=entry.bytes + 1)
    except FileNotFoundError:
        raise ShardError(where, "shard listed in index.json is missing") from None
    except OSError as exc:
        raise ShardError(where, f"unreadable shard ({exc.strerror or exc})") from None
    if len(data) != entry.bytes:
        kind = "truncated" if len(data) < entry.bytes else "extended"
        shown = f"{len(data)} bytes" if kind == "truncated" else f"more than {entry.bytes} bytes"
        raise ShardError(where, f"shard is {kind}: {shown}, index.json says {entry.bytes}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.sha256:
        raise ShardError(where, f"shard content altered: sha256 {digest[:12]}… differs from index.json "
                                f"{entry.sha256[:12]}…")
    return data


def iter_records(data: bytes, where: str | Location) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Yield ``(key, {ext: bytes})`` per sample of a WebDataset tar held in memory.

    The tar is read by webdataset's own iterator and grouped by its ``group_by_keys`` (the key is the file name
    up to its first dot); a key that comes back after another key started is refused.

    Raises:
        ShardError: naming ``where`` when the tar is unreadable or its members are not grouped by key.
    """
    done: set[str] = set()
    files = wds.tariterators.tar_file_expander([{"url": str(where), "stream": io.BytesIO(data)}])
    try:
        for sample in wds.tariterators.group_by_keys(files):
            key = sample["__key__"]
            if key in done:
                raise ShardError(where, f"members of sample {key!r} are not contiguous")
            done.add(key)
            yield key, {ext: value for ext, value in sample.items() if not ext.startswith("__")}
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        reason = str(exc.args[0]).split(" @ ")[0] if exc.args else ""  # webdataset appends " @ <stream>"
        raise ShardError(where, f"unreadable tar ({type(exc).__name__}: {reason})") from None
