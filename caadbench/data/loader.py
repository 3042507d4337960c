"""The streaming batch reader over a shard directory or URL: ``open_dataset(root).batches(split, part, ...)``.

Batches come from a ``webdataset.DataPipeline`` (:mod:`caadbench.data.pipeline`) read by a torch DataLoader.
Each shard is read into memory once, its size and sha256 checked against ``index.json`` before any record is
used, then its records are decoded.

Distribution: the part's samples, in manifest order (shard order, then key order), are cut into ``world_size``
contiguous blocks whose sizes differ by at most one; rank ``r`` reads block ``r`` (only the shards that
overlap it), and DataLoader workers cut their rank's block the same way. Every sample is read by exactly one
(rank, worker), deterministically. With ``shuffle`` the shard order is permuted from ``(seed, epoch)`` before
cutting and each reader shuffles its records through a buffer seeded by ``(seed, epoch, rank, worker)``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import webdataset as wds
from torch.utils.data import DataLoader

from caadbench.data import pipeline as P
from caadbench.data.batch import EVAL_RESOLUTION, Batch
from caadbench.data.location import Location
from caadbench.data.manifest import MANIFEST, Manifest, PartInfo, ShardEntry, SplitInfo
from caadbench.data.sample import Sample
from caadbench.data.sample_cache import SAMPLES, sample_key
from caadbench.data.shards import decode_record
from caadbench.data.splits import PARTS, seeded_rng
from caadbench.errors import SplitError
from caadbench.utils.progress import progress as progress_bar


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


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch ops on one intra-op thread inside (restored after): preparing one sample is small elementwise
    work, where the thread pool's waiting cost more than it saved once other processes held the cores (measured
    on a loaded 2-core machine: 80 % of a first pass over the test part, docs/speed.md). Values are the same: every
    op here computes each output element the same way whatever the thread count (tested)."""
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def decode_prepared(sample: dict[str, Any], image_size: int, eval_size: int) -> dict[str, Any]:
    """The decode stage: a webdataset sample of raw members → the tensors of :func:`prepare_sample` (kept in
    :data:`~caadbench.data.sample_cache.SAMPLES`), or the prepared sample the cache held."""
    if "__prepared__" in sample:
        return sample["__prepared__"]
    key = sample["__key__"]
    members = {ext: value for ext, value in sample.items() if not ext.startswith("__")}
    with single_threaded():
        prepared = prepare_sample(decode_record(key, members, f"{sample['__url__']}:{key}"), image_size, eval_size)
    if SAMPLES.active and "__shard__" in sample:
        SAMPLES.put(sample_key(sample["__shard__"], key, image_size, eval_size), prepared)
    return prepared


def stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    """``torch.stack`` of CPU tensors as one single-threaded copy (numpy): the same values, but never torch's
    intra-op thread pool, whose threads wait for each other when other processes hold the cores (measured on a
    loaded 2-core machine: 247 ms per batch of 32 images with 2 threads, 1–3 ms single-threaded; docs/speed.md)."""
    if any(t.device.type != "cpu" or t.requires_grad for t in tensors):
        return torch.stack(tensors)
    return torch.from_numpy(np.stack([t.numpy() for t in tensors]))


def collate(items: list[Any]) -> Batch | P.Failure:
    """Stack prepared samples into a :class:`Batch`."""
    for item in items:
        if isinstance(item, P.Failure):
            return item
    return Batch(
        images=stack([i["image"] for i in items]),
        subject_masks=stack([i["subject_mask"] for i in items]),
        gt_masks=stack([i["gt_mask"] for i in items]),
        labels=torch.tensor([i["label"] for i in items], dtype=torch.int64),
        keys=[i["key"] for i in items],
        subjects=[i["subject"] for i in items],
        contexts=[i["context"] for i in items],
        metadata=[i["metadata"] for i in items],
        has_gt=torch.tensor([i["has_gt"] for i in items], dtype=torch.bool),
    )


def validation_kind(definition: dict[str, Any]) -> str | None:
    """What a split's ``val`` part holds (``definition["validation"]["kind"]``: ``held-out seen contexts``,
    ``held-out train subjects``, ``image share ...`` or ``none``); ``None`` for shards built before validation
    parts existed."""
    v = definition.get("validation")
    return v.get("kind") if isinstance(v, dict) else None


