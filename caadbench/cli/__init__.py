"""The ``caadbench`` command line: a thin click layer that parses, calls the library and prints.

Library status lines are ``logging`` records of the ``caadbench`` loggers; the group attaches a stderr handler
(``-v`` debug, ``-q`` warnings only). Every bad-input failure is a :class:`~caadbench.errors.CaadError`; it is printed as one line
``error: <file>: <problem>`` on stderr with exit status 2. Commands live in one module per area.
"""

from __future__ import annotations

import logging
import sys

import click

from caadbench import __version__
from caadbench.errors import CaadError
from caadbench.utils.logs import configure_cli_logging

EXIT_BAD_INPUT = 2


class CaadGroup(click.Group):
    """A click group that turns library errors into one clear line and a non-zero exit.

    Its commands are registered on first lookup (:func:`_register`), so ``caadbench --version`` imports no command
    module (and with them torch): it answers in a fraction of a second.
    """

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        _register()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        _register()
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CaadError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            ctx.exit(130)


@click.group(cls=CaadGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="caadbench")
@click.option("-v", "--verbose", is_flag=True, help="Also show debug messages on stderr.")
@click.option("-q", "--quiet", is_flag=True, help="Show only warnings and errors on stderr (no status lines).")
def main(verbose: bool, quiet: bool) -> None:
    """caadbench: contextual anomaly detection benchmark (CAAD shards, CoRe-CLIP, CLIP, WinCLIP)."""
    configure_cli_logging(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)


def _register() -> None:
    """Import every command module once (each attaches its commands to :data:`main`)."""
    from caadbench.cli import (  # noqa: F401  (commands attach to main)
        data_commands,
        eval_commands,
        model_commands,
        predict_commands,
        world_commands,
    )

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
