"""The typer application behind the ``mrjax`` console command."""

from __future__ import annotations

import typer

import mrjax

app = typer.Typer(
    name="mrjax",
    help="Mendelian randomization at the speed of the hardware.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """Mendelian randomization at the speed of the hardware."""


@app.command()
def version() -> None:
    """Print the mrjax version."""
    typer.echo(mrjax.__version__)
