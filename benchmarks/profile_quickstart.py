"""Where the main job's time goes: ``caadbench quickstart`` timed per stage and per model, in one run.

The job runs unchanged; the script wraps the library's entry points (in this process only) with a stack of
*exclusive* stage clocks, so a nested stage pauses its parent and every second of wall time lands in exactly one
stage:

* ``data``: shard building, opening the set, and every batch the readers yield (decoding, resizing, collating);
* ``backbone``: building / loading the backbone of a run;
* ``text``: text-tower forwards (prompt prototypes; with the text cache, only the first encoding of a subject);
* ``image``: image-tower forwards (``encode_image``, ``image_tokens``, ``encode_token_subsets``) at inference
  and in few-shot fitting;
* ``fit/train``: fitting as the learning type needs; for trained models everything the training loop does except
  reading batches (its image and text forwards are training, not split out);
* ``predict``: the rest of inference (heads, window aggregation, maps);
* ``metrics``: the evaluator's updates and metric computation;
* ``results``: writing results files and their examples;
* ``report``: per-run reports and the leaderboard;
* ``other``: whatever none of the above holds (the job's own bookkeeping); wall time minus the stages.

Rows are models (``(job)`` holds what belongs to no model: shards, reports, leaderboard). Absolute seconds are
worth what the machine's load lets them be; the shares are what to read.

    OMP_NUM_THREADS=2 python benchmarks/profile_quickstart.py                       # the README's main job
    python benchmarks/profile_quickstart.py --size 120 --image-size 64 --models clip,winclip \
        --pretrained random-init --out /tmp/prof                                    # a small one
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from tabulate import tabulate

STAGES = ("data", "backbone", "text", "image", "fit/train", "predict", "metrics", "results", "report", "other")
JOB = "(job)"
OPAQUE = "train"
"""Inside a trained model's training, image and text forwards are part of the training stage."""


class StageClock:
    """Exclusive wall time per (model, stage): entering a stage pauses the one it interrupts."""

    def __init__(self) -> None:
        self.totals: dict[tuple[str, str], float] = defaultdict(float)
        self.model = JOB
        self._stack: list[str] = []
        self._since = 0.0
        self.start = self.end = 0.0

    def begin(self) -> None:
        self.start = self._since = time.perf_counter()

    def finish(self) -> None:
        self._charge()
        self.end = self._since

    def _charge(self) -> None:
        now = time.perf_counter()
        stage = self._stack[-1] if self._stack else "other"
        self.totals[(self.model, "fit/train" if stage == OPAQUE else stage)] += now - self._since
        self._since = now

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        top = self._stack[-1] if self._stack else None
        if top == name or (top == OPAQUE and name in ("text", "image")):
            yield  # re-entrant, or absorbed by training
            return
        self._charge()
        self._stack.append(name)
        try:
            yield
        finally:
            self._charge()
            self._stack.pop()

    @contextlib.contextmanager
    def for_model(self, name: str) -> Iterator[None]:
        self._charge()
        before, self.model = self.model, name
        try:
            yield
        finally:
            self._charge()
            self.model = before

    @property
    def wall(self) -> float:
        return self.end - self.start

    def table(self) -> tuple[list[str], list[list]]:
        models = list(dict.fromkeys(m for m, _ in self.totals))
        rows = []
        for m in models:
            values = [self.totals.get((m, s), 0.0) for s in STAGES]
            rows.append([m, *values, sum(values)])
        sums = [sum(r[1 + i] for r in rows) for i in range(len(STAGES))]
        rows.append(["all", *sums, sum(sums)])
        rows.append(["share %", *(100 * v / self.wall for v in sums), 100 * sum(sums) / self.wall])
        return ["model", *STAGES, "sum"], rows


