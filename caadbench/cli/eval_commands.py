"""Evaluation commands: ``leaderboard``, ``report``, ``compare``, ``results``, ``run`` and ``quickstart``."""

from __future__ import annotations

from pathlib import Path

import click

from caadbench.cli import main
from caadbench.paths import DEFAULT_DATA
from caadbench.utils.devices import DEVICE_HELP, PRECISION_HELP, PRECISIONS


BACKBONE_HELP = ("open_clip architecture: caad-tiny, ViT-B-16-plus-240, ..., hf-hub:ORG/NAME or local-dir:PATH  "
                 "[default: the model's: `caadbench models --options MODEL` shows it]")
PRETRAINED_HELP = ("backbone weights: world (caad-tiny's shipped synthetic-world weights), an open_clip pretrained tag, "
                   "a weights file (.bin/.pt/.safetensors), TAG=FILE (a file of that tag's weights), or random-init  "
                   "[default: random-init]")


def _use_text_cache(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        from caadbench.models.text_cache import use_disk

        use_disk(value)


text_cache_option = click.option(
    "--text-cache", type=click.Path(path_type=Path, file_okay=False), default=None, expose_value=False,
    callback=_use_text_cache,
    help="also keep encoded prompt embeddings in this directory, for later runs of the same weights "
         "(e.g. runs/text-cache)  [default: per process only]")


@main.command("leaderboard")
@click.option("--results", "results_dir", type=click.Path(path_type=Path), default=None,
              help="Directory of results JSON files.  [default: leaderboards/results]")
@click.option("--references", type=click.Path(path_type=Path), default=None,
              help="Paper-reported rows with citations.  [default: the packaged caadbench/eval/references.json]")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Markdown file to write.  [default: leaderboards/README.md]")
@click.option("--check", is_flag=True,
              help="Write nothing; exit non-zero when OUT differs from what would be generated.")
def leaderboard(results_dir: Path | None, references: Path | None, out: Path | None, check: bool) -> None:
    """Generate the leaderboard markdown from results files and paper references (deterministic)."""
    from caadbench.eval.leaderboard import (
        DEFAULT_OUT,
        DEFAULT_RESULTS_DIR,
        check_leaderboard,
        generate_leaderboard,
    )
    from caadbench.errors import ResultsError
    from caadbench.utils.atomic import atomic_write_text

    if results_dir is None and not DEFAULT_RESULTS_DIR.is_dir():
        raise ResultsError(DEFAULT_RESULTS_DIR, "not found here (the default is the caadbench repository's "
                                                "committed results): run it in the repository, or pass --results "
                                                "DIR (a folder of results files, e.g. runs/quickstart/results) and "
                                                "--out FILE")
    results_dir = DEFAULT_RESULTS_DIR if results_dir is None else results_dir
    out = DEFAULT_OUT if out is None else out
    text = generate_leaderboard(results_dir, references, out)
    if check:
        check_leaderboard(text, out)
        click.echo(f"{out}: up to date")
        return
    atomic_write_text(out, text)
    click.echo(f"wrote {out}")


@main.command("board")
@click.argument("spec", type=click.Path(path_type=Path), default=Path("leaderboards/board.yaml"))
@click.option("--results", "results_dir", type=click.Path(path_type=Path), default=None,
              help="Directory the rows' results files go to.  [default: leaderboards/results]")
@click.option("--data", default=None, help="Shard directory every row reads  [default: the spec's]")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Leaderboard markdown to regenerate at the end.  [default: leaderboards/README.md]")
@click.option("--force", is_flag=True, help="Rerun rows already produced at this commit.")
@click.option("--dry-run", is_flag=True, help="Check every row's settings and list them; run nothing.")
def board_command(spec: Path, results_dir: Path | None, data: str | None, out: Path | None, force: bool,
                  dry_run: bool) -> None:
    """Regenerate a whole leaderboard: run every row of SPEC (skipping rows done at this commit), then the tables.

    Prints each row's wall and CPU time and the totals. Long: start it in the background
    (`nohup caadbench board > board.log 2>&1 &`); a killed regeneration resumes at the first row not done.
    """
    from caadbench.eval.board import board_configs, run_board
    from caadbench.eval.leaderboard import DEFAULT_OUT, DEFAULT_RESULTS_DIR, generate_leaderboard
    from caadbench.utils.atomic import atomic_write_text

    results_dir = DEFAULT_RESULTS_DIR if results_dir is None else results_dir
    out = DEFAULT_OUT if out is None else out
    configs = board_configs(spec, results_dir, data)
    if dry_run:
        for cfg in configs:
            click.echo(f"{cfg.model}: split {cfg.split}, {cfg.shots}-shot, seeds {list(cfg.seeds)}, data {cfg.data}")
        return
    timings = run_board(configs, force=force, echo=click.echo)
    atomic_write_text(out, generate_leaderboard(results_dir, None, out))
    ran = [t for t in timings if t.ran]
    click.echo(f"{len(ran)} of {len(timings)} rows run: {sum(t.wall_s for t in ran):.0f} s wall, "
               f"{sum(t.cpu_s for t in ran):.0f} s CPU; wrote {out}")


@main.command("compare")
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
def compare_command(a: Path, b: Path) -> None:
    """Compare two results files of the same test images: each headline metric's A − B, its paired bootstrap
    interval and p-value, over test images and over contexts (docs/evaluation.md, Uncertainty)."""
    from caadbench.eval.compare import compare, comparison_text
    from caadbench.eval.results import read_results

    results_a, results_b = read_results(a), read_results(b)
    click.echo(comparison_text(results_a, results_b, a, b, compare(results_a, results_b, a, b)), nl=False)


@main.command("report")
@click.argument("results", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Report directory.  [default: <results stem>-report beside the results file]")
@click.option("--seed-index", type=int, default=0, show_default=True,
              help="Which of the run's seeds the curves and score distributions show.")
def report(results: Path, out: Path | None, seed_index: int) -> None:
    """Write the cross-context report (markdown + PNG figures) of one results file."""
    from caadbench.eval.report import write_report

    path = write_report(results, out, seed_index=seed_index)
    click.echo(f"wrote {path}")


def _parse_options(pairs: tuple[str, ...]) -> dict:
    """``key=value`` pairs → config overrides; values are JSON when they parse (numbers, true, lists), else text."""
    import json

    from caadbench.errors import ModelError

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ModelError(f"--option {pair}", "expected KEY=VALUE")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


def _print_results(path: Path) -> None:
    from tabulate import tabulate

    from caadbench.eval.results import read_results
    from caadbench.eval.runner import summarize

    results = read_results(path)
    p = results.provenance
    kind = p.weights_kind
    t = results.train_data
    trained = f", trained on {t.dataset} {t.split}/{t.part}" if results.cross_dataset else ""
    fit = f"{results.shots}-shot" if results.learning == "few-shot" else results.learning
    click.echo(f"\n{results.model} on {results.dataset}/{results.split} ({fit}, seeds "
               f"{', '.join(map(str, results.seeds))}{trained}), backbone {p.backbone_arch} {p.weights_label()}"
               + (f"\n{kind.mark} {kind.legend}" if kind.legend else ""))
    headers, rows = summarize(results)
    click.echo(tabulate(rows, headers=headers, tablefmt="github"))
    click.echo(f"{p.images_per_s:.1f} images/s on {p.device} ({p.precision}), {p.wall_time_s:.1f} s -> {path}")


RUN_FLAGS = {"model_name": "model", "split": "split", "data": "data", "shots": "shots", "seeds": "seeds",
             "backbone": "backbone", "pretrained": "pretrained", "image_size": "image_size", "precision": "precision",
             "checkpoint": "checkpoint", "options": "options", "device": "device", "batch_size": "batch_size",
             "workers": "workers", "out": "out", "dataset_id": "dataset_id", "train_data": "train_data",
             "train_split": "train_split", "train_part": "train_part", "select": "select", "retrain": "retrain"}
"""click parameter → run setting (a :class:`~caadbench.eval.runner.RunConfig` field)."""


def _run_settings(ctx: click.Context, flags: dict) -> tuple[dict, dict]:
    """``(defaults, given)``: the run settings of the flags left at their defaults and of those given."""
    from click.core import ParameterSource

    from caadbench.errors import CaadError

    defaults, given = {}, {}
    for param, key in RUN_FLAGS.items():
        value = flags[param]
        if param == "seeds":
            try:
                value = [int(s) for s in value.split(",") if s.strip()]
            except ValueError:
                raise CaadError(f"--seeds {value}", "expected comma-separated integers") from None
        elif param == "options":
            value = _parse_options(value)
        source = ctx.get_parameter_source(param)
        if source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            given[key] = value
        elif value is not None and value != {}:
            defaults[key] = value
    return defaults, given


def stdout_is_terminal() -> bool:
    import sys

    return sys.stdout.isatty()


@main.command("results")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "json"]), default="md", show_default=True,
              help="md: markdown table (values in percent); csv / json: raw values (fractions in [0, 1])")
