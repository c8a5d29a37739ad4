"""Scan tables: the results with odds ratios and corrections, findings and paper-ready summaries.

The statistics come from the library (:mod:`mrjax.effects` for odds ratios and 95% intervals,
:mod:`mrjax.multiple_testing` for BH-FDR and Bonferroni); this module only assembles and
formats tables.

Inputs are the TwoSampleMR-shaped frames the estimators return (``mrjax.mr``:
``exposure, outcome, [id.exposure, id.outcome], method_id, method, nsnp, b, se, pval, reason``),
one per direction, or one frame with a ``direction`` column (``forward`` = exposure → outcome,
``reverse`` = outcome → exposure, where the roles of the two traits swap).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from mrjax.effects import ci95, odds_ratios
from mrjax.multiple_testing import adjust_by_group

DIRECTIONS = ("forward", "reverse")

RESULT_COLUMNS = [
    "direction",
    "exposure",
    "outcome",
    "method_id",
    "method",
    "nsnp",
    "b",
    "se",
    "pval",
    "or",
    "or_lci95",
    "or_uci95",
    "effect_scale",
    "qval_fdr",
    "pval_bonferroni",
]

PRIMARY_METHOD = "mr_ivw"
PRIMARY_METHOD_NAME = "Inverse variance weighted"


def stack_directions(tables) -> pd.DataFrame:
    """One frame with a ``direction`` column from ``{direction: frame}`` or a frame.

    A frame without ``direction`` is taken as ``forward``. ``None`` entries are skipped.
    """
    if tables is None:
        return pd.DataFrame(columns=["direction"])
    if isinstance(tables, pd.DataFrame):
        frame = tables.copy()
        if "direction" not in frame.columns:
            frame.insert(0, "direction", "forward")
        return frame
    parts = []
    for direction, frame in tables.items():
        if frame is None:
            continue
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {direction!r}; use one of {DIRECTIONS}")
        part = frame.copy()
        if "direction" in part.columns:
            part = part.drop(columns="direction")
        part.insert(0, "direction", direction)
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["direction"])
    return pd.concat(parts, ignore_index=True)


def _require(frame: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(frame.columns)}")


def scan_results(mr_results, *, correction_by=("direction", "method_id")) -> pd.DataFrame:
    """The scan results table: one row per direction × trait × method.

    ``mr_results`` is ``{"forward": frame, "reverse": frame}`` or one frame (with or without
    ``direction``) in the shape of ``mrjax.mr``. Adds ``or, or_lci95, or_uci95`` (exp of b and of
    its normal 95% CI, as TwoSampleMR's ``generate_odds_ratios`` does for every row), keeps an
    input ``effect_scale`` (``"OR"`` where the outcome is binary, ``"beta"`` where it is
    continuous: how the figures and the paper table show the row; ``"OR"`` when absent) and,
    within each group of ``correction_by`` (per direction and method,
    i.e. across traits), ``qval_fdr`` (Benjamini–Hochberg) and ``pval_bonferroni``. Columns
    are :data:`RESULT_COLUMNS`, followed by any other input columns (``id.exposure``,
    ``id.outcome``, ``reason``, …).
    """
    frame = stack_directions(mr_results)
    required = ["exposure", "outcome", "method", "nsnp", "b", "se", "pval"]
    if not len(frame):  # a scan with no estimates still gets a (header-only) table
        frame = frame.reindex(columns=list(dict.fromkeys(["direction", *required, *frame.columns])))
    _require(frame, required, "MR results table")
    if "method_id" not in frame.columns:
        frame["method_id"] = frame["method"]
    for column in ("b", "se", "pval"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    odds = odds_ratios(frame[["b", "se"]])
    for column in ("or", "or_lci95", "or_uci95"):
        frame[column] = odds[column].to_numpy()
    if "effect_scale" not in frame.columns:
        frame["effect_scale"] = "OR"
    frame = adjust_by_group(frame, by=correction_by)
    extra = [c for c in frame.columns if c not in RESULT_COLUMNS]
    return frame[RESULT_COLUMNS + extra].reset_index(drop=True)


def is_primary(frame: pd.DataFrame, method: str) -> pd.Series:
    """Rows of ``method``, given as method id with or without TwoSampleMR's ``mr_`` prefix
    (``mr_ivw`` / ``ivw``) or as the method's name."""
    hits = frame["method_id"].astype(str).isin([method, method.removeprefix("mr_")])
    if method == PRIMARY_METHOD:
        hits |= frame["method"].astype(str) == PRIMARY_METHOD_NAME
    return hits | (frame["method"].astype(str) == method)


def significant(
    results: pd.DataFrame,
    *,
    method: str = PRIMARY_METHOD,
    alpha: float = 0.05,
    by: str = "qval_fdr",
) -> pd.DataFrame:
    """The traits significant by ``method`` (default IVW): rows of ``results`` with ``by < alpha``.

    ``by`` is ``qval_fdr`` (default), ``pval_bonferroni`` or ``pval``. Returns the primary-method
    rows, sorted by direction then p-value.
    """
    _require(results, ["direction", "method_id", "method", by], "results table")
    rows = results[is_primary(results, method) & (results[by] < alpha)]
    return rows.sort_values(["direction", "pval"], kind="stable").reset_index(drop=True)


def format_or(odds, lower, upper, digits: int = 2) -> str:
    """``"1.23 (1.05–1.44)"``; empty for a missing estimate."""
    if not np.isfinite(odds):
        return ""
    return f"{odds:.{digits}f} ({lower:.{digits}f}–{upper:.{digits}f})"


def format_effect(scale: str, b, se, odds, lower, upper) -> str:
    """An estimate with its 95% CI as a paper prints it: ``format_or`` for ``scale == "OR"``,
    else ``"0.123 (0.045 to 0.201)"`` (b ± 1.96 se); empty for a missing estimate."""
    if scale == "OR":
        return format_or(odds, lower, upper)
    if not np.isfinite(b):
        return ""
    low, high = ci95(b, se)
    return f"{b:.3f} ({low:.3f} to {high:.3f})"


def format_p(p) -> str:
    """p-values as papers print them: 3 significant digits, scientific below 0.001."""
    if p is None or not np.isfinite(p):
        return ""
    return f"{p:.2e}" if p < 1e-3 else f"{p:.3f}"


def _merge_on_traits(left: pd.DataFrame, right: pd.DataFrame | None, columns: Mapping[str, str]) -> pd.DataFrame:
    """Left-join the ``columns`` (source -> new name) of ``right`` onto ``left`` by trait."""
    if right is None or not len(right):
        for new in columns.values():
            left[new] = np.nan
        return left
    keys = [c for c in ("direction", "exposure", "outcome") if c in right.columns and c in left.columns]
    present = {src: new for src, new in columns.items() if src in right.columns}
    part = right[keys + list(present)].rename(columns=present).drop_duplicates(subset=keys)
    merged = left.merge(part, on=keys, how="left")
    for new in columns.values():
        if new not in merged.columns:
            merged[new] = np.nan
    return merged


def leave_one_out_summary(loo) -> pd.DataFrame:
    """Per trait: the range of the leave-one-out estimates and whether every one keeps p < 0.05.

    ``loo`` is the ``mrjax.leave_one_out`` table (``exposure, outcome, SNP, b, se, p``, with
    ``All`` rows for the full-set estimate, which are excluded here). Columns:
    ``direction, exposure, outcome, loo_min_b, loo_max_b, loo_max_p, loo_n``.
    """
    frame = stack_directions(loo)
    columns = ["direction", "exposure", "outcome", "loo_min_b", "loo_max_b", "loo_max_p", "loo_n"]
    if not len(frame):
        return pd.DataFrame(columns=columns)
    _require(frame, ["exposure", "outcome", "SNP", "b"], "leave-one-out table")
    pcol = "p" if "p" in frame.columns else "pval"
    snps = frame[~frame["SNP"].astype(str).str.startswith("All")]
    grouped = snps.groupby(["direction", "exposure", "outcome"], sort=False)
    summary = grouped.agg(
        loo_min_b=("b", "min"), loo_max_b=("b", "max"), loo_max_p=(pcol, "max"), loo_n=("b", "size")
    ).reset_index()
    return summary[columns]


def findings_table(
    results: pd.DataFrame,
    *,
    heterogeneity=None,
    pleiotropy=None,
    presso=None,
    leave_one_out=None,
    alpha: float = 0.05,
    by: str = "qval_fdr",
    method: str = PRIMARY_METHOD,
) -> pd.DataFrame:
    """Numeric summary of the significant findings, one row per significant trait and direction.

    For each trait significant by ``method`` (:func:`significant`) the row holds, side by side:
    every method's ``b``, ``or``, CI and ``pval`` (columns ``<method_id>_<field>``), the IVW
    Cochran's Q p (``Q_pval_ivw``) and the Egger Rücker Q p (``Q_pval_egger``) from
    ``heterogeneity``, the Egger intercept and its p from ``pleiotropy``, the MR-PRESSO trait
    columns prefixed ``presso_``, and the leave-one-out range (:func:`leave_one_out_summary`).
    """
    hits = significant(results, method=method, alpha=alpha, by=by)
    keys = ["direction", "exposure", "outcome"]
    table = hits[keys + [c for c in ("nsnp", "effect_scale", "qval_fdr", "pval_bonferroni") if c in hits.columns]].copy()
    if not len(table):
        return table
    selected = results.merge(table[keys], on=keys, how="inner")
    wide = selected.pivot_table(
        index=keys, columns="method_id", values=["b", "se", "pval", "or", "or_lci95", "or_uci95"], aggfunc="first"
    )
    wide.columns = [f"{method_id}_{field}" for field, method_id in wide.columns]
    method_order = list(dict.fromkeys(selected["method_id"]))
    fields = ["b", "se", "or", "or_lci95", "or_uci95", "pval"]
    ordered = [f"{m}_{f}" for m in method_order for f in fields if f"{m}_{f}" in wide.columns]
    table = table.merge(wide[ordered].reset_index(), on=keys, how="left")

    het = stack_directions(heterogeneity)
    if len(het):
        _require(het, ["method", "Q_pval"], "heterogeneity table")
        ivw = het[het["method"].astype(str).str.contains("Inverse variance", case=False)]
        egger = het[het["method"].astype(str).str.contains("Egger", case=False)]
        table = _merge_on_traits(table, ivw, {"Q": "Q_ivw", "Q_df": "Q_df_ivw", "Q_pval": "Q_pval_ivw"})
        table = _merge_on_traits(table, egger, {"Q_pval": "Q_pval_egger"})
    else:
        table = _merge_on_traits(table, None, {"Q_pval": "Q_pval_ivw", "Q": "Q_ivw"})
    pleio = stack_directions(pleiotropy)
    table = _merge_on_traits(
        table, pleio if len(pleio) else None,
        {"egger_intercept": "egger_intercept", "se": "egger_intercept_se", "pval": "egger_intercept_pval"},
    )
    presso_frame = stack_directions(presso)
    if len(presso_frame):
        value_columns = [c for c in presso_frame.columns if c not in ("direction", "exposure", "outcome", "id.exposure", "id.outcome")]
        table = _merge_on_traits(table, presso_frame, {c: f"presso_{c}" for c in value_columns})
    loo_summary = leave_one_out_summary(leave_one_out)
    table = _merge_on_traits(table, loo_summary if len(loo_summary) else None,
                             {c: c for c in ("loo_min_b", "loo_max_b", "loo_max_p", "loo_n")})
    return table.sort_values(["direction", "qval_fdr"], kind="stable").reset_index(drop=True)


def paper_table(findings: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """The findings formatted for a manuscript: the estimate with its 95% CI and p per method.

    One row per significant trait and direction with columns ``Direction, Exposure, Outcome,
    SNPs``, then ``<method> OR (95% CI)`` and ``<method> P`` for every method present in
    ``results``, then ``FDR q``, ``Q P (IVW)``, ``Egger intercept P``, and the leave-one-out
    range on the scale of the estimates (``LOO range (OR)``: exp of the lowest and highest
    leave-one-out b). Rows whose ``effect_scale`` is ``"beta"`` (a continuous outcome) show
    b (95% CI) instead of the odds ratio: the estimate columns are then ``<method> b (95%
    CI)`` and ``LOO range (b)``, or, when the table holds both kinds, ``<method> estimate
    (95% CI)`` and ``LOO range`` beside an ``Effect`` column saying ``OR`` or ``b`` per row.
    """
    if not len(findings):
        return pd.DataFrame(columns=["Direction", "Exposure", "Outcome", "SNPs"])
    names = dict(zip(results["method_id"], results["method"]))
    scales = findings["effect_scale"] if "effect_scale" in findings.columns else pd.Series("OR", index=findings.index)
    label = {frozenset({"OR"}): "OR", frozenset({"beta"}): "b"}.get(frozenset(scales), "estimate")
    rows = []
    for (_, row), scale in zip(findings.iterrows(), scales):
        out = {"Direction": row["direction"], "Exposure": row["exposure"], "Outcome": row["outcome"], "SNPs": int(row["nsnp"])}
        if label == "estimate":
            out["Effect"] = "OR" if scale == "OR" else "b"
        for method_id, name in names.items():
            if f"{method_id}_or" not in findings.columns:
                continue
            out[f"{name} {label} (95% CI)"] = format_effect(
                scale, *(row[f"{method_id}_{field}"] for field in ("b", "se", "or", "or_lci95", "or_uci95"))
            )
            out[f"{name} P"] = format_p(row[f"{method_id}_pval"])
        out["FDR q"] = format_p(row["qval_fdr"])
        out["Q P (IVW)"] = format_p(row.get("Q_pval_ivw", np.nan))
        out["Egger intercept P"] = format_p(row.get("egger_intercept_pval", np.nan))
        low, high = row.get("loo_min_b", np.nan), row.get("loo_max_b", np.nan)
        loo_header = "LOO range" if label == "estimate" else f"LOO range ({label})"
        if not np.isfinite(low):
            out[loo_header] = ""
        elif scale == "OR":
            out[loo_header] = f"{np.exp(low):.2f} to {np.exp(high):.2f}"
        else:
            out[loo_header] = f"{low:.3f} to {high:.3f}"
        rows.append(out)
    return pd.DataFrame(rows)