def _timed(clock: StageClock, stage: str, fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with clock.stage(stage):
            return fn(*args, **kwargs)

    return wrapper


def _timed_iter(clock: StageClock, fn: Callable) -> Callable:
    """Wrap a function returning an iterator so each ``next`` is charged to ``data``."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with clock.stage("data"):
            it = iter(fn(*args, **kwargs))

        def gen():
            while True:
                with clock.stage("data"):
                    try:
                        item = next(it)
                    except StopIteration:
                        return
                yield item

        return gen()

    return wrapper


@contextlib.contextmanager
def instrumented(clock: StageClock) -> Iterator[None]:
    """Patch the library's entry points for the duration (restored on exit)."""
    from caadbench.data import loader
    from caadbench.eval import evaluator, quickstart, runner
    from caadbench.models.backbone import ClipBackbone
    from caadbench.models.base import Learning

    patches: list[tuple[object, str, object]] = []

    def patch(owner: object, name: str, new: object) -> None:
        patches.append((owner, name, getattr(owner, name)))
        setattr(owner, name, new)

    patch(loader.CaadDataset, "batches", _timed_iter(clock, loader.CaadDataset.batches))
    for owner, name in ((quickstart, "build_shards"), (quickstart, "open_dataset"), (runner, "open_dataset"),
                        (runner, "open_training_set")):
        patch(owner, name, _timed(clock, "data", getattr(owner, name)))
    patch(runner.Runner, "_backbone", _timed(clock, "backbone", runner.Runner._backbone))
    patch(ClipBackbone, "encode_text", _timed(clock, "text", ClipBackbone.encode_text))
    for name in ("encode_image", "image_tokens", "encode_token_subsets"):
        patch(ClipBackbone, name, _timed(clock, "image", getattr(ClipBackbone, name)))
    fit = runner.Runner._fit

    def timed_fit(self, model, seed):
        with clock.stage(OPAQUE if self.learning == Learning.TRAINED and self.cfg.checkpoint is None else "fit/train"):
            return fit(self, model, seed)

    patch(runner.Runner, "_fit", timed_fit)
    patch(runner.Runner, "_load_shipped", _timed(clock, "fit/train", runner.Runner._load_shipped))
    patch(runner.Runner, "_evaluate", _timed(clock, "predict", runner.Runner._evaluate))
    for name in ("update", "compute"):
        patch(evaluator.Evaluator, name, _timed(clock, "metrics", getattr(evaluator.Evaluator, name)))
    for name in ("write_results", "write_examples"):
        patch(runner, name, _timed(clock, "results", getattr(runner, name)))
    for name in ("write_reports", "generate_leaderboard"):
        patch(quickstart, name, _timed(clock, "report", getattr(quickstart, name)))
    run = quickstart.run

    def run_one(cfg):
        with clock.for_model(cfg.model):
            return run(cfg)

    patch(quickstart, "run", run_one)
    try:
        yield
    finally:
        for owner, name, old in reversed(patches):
            setattr(owner, name, old)


def profile(data: Path, out: Path, *, size: int | None = None, image_size: int | None = None,
            models: Sequence[str] | None = None, echo: Callable[[str], None] = print, **quickstart_kw) -> StageClock:
    """Run the quickstart under the stage clocks; a set of ``size`` images is built first when ``data`` has none
    (charged to ``data``). Returns the clock (``wall``, ``totals``)."""
    from caadbench.data.shards import build_shards, manifest_path
    from caadbench.data.sources import get_source_class
    from caadbench.eval.quickstart import quickstart

    clock = StageClock()
    clock.begin()
    with instrumented(clock):
        if (size or image_size) and not manifest_path(data).is_file():
            kw = {k: v for k, v in (("size", size), ("image_size", image_size)) if v is not None}
            with clock.stage("data"):
                build_shards(get_source_class("synthetic")(**kw), data)
        quickstart(data=data, out=out, models=models, echo=echo, **quickstart_kw)
    clock.finish()
    return clock


def main(argv: Sequence[str] | None = None) -> StageClock:
    from caadbench.models import text_cache

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("data/caad-synth"))
    p.add_argument("--out", type=Path, default=None, help="quickstart output (default: a temporary folder)")
    p.add_argument("--size", type=int, default=None, help="build a generated set of this many images when --data has none")
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--models", default=None, help="comma-separated model list (default: the quickstart's)")
    p.add_argument("--pretrained", default="world")
    p.add_argument("--backbone", default="caad-tiny")
    p.add_argument("--json", type=Path, default=None, help="also write the table here")
    p.add_argument("--retrain", action="store_true", help="train the trained methods instead of loading their "
                                                          "shipped checkpoints")
    args = p.parse_args(argv)
    models = args.models.split(",") if args.models else None
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "quickstart"
        clock = profile(args.data, out, size=args.size, image_size=args.image_size, models=models,
                        pretrained=args.pretrained, backbone=args.backbone, retrain=args.retrain,
                        echo=lambda _line: None)
    headers, rows = clock.table()
    print(tabulate(rows, headers=headers, floatfmt=".1f"))
    total = rows[-2][-1]
    print(f"\nwall {clock.wall:.1f} s; stages sum to {total:.1f} s; text cache {text_cache.stats()}")
    if args.json:
        args.json.write_text(json.dumps({"wall_s": clock.wall, "stages": STAGES,
                                         "rows": [dict(zip(headers, r)) for r in rows]}, indent=1))
    return clock


if __name__ == "__main__":
    main()
