"""``mrjax mr`` and ``mrjax presso``: estimation on a harmonised table the user brings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mrjax_cli._common import (
    in_range,
    Debug,
    Devices,
    Methods,
    NBoot,
    OutFolder,
    Precision,
    PressoDraws,
    Seed,
    check_out_folder,
    configure_jax,
    err_console,
    report_failures,
    user_errors,
)

Table = Annotated[Path, typer.Argument(help="Harmonised table (CSV/TSV/parquet); TwoSampleMR's `dat` written with write.csv works as is.")]


def mr(
    table: Table,
    out: OutFolder,
    method: Methods = None,
    n_boot: NBoot = 1000,
    seed: Seed = 0,
    precision: Precision = 64,
    devices: Devices = None,
    debug: Debug = False,
) -> None:
    """MR estimates, heterogeneity, pleiotropy, leave-one-out and single-SNP tables."""
    check_out_folder(out)
    from mrjax.scan import analyse_harmonised, read_harmonised, write_tables

    configure_jax(precision, devices=devices)
    with user_errors(debug):
        data = read_harmonised(table)
        tables = analyse_harmonised(data, methods=method, n_boot=n_boot, seed=seed, precision=precision, source=str(table))
        files = write_tables(tables, out)
    n_traits = tables["results"][["exposure", "outcome"]].drop_duplicates().shape[0] if "results" in tables else 0
    err_console.print(f"{n_traits} traits; wrote {len(files)} files to {out}")
    report_failures(tables.get("results"), "trait estimate(s)")


def presso(
    table: Table,
    out: OutFolder,
    draws: PressoDraws = 10_000,
    threshold: Annotated[float, typer.Option("--threshold", callback=in_range(0, 1), help="Global-test p below which the outlier test runs.")] = 0.05,
    seed: Seed = 0,
    precision: Precision = 64,
    devices: Devices = None,
    debug: Debug = False,
) -> None:
    """MR-PRESSO global, outlier and distortion tests for every trait of the table."""
    check_out_folder(out)
    from mrjax.scan import ScanError, read_harmonised, write_tables

    configure_jax(precision, devices=devices)
    with user_errors(debug):
        if draws < 1:
            raise ScanError(f"--draws must be positive, not {draws}", "e.g. --draws 10000")
        data = read_harmonised(table)
        _check(data, str(table))
        from mrjax.mr_presso import presso as run_presso

        fit = run_presso(data, n_draws=draws, signif_threshold=threshold, seed=seed)
        files = write_tables({"presso": fit.traits, "presso_instruments": fit.instruments}, out, parquet=())
    err_console.print(f"{len(fit.traits)} traits; wrote {len(files)} files to {out}")
    report_failures(fit.traits, "trait(s)")


def _check(data, source: str) -> None:
    from mrjax.batch import from_frame
    from mrjax.scan import ScanError

    try:
        from_frame(data, source=source)
    except ValueError as error:
        raise ScanError(str(error), "the table needs TwoSampleMR's columns (beta.exposure, se.exposure, beta.outcome, se.outcome, …)") from error
