"""``mrjax ingest`` and ``mrjax store ls``: build a GWAS store and see what it holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mrjax_cli._common import Debug, err_console, fail, parse_mapping, user_errors

store_app = typer.Typer(name="store", help="Inspect a GWAS store made by `mrjax ingest`.", no_args_is_help=True)

#: The fields of the table view (``--tsv`` prints every field of ``GWASStore.summary``).
LS_COLUMNS = ("trait", "rows_kept", "rows_read", "top_hits", "n", "n_cases", "n_controls", "effect_scale",
              "genome_build", "format")


def ingest(
    files: Annotated[list[str] | None, typer.Argument(help="GWAS files or quoted globs, in any format mrjax reads.")] = None,
    store: Annotated[Path, typer.Option("--store", help="Store folder (created on first use).")] = Path("gwas_store"),
    workers: Annotated[int | None, typer.Option("--workers", help="Local Dask worker processes (default: one per core; 0: this process).")] = None,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="Address of a running Dask scheduler, e.g. tcp://head:8786.")] = None,
    manifest: Annotated[Path | None, typer.Option("--manifest", help="TSV of path, trait, format, columns, n, n_cases, n_controls, build.")] = None,
    keep_p: Annotated[float, typer.Option("--keep-p", help="Rows with p <= this go to each trait's top-hits table.")] = 1e-4,
    column: Annotated[list[str] | None, typer.Option("--column", help="Column mapping NAME=COLUMN for the reader (repeatable).")] = None,
    gwas_format: Annotated[str | None, typer.Option("--format", help="Force the GWAS reader (default: detected).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress output.")] = False,
    debug: Debug = False,
) -> None:
    """Read GWAS files once into a columnar store (in parallel on Dask); re-runs skip what is done."""
    from mrjax.store import ingest as run_ingest

    if not files and manifest is None:
        fail("give GWAS files, globs or --manifest", "e.g. mrjax ingest 'gwas/*.h.tsv.gz' --store gwas_store")
    with user_errors(debug):
        summary = run_ingest(files or [], store=store, manifest=manifest, workers=workers, scheduler=scheduler,
                             keep_p=keep_p, format=gwas_format, columns=parse_mapping(column, "--column") or None,
                             progress=False if quiet else None)
    counts = summary["status"].value_counts()
    done = ", ".join(f"{counts[s]} {s}" for s in ("written", "replaced", "skipped", "failed") if s in counts)
    err_console.print(f"{store}: {done}")
    failed = summary[summary["status"] == "failed"]
    for row in failed.itertuples():
        err_console.print(f"[red]failed[/] {row.trait}: {row.reason}")
    if len(failed):
        fail(f"{len(failed)} trait(s) failed (listed above and in {store / 'ingest.log'})",
             "fix or remove those files and rerun: finished traits are skipped")


@store_app.command("ls")
def ls(
    store: Annotated[Path, typer.Argument(help="Store folder.")],
    tsv: Annotated[bool, typer.Option("--tsv", help="Tab-separated output with every field.")] = False,
    debug: Debug = False,
) -> None:
    """List the store's traits with their source, read audit, sample size, scale and build."""
    from mrjax.store import GWASStore

    with user_errors(debug):
        table = GWASStore(store).summary()
    if table.empty:
        err_console.print(f"{store}: no traits yet")
        return
    if tsv:
        typer.echo(table.to_csv(sep="\t", index=False), nl=False)
        return
    view = Table(*LS_COLUMNS, header_style="bold")
    for values in table[list(LS_COLUMNS)].astype(object).where(table[list(LS_COLUMNS)].notna(), "").to_dict("records"):
        view.add_row(*(_shown(values[c]) for c in LS_COLUMNS))
    Console(width=max(Console().width, 120)).print(view)
    err_console.print(f"{len(table)} traits; `mrjax store ls {store} --tsv` shows sources, checksums and drop reasons")


def _shown(value) -> str:
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return str(value)
