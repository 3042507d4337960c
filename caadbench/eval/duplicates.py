"""Results files that say the same thing twice: byte-identical files, or two files of the same run.

A board that lists one run twice gives it two rows and double weight; ``caadbench leaderboard`` warns about every
group found here (naming the files) so that one of them can be removed. The same run means the same model and
config on the same test data (dataset fingerprint, split, shots, seeds), backbone and weights, and training data;
the commit, device, wall time and file name may differ.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

from caadbench.eval.schema import Results


def run_key(results: Results) -> str:
    """What makes two results files the same run (see the module docstring), as one string."""
    p, t = results.provenance, results.train_data
    return json.dumps({
        "model": results.model, "learning": results.learning, "config": results.config,
        "dataset": p.dataset_fingerprint, "split": results.split, "shots": results.shots, "seeds": results.seeds,
        "backbone": p.backbone_arch, "image_size": p.image_size, "weights": p.weights,
        "weights_sha256": p.weights_sha256, "init_seed": p.init_seed,
        "train_data": None if t is None else [t.fingerprint, t.split, t.part],
    }, sort_keys=True, default=str)


def duplicate_groups(measured: list[tuple[Path, Results]]) -> list[tuple[str, list[Path]]]:
    """``(why, files)`` for every group of two or more files that are byte-identical or of the same run, in file
    order; a byte-identical group is not reported again as the same run."""
    by_content: dict[str, list[Path]] = defaultdict(list)
    by_run: dict[str, list[Path]] = defaultdict(list)
    for path, results in measured:
        by_content[hashlib.sha256(Path(path).read_bytes()).hexdigest()].append(path)
        by_run[run_key(results)].append(path)
    groups = [("identical files", paths) for paths in by_content.values() if len(paths) > 1]
    identical = {frozenset(paths) for _, paths in groups}
    groups += [("the same run", paths) for paths in by_run.values()
               if len(paths) > 1 and frozenset(paths) not in identical]
    return sorted(groups, key=lambda g: [str(p) for p in g[1]])


__all__ = ["duplicate_groups", "run_key"]