@click.option("--by", type=click.Choice(["subject", "context"]), default=None,
              help="one row per run × subject or per run × (subject, context) pair  [default: one row per run]")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="write here instead of stdout")
@click.option("--columns", "shown", default="auto", show_default=True, metavar="auto|short|all|NAME,...",
              help="short: a run's identity in brief and its headline numbers; all: every column; or a comma list; "
                   "auto: short for a markdown table on a terminal, else all")
def results_command(path: Path, fmt: str, by: str | None, out: Path | None, shown: str) -> None:
    """Flatten a results file, or every results file of a directory, into one table.

    The same rows as the Python function ``caadbench.results_frame(PATH, by=...)`` (a pandas DataFrame).
    """
    from caadbench.eval.flatten import SHORT_COLUMNS, format_rows, results_rows, select_columns
    from caadbench.utils.atomic import atomic_write_text

    rows = results_rows(path, by=by)
    if shown == "auto":
        shown = "short" if fmt == "md" and out is None and stdout_is_terminal() else "all"
    if shown != "all":
        names = SHORT_COLUMNS[by] if shown == "short" else [c.strip() for c in shown.split(",") if c.strip()]
        rows = select_columns(rows, names)
    text = format_rows(rows, fmt)
    if out is None:
        click.echo(text, nl=False)
    else:
        atomic_write_text(out, text)
        click.echo(f"wrote {out}", err=True)