class CaadDataset:
    """A built shard directory (local or remote): its manifest, split definitions, support keys and a batch reader.

    Attributes:
        root: the shard directory (:class:`~caadbench.data.location.Location`: ``str(root)``, ``root.name``,
            ``root / "index.json"``).
        manifest: the parsed ``index.json``.
        fingerprint: the source fingerprint recorded at build time.
        kind: ``contextual`` or ``industrial``.
        splits: stored split names, sorted.
        image_size: ``(height, width)`` of every stored image when uniform, else ``None``.
    """

    def __init__(self, root: str | Path | Location, manifest: Manifest) -> None:
        self.root = Location.of(root)
        self.manifest = manifest
        self.fingerprint = manifest.fingerprint
        self.kind = manifest.kind
        self.splits = sorted(manifest.splits)
        self.image_size = manifest.image_size

    def __repr__(self) -> str:
        return f"CaadDataset({str(self.root)!r}, kind={self.kind}, splits={self.splits})"

    @property
    def _index(self) -> Location:
        return self.root / MANIFEST

    def _split(self, split: str) -> SplitInfo:
        if split not in self.manifest.splits:
            raise SplitError(self._index, f"split {split!r} is not stored here (stored: {', '.join(self.splits)})")
        return self.manifest.splits[split]

    def _check_part(self, split: str, part: str) -> PartInfo:
        parts = self._split(split).parts
        if part not in parts:
            raise SplitError(self._index, f"split {split} has no part {part!r} (parts: {', '.join(parts)})")
        return parts[part]

    def parts(self, split: str) -> list[str]:
        """The parts of ``split`` in protocol order (``train``, ``support``, ``test``)."""
        parts = self._split(split).parts
        return [p for p in PARTS if p in parts] + sorted(set(parts) - set(PARTS))

    def count(self, split: str, part: str) -> int:
        """Number of samples in a split's part."""
        return self._check_part(split, part).samples

    def subjects(self, split: str, part: str | None = None) -> list[str]:
        """Subjects present in a part (or in any part of the split), sorted."""
        self._split(split)
        counts = self.manifest.counts.get(split, {})
        if part is not None:
            self._check_part(split, part)
            return sorted(counts[part].subject) if part in counts else []
        return sorted({s for c in counts.values() for s in c.subject})

    def context_sides(self, split: str) -> dict[str, dict[str, list[str]]]:
        """Per subject, ``{"seen": [...], "unseen": [...]}`` contexts (only ``cc`` has unseen ones), plus ``"val"``
        (the contexts held out whole for the validation part) where the split has them."""
        sides = self._split(split).definition.get("context_sides", {})
        return {subj: {k: list(v) for k, v in s.items() if k in ("seen", "unseen", "val")} for subj, s in sides.items()}

    def context_families(self) -> dict[str, str]:
        """``{context: family}`` from the rulebook recorded in the manifest (contexts alike in appearance share a
        family, ``docs/generator.md``); empty when the set has no rulebook (industrial sets). A context listed
        without a family is its own family."""
        contexts = (self.manifest.rulebook or {}).get("contexts") or {}
        if isinstance(contexts, list):
            return {str(c): str(c) for c in contexts}
        return {str(c): str(f) for c, f in contexts.items()}

    def support_keys(self, split: str, shots: int, seed: int) -> dict[str, list[str]]:
        """The ``shots``-shot support keys per test subject for a support seed.

        Raises:
            SplitError: the shots or seed are not stored, or a subject has fewer support images than ``shots``
                (saying which ``--shots`` fits, :meth:`fitting_shots`).
        """
        support = self._split(split).support
        if str(shots) not in support:
            stored = ", ".join(sorted(support, key=int)) or "none"
            raise SplitError(self._index, f"split {split}: {shots}-shot support sets are not stored "
                                          f"(stored shots: {stored}){self._shots_hint(split, seed)}")
        by_seed = support[str(shots)]
        if str(seed) not in by_seed:
            raise SplitError(self._index, f"split {split}: support seed {seed} is not stored "
                                          f"(stored seeds: {', '.join(sorted(by_seed, key=int))})")
        chosen = by_seed[str(seed)]
        for subject, keys in sorted(chosen.items()):
            if len(keys) < shots:
                raise SplitError(self._index, f"split {split}: support set of {subject!r} has {len(keys)} "
                                              f"image{'s' if len(keys) != 1 else ''}, asked for {shots}"
                                              f"{self._shots_hint(split, seed)}")
        return {subject: list(keys) for subject, keys in sorted(chosen.items())}

    def fitting_shots(self, split: str, seed: int = 0) -> int:
        """The largest stored shot count whose support sets of ``seed`` hold that many images for every subject
        (0 when none does)."""
        fits = [int(k) for k, by_seed in self._split(split).support.items()
                if str(seed) in by_seed and all(len(keys) >= int(k) for keys in by_seed[str(seed)].values())]
        return max(fits, default=0)

    def _shots_hint(self, split: str, seed: int) -> str:
        k = self.fitting_shots(split, seed)
        return (f"; --shots {k} fits every subject" if k else
                "; no stored support set fits every subject (a support pool is empty)")

    def shard_urls(self, split: str, part: str) -> list[str]:
        """The paths or URLs of a part's shards in reading order, for plain webdataset (see ``docs/data.md``)."""
        self._check_part(split, part)
        return [str(self.root / e.path) for e in self.manifest.part_shards(split, part)]

    def plan(self, split: str, part: str, *, keys: Collection[str] | None = None, shuffle: bool = False,
             seed: int = 0, epoch: int = 0) -> list[tuple[ShardEntry, tuple[str, ...]]]:
        """Every shard of a part with the keys read from it, in reading order (before rank/worker splitting and
        buffer shuffling): shard order permuted by ``(seed, epoch)`` with ``shuffle``, keys in tar order.

        Raises:
            SplitError: unknown split/part, or requested keys absent from the part.
        """
        self._check_part(split, part)
        entries = self.manifest.part_shards(split, part)
        if shuffle:
            seeded_rng(seed, "shards", split, part, epoch).shuffle(entries)
        wanted = None if keys is None else set(keys)
        shards = [(e, tuple(k for k in e.keys if wanted is None or k in wanted)) for e in entries]
        if wanted is not None:
            missing = sorted(wanted - {k for _, ks in shards for k in ks})
            if missing:
                shown = ", ".join(repr(k) for k in missing[:3]) + (", ..." if len(missing) > 3 else "")
                raise SplitError(self._index, f"{len(missing)} requested key(s) not in split {split} part {part}: "
                                              f"{shown}")
        return [(e, ks) for e, ks in shards if ks]

    def pipeline(self, split: str, part: str, *, image_size: int, eval_size: int = EVAL_RESOLUTION,
                 keys: Collection[str] | None = None, rank: int = 0, world_size: int = 1, shuffle: bool = False,
                 seed: int = 0, epoch: int = 0) -> wds.DataPipeline:
        """The webdataset pipeline of one rank's share of a part: prepared samples (dicts of tensors), one at a
        time; :meth:`batches` batches it. Arguments as for :meth:`batches`."""
        plan = self.plan(split, part, keys=keys, shuffle=shuffle, seed=seed, epoch=epoch)
        return self._pipeline(plan, image_size, eval_size, rank, world_size, shuffle, seed, epoch)

    def _pipeline(self, plan: list[tuple[ShardEntry, tuple[str, ...]]], image_size: int, eval_size: int,
                  rank: int, world_size: int, shuffle: bool, seed: int, epoch: int) -> wds.DataPipeline:
        if world_size < 1 or not 0 <= rank < world_size:
            raise SplitError(None, f"rank {rank} is not in a world of size {world_size}")
        return wds.DataPipeline(
            P.ShardTasks(self.root, plan),
            P.rank_share(rank, world_size),
            P.worker_share,
            P.open_checked(image_size, eval_size),
            P.records,
            P.seeded_shuffle(seed, epoch, rank) if shuffle else None,
            wds.map(partial(decode_prepared, image_size=image_size, eval_size=eval_size)),
            P.carry_errors,
        )

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
            progress: show progress (:func:`caadbench.utils.progress.progress`).

        Yields:
            Batches; without ``shuffle`` in a deterministic order (manifest order for ``workers=0``).

        Raises:
            ShardError: a shard is missing, unreachable, truncated, altered or unreadable (naming it).
        """
        if image_size < 1 or eval_size < 1 or batch_size < 1:
            raise SplitError(None, f"image_size, eval_size and batch_size must be positive "
                                   f"(got {image_size}, {eval_size}, {batch_size})")
        plan = self.plan(split, part, keys=keys, shuffle=shuffle, seed=seed, epoch=epoch)
        stream = self._pipeline(plan, image_size, eval_size, rank, world_size, shuffle, seed, epoch)
        lo, hi = P.block(sum(len(ks) for _, ks in plan), rank, world_size)
        loader = DataLoader(stream, batch_size=batch_size, collate_fn=collate, num_workers=workers)
        with progress_bar(total=hi - lo, desc=f"{split}/{part}", unit="img", enabled=progress) as bar:
            for batch in loader:
                if isinstance(batch, P.Failure):
                    batch.raise_()
                bar.update(len(batch))
                yield batch


def open_dataset(root: str | Path | Location, verify: bool = False) -> CaadDataset:
    """Open a shard directory built by :func:`~caadbench.data.shards.build_shards`.

    Args:
        root: the directory holding ``index.json``, or its URL (``https://…/``, ``pipe:…``, an fsspec URL; see
            :mod:`caadbench.data.location`), or webdataset shard URLs naming whole parts of one
            (``set/cc/test-{000000..000006}.tar``, :mod:`caadbench.data.selection`).
        verify: re-hash and re-count every shard first (see :func:`~caadbench.data.verify.verify_shards`).

    Raises:
        ShardError: naming ``index.json`` when it is missing, unreachable, unfinished or of another format, or the
            first shard that fails verification.
    """
    from caadbench.data.selection import read_set

    location, manifest = read_set(root)
    if verify:
        from caadbench.data.verify import verify_shards

        verify_shards(root)
    return CaadDataset(location, manifest)
