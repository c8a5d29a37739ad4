"""The typer application behind the ``mrjax`` console command."""

from __future__ import annotations

import typer

import mrjax
from mrjax_cli.analyse import mr, presso
from mrjax_cli.data import clump, harmonise
from mrjax_cli.demo import demo
from mrjax_cli.mvmr import mvmr
from mrjax_cli.scan import scan
from mrjax_cli.store import ingest, store_app

app = typer.Typer(
    name="mrjax",
    help="Mendelian randomization at the speed of the hardware.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(mrjax.__version__)
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
) -> None:
    """Mendelian randomization at the speed of the hardware."""


@app.command()
def version() -> None:
    """Print the mrjax version."""
    typer.echo(mrjax.__version__)


app.command()(scan)
app.command()(demo)
app.command()(mr)
app.command()(presso)
app.command()(clump)
app.command()(harmonise)
app.command()(ingest)
app.add_typer(store_app, name="store")
app.command()(mvmr)


def _register_simulate() -> None:
    """``mrjax simulate`` lives in ``cli/simulate.py`` (simulation studies), when installed."""
    try:
        from mrjax_cli import simulate as module
    except ImportError:
        return
    command = getattr(module, "simulate_command", None) or getattr(module, "simulate", None)
    if isinstance(getattr(module, "app", None), typer.Typer):
        app.add_typer(module.app, name="simulate")
    elif callable(command):
        app.command(name="simulate")(command)


_register_simulate()