@main.command("run")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="run config (YAML or JSON: run settings + options), or a results file to rerun; flags given on "
                   "the command line override it")
@click.option("--model", "model_name", default=None, help="registered model (see `caadbench models`)  [required]")
@click.option("--split", default=None, help="split stored in the dataset: cc, ic, cs (contextual) or std  [required]")
@click.option("--data", default=str(DEFAULT_DATA), show_default=True,
              help="shard directory built by `caadbench build-shards`, or its URL (https://…/, pipe:…, s3://…)")
@click.option("--shots", type=int, default=0, show_default=True, help="k-shot support (few-shot models)")
@click.option("--seeds", default="0", show_default=True, help="comma-separated seeds (one fit + evaluation each)")
@click.option("--backbone", default=None, help=BACKBONE_HELP)
@click.option("--pretrained", default=None, help=PRETRAINED_HELP)
@click.option("--image-size", type=int, default=None, help="input side in pixels [default: the backbone's]")
@click.option("--precision", type=click.Choice(PRECISIONS), default=None, help=f"{PRECISION_HELP}  [default: auto]")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="fitted state (safetensors from a previous run) to load instead of fitting")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="model option (repeatable; `caadbench models --options MODEL` lists them)")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--batch-size", type=int, default=32, show_default=True,
              help="images per evaluation (and support) batch; trained models train with their batch_size option")
@click.option("--workers", type=int, default=0, show_default=True,
              help="DataLoader processes reading shards (0: read in this process)")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs"), show_default=True,
              help="directory for the results file, its examples and checkpoints")
@click.option("--dataset-id", default=None, help="dataset id in the results [default: from the shards' source]")
@click.option("--train-data", default=None,
              help="shard directory (or URL) a trained model is trained on (cross-dataset protocol)  [default: --data]")
@click.option("--train-split", default=None, help="split of the training data to train on  [default: --split]")
@click.option("--train-part", default="train", show_default=True,
              help="part of that split to train on (another dataset's 'test' part for the papers' protocol)")
@click.option("--select", type=click.Choice(["auto", "early-stop", "search", "none"]), default="auto",
              show_default=True,
              help="model selection of trained models on the split's val part: early-stop (score val during "
                   "training, keep the best state), search (learning-rate ×0.5/×1/×2 on the first seed, each "
                   "early-stopped; the best for every seed), none; auto = early-stop when the set has a val part")
@click.option("--retrain", is_flag=True, default=None,
              help="train a trained model even when a shipped checkpoint matches the run  [default: load the "
                   "matching shipped checkpoint, sha256-checked; README, 'Shipped checkpoints']")
