"""``caadbench models``: list every registered model with its learning type and variants, or one model's options."""

from __future__ import annotations

import json

import click
from tabulate import tabulate

from caadbench.cli import main


def _shown(value) -> str:
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value) if not isinstance(value, str) else value


@main.command("models")
@click.argument("pattern", required=False)
@click.option("--options", "options_of", metavar="NAME", default=None,
              help="print every option of model NAME (type, the variant's default, description) instead")
def models_command(pattern: str | None, options_of: str | None) -> None:
    """List registered models (optionally those whose name contains PATTERN), or the options of one."""
    from caadbench.models import get_model_spec, list_models
    from caadbench.models.options import config_options

    if options_of is not None:
        spec = get_model_spec(options_of)
        rows = [(o.name, o.type, _shown(o.default), o.description)
                for o in config_options(spec.cls.config_cls, spec.overrides)]
        click.echo(f"{spec.name} ({spec.learning}): {spec.description}")
        click.echo("set with --option NAME=VALUE, or under options: in a run config file\n")
        click.echo(tabulate(rows, headers=["option", "type", "default", "description"], tablefmt="github"))
        return
    rows = [(s.name, s.family, s.variant, str(s.learning), s.description) for s in list_models(pattern)]
    click.echo(tabulate(rows, headers=["model", "family", "variant", "learning", "description"], tablefmt="github"))
