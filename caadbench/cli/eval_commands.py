"""Evaluation commands: ``leaderboard`` and ``report`` (``run`` and ``quickstart`` join them here)."""

from __future__ import annotations

from pathlib import Path

import click

from caadbench.cli import main


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
    from caadbench.utils.atomic import atomic_write_text

    results_dir = DEFAULT_RESULTS_DIR if results_dir is None else results_dir
    out = DEFAULT_OUT if out is None else out
    text = generate_leaderboard(results_dir, references, out)
    if check:
        check_leaderboard(text, out)
        click.echo(f"{out}: up to date")
        return
    atomic_write_text(out, text)
    click.echo(f"wrote {out}")


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
