"""The estimation stage: every per-trait analysis of a harmonised table in a few device calls.

The method panel and the diagnostics kernel (``mrjax.api.analyse``: estimates, heterogeneity,
pleiotropy, leave-one-out, single-SNP from one batch) and MR-PRESSO run concurrently; each trait's randomness depends on
the seed and the trait only, so any grouping of traits gives the same rows.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pandas as pd

from mrjax import api
from mrjax.batch import from_frame
from mrjax.mr_presso import presso
from mrjax.permutation import permutation_test
from mrjax.outputs import StageTimer
from mrjax.report import tables as report_tables
from mrjax.scan.config import EstimationSettings
from mrjax.scan.errors import ScanError


def estimate_tables(harmonised: pd.DataFrame, settings: EstimationSettings, timings: StageTimer | None = None) -> dict[str, pd.DataFrame]:
    """Every per-trait analysis of a harmonised table (one or many traits).

    ``results`` (``mrjax.api.mr`` with the configured methods, ``n_boot``, ``seed``),
    ``heterogeneity``, ``pleiotropy``, ``leave_one_out``, ``single_snp`` (TwoSampleMR's
    ``mr_heterogeneity``, ``mr_pleiotropy_test``, ``mr_leaveoneout``, ``mr_singlesnp``)
    and, unless ``presso_draws`` is 0, ``presso``/``presso_instruments``
    (MRPRESSO::mr_presso with ``presso_draws`` null draws), the three groups computed
    concurrently (timed together as the ``estimate`` stage).
    """
    timings = timings or StageTimer()
    usable = harmonised
    if "mr_keep" in usable.columns:
        usable = usable[usable["mr_keep"].astype(bool)]
    tables: dict[str, pd.DataFrame] = {}
    if len(usable) == 0:
        return tables

    def panel_and_diagnostics():
        analysis = api.analyse(usable, list(settings.methods) if settings.methods else None, n_boot=settings.n_boot,
                               seed=settings.seed, phi=settings.phi, penk=settings.penk, dtype=settings.dtype, include=())
        return {"results": analysis.mr, "heterogeneity": analysis.heterogeneity, "pleiotropy": analysis.pleiotropy,
                "leave_one_out": analysis.leave_one_out, "single_snp": analysis.single_snp}

    def mr_presso():
        fit = presso(usable, n_draws=settings.presso_draws, signif_threshold=settings.presso_threshold, seed=settings.seed)
        return {"presso": fit.traits, "presso_instruments": fit.instruments}

    jobs = [panel_and_diagnostics] + ([mr_presso] if settings.presso_draws > 0 else [])
    # The kernels are independent: in threads (``analyse`` runs the panel and the
    # diagnostics in two), XLA compiles (single-threaded each) and runs them side by side,
    # which on a first run roughly halves the compile wait.
    with timings("estimate"), ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        for part in pool.map(lambda job: job(), jobs):
            tables.update(part)
    return tables


def analyse_harmonised(
    data: pd.DataFrame,
    *,
    methods=None,
    n_boot: int = 1000,
    seed: int = 0,
    precision: int = 64,
    presso_draws: int = 0,
    presso_threshold: float = 0.05,
    source: str = "harmonised table",
) -> dict[str, pd.DataFrame]:
    """Every per-trait analysis of a harmonised table (see :func:`estimate_tables`) with the
    ``results`` table completed by odds ratios, BH-FDR and Bonferroni across traits.

    Bad input (missing column, non-numeric values, SE ≤ 0) raises :class:`ScanError`
    naming ``source``, the column and the rows.
    """
    try:
        from_frame(data, source=source)
    except ValueError as error:
        raise ScanError(str(error), "the table needs TwoSampleMR's columns (beta.exposure, se.exposure, beta.outcome, se.outcome, …)") from error
    settings = EstimationSettings(methods=tuple(methods) if methods else None, n_boot=n_boot, seed=seed,
                                  dtype="float64" if precision == 64 else "float32",
                                  presso_draws=presso_draws, presso_threshold=presso_threshold)
    tables = estimate_tables(data, settings)
    if "results" in tables:
        tables["results"] = report_tables.scan_results(tables["results"])
    return tables


def permutation_table(instruments: pd.DataFrame, directions: tuple[str, ...], n_perm: int, seed: int) -> pd.DataFrame:
    """Permutation p-values (``mrjax.permutation_test``) of every trait, per direction."""
    frames = []
    for direction in directions:
        part = instruments[instruments["direction"] == direction]
        if len(part):
            result = permutation_test(part.drop(columns="direction"), n_perm=n_perm, seed=seed)
            result.insert(0, "direction", direction)
            frames.append(result)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["direction"])
