"""The examples sidecar of a results file: ``run.json`` → ``run.examples.npz`` (images, maps, ground truth).

A compressed npz without pickled objects, written atomically; :func:`read_examples` refuses a file with missing
arrays or inconsistent shapes with a :class:`~caadbench.errors.ResultsError` naming it.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from caadbench.errors import ResultsError
from caadbench.eval.evaluator import ExampleSet
from caadbench.utils.atomic import atomic_write_bytes

EXAMPLES_SUFFIX = ".examples.npz"
_ARRAYS = ("keys", "subjects", "contexts", "categories", "labels", "scores", "images", "maps", "gt")


def examples_path(results_path: str | Path) -> Path:
    """The sidecar beside a results file: ``run.json`` → ``run.examples.npz``."""
    results_path = Path(results_path)
    return results_path.with_name(results_path.stem + EXAMPLES_SUFFIX)


def write_examples(path: str | Path, examples: ExampleSet) -> Path:
    """Write the example images atomically (compressed npz, no pickled objects)."""
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        keys=np.array(examples.keys, dtype=str),
        subjects=np.array(examples.subjects, dtype=str),
        contexts=np.array(examples.contexts, dtype=str),
        categories=np.array(examples.categories, dtype=str),
        labels=np.asarray(examples.labels, dtype=np.int64),
        scores=np.asarray(examples.scores, dtype=np.float32),
        images=np.asarray(examples.images, dtype=np.uint8),
        maps=np.asarray(examples.maps, dtype=np.float16),
        gt=np.asarray(examples.gt, dtype=bool),
    )
    return atomic_write_bytes(path, buffer.getvalue())


def read_examples(path: str | Path) -> ExampleSet:
    """Read an examples sidecar.

    Raises:
        ResultsError: unreadable, missing arrays, or inconsistent shapes.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [n for n in _ARRAYS if n not in data.files]
            if missing:
                raise ResultsError(path, f"examples file lacks array(s) {', '.join(missing)}")
            arrays = {n: data[n] for n in _ARRAYS}
    except ResultsError:
        raise
    except (OSError, ValueError) as exc:
        raise ResultsError(path, f"not a readable examples file ({exc})") from exc
    n = len(arrays["keys"])
    images, maps, gt = arrays["images"], arrays["maps"], arrays["gt"]
    if (images.ndim != 4 or images.shape[-1] != 3 or maps.shape != images.shape[:3] or gt.shape != maps.shape
            or any(len(arrays[k]) != n for k in _ARRAYS)):
        raise ResultsError(path, f"inconsistent example arrays (images {images.shape}, maps {maps.shape}, "
                                 f"gt {gt.shape}, {n} keys)")
    return ExampleSet(
        keys=[str(k) for k in arrays["keys"]],
        subjects=[str(s) for s in arrays["subjects"]],
        contexts=[str(c) for c in arrays["contexts"]],
        categories=[str(c) for c in arrays["categories"]],
        labels=arrays["labels"].astype(np.int64),
        scores=arrays["scores"].astype(np.float32),
        images=images.astype(np.uint8),
        maps=maps.astype(np.float16),
        gt=gt.astype(bool),
    )


__all__ = ["EXAMPLES_SUFFIX", "examples_path", "read_examples", "write_examples"]
