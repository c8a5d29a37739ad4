"""Public functions returning pandas DataFrames in TwoSampleMR's shapes.

``data`` is a harmonised table (TwoSampleMR ``dat`` or its snake_case twin) or a
:class:`~mrjax.batch.TraitBatch`. Traits are (exposure, outcome) pairs; estimates for all
traits of a padded bucket come from one jitted device call (``mrjax.engine``). Randomness: an
int seed or a PRNG key; each trait's stream is ``fold_in(key, trait_uid)`` and each method's
``fold_in(trait_key, method)``, so results never depend on batch composition or bucket width.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import jax
import numpy as np
import pandas as pd

from mrjax.batch import ID_KEYS, TRAIT_KEYS, Bucket, TraitBatch, from_frame, panel_row_elements, trait_keys
from mrjax.diagnostics import i_squared, steiger
from mrjax.effects import odds_ratios  # noqa: F401  (public: mrjax.odds_ratios, TwoSampleMR generate_odds_ratios)
from mrjax import engine
from mrjax.engine import run_diagnostics, run_methods
from mrjax.estimators.common import Reason, make_params
from mrjax.gwas.strength import strength_columns
from mrjax.liability import r_from_lor
from mrjax.methods import DEFAULT_HETEROGENEITY, HETEROGENEITY_METHODS, METHODS, check_settings, resolve

ESTIMATE_FIELDS = ("b", "se", "pval", "nsnp", "reason", "lo_ci", "up_ci")


def as_batch(data) -> TraitBatch:
    """A :class:`TraitBatch` from a harmonised DataFrame (validated) or a TraitBatch as is."""
    if isinstance(data, TraitBatch):
        return data
    return from_frame(data)


def _float_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return dt


def _trait_columns(batch: TraitBatch) -> list[str]:
    return TRAIT_KEYS + [c for c in ID_KEYS if c in batch.traits.columns]


def _reason_text(codes) -> np.ndarray:
    return np.array([Reason.TEXT.get(int(c), f"code {int(c)}") for c in codes], dtype=object)


def _scatter_traits(bucket: Bucket, values, out: np.ndarray) -> None:
    """Copy per-row bucket values ``[rows, ...]`` into ``out[trait_index]`` (real rows only)."""
    real = bucket.real
    out[bucket.trait_index[real]] = np.asarray(values)[real]


def _scatter_instruments(batch: TraitBatch, bucket: Bucket, values, out: np.ndarray) -> None:
    """Copy per-slot bucket values ``[rows, width]`` into ``out`` aligned with
    ``batch.instruments`` rows (the instruments of the bucket's traits only)."""
    values = np.asarray(values)
    row_of_trait = np.full(batch.n_traits, -1)
    real = bucket.real
    row_of_trait[bucket.trait_index[real]] = np.nonzero(real)[0]
    rows = row_of_trait[batch.instruments["trait"].to_numpy()]
    hit = rows >= 0
    out[hit] = values[rows[hit], batch.instruments["slot"].to_numpy()[hit]]


def _over_buckets(kernel, buckets: list[Bucket]) -> list:
    """``kernel(bucket, slot)`` for every bucket, ``slot`` its number (so that buckets of one
    shape are spread over the devices, see :mod:`mrjax.engine`), from a few threads (one per
    CPU core or device): each call compiles its shape on first use (single-threaded in XLA),
    so compilations and runs of different buckets overlap. Each thread waits for its call's
    result before taking the next bucket: JAX dispatches asynchronously, and without the wait
    every bucket of a large batch would be in flight at once, holding its working memory
    (the memory budget bounds one call, not all of them)."""
    def call(bucket, slot):
        return jax.block_until_ready(kernel(bucket, slot))

    if len(buckets) <= 1:
        return [call(b, i) for i, b in enumerate(buckets)]
    workers = min(len(buckets), max(os.cpu_count() or 1, len(engine.devices())))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(call, buckets, range(len(buckets))))


# The method panel's working memory per trait, in multiples of its draws' ``w × n_boot``
# elements: the mode search holds positions, weights and kernel sums for two weightings beside
# the draws (measured, 10^4 pairs at width 16: 512-trait calls peaked at 2.8 GB, 256 at
# 2.3 GB, 128 at 1.2 GB, with the same CPU time or less).
PANEL_DRAW_COPIES = 4


