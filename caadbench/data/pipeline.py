"""The batch reader's webdataset pipeline: shard tasks → rank share → worker share → hash-checked open →
records → (seeded shuffle) → decode.

A *task* is a webdataset shard dict, ``{"url", "root", "entry", "keys"}``: one shard and the keys this reader
takes from it. The rank and worker stages cut the part's samples, in task order, into contiguous blocks whose
sizes differ by at most one (webdataset's ``split_by_node``/``split_by_worker`` hand out whole shards, which
leaves a rank without samples when a part has fewer shards than ranks, and makes DDP ranks' step counts differ by
up to a shard). A shard is read whole and its size and sha256 checked against ``index.json`` before any of its
records is used; records are read by webdataset's tar iterator and ``group_by_keys``
(:func:`~caadbench.data.shards.iter_records`). Samples already decoded at the same sides in this process come
from :mod:`caadbench.data.sample_cache` instead, their shard unread.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import webdataset as wds
from torch.utils.data import IterableDataset, get_worker_info

from caadbench import errors
from caadbench.data.location import Location
from caadbench.data.manifest import ShardEntry
from caadbench.data.sample_cache import SAMPLES, sample_key
from caadbench.data.shards import iter_records, read_shard
from caadbench.data.splits import seeded_rng
from caadbench.errors import CaadError, ShardError

SHUFFLE_BUFFER = 256
"""Records held by each reader's shuffle buffer (raw PNG bytes, decoded only when drawn)."""


def block(n: int, index: int, count: int) -> tuple[int, int]:
    """The ``index``-th of ``count`` contiguous blocks of ``range(n)`` (sizes differ by at most one)."""
    return n * index // count, n * (index + 1) // count


def worker_index() -> tuple[int, int]:
    """``(worker id, number of workers)`` of the DataLoader worker running this code (``(0, 1)`` outside)."""
    info = get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)


class ShardTasks(IterableDataset):
    """The pipeline's source: one task per shard, in reading order.

    Args:
        root: the shard directory.
        shards: ``(entry, keys)`` pairs: each shard with the keys to take from it, in tar order.
    """

    def __init__(self, root: Location, shards: Sequence[tuple[ShardEntry, Sequence[str]]]) -> None:
        self.tasks = [{"url": str(root / e.path), "root": root, "entry": e, "keys": tuple(k)} for e, k in shards]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter([dict(t) for t in self.tasks])


def _share(tasks: Iterable[dict[str, Any]], index: int, count: int) -> Iterator[dict[str, Any]]:
    tasks = list(tasks)
    flat = [(i, k) for i, t in enumerate(tasks) for k in t["keys"]]
    lo, hi = block(len(flat), index, count)
    chosen: dict[int, list[str]] = {}
    for i, key in flat[lo:hi]:
        chosen.setdefault(i, []).append(key)
    for i, keys in chosen.items():
        yield {**tasks[i], "keys": tuple(keys)}


def _rank_share(tasks: Iterable[dict[str, Any]], rank: int, world_size: int) -> Iterator[dict[str, Any]]:
    return _share(tasks, rank, world_size)


rank_share = wds.pipelinefilter(_rank_share)
"""``rank_share(rank, world_size)``: this rank's contiguous block of the samples."""


def worker_share(tasks: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """This DataLoader worker's contiguous block of its rank's samples."""
    worker, workers = worker_index()
    return _share(tasks, worker, workers)


def _open_checked(tasks: Iterable[dict[str, Any]], image_size: int, eval_size: int) -> Iterator[dict[str, Any]]:
    for task in tasks:
        keys = [sample_key(task["entry"], k, image_size, eval_size) for k in task["keys"]]
        held = [SAMPLES.get(k) for k in keys] if SAMPLES.active and all(SAMPLES.contains(k) for k in keys) else []
        if held and all(s is not None for s in held):
            yield {**task, "prepared": held}
        else:
            yield {**task, "data": read_shard(task["root"], task["entry"])}


open_checked = wds.pipelinefilter(_open_checked)
"""``open_checked(image_size, eval_size)``: read each task's shard whole and check its size and sha256 (a
hash-checking URL opener), unless every wanted sample is already prepared in
:data:`~caadbench.data.sample_cache.SAMPLES` at these sides."""


def records(tasks: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The wanted records of each opened shard, as webdataset samples ``{"__key__", "__url__", "__shard__",
    ext: bytes}``, or ``{"__key__", "__url__", "__prepared__"}`` for samples held prepared.

    Raises:
        ShardError: a wanted key is not in the shard (the manifest's key list disagrees with the shard).
    """
    for task in tasks:
        if "prepared" in task:
            for key, prepared in zip(task["keys"], task["prepared"]):
                yield {"__key__": key, "__url__": task["url"], "__prepared__": prepared}
            continue
        wanted, found = set(task["keys"]), 0
        for key, members in iter_records(task["data"], task["url"]):
            if key in wanted:
                found += 1
                yield {"__key__": key, "__url__": task["url"], "__shard__": task["entry"], **members}
        if found != len(wanted):
            raise ShardError(task["url"], f"{len(wanted) - found} sample(s) listed in index.json are not in the "
                                          "shard")


def buffer_shuffle(items: Iterable[Any], rng: random.Random, size: int = SHUFFLE_BUFFER) -> Iterator[Any]:
    """Shuffle through a buffer of ``size`` items: each arriving item swaps with a random one, which is drawn."""
    buffer: list[Any] = []
    for item in items:
        buffer.append(item)
        if len(buffer) >= size:
            i = rng.randrange(len(buffer))
            buffer[i], buffer[-1] = buffer[-1], buffer[i]
            yield buffer.pop()
    rng.shuffle(buffer)
    yield from buffer


def _seeded_shuffle(samples: Iterable[Any], seed: int, epoch: int, rank: int) -> Iterator[Any]:
    worker, _ = worker_index()
    return buffer_shuffle(samples, seeded_rng(seed, "epoch", epoch, rank, worker))


seeded_shuffle = wds.pipelinefilter(_seeded_shuffle)
"""``seeded_shuffle(seed, epoch, rank)``: a buffer shuffle seeded by ``(seed, epoch, rank, worker)``."""


@dataclass(frozen=True)
class Failure:
    """A library error raised inside a DataLoader worker, carried to the main process intact."""

    name: str
    where: str | None
    problem: str

    def raise_(self) -> None:
        cls = getattr(errors, self.name, CaadError)
        raise cls(self.where, self.problem)


def carry_errors(samples: Iterable[Any]) -> Iterator[Any]:
    """Last stage: in a DataLoader worker, turn a :class:`CaadError` into a :class:`Failure` item."""
    try:
        yield from samples
    except CaadError as exc:
        if get_worker_info() is None:
            raise
        yield Failure(type(exc).__name__, exc.where, exc.problem)