@text_cache_option
@click.pass_context
def run_command(ctx: click.Context, config_file: Path | None, **flags) -> None:
    """Evaluate one model on one split and write one results file (fits/trains as the model needs).

    Settings come from the defaults, then the --config file, then the flags given (highest); the merged settings
    are stored in the results file as run_config, so `caadbench run --config RESULTS.json` reruns a result.
    """
    from caadbench.eval.runconfig import merge, read_config_file, run_config_from_dict
    from caadbench.eval.runner import run

    defaults, given = _run_settings(ctx, flags)
    from_file = read_config_file(config_file) if config_file is not None else {}
    settings = merge(merge(defaults, from_file), given)
    cfg = run_config_from_dict(settings, config_file if config_file is not None else "--option")
    path = run(cfg)
    if path is not None:
        _print_results(path)


@main.command("quickstart")
@click.option("--data", type=click.Path(path_type=Path), default=DEFAULT_DATA, show_default=True,
              help="shard directory (built with the embedded default when missing)")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/quickstart"), show_default=True)
@click.option("--split", default="cc", show_default=True)
@click.option("--backbone", default="caad-tiny", show_default=True)
@click.option("--pretrained", default="world", show_default=True,
              help="backbone weights: world (the shipped synthetic-world weights), an open_clip tag, a checkpoint "
                   "file, or random-init")
@click.option("--seeds", default="0", show_default=True,
              help="comma-separated seeds of the seed-dependent (few-shot and trained) models; zero-shot ones run once")
@click.option("--shots", type=int, default=4, show_default=True, help="k for the few-shot models")
@click.option("--ablations", is_flag=True, help="also run every ablation variant of the trained methods")
@click.option("--models", "model_names", default=None, help="comma-separated models [default: every zero-/few-shot "
                                                            "variant and each trained method's default]")
@click.option("--workers", type=int, default=None, help="shard building processes [default: all cores]")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True, help=PRECISION_HELP)
@click.option("--retrain", is_flag=True,
              help="train CoRe-CLIP, APRIL-GAN and AnomalyCLIP instead of loading their shipped checkpoints "
                   "(adds about 6 minutes on 2 cores)")
@text_cache_option
def quickstart_command(data: Path, out: Path, split: str, backbone: str, pretrained: str, seeds: str, shots: int,
                       ablations: bool, model_names: str | None, workers: int | None, device: str,
                       precision: str, retrain: bool) -> None:
    """The main job end to end: default shards → every model on a split → reports → leaderboard."""
    from caadbench.eval.quickstart import quickstart

    names = None if model_names is None else [m.strip() for m in model_names.split(",") if m.strip()]
    from caadbench.errors import CaadError

    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise CaadError(f"--seeds {seeds}", "expected comma-separated integers") from None
    quickstart(data=data, out=out, split=split, backbone=backbone, pretrained=pretrained, seeds=seed_list,
               shots=shots, ablations=ablations, models=names, workers=workers, device=device, precision=precision,
               retrain=retrain, echo=click.echo)


@main.command("ship-checkpoints")
@click.option("--data", type=click.Path(path_type=Path), default=DEFAULT_DATA, show_default=True,
              help="the shard directory the main job evaluates (the checkpoints are refused on any other)")
@click.option("--split", default="cc", show_default=True)
@click.option("--backbone", default="caad-tiny", show_default=True)
@click.option("--pretrained", default="world", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--models", "model_names", default=None,
              help="comma-separated trained models  [default: those the quickstart runs: coreclip, aprilgan, "
                   "anomalyclip]")
@click.option("--work", type=click.Path(path_type=Path), default=Path("runs/ship-checkpoints"), show_default=True,
              help="where the training runs' results and trainer checkpoints go")
@click.option("--manifest", type=click.Path(path_type=Path), default=None,
              help="manifest to write; the files go beside it  [default: the packaged "
                   "caadbench/models/weights/checkpoints.json]")
def ship_checkpoints_command(data: Path, split: str, backbone: str, pretrained: str, seed: int,
                             model_names: str | None, work: Path, manifest: Path | None) -> None:
    """Train the main job's trained methods (one seed, the board's settings) and write the shipped checkpoints
    and their manifest (sha256, commit, command, dataset identity, config, training log). Run it at a clean
    commit and commit its output: `caadbench quickstart` then evaluates these instead of training."""
    from caadbench.eval.ship import ship_checkpoints

    names = None if model_names is None else [m.strip() for m in model_names.split(",") if m.strip()]
    ship_checkpoints(data=data, models=names, split=split, backbone=backbone, pretrained=pretrained, seed=seed,
                     work=work, manifest=manifest, echo=click.echo)