def _buckets(batch: TraitBatch, dtype, n_boot: int = 0) -> list[Bucket]:
    """The batch's buckets for a kernel whose largest arrays hold ``w × max(n_boot, w)``
    elements per trait of width ``w`` (:data:`PANEL_DRAW_COPIES` of them with bootstraps): a
    width group larger than :data:`mrjax.batch.MEMORY_BUDGET_ELEMENTS` allows runs in chunks
    of a power of two traits, so peak memory does not grow with the number of traits (results
    do not depend on the chunking: a trait's numbers never depend on the others in its call)."""
    per_trait = panel_row_elements(n_boot)
    copies = PANEL_DRAW_COPIES if n_boot > 0 else 1
    return list(batch.buckets(dtype=dtype, row_elements=lambda width: copies * per_trait(width)))


def _diagnostics(batch: TraitBatch, dtype=np.float64) -> list:
    """Run the diagnostics kernel over every bucket once: ``[(bucket, Diagnostics), ...]``."""
    buckets = _buckets(batch, dtype)
    return list(zip(buckets, _over_buckets(lambda b, i: run_diagnostics(b.instruments, slot=i), buckets)))


def mr(data, methods=None, *, n_boot: int = 1000, seed=0, phi: float = 1.0, penk: float = 20.0, dtype="float64",
       **settings) -> pd.DataFrame:
    """TwoSampleMR ``mr()``: every method for every trait.

    Returns ``exposure, outcome, [id.exposure, id.outcome], method_id, method, nsnp, b, se,
    pval, lo_ci, up_ci, reason`` (``reason`` is "" when estimated; ``lo_ci, up_ci`` the
    method's own 95% CI; when ``conmix`` is among the methods a last column ``ci_disjoint``
    (nullable boolean: whether its likelihood CI is a union of intervals, of which ``lo_ci,
    up_ci`` is the hull; <NA> on the other methods' rows and unestimated traits)), one row per trait and method, traits in order of first appearance,
    methods in the order given (default: TwoSampleMR's default set ``wald_ratio,
    egger_regression, weighted_median, ivw, simple_mode, weighted_mode``; ``"all"``: every
    registered method).

    ``settings`` choose the variants of the MendelianRandomization / mr.raps methods, named
    after their R arguments (``model="fixed"``, ``distribution="t"``, ``robust=True``, …; see
    :class:`~mrjax.estimators.common.Params`); ``mrjax.methods.R_EQUIVALENTS`` gives the
    settings of each R call. An unknown setting, a bad value, or a setting none of the
    requested methods reads raises ``ValueError``.

    As in TwoSampleMR, the Wald ratio is left out for traits with more than one instrument
    when more than one method is requested. A trait with too few instruments for a method gets
    a NaN row with reason "too few instruments", never a missing row. ``seed`` is an int or a
    PRNG key; ``dtype="float32"`` runs the estimators in single precision.
    """
    batch = as_batch(data)
    methods = resolve(methods)
    dt = _float_dtype(dtype)
    params = make_params(n_boot=n_boot, phi=phi, penk=penk, **settings)
    check_settings(methods, settings)
    n = batch.n_traits
    cols = {m: {f: np.full(n, np.nan) for f in ESTIMATE_FIELDS} for m in methods}
    buckets = _buckets(batch, dt, n_boot)
    outputs = _over_buckets(lambda b, i: run_methods(b.instruments, trait_keys(seed, b.uids), methods, params, slot=i),
                            buckets)
    flagged = [m for m in methods if outputs and outputs[0][m].ci_disjoint is not None]
    for m in flagged:
        cols[m]["ci_disjoint"] = np.zeros(n)
    for bucket, out in zip(buckets, outputs):
        for m in methods:
            for f in cols[m]:
                _scatter_traits(bucket, getattr(out[m], f), cols[m][f])

    trait_cols = _trait_columns(batch)
    nsnp_trait = batch.traits["nsnp"].to_numpy()
    frames = []
    for order, m in enumerate(methods):
        frame = batch.traits[trait_cols].copy()
        frame["_trait"] = np.arange(n)
        frame["_order"] = order
        frame["method_id"] = m
        frame["method"] = METHODS[m].label
        frame["nsnp"] = cols[m]["nsnp"].astype(np.int64)
        for f in ("b", "se", "pval", "lo_ci", "up_ci"):
            frame[f] = cols[m][f]
        frame["reason"] = _reason_text(cols[m]["reason"])
        if flagged:
            disjoint = pd.array(cols[m]["ci_disjoint"] > 0 if m in flagged else [pd.NA] * n, dtype="boolean")
            disjoint[cols[m]["reason"] != 0] = pd.NA
            frame["ci_disjoint"] = disjoint
        if m == "wald_ratio" and len(methods) > 1:
            frame = frame[nsnp_trait <= 1]
        frames.append(frame)
    res = pd.concat(frames, ignore_index=True).sort_values(["_trait", "_order"], kind="stable")
    return res.drop(columns=["_trait", "_order"]).reset_index(drop=True)


