"""``mrjax scan``: the bi-directional scan from GWAS files to a report folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mrjax_cli._common import (
    CacheDir,
    Debug,
    Methods,
    NBoot,
    Precision,
    ProgressBars,
    Seed,
    configure_jax,
    err_console,
    fail,
    parse_mapping,
    user_errors,
)


def scan(
    exposure: Annotated[list[str], typer.Option("--exposure", "-e", help="Exposure GWAS file or quoted glob (repeatable); one long table with a trait column also works.")],
    outcome: Annotated[Path, typer.Option("--outcome", "-o", help="Outcome GWAS file.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (created; a re-run resumes from its checkpoints).")],
    ld_ref: Annotated[str | None, typer.Option("--ld-ref", help="PLINK .bed/.bim/.fam prefix of the LD reference panel.")] = None,
    already_clumped: Annotated[bool, typer.Option("--already-clumped", help="The exposure files hold clumped instruments: skip clumping (no --ld-ref needed).")] = False,
    trait_column: Annotated[str | None, typer.Option("--trait-column", help="Column naming the trait in a long exposure table.")] = None,
    outcome_name: Annotated[str | None, typer.Option("--outcome-name", help="Name of the outcome trait (default: its file name).")] = None,
    column: Annotated[list[str] | None, typer.Option("--column", help="Column mapping NAME=COLUMN for the readers (repeatable), e.g. --column beta=BETA.")] = None,
    gwas_format: Annotated[str | None, typer.Option("--format", help="Force the GWAS reader (default: detected).")] = None,
    p: Annotated[float, typer.Option("--p", help="Instrument p-value threshold (plink --clump-p1).")] = 1e-5,
    clump_r2: Annotated[float, typer.Option("--clump-r2", help="Clumping r² threshold.")] = 0.001,
    clump_kb: Annotated[float, typer.Option("--clump-kb", help="Clumping window in kb.")] = 10_000,
    clump_p2: Annotated[float, typer.Option("--clump-p2", help="plink --clump-p2.")] = 1.0,
    f_min: Annotated[float, typer.Option("--f-min", help="Drop instruments with F below this.")] = 10.0,
    proxies: Annotated[bool | None, typer.Option("--proxies/--no-proxies", help="Substitute LD proxies for instruments missing in the outcome (default: on with --ld-ref).")] = None,
    proxy_r2: Annotated[float, typer.Option("--proxy-r2", help="Minimum r² of a proxy.")] = 0.8,
    action: Annotated[int, typer.Option("--action", help="Harmonisation action (TwoSampleMR): 1, 2 or 3.")] = 2,
    method: Methods = None,
    n_boot: NBoot = 1000,
    presso_draws: Annotated[int, typer.Option("--presso-draws", help="MR-PRESSO null draws (0 turns MR-PRESSO off).")] = 10_000,
    seed: Seed = 0,
    precision: Precision = 64,
    bidirectional: Annotated[bool, typer.Option("--bidirectional", help="Also run outcome → each exposure, instruments from the outcome GWAS.")] = False,
    permutations: Annotated[int, typer.Option("--permutations", help="Permutation test with N permutations (0: none).")] = 0,
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level for the findings and figures.")] = 0.05,
    correction: Annotated[str, typer.Option("--correction", help="Which p decides significance: fdr, bonferroni or none.")] = "fdr",
    chunk_size: Annotated[int, typer.Option("--chunk-size", help="Exposures estimated (and checkpointed) together.")] = 64,
    outcome_type: Annotated[str, typer.Option("--outcome-type", help="auto, binary or continuous: binary outcomes are reported as odds ratios, continuous ones as b (auto: binary for FinnGen files and files with case/control counts).")] = "auto",
    exposure_type: Annotated[str, typer.Option("--exposure-type", help="The same for the exposures (the outcomes of --bidirectional's reverse direction).")] = "auto",
    cache_dir: CacheDir = None,
    debug: Debug = False,
) -> None:
    """Scan exposures against an outcome: select, clump, harmonise, estimate, report."""
    from mrjax.scan import ScanConfig, run_scan

    configure_jax(precision, cache_dir)
    if permutations > 0:
        try:
            import mrjax.permutation  # noqa: F401
        except ImportError:
            fail("--permutations needs mrjax.permutation, which this installation lacks", "drop --permutations")
    config = ScanConfig(
        exposures=tuple(exposure), outcome=str(outcome), out=str(out), ld_ref=ld_ref, already_clumped=already_clumped,
        trait_column=trait_column, outcome_name=outcome_name, columns=tuple(sorted(parse_mapping(column, "--column").items())),
        gwas_format=gwas_format, p=p, clump_r2=clump_r2, clump_kb=clump_kb, clump_p2=clump_p2, f_min=f_min,
        proxies=proxies, proxy_r2=proxy_r2, action=action, methods=tuple(method) if method else None, n_boot=n_boot,
        presso_draws=presso_draws, seed=seed, precision=precision, bidirectional=bidirectional,
        permutations=permutations, alpha=alpha, correction=correction, chunk_size=chunk_size,
        outcome_type=outcome_type, exposure_type=exposure_type,
    )
    with user_errors(debug), ProgressBars() as progress:
        result = run_scan(config, progress=progress)
    summarise(result, out)


def summarise(result, out: Path) -> None:
    """One line per direction: traits scanned and significant; then where the report is."""
    results = result.tables["results"]
    for direction in ("forward", "reverse"):
        rows = results[results["direction"] == direction] if len(results) else results
        if not len(rows):
            continue
        traits = rows[["exposure", "outcome"]].drop_duplicates().shape[0]
        hits = int((result.significant["direction"] == direction).sum()) if len(result.significant) else 0
        err_console.print(f"{direction}: {traits} traits, {hits} significant by IVW")
    if result.resumed_traits:
        err_console.print(f"resumed {result.resumed_traits} finished exposures from checkpoints")
    err_console.print(f"wrote {len(result.files)} files to {out} (open {out / 'report.html'})")
