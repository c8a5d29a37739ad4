"""``mrjax scan``: the bi-directional scan from GWAS files to a report folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mrjax_cli._common import (
    in_range,
    CacheDir,
    Debug,
    Devices,
    Format,
    Methods,
    NBoot,
    NoCache,
    OutFolder,
    Precision,
    PressoDraws,
    ProgressBars,
    Seed,
    check_out_folder,
    configure_jax,
    err_console,
    fail,
    parse_mapping,
    user_errors,
)


def scan(
    outcome: Annotated[list[str], typer.Option("--outcome", "-o", help="Outcome GWAS file or quoted glob (repeatable): every exposure is scanned against every outcome.")],
    out: OutFolder,
    exposure: Annotated[list[str] | None, typer.Option("--exposure", "-e", help="Exposure GWAS file or quoted glob (repeatable); one long table with a trait column also works.")] = None,
    ld_ref: Annotated[str | None, typer.Option("--ld-ref", help="PLINK .bed/.bim/.fam prefix of the LD reference panel.")] = None,
    already_clumped: Annotated[bool, typer.Option("--already-clumped", help="The exposure files hold clumped instruments: skip clumping (no --ld-ref needed).")] = False,
    trait_column: Annotated[str | None, typer.Option("--trait-column", help="Column naming the trait in a long exposure table.")] = None,
    outcome_name: Annotated[str | None, typer.Option("--outcome-name", help="Name of the outcome trait (default: its file name).")] = None,
    column: Annotated[list[str] | None, typer.Option("--column", help="Column mapping NAME=COLUMN for the readers (repeatable), e.g. --column beta=BETA.")] = None,
    gwas_format: Format = None,
    exposure_column: Annotated[list[str] | None, typer.Option("--exposure-column", help="Column mapping NAME=COLUMN for the exposure files only (repeatable; on top of --column).")] = None,
    outcome_column: Annotated[list[str] | None, typer.Option("--outcome-column", help="Column mapping NAME=COLUMN for the outcome file only (repeatable; on top of --column).")] = None,
    exposure_format: Annotated[str | None, typer.Option("--exposure-format", help="Reader for the exposure files (e.g. gwas_ssf, regenie, plink2); default: detect.")] = None,
    outcome_format: Annotated[str | None, typer.Option("--outcome-format", help="Reader for the outcome file (e.g. finngen, saige); default: detect.")] = None,
    inputs: Annotated[Path | None, typer.Option("--inputs", help="Manifest TSV with columns path, trait, format, columns (field=column;…) [, role]: one row per input file.")] = None,
    sep: Annotated[str | None, typer.Option("--sep", help="Column delimiter of the text inputs: tab, comma, space or whitespace (default: detect).")] = None,
    skip_bad_lines: Annotated[bool, typer.Option("--skip-bad-lines", help="Drop malformed lines (wrong number of fields) with an audit row each instead of stopping.")] = False,
    p: Annotated[float, typer.Option("--p", "--p1", callback=in_range(0, 1, low_open=True), help="Instrument p-value threshold (plink --clump-p1).")] = 1e-5,
    clump_r2: Annotated[float, typer.Option("--clump-r2", "--r2", callback=in_range(0, 1, low_open=True), help="Clumping r² threshold.")] = 0.001,
    clump_kb: Annotated[float, typer.Option("--clump-kb", "--kb", callback=in_range(0, None, low_open=True), help="Clumping window in kb.")] = 10_000,
    clump_p2: Annotated[float, typer.Option("--clump-p2", "--p2", callback=in_range(0, 1, low_open=True), help="plink --clump-p2.")] = 1.0,
    f_min: Annotated[float, typer.Option("--f-min", min=0, help="Drop instruments with F below this.")] = 10.0,
    proxies: Annotated[bool | None, typer.Option("--proxies/--no-proxies", help="Substitute LD proxies for instruments missing in the outcome (default: on with --ld-ref).")] = None,
    proxy_r2: Annotated[float, typer.Option("--proxy-r2", callback=in_range(0, 1, low_open=True), help="Minimum r² of a proxy.")] = 0.8,
    action: Annotated[int, typer.Option("--action", help="Harmonisation action (TwoSampleMR): 1, 2 or 3.")] = 2,
    method: Methods = None,
    n_boot: NBoot = 1000,
    presso_draws: PressoDraws = 10_000,
    seed: Seed = 0,
    precision: Precision = 64,
    bidirectional: Annotated[bool, typer.Option("--bidirectional", help="Also run outcome → each exposure, instruments from the outcome GWAS.")] = False,
    permutations: Annotated[int, typer.Option("--permutations", min=0, help="Permutation test with N permutations (0: none).")] = 0,
    alpha: Annotated[float, typer.Option("--alpha", callback=in_range(0, 1, low_open=True, high_open=True), help="Significance level for the findings and figures.")] = 0.05,
    correction: Annotated[str, typer.Option("--correction", help="Which p decides significance: fdr, bonferroni or none.")] = "fdr",
    chunk_size: Annotated[int, typer.Option("--chunk-size", min=1, help="Exposures whose instruments are selected and clumped together; their pairs are estimated and checkpointed in blocks sized to memory.")] = 64,
    outcome_type: Annotated[str, typer.Option("--outcome-type", help="auto, binary or continuous: binary outcomes are reported as odds ratios, continuous ones as b (auto: binary for FinnGen files and files with case/control counts).")] = "auto",
    exposure_type: Annotated[str, typer.Option("--exposure-type", help="The same for the exposures (the outcomes of --bidirectional's reverse direction).")] = "auto",
    correct_per_outcome: Annotated[bool, typer.Option("--correct-per-outcome", help="With several outcomes: FDR/Bonferroni within each outcome instead of across every pair.")] = False,
    store: Annotated[Path | None, typer.Option("--store", help="GWAS store made by `mrjax ingest`: --exposure (globs) and --outcome are then its trait names; no whole table is read.")] = None,
    adjust_for: Annotated[list[str] | None, typer.Option("--adjust-for", help="GWAS file every exposure is adjusted for (repeatable): one multivariable analysis per exposure, written to mvmr_results.tsv / mvmr_strength.tsv.")] = None,
    read_threads: Annotated[int | None, typer.Option("--read-threads", min=1, help="GWAS files read at once (default: the cores, at most 4); each file read whole is held whole until it is cut to the rows the scan uses.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=0, help="Estimate the blocks of pairs on a local Dask cluster of N worker processes (default, or 0: in this process).")] = None,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="Estimate the blocks on a running Dask cluster, e.g. tcp://head:8786 (its workers must see the same mrjax).")] = None,
    devices: Devices = None,
    cache_dir: CacheDir = None,
    no_cache: NoCache = False,
    debug: Debug = False,
) -> None:
    """Scan exposures against an outcome: select, clump, harmonise, estimate, report.
    The output folder is created; a re-run of the same command resumes from its checkpoints."""
    from mrjax.scan import ScanConfig, run_scan

    check_out_folder(out)
    configure_jax(precision, cache_dir, no_cache, devices)
    if permutations > 0:
        try:
            import mrjax.permutation  # noqa: F401
        except ImportError:
            fail("--permutations needs mrjax.permutation, which this installation lacks", "drop --permutations")
    config = ScanConfig(
        exposures=tuple(exposure or ()), outcome=tuple(outcome), out=str(out), ld_ref=ld_ref, already_clumped=already_clumped,
        trait_column=trait_column, outcome_name=outcome_name, columns=tuple(sorted(parse_mapping(column, "--column").items())),
        gwas_format=gwas_format, exposure_columns=tuple(sorted(parse_mapping(exposure_column, "--exposure-column").items())),
        outcome_columns=tuple(sorted(parse_mapping(outcome_column, "--outcome-column").items())),
        exposure_format=exposure_format, outcome_format=outcome_format, inputs=str(inputs) if inputs else None,
        sep=sep, skip_bad_lines=skip_bad_lines, p=p, clump_r2=clump_r2, clump_kb=clump_kb, clump_p2=clump_p2, f_min=f_min,
        proxies=proxies, proxy_r2=proxy_r2, action=action, methods=tuple(method) if method else None, n_boot=n_boot,
        presso_draws=presso_draws, seed=seed, precision=precision, bidirectional=bidirectional,
        permutations=permutations, alpha=alpha, correction=correction, chunk_size=chunk_size,
        outcome_type=outcome_type, exposure_type=exposure_type, correct_per_outcome=correct_per_outcome,
        store=None if store is None else str(store), adjust_for=tuple(adjust_for or ()),
    )
    with user_errors(debug), ProgressBars() as progress:
        config.validate()
        result = run_scan(config, progress=progress, workers=workers, scheduler=scheduler, devices=devices,
                          read_threads=read_threads)
    summarise(result, out)


def summarise(result, out: Path) -> None:
    """One line per direction: traits scanned and significant; then where the report is."""
    results = result.tables["results"]
    streamed = result.manifest.get("pairs")  # a scan above the TSV line: the tables hold its hits only
    for direction in ("forward", "reverse"):
        rows = results[results["direction"] == direction] if len(results) else results
        if not len(rows) and not (streamed or {}).get(direction):
            continue
        traits = streamed.get(direction, 0) if streamed else rows[["exposure", "outcome"]].drop_duplicates().shape[0]
        hits = int((result.significant["direction"] == direction).sum()) if len(result.significant) else 0
        err_console.print(f"{direction}: {traits} traits, {hits} significant by IVW")
    failed = results[results["reason"].astype(str) != ""] if len(results) and "reason" in results.columns else results.iloc[:0]
    if len(failed):
        by_method = failed.groupby("method", sort=False).size()
        err_console.print("not estimated: " + "; ".join(f"{m} for {n} trait(s)" for m, n in by_method.items())
                          + " (the reason is in results.tsv)")
    presso = result.tables.get("presso")
    if presso is not None and len(presso) and "reason" in presso.columns and (presso["reason"].astype(str) != "").any():
        err_console.print(f"MR-PRESSO not run for {int((presso['reason'].astype(str) != '').sum())} trait(s) (reason in presso.tsv)")
    if result.resumed_traits:
        err_console.print(f"resumed {result.resumed_traits} finished exposures from checkpoints")
    err_console.print(f"wrote {len(result.files)} files to {out} (open {out / 'report.html'})")