def heterogeneity(data, methods=None) -> pd.DataFrame:
    """TwoSampleMR ``mr_heterogeneity``: ``exposure, outcome, [ids], method, Q, Q_df, Q_pval``
    plus ``I2 = max(0, (Q - Q_df)/Q)`` (for MR Egger this is I² of Rücker's Q′) and ``reason``.

    ``methods`` from ``two_sample_ml, egger_regression, ivw, ivw_radial, uwr``; default
    ``egger_regression, ivw`` (TwoSampleMR's default). Traits with too few instruments get NaN.
    """
    batch = as_batch(data)
    return _heterogeneity_table(batch, _diagnostics(batch), methods)


def _heterogeneity_table(batch: TraitBatch, diagnostics: list, methods=None) -> pd.DataFrame:
    methods = resolve(methods, allowed=HETEROGENEITY_METHODS, default=DEFAULT_HETEROGENEITY)
    n = batch.n_traits
    got = {m: {f: np.full(n, np.nan) for f in ("q", "df", "pval")} for m in methods}
    for bucket, diag in diagnostics:
        for m in methods:
            for f in ("q", "df", "pval"):
                _scatter_traits(bucket, getattr(diag.heterogeneity[m], f), got[m][f])
    trait_cols = _trait_columns(batch)
    frames = []
    for order, m in enumerate(methods):
        frame = batch.traits[trait_cols].copy()
        frame["_trait"] = np.arange(n)
        frame["_order"] = order
        frame["method"] = METHODS[m].label
        frame["Q"] = got[m]["q"]
        frame["Q_df"] = got[m]["df"].astype(np.int64)
        frame["Q_pval"] = got[m]["pval"]
        with np.errstate(all="ignore"):
            frame["I2"] = np.asarray(i_squared(got[m]["q"], got[m]["df"]))
        ok = np.isfinite(got[m]["q"])
        frame["reason"] = np.where(ok, "", Reason.TEXT[Reason.TOO_FEW_SNPS])
        frames.append(frame)
    res = pd.concat(frames, ignore_index=True).sort_values(["_trait", "_order"], kind="stable")
    return res.drop(columns=["_trait", "_order"]).reset_index(drop=True)


def pleiotropy(data) -> pd.DataFrame:
    """TwoSampleMR ``mr_pleiotropy_test``: the MR-Egger intercept per trait,
    ``exposure, outcome, [ids], egger_intercept, se, pval`` (t with n − 2 df), plus ``i2gx``
    (Bowden's I²_GX, the Egger NOME check) and ``reason`` (NaN below 3 instruments)."""
    batch = as_batch(data)
    return _pleiotropy_table(batch, _diagnostics(batch))


def _pleiotropy_table(batch: TraitBatch, diagnostics: list) -> pd.DataFrame:
    n = batch.n_traits
    got = {f: np.full(n, np.nan) for f in ("b_i", "se_i", "pval_i", "reason", "i2gx")}
    for bucket, diag in diagnostics:
        for f in ("b_i", "se_i", "pval_i", "reason"):
            _scatter_traits(bucket, getattr(diag.egger, f), got[f])
        _scatter_traits(bucket, diag.i2gx, got["i2gx"])
    res = batch.traits[_trait_columns(batch)].copy()
    res["egger_intercept"] = got["b_i"]
    res["se"] = got["se_i"]
    res["pval"] = got["pval_i"]
    res["i2gx"] = got["i2gx"]
    res["reason"] = _reason_text(got["reason"])
    return res.reset_index(drop=True)


