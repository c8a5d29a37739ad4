"""``mrjax clump`` and ``mrjax harmonise``: single data-layer steps on files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mrjax_cli._common import in_range, Debug, Format, OutFile, check_out_file, check_panel, err_console, parse_mapping, print_drops, user_errors

Column = Annotated[list[str] | None, typer.Option("--column", help="Column mapping NAME=COLUMN for the reader (repeatable).")]


def clump(
    gwas: Annotated[Path, typer.Argument(help="GWAS summary statistics file.")],
    ld_ref: Annotated[str, typer.Option("--ld-ref", help="PLINK .bed/.bim/.fam prefix of the LD reference panel.")],
    out: OutFile,
    p1: Annotated[float, typer.Option("--p", "--p1", callback=in_range(0, 1, low_open=True), help="Index variant p threshold (plink --clump-p1).")] = 1e-5,
    p2: Annotated[float, typer.Option("--clump-p2", "--p2", callback=in_range(0, 1, low_open=True), help="plink --clump-p2.")] = 1.0,
    r2: Annotated[float, typer.Option("--clump-r2", "--r2", callback=in_range(0, 1, low_open=True), help="Clumping r² threshold (strict).")] = 0.001,
    kb: Annotated[float, typer.Option("--clump-kb", "--kb", callback=in_range(0, None, low_open=True), help="Clumping window in kb.")] = 10_000,
    column: Column = None,
    gwas_format: Format = None,
    debug: Debug = False,
) -> None:
    """LD-clump a GWAS against a PLINK panel with plink 1.9 --clump semantics."""
    from mrjax.scan import ReadOptions, ScanError, read_table, write_single_table

    check_out_file(out)
    with user_errors(debug):
        options = ReadOptions(format=gwas_format, columns=parse_mapping(column, "--column"))
        check_panel(ld_ref)
        from mrjax.ld import LDPanel
        from mrjax.ld import clump as run_clump

        table = read_table(str(gwas), options, p_max=None if p2 >= 1 else max(p1, p2), audited=True)
        index = run_clump(table, LDPanel.load(ld_ref), r2=r2, kb=kb, p1=p1, p2=p2, audited=True)
        if len(index.table) == 0:
            raise ScanError(f"no variant of {str(gwas)!r} passes p < {p1:g} and is in the panel", "relax --p1 or check the file")
        write_single_table(index, out)
    err_console.print(f"{len(index.table)} index variants written to {out}")
    _print_audit(index, out)


def harmonise(
    exposure: Annotated[Path, typer.Option("--exposure", "-e", help="Exposure instruments (or a GWAS with --p).")],
    outcome: Annotated[Path, typer.Option("--outcome", "-o", help="Outcome GWAS file.")],
    out: OutFile,
    action: Annotated[int, typer.Option("--action", min=1, max=3, help="Harmonisation action (TwoSampleMR): 1, 2 or 3.")] = 2,
    p: Annotated[float | None, typer.Option("--p", callback=in_range(0, 1, low_open=True), help="Keep exposure rows with p below this (default: use every row as an instrument).")] = None,
    column: Column = None,
    gwas_format: Format = None,
    debug: Debug = False,
) -> None:
    """Align exposure instruments and outcome to the same effect allele (TwoSampleMR harmonise_data)."""
    from mrjax.scan import ReadOptions, ScanError, read_table, write_single_table

    check_out_file(out)
    with user_errors(debug):
        if action not in (1, 2, 3):
            raise ScanError(f"--action must be 1, 2 or 3, not {action}", "see TwoSampleMR::harmonise_data")
        options = ReadOptions(format=gwas_format, columns=parse_mapping(column, "--column"))
        from mrjax.gwas import harmonise as run_harmonise
        from mrjax.gwas import select_instruments

        instruments = read_table(str(exposure), options, audited=True)
        if p is not None:
            instruments = select_instruments(instruments, p=p, audited=True)
        if len(instruments.table) == 0:
            raise ScanError(f"no instruments in {str(exposure)!r}" + (f" with p < {p:g}" if p else ""), "relax --p or check the file")
        outcome_table = read_table(str(outcome), options, audited=True)
        harmonised = run_harmonise(instruments, outcome_table, action=action, audited=True)
        write_single_table(harmonised, out)
    table = harmonised.table
    kept = int(table["mr_keep"].astype(bool).sum()) if "mr_keep" in table.columns else len(table)
    err_console.print(f"{len(table)} variants harmonised ({kept} usable) written to {out}")
    _print_audit(harmonised, out)


def _print_audit(result, out: Path) -> None:
    """Every dropped row's reason, counted (the records themselves are beside the output)."""
    records = result.audit.drops
    print_drops(records)
    if len(records):
        err_console.print(f"each dropped row and its reason: {out.with_name(out.name.split('.')[0] + '.audit.tsv')}")

