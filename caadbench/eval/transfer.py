"""The cross-dataset protocol: train on one shard directory, evaluate on another (``caadbench run --train-data``).

A trained model is fitted on ``--train-data``'s split ``--train-split`` (default: the evaluated split's name) and
part ``--train-part`` (default ``train``; the papers' industrial protocol trains on another dataset's ``test``
part, the only one with anomalies) and evaluated on ``--data``'s test part. APRIL-GAN and AnomalyCLIP are
evaluated this way (train on VisA, evaluate on MVTec-AD and the other way round), and so is CoRe-CLIP's transfer
(train on a CAAD set, evaluate on an industrial one).

Nothing of the evaluated test part may reach training. Two shard directories hold the *same data* when their
source fingerprints are equal (a copy, or the same source split again with other seeds: the fingerprint covers the
source and its samples, not the split) or when they were built from the same source folder (``source.root`` in
the manifest, e.g. one MVTec-AD folder built with other options). For the same data, every sample key of the
training part must be absent from the evaluated test part: that refuses training on the evaluated split's test
part, and training on another split whose part holds evaluated test images. Different data may reuse key names
(two synthetic sets of different seeds both number their samples ``syn-…``), so their keys are not compared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from caadbench.data.loader import CaadDataset, open_dataset
from caadbench.errors import SplitError
from caadbench.eval.schema import TrainData


def same_data(a: CaadDataset, b: CaadDataset) -> bool:
    """Whether two shard directories hold the same samples (equal fingerprints or the same source folder)."""
    if a.fingerprint == b.fingerprint:
        return True
    root_a, root_b = a.manifest.source.get("root"), b.manifest.source.get("root")
    return root_a is not None and root_a == root_b


def part_keys(ds: CaadDataset, split: str, part: str) -> set[str]:
    """Every sample key of a split's part."""
    return {key for _, keys in ds.plan(split, part) for key in keys}


@dataclass(frozen=True)
class TrainingSet:
    """The data a trained model is fitted on.

    Attributes:
        ds: the training shard directory.
        dataset: its dataset id (as results name datasets).
        split, part: the split and part trained on.
    """

    ds: CaadDataset
    dataset: str
    split: str
    part: str

    @property
    def size(self) -> int:
        return self.ds.count(self.split, self.part)

    @property
    def subjects(self) -> list[str]:
        return self.ds.subjects(self.split, self.part)

    def record(self) -> TrainData:
        """What the results file says about the training data."""
        return TrainData(dataset=self.dataset, fingerprint=self.ds.fingerprint, path=str(self.ds.root),
                         split=self.split, part=self.part, samples=self.size)


def open_training_set(path: str | Path, split: str | None, part: str, evaluated: CaadDataset, eval_split: str,
                      dataset_id: Callable[[CaadDataset], str]) -> TrainingSet:
    """Open and check ``--train-data`` against the evaluated dataset.

    Args:
        path: the training shard directory (or its URL).
        split: its split to train on (``None``: ``eval_split``).
        part: the part of that split.
        evaluated: the evaluated shard directory.
        eval_split: the evaluated split (its ``test`` part is evaluated).
        dataset_id: the dataset id of the training shards.

    Raises:
        ShardError: the training directory is not a finished shard directory.
        SplitError: the split or part is not stored there, or training would see evaluated test images.
    """
    ds = open_dataset(path)
    split = split or eval_split
    if split not in ds.splits:
        raise SplitError(ds.root / "index.json", f"--train-split {split!r} is not stored here "
                                                 f"(stored: {', '.join(ds.splits)})")
    if part not in ds.parts(split):
        raise SplitError(ds.root / "index.json", f"split {split} has no part {part!r} to train on "
                                                 f"(parts: {', '.join(ds.parts(split))})")
    if ds.count(split, part) == 0:
        raise SplitError(ds.root / "index.json", f"split {split} part {part} is empty: nothing to train on")
    if same_data(ds, evaluated):
        leaked = part_keys(ds, split, part) & part_keys(evaluated, eval_split, "test")
        if leaked:
            shown = ", ".join(sorted(leaked)[:3]) + (", ..." if len(leaked) > 3 else "")
            raise SplitError(ds.root, f"--train-data holds the same data as --data and its {split}/{part} part "
                                      f"contains {len(leaked)} image(s) of the evaluated {eval_split}/test part "
                                      f"({shown}); train on a part disjoint from the test part")
    return TrainingSet(ds=ds, dataset=dataset_id(ds), split=split, part=part)


__all__ = ["TrainingSet", "open_training_set", "part_keys", "same_data"]
