"""``mrjax mvmr``: multivariable MR on a long harmonised MV table the user brings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mrjax_cli._common import Debug, NBoot, OutFolder, Seed, check_out_folder, check_panel, configure_jax, err_console, user_errors

MVTable = Annotated[Path, typer.Argument(help="Long harmonised MV table (CSV/TSV/parquet): one row per SNP x exposure, "
                                              "TwoSampleMR columns, outcome columns repeated; optional 'analysis' column.")]
MVMethods = Annotated[
    list[str] | None,
    typer.Option("--method", "-m", help="MV method id, optionally with options as in the results' method_id, e.g. 'mv_ivw[robust=True]' (repeat for several): mv_ivw, mv_ivw_lm, mv_egger, mv_median, mv_basic, mv_ivwme (R's correl.x as 'mv_ivwme[correl_x=((1, 0.3), (0.3, 1))]'), mv_lasso, mv_cml (MVMR-cML-BIC, n = --nx, --cml-perturbations), mv_qhet (qhet_mvmr; the exposures' phenotypic correlation as 'mv_qhet[pcor=((1, 0.3), (0.3, 1))]'), mv_gmm (mr_mvgmm, nx = --nx, ny = --ny; 'mv_gmm[robust=False]' for the non-robust fit; R's cor.x as 'mv_gmm[cor_x=((1, 0.3), (0.3, 1))]', also for mv_pcgmm), mv_pcgmm (mr_mvpcgmm, the same on principal components of correlated SNPs: give --ld-ref or --ld-matrix), maxlik. With --ld-ref or --ld-matrix mv_ivw, mv_egger and maxlik are the correlated-instrument (GLS) fits. "
                                         "Default: mv_ivw, mv_egger, mv_median."),
]
SampleSize = Annotated[
    float | None,
    typer.Option("--nx", min=1, help="Exposure GWAS sample size for MendelianRandomization's conditional F (CondFstat), "
                                     "every exposure. Default: the table's samplesize.exposure, else the nx -> infinity limit."),
]
OutcomeSize = Annotated[float | None, typer.Option("--ny", min=1, help="Outcome GWAS sample size (mv_gmm's ny).")]
CmlPerturbations = Annotated[int, typer.Option("--cml-perturbations", min=0, help="mv_cml's data perturbations (R's num_pert); 0 = without data perturbation (R's DP = FALSE).")]
LDRef = Annotated[str | None, typer.Option("--ld-ref", help="PLINK .bed/.bim/.fam prefix of a local panel: each analysis's SNP correlation matrix is computed from it, in the table's effect alleles (effect_allele.exposure), for the correlated-instrument fits (and mr_mvpcgmm's conditional F on the principal components in mvmr_strength).")]
LDMatrix = Annotated[Path | None, typer.Option("--ld-matrix", help="A square SNP correlation matrix (CSV/TSV/parquet) for the correlated-instrument fits, its header naming the SNPs (TwoSampleMR's SNP_A1_A2 names are aligned to the table's alleles; an unnamed matrix of a one-analysis table is taken in table order).")]
DropIncomplete = Annotated[bool, typer.Option("--drop-incomplete", help="Drop (and record) a SNP missing for one exposure of its analysis instead of stopping.")]


def mvmr(
    table: MVTable,
    out: OutFolder,
    method: MVMethods = None,
    n_boot: NBoot = 1000,
    seed: Seed = 0,
    nx: SampleSize = None,
    ny: OutcomeSize = None,
    cml_perturbations: CmlPerturbations = 200,
    drop_incomplete: DropIncomplete = False,
    ld_ref: LDRef = None,
    ld_matrix: LDMatrix = None,
    debug: Debug = False,
) -> None:
    """MV estimates (one row per analysis x exposure x method), conditional F and Q tables."""
    check_out_folder(out)
    from mrjax.mv.registry import parse_spec_name

    try:
        chosen = [parse_spec_name(m) for m in (method or ["mv_ivw", "mv_egger", "mv_median"])]
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--method") from None
    if any(mid == "mv_cml" and "n" not in opts for mid, opts in chosen) and nx is None:
        raise typer.BadParameter("mv_cml needs the GWAS sample size: give --nx", param_hint="--method")
    flags = {"nx": nx, "ny": ny}
    if any(mid in ("mv_gmm", "mv_pcgmm") and any(flags[k] is None for k in flags.keys() - opts.keys()) for mid, opts in chosen):
        raise typer.BadParameter("mv_gmm and mv_pcgmm need the exposure and outcome GWAS sample sizes: give --nx and --ny", param_hint="--method")
    if ld_ref is not None and ld_matrix is not None:
        raise typer.BadParameter("give the LD either as a panel or as a matrix, not both", param_hint="--ld-ref / --ld-matrix")
    if cml_perturbations == 1:
        raise typer.BadParameter("one perturbation gives no standard deviation: give 0 (no data perturbation) or at least 2", param_hint="--cml-perturbations")
    from mrjax.mv.api import mvmr as run_mvmr, mvmr_heterogeneity, mvmr_strength
    from mrjax.mv.correlation import aligned_correlations, panel_correlations, read_correlation
    from mrjax.mv.data import from_mv_frame
    from mrjax.scan import read_harmonised, write_tables

    configure_jax(64)
    with user_errors(debug):
        data = read_harmonised(table)
        batch = from_mv_frame(data, on_missing="drop" if drop_incomplete else "error", source=str(table))
        kept = data.drop(index=data.index[batch.excluded.index - 1]) if len(batch.excluded) else data
        correlation = None
        if ld_ref is not None:
            check_panel(ld_ref)
            correlation = panel_correlations(kept, ld_ref, source=str(table))
        elif ld_matrix is not None:
            correlation = aligned_correlations(read_correlation(ld_matrix), kept, source=str(ld_matrix), table_source=str(table))
        defaults = {"mv_median": {"n_boot": n_boot}, "mv_cml": {"n": nx, "num_pert": cml_perturbations} if cml_perturbations else {"n": nx, "dp": False},
                    "mv_gmm": {"nx": nx, "ny": ny}, "mv_pcgmm": {"nx": nx, "ny": ny}}
        methods = [(mid, {**defaults.get(mid, {}), **opts}) for mid, opts in chosen]
        tables = {
            "mvmr_results": run_mvmr(batch, methods=methods, seed=seed, correlation=correlation),
            "mvmr_strength": mvmr_strength(batch, nx=nx, correlation=correlation),
            "mvmr_heterogeneity": mvmr_heterogeneity(batch),
        }
        if len(batch.excluded):
            tables["mvmr_excluded"] = batch.excluded
        files = write_tables(tables, out, parquet=("mvmr_results",))
    err_console.print(f"{batch.n_analyses} MV analyses; wrote {len(files)} files to {out}")