def _per_snp_table(batch: TraitBatch, per_snp: dict, all_rows: list[tuple[str, dict]], show_snps) -> pd.DataFrame:
    """Rows ``SNP, b, se, p`` per instrument (where ``show_snps[trait]``) then the ``All``
    rows of each trait, traits in order."""
    trait_cols = _trait_columns(batch)
    inst = batch.instruments
    trait_of = inst["trait"].to_numpy()
    keep = show_snps[trait_of]
    snp_rows = inst.loc[keep, trait_cols + ["SNP"]].copy()
    snp_rows["_trait"] = trait_of[keep]
    snp_rows["_order"] = inst["slot"].to_numpy()[keep]
    for f in ("b", "se", "p"):
        snp_rows[f] = per_snp[f][keep]
    frames = [snp_rows]
    width = int(inst["slot"].max()) + 1 if len(inst) else 0
    for k, (label, values) in enumerate(all_rows):
        frame = batch.traits[trait_cols].copy()
        frame["SNP"] = label
        frame["_trait"] = np.arange(batch.n_traits)
        frame["_order"] = width + k
        for f in ("b", "se", "p"):
            frame[f] = values[f]
        frames.append(frame)
    res = pd.concat(frames, ignore_index=True).sort_values(["_trait", "_order"], kind="stable")
    return res.drop(columns=["_trait", "_order"]).reset_index(drop=True)


def leave_one_out(data) -> pd.DataFrame:
    """TwoSampleMR ``mr_leaveoneout``: IVW (``mr_ivw``, max(1, σ) SE rule) leaving out each
    instrument, then the ``All`` row; only the ``All`` row for traits with n <= 2. Columns
    ``exposure, outcome, [ids], SNP, b, se, p``."""
    batch = as_batch(data)
    return _leave_one_out_table(batch, _diagnostics(batch))


def _leave_one_out_table(batch: TraitBatch, diagnostics: list) -> pd.DataFrame:
    m = len(batch.instruments)
    n = batch.n_traits
    per = {f: np.full(m, np.nan) for f in ("b", "se", "p")}
    full = {f: np.full(n, np.nan) for f in ("b", "se", "p")}
    for bucket, diag in diagnostics:
        for f, src in (("b", "b"), ("se", "se"), ("p", "pval")):
            _scatter_instruments(batch, bucket, getattr(diag.loo, src), per[f])
            _scatter_traits(bucket, getattr(diag.ivw, src), full[f])
    show = batch.traits["nsnp"].to_numpy() > 2
    return _per_snp_table(batch, per, [("All", full)], show)


def single_snp(data) -> pd.DataFrame:
    """TwoSampleMR ``mr_singlesnp``: the Wald ratio of each instrument (``se = sy/|bx|``), then
    ``All - Inverse variance weighted`` and ``All - MR Egger``. Columns ``exposure, outcome,
    [ids], SNP, b, se, p``."""
    batch = as_batch(data)
    return _single_snp_table(batch, _diagnostics(batch))


def _single_snp_table(batch: TraitBatch, diagnostics: list) -> pd.DataFrame:
    m = len(batch.instruments)
    n = batch.n_traits
    per = {f: np.full(m, np.nan) for f in ("b", "se", "p")}
    ivw_all = {f: np.full(n, np.nan) for f in ("b", "se", "p")}
    egger_all = {f: np.full(n, np.nan) for f in ("b", "se", "p")}
    for bucket, diag in diagnostics:
        for f, src in (("b", "b"), ("se", "se"), ("p", "pval")):
            _scatter_instruments(batch, bucket, getattr(diag.single, src), per[f])
            _scatter_traits(bucket, getattr(diag.ivw, src), ivw_all[f])
            _scatter_traits(bucket, getattr(diag.egger, src), egger_all[f])
    show = np.ones(n, dtype=bool)
    rows = [("All - Inverse variance weighted", ivw_all), ("All - MR Egger", egger_all)]
    return _per_snp_table(batch, per, rows, show)


STEIGER_COLUMNS = ("pval.exposure", "pval.outcome", "samplesize.exposure", "samplesize.outcome")


def _case_control_sides(columns) -> tuple[str, ...]:
    """The sides (``exposure``/``outcome``) given as case/control: ``ncase.<side>`` and
    ``ncontrol.<side>`` columns present (TwoSampleMR's names)."""
    return tuple(side for side in ("exposure", "outcome") if {f"ncase.{side}", f"ncontrol.{side}"} <= set(columns))


