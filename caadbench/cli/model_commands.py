"""``caadbench models``: list every registered model with its learning type and variants."""

from __future__ import annotations

import click
from tabulate import tabulate

from caadbench.cli import main


@main.command("models")
@click.argument("pattern", required=False)
def models_command(pattern: str | None) -> None:
    """List registered models (optionally those whose name contains PATTERN)."""
    from caadbench.models import list_models

    rows = [(s.name, s.family, s.variant, str(s.learning), s.description) for s in list_models(pattern)]
    click.echo(tabulate(rows, headers=["model", "family", "variant", "learning", "description"], tablefmt="github"))
