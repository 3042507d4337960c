"""The streaming batch reader over a shard directory: ``open_dataset(root).batches(split, part, ...)``.

Shards are plain WebDataset tars read with :mod:`tarfile` (no ``webdataset`` pipeline: the reader needs exact
control of ordering, rank/worker assignment and integrity checks). Each shard is read into memory once, its
size and sha256 checked against ``index.json`` before any record is used, then its records are decoded.

Distribution: the part's samples, in manifest order (shard order, then key order), are cut into ``world_size``
contiguous blocks whose sizes differ by at most one; rank ``r`` reads block ``r`` (only the shards that
overlap it), and DataLoader workers cut their rank's block the same way. Every sample is read by exactly one
(rank, worker), deterministically. With ``shuffle`` the shard order is permuted from ``(seed, epoch)`` before
cutting and each reader shuffles its records through a seeded buffer.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from tqdm import tqdm

from caadbench import errors
from caadbench.data.batch import EVAL_RESOLUTION, Batch
from caadbench.data.sample import Sample
from caadbench.data.shards import decode_record, iter_records, manifest_path, read_manifest, read_shard
from caadbench.data.splits import PARTS, seeded_rng
from caadbench.errors import CaadError, SplitError

SHUFFLE_BUFFER = 256
"""Records held by each reader's shuffle buffer (raw PNG bytes, decoded only when drawn)."""


def _block(n: int, index: int, count: int) -> tuple[int, int]:
    """The ``index``-th of ``count`` contiguous blocks of ``range(n)`` (sizes differ by at most one)."""
    return n * index // count, n * (index + 1) // count


def resize_mask(mask: np.ndarray, size: int) -> torch.Tensor:
    """``(H, W)`` uint8 {0, 255} → ``(size, size)`` bool, nearest neighbour (pixel-centre exact)."""
    t = torch.from_numpy(np.ascontiguousarray(mask > 0))
    if t.shape != (size, size):
        t = F.interpolate(t[None, None].float(), size=(size, size), mode="nearest-exact")[0, 0] > 0.5
    return t


def image_tensor(image: np.ndarray, size: int) -> torch.Tensor:
    """``(H, W, 3)`` uint8 RGB → ``(3, size, size)`` float32 in [0, 1], bicubic and antialiased (the one model
    input transform: evaluation and ``caadbench predict`` both use it)."""
    t = torch.from_numpy(np.require(image, np.uint8, ["C", "W"])).permute(2, 0, 1).float().div_(255.0)
    if t.shape[1:] != (size, size):
        t = F.interpolate(t[None], size=(size, size), mode="bicubic", antialias=True, align_corners=False)[0]
        t = t.clamp_(0.0, 1.0)
    return t


def prepare_sample(sample: Sample, image_size: int, eval_size: int = EVAL_RESOLUTION) -> dict[str, Any]:
    """Tensors of one sample as a :class:`Batch` holds them.

    Returns:
        ``image`` (3, S, S) float32 in [0, 1] (bicubic, antialiased), ``subject_mask`` (S, S) bool (nearest;
        all true for defect masks), ``gt_mask`` (R, R) bool (nearest from the full-size ground truth),
        ``has_gt`` (false when the mask is missing), ``label``, ``key``, ``subject``, ``context``, ``metadata``.
    """
    image = image_tensor(sample.image, image_size)
    if sample.mask_kind == "defect":
        subject_mask = torch.ones(image_size, image_size, dtype=torch.bool)
    else:
        subject_mask = resize_mask(sample.mask, image_size)
    return {"image": image, "subject_mask": subject_mask, "gt_mask": resize_mask(sample.gt_mask, eval_size),
            "has_gt": sample.gt_known, "label": int(sample.label), "key": sample.key, "subject": sample.subject,
            "context": sample.context, "metadata": sample.metadata()}


@dataclass(frozen=True)
class _Failure:
    """A library error raised inside a DataLoader worker, carried to the main process intact."""

    name: str
    where: str | None
    problem: str

    def raise_(self) -> None:
        cls = getattr(errors, self.name, CaadError)
        raise cls(self.where, self.problem)


def collate(items: list[Any]) -> Batch | _Failure:
    """Stack prepared samples into a :class:`Batch`."""
    for item in items:
        if isinstance(item, _Failure):
            return item
    return Batch(
        images=torch.stack([i["image"] for i in items]),
        subject_masks=torch.stack([i["subject_mask"] for i in items]),
        gt_masks=torch.stack([i["gt_mask"] for i in items]),
        labels=torch.tensor([i["label"] for i in items], dtype=torch.int64),
        keys=[i["key"] for i in items],
        subjects=[i["subject"] for i in items],
        contexts=[i["context"] for i in items],
        metadata=[i["metadata"] for i in items],
        has_gt=torch.tensor([i["has_gt"] for i in items], dtype=torch.bool),
    )