def _liability_r(group: pd.DataFrame, side: str, prevalence) -> np.ndarray:
    """TwoSampleMR ``get_r_from_lor`` for one side of one trait (see :mod:`mrjax.liability`)."""
    if f"prevalence.{side}" in group.columns:
        prev = group[f"prevalence.{side}"].to_numpy(dtype=float)
    else:
        prev = prevalence.get(side) if isinstance(prevalence, dict) else prevalence
        if prev is None:
            raise ValueError(
                f"directionality: the {side} is case/control (ncase.{side}, ncontrol.{side} given); "
                f"give its population prevalence (prevalence=... or a prevalence.{side} column)"
            )
    if f"eaf.{side}" not in group.columns:
        raise ValueError(f"directionality: the {side} is case/control but column eaf.{side} is missing")
    return r_from_lor(group[f"beta.{side}"].to_numpy(dtype=float), group[f"eaf.{side}"].to_numpy(dtype=float),
                      group[f"ncase.{side}"].to_numpy(dtype=float), group[f"ncontrol.{side}"].to_numpy(dtype=float),
                      prev)


def directionality(data, prevalence=None) -> pd.DataFrame:
    """TwoSampleMR ``directionality_test`` (Steiger): ``exposure, outcome, [ids],
    snp_r2.exposure, snp_r2.outcome, correct_causal_direction, steiger_pval``.

    Uses ``r.exposure``/``r.outcome`` when given. Otherwise a side given as case/control
    (``ncase.<side>`` and ``ncontrol.<side>`` columns) gets TwoSampleMR's ``get_r_from_lor``
    (log OR, ``eaf.<side>``, case and control counts, population ``prevalence``: a
    ``prevalence.<side>`` column, or this argument — one number or ``{"exposure": K1,
    "outcome": K2}``; its sample size defaults to ``ncase + ncontrol``), and a quantitative
    side ``get_r_from_pn`` on its p-values and sample sizes (TwoSampleMR's default for both).
    Raises ``ValueError`` naming missing columns or a missing prevalence.
    """
    batch = as_batch(data)
    inst = batch.instruments
    binary = _case_control_sides(inst.columns)
    if binary:
        inst = inst.copy()
        for side in binary:
            if f"samplesize.{side}" not in inst.columns:
                inst[f"samplesize.{side}"] = inst[f"ncase.{side}"].astype(float) + inst[f"ncontrol.{side}"].astype(float)
    have_r = all(c in inst.columns for c in ("r.exposure", "r.outcome"))
    needed = [c for c in STEIGER_COLUMNS if not any(c.endswith("." + side) and c.startswith("pval") for side in binary)]
    missing = [c for c in needed if c not in inst.columns]
    if missing and not have_r:
        raise ValueError(
            f"directionality needs columns {', '.join(missing)} (or r.exposure and r.outcome); "
            "they are missing from the input table"
        )
    rows = []
    for trait, group in inst.groupby("trait", sort=True):
        def col(name):
            return group[name].to_numpy(dtype=float) if name in group.columns else np.full(len(group), np.nan)

        given = {side: col(f"r.{side}") if f"r.{side}" in group.columns else None for side in ("exposure", "outcome")}
        for side in binary:
            if given[side] is None:
                given[side] = _liability_r(group, side, prevalence)
        s = steiger(
            col("pval.exposure"),
            col("pval.outcome"),
            col("samplesize.exposure"),
            col("samplesize.outcome"),
            r_exp=given["exposure"],
            r_out=given["outcome"],
        )
        rows.append((trait, s.r2_exposure, s.r2_outcome, s.correct_causal_direction, s.steiger_pval))
    res = batch.traits[_trait_columns(batch)].copy()
    stats = pd.DataFrame(
        rows, columns=["_trait", "snp_r2.exposure", "snp_r2.outcome", "correct_causal_direction", "steiger_pval"]
    ).set_index("_trait")
    for c in stats.columns:
        res[c] = stats[c].reindex(range(batch.n_traits)).to_numpy()
    return res.reset_index(drop=True)


