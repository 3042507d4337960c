"""Results file names, and when a run may replace an existing results file.

One name per distinct run setting that changes what a number means (:func:`results_name`)::

    <dataset>_<split>_<model>_<fit>_<backbone>[-<N>px]-<weights>.json

* ``dataset``: the dataset id (:mod:`caadbench.eval.datasets`: ``caad-synth`` only for the default synthetic
  build; other builds, sources and category sets get ids of their own);
* ``fit``: how the model was fitted: ``zeroshot``, ``<k>shot``, ``trained``, or ``trained-on-<dataset>-<split>-<part>``
  for a model trained on other data than the evaluated split's train part; ``-ckpt<sha256[:8]>`` is appended when
  the fitted state came from a ``--checkpoint`` file;
* ``backbone``: the architecture (file-name-safe), with ``-<N>px`` when the run set ``--image-size``;
* ``weights`` (:func:`weights_part`): ``random-init`` (``random-init-seed<s>`` for another init seed), ``world``,
  the open_clip tag, or a file by its sha256 prefix (``file-<8 hex>``, ``world-file-<8 hex>``, ``hub-<8 hex>``).

Other options (``--option``), seeds and the commit are not in the name: a rerun that differs only there replaces the
file and says so in a log line. A run whose name is taken by a results file of other test data (dataset
fingerprint), backbone, weights, input size or training data is refused (:func:`check_replace`), so results never
overwrite each other silently. Every reader (``leaderboard``, ``results``, ``report``) takes files of any name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from caadbench.errors import ResultsError
from caadbench.eval.datasets import slug
from caadbench.eval.provenance import RANDOM_INIT, WORLD, WORLD_FILE_PREFIX
from caadbench.eval.schema import Results

logger = logging.getLogger(__name__)

SUFFIX = ".json"
_FILE_KINDS = {"file": "file", WORLD_FILE_PREFIX.rstrip(":"): "world-file", "hf-hub": "hub"}


def weights_part(weights: str, sha256: str | None, init_seed: int = 0) -> str:
    """The weights part of a results name, from a backbone's weights label (``BackboneIdentity.weights``)."""
    if weights == RANDOM_INIT:
        return RANDOM_INIT if init_seed == 0 else f"{RANDOM_INIT}-seed{init_seed}"
    if weights == WORLD:
        return WORLD
    kind, _, name = weights.partition(":")
    if kind == "openclip":
        return slug(name)
    prefix = _FILE_KINDS.get(kind, slug(kind))
    return f"{prefix}-{sha256[:8]}" if sha256 else f"{prefix}-{slug(name)}"


def fit_part(learning: str, shots: int, trained_on: str | None = None, checkpoint_sha256: str | None = None) -> str:
    """The ``fit`` part of a results name (see the module docstring)."""
    fit = {"zero-shot": "zeroshot", "few-shot": f"{shots}shot"}.get(learning, "trained")
    if trained_on:
        fit += f"-on-{trained_on}"
    return fit + (f"-ckpt{checkpoint_sha256[:8]}" if checkpoint_sha256 else "")


def results_name(*, dataset: str, split: str, model: str, fit: str, backbone: str, weights: str,
                 image_size: int | None = None) -> str:
    """``<dataset>_<split>_<model>_<fit>_<backbone>[-<N>px]-<weights>.json``: the one place results files are named.

    Args:
        dataset: the dataset id.
        split: the evaluated split.
        model: the registry name (its dots kept: a file name, not a key).
        fit: :func:`fit_part`.
        backbone: the architecture name.
        weights: :func:`weights_part`.
        image_size: the input side the run set explicitly (``None``: the architecture's own).
    """
    size = f"-{image_size}px" if image_size else ""
    return f"{dataset}_{split}_{model}_{fit}_{slug(backbone)}{size}-{weights}{SUFFIX}"


@dataclass(frozen=True)
class RunData:
    """What a results name must keep apart: the test data, backbone, input size, weights and training data.

    Attributes:
        dataset_fingerprint: the evaluated shards' fingerprint.
        backbone: the architecture.
        image_size: the input side.
        weights: the weights label (``BackboneIdentity.weights``).
        weights_sha256: the weights file's sha256 (``None`` for random init, or unknown).
        train_data: ``(fingerprint, split, part)`` trained on, or ``None``.
    """

    dataset_fingerprint: str
    backbone: str
    image_size: int
    weights: str
    weights_sha256: str | None
    train_data: tuple[str, str, str] | None

    @classmethod
    def of(cls, results: Results) -> RunData:
        p, t = results.provenance, results.train_data
        sha = p.weights_sha256 if p.weights_sha256 not in (RANDOM_INIT, "unknown") else None
        return cls(p.dataset_fingerprint, p.backbone_arch, p.image_size, p.weights, sha,
                   None if t is None else (t.fingerprint, t.split, t.part))

    def differences(self, other: RunData) -> list[str]:
        """What differs from ``other`` (``"<what> (<self's> there, <other's> here)"``)."""
        def trained(t: tuple[str, str, str] | None) -> str:
            return "none" if t is None else f"{t[0][:12]} {t[1]}/{t[2]}"

        pairs = (("dataset fingerprint", self.dataset_fingerprint[:12], other.dataset_fingerprint[:12]),
                 ("backbone", self.backbone, other.backbone), ("input size", self.image_size, other.image_size),
                 ("weights", self.weights, other.weights),
                 ("weights sha256", (self.weights_sha256 or "-")[:12], (other.weights_sha256 or "-")[:12]),
                 ("training data", trained(self.train_data), trained(other.train_data)))
        return [f"{what} ({x} there, {y} here)" for what, x, y in pairs if x != y]


def check_replace(path: Path, new: RunData, seeds: list[int]) -> None:
    """Allow writing the results of the run ``new`` (of ``seeds``) to ``path`` — before the run does any work.

    A results file of other test data, backbone, input size, weights or training data there is a name collision and
    is refused; an earlier run of the same is replaced, with one log line.

    Raises:
        ResultsError: naming ``path`` and what differs.
    """
    if not path.exists():
        return
    from caadbench.eval.results import read_results

    try:
        old = read_results(path)
    except ResultsError as exc:
        raise ResultsError(path, f"exists and is not a results file this run may replace ({exc.problem}); move "
                                 "it away or pass another --out") from None
    differ = RunData.of(old).differences(new)
    if differ:
        raise ResultsError(path, f"holds the results of another run: {'; '.join(differ)}; nothing was replaced "
                                 "(pass another --out, or --dataset-id to name this data)")
    logger.info(f"replacing {path} (an earlier run of the same model, data, backbone and weights; seeds "
                f"{','.join(map(str, old.seeds))} there, {','.join(map(str, seeds))} here)")


__all__ = ["SUFFIX", "RunData", "check_replace", "fit_part", "results_name", "weights_part"]