class _ShardStream(IterableDataset):
    """The samples of one rank: ``items`` is ``[(shard entry, key)]`` in reading order."""

    def __init__(self, root: Path, items: list[tuple[dict[str, Any], str]], image_size: int, eval_size: int,
                 shuffle: bool, seed: int, epoch: int, rank: int) -> None:
        self.root, self.items = root, items
        self.image_size, self.eval_size = image_size, eval_size
        self.shuffle, self.seed, self.epoch, self.rank = shuffle, seed, epoch, rank

    def _records(self, items: list[tuple[dict[str, Any], str]]) -> Iterator[tuple[str, str, dict[str, bytes]]]:
        by_shard: dict[str, tuple[dict[str, Any], set[str]]] = {}
        for entry, key in items:
            by_shard.setdefault(entry["path"], (entry, set()))[1].add(key)
        for entry, wanted in by_shard.values():
            path = self.root / entry["path"]
            data = read_shard(self.root, entry)
            for key, members in iter_records(data, path):
                if key in wanted:
                    yield f"{path}:{key}", key, members

    def __iter__(self) -> Iterator[dict[str, Any] | _Failure]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        lo, hi = _block(len(self.items), worker, workers)
        try:
            records = self._records(self.items[lo:hi])
            if self.shuffle:
                records = _buffer_shuffle(records, seeded_rng(self.seed, "epoch", self.epoch, self.rank, worker))
            for where, key, members in records:
                yield prepare_sample(decode_record(key, members, where), self.image_size, self.eval_size)
        except CaadError as exc:
            if info is None:
                raise
            yield _Failure(type(exc).__name__, exc.where, exc.problem)


def _buffer_shuffle(records: Iterator[Any], rng: random.Random, size: int = SHUFFLE_BUFFER) -> Iterator[Any]:
    buffer: list[Any] = []
    for record in records:
        buffer.append(record)
        if len(buffer) >= size:
            i = rng.randrange(len(buffer))
            buffer[i], buffer[-1] = buffer[-1], buffer[i]
            yield buffer.pop()
    rng.shuffle(buffer)
    yield from buffer