def instrument_strength(data) -> pd.DataFrame:
    """Per-instrument strength: ``exposure, outcome, [ids], SNP, r2, f_stat, f_stat_z2``
    (``r2 = 2 EAF (1 - EAF) beta^2``, ``f_stat = r2 (N - 2)/(1 - r2)``, ``f_stat_z2 =
    beta^2/se^2``; see ``mrjax.gwas.strength``) and the trait means ``mean_f_stat`` and
    ``mean_f_stat_z2``. Without ``eaf.exposure`` or ``samplesize.exposure`` r2 and f_stat are NaN."""
    batch = as_batch(data)
    inst = batch.instruments
    nan = np.full(len(inst), np.nan)
    eaf = inst["eaf.exposure"].to_numpy(dtype=float) if "eaf.exposure" in inst.columns else nan
    size = inst["samplesize.exposure"].to_numpy(dtype=float) if "samplesize.exposure" in inst.columns else nan
    s = strength_columns(inst["beta.exposure"].to_numpy(), inst["se.exposure"].to_numpy(), eaf, size)
    res = inst[_trait_columns(batch) + ["SNP"]].copy()
    res["r2"] = s.r2
    res["f_stat"] = s.f_stat
    res["f_stat_z2"] = s.f_stat_z2
    trait = inst["trait"].to_numpy()
    res["mean_f_stat"] = res.groupby(trait)["f_stat"].transform("mean").to_numpy()
    res["mean_f_stat_z2"] = res.groupby(trait)["f_stat_z2"].transform("mean").to_numpy()
    return res.reset_index(drop=True)


class Analysis(NamedTuple):
    """Every table :func:`analyse` computes (TwoSampleMR's names in brackets): ``mr``
    (``mr``), ``heterogeneity`` (``mr_heterogeneity``), ``pleiotropy``
    (``mr_pleiotropy_test``), ``leave_one_out`` (``mr_leaveoneout``), ``single_snp``
    (``mr_singlesnp``), ``directionality`` (``directionality_test``; None when the table lacks
    the p-value and sample-size columns Steiger needs) and ``strength`` (per-instrument R² and F; None unless asked for)."""

    mr: pd.DataFrame
    heterogeneity: pd.DataFrame
    pleiotropy: pd.DataFrame
    leave_one_out: pd.DataFrame
    single_snp: pd.DataFrame
    directionality: pd.DataFrame | None
    strength: pd.DataFrame | None


OPTIONAL_TABLES = ("directionality", "strength")


def analyse(data, methods=None, *, heterogeneity_methods=None, n_boot: int = 1000, seed=0, dtype="float64",
            include=OPTIONAL_TABLES, **settings) -> Analysis:
    """Every per-trait analysis of a harmonised table at once: the batch is built once, the
    method panel and the diagnostics kernel run once each (concurrently), and every table is
    cut from their results. Each table equals the one of the single-table function
    (:func:`mr`, :func:`heterogeneity`, ...) on the same data; ``methods``, ``n_boot``,
    ``seed``, ``dtype`` and the method ``settings`` go to :func:`mr`,
    ``heterogeneity_methods`` to :func:`heterogeneity`. ``include`` names the host-side
    tables wanted besides the estimates (those left out are None)."""
    unknown = set(include) - set(OPTIONAL_TABLES)
    if unknown:
        raise ValueError(f"include: unknown table(s) {sorted(unknown)}; choose from {', '.join(OPTIONAL_TABLES)}")
    batch = as_batch(data)
    with ThreadPoolExecutor(max_workers=2) as pool:
        panel = pool.submit(mr, batch, methods, n_boot=n_boot, seed=seed, dtype=dtype, **settings)
        diagnostics = _diagnostics(batch)
        estimates = panel.result()
    steiger_table = None
    if "directionality" in include:
        try:
            steiger_table = directionality(batch)
        except ValueError:  # no p-value / sample-size columns: Steiger is not applicable
            pass
    return Analysis(
        mr=estimates,
        heterogeneity=_heterogeneity_table(batch, diagnostics, heterogeneity_methods),
        pleiotropy=_pleiotropy_table(batch, diagnostics),
        leave_one_out=_leave_one_out_table(batch, diagnostics),
        single_snp=_single_snp_table(batch, diagnostics),
        directionality=steiger_table,
        strength=instrument_strength(batch) if "strength" in include else None,
    )
