"""The main job end to end on the embedded default: build shards, run every model, report, leaderboard.

Runs on 2 CPU cores in minutes with the tiny ``caad-tiny`` backbone and its shipped **world weights** (a CLIP
pretrained on the synthetic world, ``--pretrained world``, see ``docs/world.md``): the numbers compare the methods
on features that know the world's subjects and contexts but were never told which pairs are unusual. They are
meaningful inside the synthetic world and never comparable to paper numbers. ``pretrained="random-init"`` runs on
random features instead (what the tests do).
"""

from __future__ import annotations

import logging
import multiprocessing
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from collections.abc import Callable, Sequence
from pathlib import Path


from caadbench.data.loader import open_dataset
from caadbench.data.shards import build_shards, manifest_path
from caadbench.data.sources import get_source_class
from caadbench.eval.leaderboard import generate_leaderboard, measured_table, read_results_dir
from caadbench.eval.report import write_report
from caadbench.eval.runner import RunConfig, run
from caadbench.models import Learning, get_model_spec, list_models
from caadbench.paths import DEFAULT_DATA
from caadbench.utils.atomic import atomic_write_text
from caadbench.utils.devices import resolve_device, usable_cores
from caadbench.utils.progress import progress

logger = logging.getLogger(__name__)


def default_models(ablations: bool = False) -> list[str]:
    """Every zero-/few-shot baseline variant and the default variant of each trained method (CoRe-CLIP, APRIL-GAN,
    AnomalyCLIP); with ``ablations`` every variant of the trained methods too."""
    return [s.name for s in list_models() if s.learning != Learning.TRAINED or ablations or s.name == s.family]


def write_reports(paths: Sequence[Path], reports_dir: Path, workers: int | None = None) -> None:
    """Write each results file's report into ``reports_dir/<stem>``, in ``workers`` processes at once.

    Reports are drawn by matplotlib on one core each, so on a machine with ``n`` cores ``n`` of them render side by
    side (``workers`` defaults to the usable cores; processes are spawned, never forked from a process whose torch
    thread pool is running). Any report's error is raised; a report that failed leaves no directory behind
    (:func:`~caadbench.eval.report.write_report` writes atomically).
    """
    workers = min(len(paths), workers or usable_cores())
    with progress(total=len(paths), desc="reports", unit="report") as bar:
        if workers <= 1:
            for path in paths:
                write_report(path, reports_dir / path.stem)
                bar.update()
            return
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(write_report, path, reports_dir / path.stem) for path in paths]
            for future in as_completed(futures):
                future.result()
                bar.update()


def quickstart(
    *,
    data: Path = DEFAULT_DATA,
    out: Path = Path("runs/quickstart"),
    split: str = "cc",
    backbone: str = "caad-tiny",
    pretrained: str | None = "world",
    seeds: Sequence[int] = (0,),
    shots: int = 4,
    ablations: bool = False,
    models: Sequence[str] | None = None,
    workers: int | None = None,
    device: str = "auto",
    precision: str = "auto",
    retrain: bool = False,
    echo: Callable[[str], None] | None = None,
) -> Path:
    """Run the main job; return the path of the generated leaderboard markdown.

    Args:
        data: shard directory; built from the default synthetic source when it has no manifest.
        out: where results (``results/``), reports (``reports/``) and ``LEADERBOARD.md`` go; results and reports
            of an earlier quickstart there are removed first, so the leaderboard shows this run only.
        split: the split every model is evaluated on.
        backbone: open_clip architecture for every model.
        pretrained: its weights (``world``, an open_clip tag, a checkpoint file, or ``random-init``).
        seeds: seeds of every model whose result depends on a seed (few-shot supports, training); zero-shot
            models depend on none and run once, with the first.
        shots: k for few-shot models.
        ablations: also run every CoRe-CLIP variant.
        models: explicit model list (default :func:`default_models`).
        workers: shard-building processes.
        device: where every model runs (``auto``: CUDA when available, else CPU).
        precision: every model's precision (``auto``, ``fp32``, ``bf16``).
        retrain: train the trained methods even where a shipped checkpoint matches (by default a matching one is
            loaded, sha256-checked: :mod:`caadbench.eval.shipped`).
        echo: where progress lines go (default: this module's logger at ``INFO``).
    """
    echo = echo or logger.info
    start = time.perf_counter()
    device = resolve_device(device)  # once, so a bad --device fails before any shard is built
    if not manifest_path(data).is_file():
        echo(f"[1/4] building the default synthetic shards into {data}")
        build_shards(get_source_class("synthetic")(), data, workers=workers)
    else:
        echo(f"[1/4] using the shards in {data} (fingerprint {open_dataset(data).fingerprint[:12]})")
    names = list(models) if models is not None else default_models(ablations)
    results_dir, reports_dir = Path(out) / "results", Path(out) / "reports"
    for old in (results_dir, reports_dir):
        shutil.rmtree(old, ignore_errors=True)
    paths = []
    for i, name in enumerate(names, 1):
        learning = get_model_spec(name).learning
        k = shots if learning == Learning.FEW_SHOT else 0
        echo(f"[2/4] ({i}/{len(names)}) {name} on {split} ({learning}{f', {k}-shot' if k else ''})")
        model_seeds = tuple(seeds)[:1] if learning == Learning.ZERO_SHOT else tuple(seeds)
        path = run(RunConfig(model=name, split=split, data=Path(data), shots=k, seeds=model_seeds,
                             backbone=backbone, pretrained=pretrained, precision=precision, device=device,
                             out=results_dir, retrain=retrain))
        paths.append(path)
    echo(f"[3/4] reports into {reports_dir}")
    write_reports(paths, reports_dir)
    board = Path(out) / "LEADERBOARD.md"
    atomic_write_text(board, generate_leaderboard(results_dir, None, board))
    echo(f"[4/4] leaderboard {board} ({time.perf_counter() - start:.0f} s in all)\n")
    measured = read_results_dir(results_dir)
    echo(measured_table(measured))
    for kind in sorted({r.provenance.weights_kind for _, r in measured if r.provenance.weights_kind.legend}):
        echo(f"\n{kind.mark} {kind.legend}")
    echo(f"Full leaderboard with the papers' reported rows: {board}; per-run reports: {reports_dir}/")
    return board
