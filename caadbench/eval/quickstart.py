"""The main job end to end on the embedded default: build shards, run every model, report, leaderboard.

Runs on 2 CPU cores in minutes with the tiny random-init ``caad-tiny`` backbone. Its numbers say that the
pipeline works and how the methods compare *on random features*; they are never paper-comparable numbers.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm import tqdm

from caadbench.data.loader import open_dataset
from caadbench.data.shards import build_shards, manifest_path
from caadbench.data.sources import get_source_class
from caadbench.eval.leaderboard import generate_leaderboard, measured_table, read_results_dir
from caadbench.eval.report import write_report
from caadbench.eval.runner import RunConfig, run
from caadbench.models import Learning, get_model_spec, list_models
from caadbench.utils.atomic import atomic_write_text


def default_models(ablations: bool = False) -> list[str]:
    """Every zero-/few-shot baseline variant and the default variant of each trained method (CoRe-CLIP, APRIL-GAN,
    AnomalyCLIP); with ``ablations`` every variant of the trained methods too."""
    return [s.name for s in list_models() if s.learning != Learning.TRAINED or ablations or s.name == s.family]


def quickstart(
    *,
    data: Path = Path("data/caad-synth"),
    out: Path = Path("runs/quickstart"),
    split: str = "cc",
    backbone: str = "caad-tiny",
    shots: int = 4,
    ablations: bool = False,
    models: Sequence[str] | None = None,
    workers: int | None = None,
    echo: Callable[[str], None] = print,
) -> Path:
    """Run the main job; return the path of the generated leaderboard markdown.

    Args:
        data: shard directory; built from the default synthetic source when it has no manifest.
        out: where results (``results/``), reports (``reports/``) and ``LEADERBOARD.md`` go; results and reports
            of an earlier quickstart there are removed first, so the leaderboard shows this run only.
        split: the split every model is evaluated on.
        backbone: open_clip architecture for every model.
        shots: k for few-shot models.
        ablations: also run every CoRe-CLIP variant.
        models: explicit model list (default :func:`default_models`).
        workers: shard-building processes.
        echo: where progress lines go.
    """
    start = time.perf_counter()
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
        path = run(RunConfig(model=name, split=split, data=Path(data), shots=k, backbone=backbone,
                             out=results_dir))
        paths.append(path)
    echo(f"[3/4] reports into {reports_dir}")
    for path in tqdm(paths, desc="reports", unit="report", disable=None):
        write_report(path, reports_dir / path.stem)
    board = Path(out) / "LEADERBOARD.md"
    atomic_write_text(board, generate_leaderboard(results_dir, None, board))
    echo(f"[4/4] leaderboard {board} ({time.perf_counter() - start:.0f} s in all)\n")
    measured = read_results_dir(results_dir)
    echo(measured_table(measured))
    if any(r.random_init for _, r in measured):
        echo("\nRandom-init backbone: these numbers check the pipeline and compare methods on random features; "
             "they are not comparable to paper numbers.")
    echo(f"Full leaderboard with the papers' reported rows: {board}; per-run reports: {reports_dir}/")
    return board