class CaadDataset:
    """A built shard directory: its manifest, split definitions, support keys and a batch reader.

    Attributes:
        root: the shard directory.
        manifest: the parsed ``index.json``.
        fingerprint: the source fingerprint recorded at build time.
        kind: ``contextual`` or ``industrial``.
        splits: stored split names, sorted.
        image_size: ``(height, width)`` of every stored image when uniform, else ``None``.
    """

    def __init__(self, root: str | Path, manifest: dict[str, Any]) -> None:
        self.root = Path(root)
        self.manifest = manifest
        self.fingerprint: str = manifest["fingerprint"]
        self.kind: str = manifest["kind"]
        self.splits: list[str] = sorted(manifest["splits"])
        size = manifest.get("image_size")
        self.image_size: tuple[int, int] | None = tuple(size) if size else None

    def __repr__(self) -> str:
        return f"CaadDataset({str(self.root)!r}, kind={self.kind}, splits={self.splits})"

    @property
    def _index(self) -> Path:
        return manifest_path(self.root)

    def _split(self, split: str) -> dict[str, Any]:
        if split not in self.manifest["splits"]:
            raise SplitError(self._index, f"split {split!r} is not stored here (stored: {', '.join(self.splits)})")
        return self.manifest["splits"][split]

    def _check_part(self, split: str, part: str) -> dict[str, Any]:
        parts = self._split(split)["parts"]
        if part not in parts:
            raise SplitError(self._index, f"split {split} has no part {part!r} (parts: {', '.join(parts)})")
        return parts[part]

    def parts(self, split: str) -> list[str]:
        """The parts of ``split`` in protocol order (``train``, ``support``, ``test``)."""
        parts = self._split(split)["parts"]
        return [p for p in PARTS if p in parts] + sorted(set(parts) - set(PARTS))

    def count(self, split: str, part: str) -> int:
        """Number of samples in a split's part."""
        return int(self._check_part(split, part)["samples"])

    def subjects(self, split: str, part: str | None = None) -> list[str]:
        """Subjects present in a part (or in any part of the split), sorted."""
        counts = self.manifest["counts"][split] if split in self.manifest["counts"] else {}
        self._split(split)
        if part is not None:
            self._check_part(split, part)
            return sorted(counts.get(part, {}).get("subject", {}))
        return sorted({s for c in counts.values() for s in c.get("subject", {})})

    def context_sides(self, split: str) -> dict[str, dict[str, list[str]]]:
        """Per subject, ``{"seen": [...], "unseen": [...]}`` contexts (only ``cc`` has unseen ones)."""
        sides = self._split(split)["definition"].get("context_sides", {})
        return {subj: {"seen": list(s["seen"]), "unseen": list(s["unseen"])} for subj, s in sides.items()}

    def support_keys(self, split: str, shots: int, seed: int) -> dict[str, list[str]]:
        """The ``shots``-shot support keys per test subject for a support seed.

        Raises:
            SplitError: the shots or seed are not stored, or a subject has fewer support images than ``shots``.
        """
        support = self._split(split).get("support", {})
        if str(shots) not in support:
            stored = ", ".join(sorted(support, key=int)) or "none"
            raise SplitError(self._index, f"split {split}: {shots}-shot support sets are not stored "
                                          f"(stored shots: {stored})")
        by_seed = support[str(shots)]
        if str(seed) not in by_seed:
            raise SplitError(self._index, f"split {split}: support seed {seed} is not stored "
                                          f"(stored seeds: {', '.join(sorted(by_seed, key=int))})")
        chosen = by_seed[str(seed)]
        for subject, keys in sorted(chosen.items()):
            if len(keys) < shots:
                raise SplitError(self._index, f"split {split}: support set of {subject!r} has {len(keys)} "
                                              f"image{'s' if len(keys) != 1 else ''}, asked for {shots}")
        return {subject: list(keys) for subject, keys in sorted(chosen.items())}

    def plan(self, split: str, part: str, *, keys: Collection[str] | None = None, rank: int = 0,
             world_size: int = 1, shuffle: bool = False, seed: int = 0,
             epoch: int = 0) -> list[tuple[dict[str, Any], str]]:
        """The ``(shard entry, key)`` pairs rank ``rank`` reads, in reading order (before buffer shuffling).

        Raises:
            SplitError: unknown split/part, a bad rank, or requested keys absent from the part.
        """
        info = self._check_part(split, part)
        if world_size < 1 or not 0 <= rank < world_size:
            raise SplitError(None, f"rank {rank} is not in a world of size {world_size}")
        by_path = {e["path"]: e for e in self.manifest["shards"]}
        entries = [by_path[p] for p in info["shards"]]
        if shuffle:
            seeded_rng(seed, "shards", split, part, epoch).shuffle(entries)
        wanted = None if keys is None else set(keys)
        items = [(e, k) for e in entries for k in e["keys"] if wanted is None or k in wanted]
        if wanted is not None and len(items) != len(wanted):
            missing = sorted(wanted - {k for _, k in items})
            shown = ", ".join(repr(k) for k in missing[:3]) + (", ..." if len(missing) > 3 else "")
            raise SplitError(self._index, f"{len(missing)} requested key(s) not in split {split} part {part}: "
                                          f"{shown}")
        lo, hi = _block(len(items), rank, world_size)
        return items[lo:hi]

    def batches(self, split: str, part: str, *, image_size: int, eval_size: int = EVAL_RESOLUTION,
                batch_size: int = 32, keys: Collection[str] | None = None, rank: int = 0, world_size: int = 1,
                workers: int = 0, shuffle: bool = False, seed: int = 0, epoch: int = 0,
                progress: bool = False) -> Iterator[Batch]:
        """Stream a split's part as :class:`Batch` es.

        Args:
            split: ``cc``, ``ic``, ``cs`` or ``std``.
            part: ``train``, ``support`` or ``test``.
            image_size: model input side ``S``: images resized bicubic (antialiased), subject masks nearest.
            eval_size: ground-truth side ``R`` (nearest from the full-size mask).
            batch_size: samples per batch. With ``workers > 0`` each worker may end on a partial batch.
            keys: only these samples (e.g. the union of :meth:`support_keys`); all must exist in the part.
            rank, world_size: this process's share (a contiguous block; sizes differ by at most one sample).
            workers: DataLoader worker processes (0: read in this process).
            shuffle: permute shard order by ``(seed, epoch)`` and shuffle through a seeded buffer.
            seed, epoch: shuffling seed; pass the epoch number to get a new order per epoch.
            progress: tqdm bar on stderr.

        Yields:
            Batches; without ``shuffle`` in a deterministic order (manifest order for ``workers=0``).

        Raises:
            ShardError: a shard is missing, truncated, altered or unreadable (naming it).
        """
        if image_size < 1 or eval_size < 1 or batch_size < 1:
            raise SplitError(None, f"image_size, eval_size and batch_size must be positive "
                                   f"(got {image_size}, {eval_size}, {batch_size})")
        items = self.plan(split, part, keys=keys, rank=rank, world_size=world_size, shuffle=shuffle, seed=seed,
                          epoch=epoch)
        stream = _ShardStream(self.root, items, image_size, eval_size, shuffle, seed, epoch, rank)
        loader = DataLoader(stream, batch_size=batch_size, collate_fn=collate, num_workers=workers)
        with tqdm(total=len(items), desc=f"{split}/{part}", unit="img", disable=None if progress else True) as bar:
            for batch in loader:
                if isinstance(batch, _Failure):
                    batch.raise_()
                bar.update(len(batch))
                yield batch


def open_dataset(root: str | Path, verify: bool = False) -> CaadDataset:
    """Open a shard directory built by :func:`~caadbench.data.shards.build_shards`.

    Args:
        root: the directory holding ``index.json``.
        verify: re-hash and re-count every shard first (see :func:`~caadbench.data.verify.verify_shards`).

    Raises:
        ShardError: naming ``index.json`` when it is missing, unfinished or of another format, or the first
            shard that fails verification.
    """
    manifest = read_manifest(root)
    if verify:
        from caadbench.data.verify import verify_shards

        verify_shards(root)
    return CaadDataset(root, manifest)
