"""Your own images: ``predict`` (overlays + scores table) and ``calibrate`` (a threshold from normal images)."""

from __future__ import annotations

from pathlib import Path

import click

from caadbench.cli import main
from caadbench.cli.eval_commands import BACKBONE_HELP, PRETRAINED_HELP
from caadbench.utils.devices import DEVICE_HELP, PRECISION_HELP, PRECISIONS

EXIT_SKIPPED = 1
"""Exit status of a ``predict`` that finished but skipped unreadable inputs (bad input overall: 2)."""


def model_options(command):
    """The model-choosing options ``predict`` and ``calibrate`` share."""
    options = [
        click.option("--model", "model_name", default=None,
                     help="registered model: zero-shot, or few-shot with --reference  [default with --reference: "
                          "winclip.plus]"),
        click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
                     help="fitted or trained state (safetensors written by AnomalyModel.save / caadbench run)"),
        click.option("--reference", "references", multiple=True, type=click.Path(path_type=Path),
                     help="normal reference images for a few-shot model: a folder with one sub-folder per subject "
                          "(repeatable)"),
        click.option("--reference-subject", default=None, help="subject of every reference image"),
        click.option("--subject", default=None,
                     help="subject of every image  [default: one sub-folder per subject, or the parent folder]"),
        click.option("--backbone", default=None, help=BACKBONE_HELP),
        click.option("--pretrained", default=None, help=PRETRAINED_HELP),
        click.option("--image-size", type=int, default=None, help="input side in pixels [default: the backbone's]"),
        click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
                     help="model option (repeatable; `caadbench models --options MODEL` lists them)"),
        click.option("--precision", type=click.Choice(PRECISIONS), default=None,
                     help=f"{PRECISION_HELP}  [default: auto]"),
        click.option("--device", default="auto", show_default=True, help=DEVICE_HELP),
        click.option("--batch-size", type=int, default=8, show_default=True, help="images per forward pass"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _model_args(kw: dict) -> dict:
    from caadbench.cli.eval_commands import _parse_options

    return {"model": kw["model_name"], "checkpoint": kw["checkpoint"],
            "references": list(kw["references"]) or None, "reference_subject": kw["reference_subject"],
            "backbone": kw["backbone"], "pretrained": kw["pretrained"], "image_size": kw["image_size"],
            "precision": kw["precision"], "options": _parse_options(kw["options"]), "device": kw["device"],
            "batch_size": kw["batch_size"]}


def _subjects_line(refs) -> str:
    counts: dict[str, int] = {}
    for r in refs:
        counts[r.subject] = counts.get(r.subject, 0) + 1
    return f"{len(refs)} image(s); subjects: " + ", ".join(f"{s} ({n})" for s, n in sorted(counts.items()))


def _describe(info: dict) -> str:
    return (f"{info['model']} ({info['learning']}) on {info['backbone']} {info['weights']}, {info['device']} "
            f"{info['precision']}")


@main.command("predict")
@click.argument("images", nargs=-1, required=True)
@model_options
@click.option("--threshold", default=None, metavar="VALUE|FILE",
              help="label images: anomalous when score > VALUE, or > the thresholds of a `caadbench calibrate` file")
@click.option("--out", type=click.Path(path_type=Path), default=Path("predictions"), show_default=True,
              help="folder for overlays/, scores.csv and predict.json")
@click.option("--no-overlays", is_flag=True, help="write scores.csv only")
def predict_command(images: tuple[str, ...], threshold: str | None, out: Path, no_overlays: bool, **kw) -> None:
    """Score IMAGES (files, folders with one sub-folder per subject, or globs): a heat-map overlay per image and
    one scores.csv. An unreadable file is named in one line and skipped; the exit status is then 1."""
    from caadbench.infer.inputs import expand_paths
    from caadbench.infer.outputs import PredictionWriter
    from caadbench.infer.predictor import iter_predictions, load_model
    from caadbench.infer.threshold import read_threshold

    refs = expand_paths(images, kw["subject"])
    click.echo(_subjects_line(refs), err=True)
    args = _model_args(kw)
    loaded = load_model(subjects=[r.subject for r in refs], **args)
    rule = None if threshold is None else read_threshold(threshold)
    if rule is not None:
        rule.check_model(loaded.fingerprint)
    click.echo(_describe(loaded.info), err=True)
    if not no_overlays and not loaded.model.gives_maps:
        click.echo(f"{loaded.info['model']} gives no anomaly maps: scores.csv only, no overlays", err=True)
    writer = PredictionWriter(out, rule, overlays=not no_overlays and loaded.model.gives_maps)
    skipped: list[str] = []

    def skip(exc) -> None:
        skipped.append(str(exc))
        click.echo(f"error: {exc} (skipped)", err=True)

    for p in iter_predictions(loaded, refs, batch_size=args["batch_size"], on_error=skip, progress=True):
        writer.add(p)
    if not writer.rows:
        from caadbench.errors import CaadError

        raise CaadError("predict", f"no image could be read ({len(skipped)} skipped); nothing written")
    table = writer.finish(loaded.info, skipped)
    flagged = sum(r.get("label", 0) for r in writer.rows)
    click.echo(f"{len(writer.rows)} image(s) scored{f', {flagged} anomalous' if rule is not None else ''}"
               f"{f', {len(skipped)} skipped' if skipped else ''} -> {table}")
    if skipped:
        click.get_current_context().exit(EXIT_SKIPPED)


@main.command("calibrate")
@click.argument("images", nargs=-1, required=True)
@model_options
@click.option("--quantile", type=float, default=None,
              help="threshold = this quantile of the normal scores (per subject)  [default: 0.95]")
@click.option("--out", type=click.Path(path_type=Path), default=Path("threshold.json"), show_default=True,
              help="threshold file for `caadbench predict --threshold`")
def calibrate_command(images: tuple[str, ...], quantile: float | None, out: Path, **kw) -> None:
    """Make a threshold file from NORMAL images only (files, folders, globs): per subject, a quantile of their
    scores. Every image must be readable."""
    from tabulate import tabulate

    from caadbench.infer.predictor import calibrate
    from caadbench.infer.threshold import ALL, DEFAULT_QUANTILE

    threshold = calibrate(list(images), subjects=kw["subject"], quantile=DEFAULT_QUANTILE if quantile is None
                          else quantile, out=out, **_model_args(kw))
    rows = [(s, threshold.counts.get(s, 0), f"{v:.6g}") for s, v in sorted(threshold.per_subject.items())]
    rows.append((ALL, threshold.counts.get(ALL, 0), f"{threshold.value:.6g}"))
    click.echo(tabulate(rows, headers=["subject", "normal images", f"threshold (q={threshold.quantile:g})"],
                        tablefmt="github"))
    click.echo(f"wrote {out}")
