"""What a reader of the report sees: display names of columns, effect-scale labels, and the
paper-facing views of the scan tables (one scale per table).

The TSV/parquet files keep the raw column names (``id.exposure``, ``Q_df``, ``raw_b``…);
:func:`labelled` renames a frame's columns for the HTML page with :data:`COLUMN_LABELS` and
drops the columns a reader does not need there (:data:`HIDDEN_COLUMNS`). Effect columns get
their scale in the header ("b (log OR)"), so no table mixes an odds-ratio scale with an
unlabelled b.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from mrjax.effects import ci95
from mrjax.report.tables import PRIMARY_METHOD, format_effect, format_p, is_primary

#: The effect scale of a row (``effect_scale`` of the results table) and how it is named.
SCALE_OR, SCALE_BETA = "OR", "beta"
#: Header of an estimate with its 95% CI, per scale.
ESTIMATE_HEADER = {SCALE_OR: "OR (95% CI)", SCALE_BETA: "b (95% CI)"}
#: Unit of b (and of every effect column: intercepts, LOO estimates) per scale.
B_UNIT = {SCALE_OR: "log OR", SCALE_BETA: "outcome units"}
#: One sentence per scale, printed under the tables of that scale.
SCALE_NOTE = {
    SCALE_OR: "Binary outcome: OR is the odds ratio of the outcome per unit increase of the exposure (per SD for a "
              "standardised exposure), exp(b) with 95% CI exp(b ± 1.96 SE); b and intercepts are log odds ratios.",
    SCALE_BETA: "Continuous outcome: b is the change of the outcome, in its GWAS units (SD for a standardised trait), "
                "per unit increase of the exposure; 95% CI b ± 1.96 SE.",
}
SCALE_TITLE = {SCALE_OR: "odds ratios (binary outcome)", SCALE_BETA: "b (continuous outcome)"}

#: Display name per raw column name. Columns in :data:`EFFECT_COLUMNS` get " (<unit of b>)".
COLUMN_LABELS: dict[str, str] = {
    "direction": "Direction", "exposure": "Exposure", "outcome": "Outcome", "trait": "Trait", "SNP": "SNP",
    "method": "Method", "method_id": "Method id", "nsnp": "SNPs", "b": "b", "se": "SE", "pval": "P", "p": "P",
    "or": "OR", "or_lci95": "OR lower 95%", "or_uci95": "OR upper 95%", "effect_scale": "Scale",
    "qval_fdr": "FDR q", "pval_bonferroni": "Bonferroni P", "reason": "Note",
    # heterogeneity, pleiotropy
    "Q": "Cochran's Q", "Q_df": "Q df", "Q_pval": "Q P", "I2": "I²",
    "egger_intercept": "Egger intercept", "i2gx": "I²GX",
    # MR-PRESSO
    "raw_b": "Raw b", "raw_se": "Raw SE", "raw_t": "Raw t", "raw_pval": "Raw P",
    "corrected_b": "Corrected b", "corrected_se": "Corrected SE", "corrected_t": "Corrected t",
    "corrected_pval": "Corrected P", "rss_obs": "RSS (observed)", "global_pval": "Global test P",
    "global_pval_bound": "Global P is a bound", "n_outliers": "Outliers", "outliers": "Outlier SNPs",
    "distortion_coef": "Distortion (%)", "distortion_pval": "Distortion P",
    "distortion_pval_bound": "Distortion P is a bound",
    # leave-one-out summary
    "loo_min_b": "LOO lowest b", "loo_max_b": "LOO highest b", "loo_max_p": "LOO largest P", "loo_n": "LOO fits",
    # audit
    "step": "Step", "traits": "Traits", "n_in": "Variants in", "n_kept": "Variants kept", "n_dropped": "Dropped",
    "traits_with_none_left": "Traits left with none", "variants": "Variants", "detail": "Detail",
    # inputs, settings, timings, software
    "path": "File", "folder": "Folder", "bytes": "Size (bytes)", "sha256": "SHA-256", "input": "Input",
    "setting": "Setting", "value": "Value", "stage": "Stage", "seconds": "Time (s)", "package": "Package",
    "version": "Version",
}
EFFECT_COLUMNS = {"b", "raw_b", "corrected_b", "egger_intercept", "loo_min_b", "loo_max_b"}
#: Not shown in the HTML tables (they stay in the TSVs): dataset ids repeat the trait names.
HIDDEN_COLUMNS = {"id.exposure", "id.outcome", "method_id"}


def label(column: str, scale: str | None = None) -> str:
    """The display name of ``column``; effect columns carry the unit of b for ``scale``."""
    text = COLUMN_LABELS.get(column, column.replace("_", " "))
    if column in EFFECT_COLUMNS and scale in B_UNIT:
        text += f" ({B_UNIT[scale]})"
    return text


def labelled(frame: pd.DataFrame, scale: str | None = None, drop: tuple[str, ...] = ()) -> pd.DataFrame:
    """``frame`` with display names and without :data:`HIDDEN_COLUMNS` and ``drop``; columns
    empty in every row (all NaN or "") are dropped too."""
    keep = []
    for column in frame.columns:
        if column in HIDDEN_COLUMNS or column in drop:
            continue
        values = frame[column]
        if len(frame) and (values.isna() | (values.astype(str) == "")).all():
            continue
        keep.append(column)
    return frame[keep].rename(columns={c: label(c, scale) for c in keep})


def scale_of(frame: pd.DataFrame) -> pd.Series:
    """The effect scale of each row (``"OR"`` where the table has no ``effect_scale``)."""
    if "effect_scale" in frame.columns:
        return frame["effect_scale"].fillna(SCALE_OR).astype(str)
    return pd.Series(SCALE_OR, index=frame.index)


def main_results(results: pd.DataFrame, hits: pd.DataFrame, method: str = PRIMARY_METHOD) -> pd.DataFrame:
    """The estimates of every method for the significant traits ``hits`` (one scale), one row
    per trait and method, the primary method first: ``Exposure, Outcome, Method, SNPs,
    <OR or b> (95% CI), P``; the trait names are printed on the trait's first row only."""
    keys = ["direction", "exposure", "outcome"]
    rows = results.merge(hits[keys].assign(_trait=range(len(hits))), on=keys, how="inner")
    rows = rows.assign(_others=~is_primary(rows, method)).sort_values(["_trait", "_others"], kind="stable")  # primary first
    scale = scale_of(hits).iloc[0] if len(hits) else SCALE_OR
    out, previous = [], None
    for _, row in rows.iterrows():
        first = row["_trait"] != previous
        previous = row["_trait"]
        out.append({
            "Exposure": row["exposure"] if first else "", "Outcome": row["outcome"] if first else "",
            "Method": row["method"], "SNPs": int(row["nsnp"]) if pd.notna(row["nsnp"]) else None,
            ESTIMATE_HEADER[scale]: format_effect(scale, row["b"], row["se"], row["or"], row["or_lci95"], row["or_uci95"]) or "NA",
            "P": format_p(row["pval"]) or "NA",
        })
    return pd.DataFrame(out)


def _bounded_p(row: Mapping, column: str, bound: str) -> str:
    value = row.get(column, np.nan)
    if pd.isna(value):
        return ""
    return f"< {format_p(value)}" if str(row.get(bound, "")).lower() == "true" else format_p(value)


def sensitivity_summary(findings: pd.DataFrame) -> pd.DataFrame:
    """One row per significant trait (``findings`` of one scale, from
    :func:`mrjax.report.tables.findings_table`): the multiple-testing columns of the primary
    method and the sensitivity analyses side by side — Cochran's Q p (IVW, MR-Egger), the
    MR-Egger intercept and its p, MR-PRESSO (global test p, outliers, outlier-corrected
    estimate and p, distortion p) and the leave-one-out range, on the scale of the estimates
    (odds ratios for a binary outcome). Columns that are empty for every trait are left out."""
    if not len(findings):
        return pd.DataFrame()
    scale = scale_of(findings).iloc[0]
    rows = []
    for _, row in findings.iterrows():
        low, high = row.get("loo_min_b", np.nan), row.get("loo_max_b", np.nan)
        if scale == SCALE_OR:
            loo_range = f"{np.exp(low):.2f} to {np.exp(high):.2f}" if np.isfinite(low) else ""
        else:
            loo_range = f"{low:.3f} to {high:.3f}" if np.isfinite(low) else ""
        corrected = ""
        if pd.notna(row.get("presso_corrected_b", np.nan)):
            b, se = row["presso_corrected_b"], row["presso_corrected_se"]
            low_b, high_b = ci95(b, se)
            corrected = format_effect(scale, b, se, np.exp(b), np.exp(low_b), np.exp(high_b))
        loo_p = row.get("loo_max_p", np.nan)
        rows.append({
            "Exposure": row["exposure"], "Outcome": row["outcome"],
            "FDR q": format_p(row.get("qval_fdr", np.nan)), "Bonferroni P": format_p(row.get("pval_bonferroni", np.nan)),
            "Q P (IVW)": format_p(row.get("Q_pval_ivw", np.nan)), "Q P (Egger)": format_p(row.get("Q_pval_egger", np.nan)),
            f"Egger intercept ({B_UNIT[scale]})": _number(row.get("egger_intercept", np.nan)),
            "Egger intercept P": format_p(row.get("egger_intercept_pval", np.nan)),
            "PRESSO global P": _bounded_p(row, "presso_global_pval", "presso_global_pval_bound"),
            "PRESSO outliers": _count(row.get("presso_n_outliers", np.nan)),
            f"PRESSO corrected {ESTIMATE_HEADER[scale]}": corrected,
            "PRESSO corrected P": format_p(row.get("presso_corrected_pval", np.nan)),
            "PRESSO distortion P": _bounded_p(row, "presso_distortion_pval", "presso_distortion_pval_bound"),
            f"LOO range ({'OR' if scale == SCALE_OR else 'b'})": loo_range,
            "LOO all P < 0.05": ("yes" if loo_p < 0.05 else "no") if np.isfinite(loo_p) else "",
        })
    frame = pd.DataFrame(rows)
    return frame[[c for c in frame.columns if (frame[c].astype(str) != "").any()]]


def _number(value) -> str:
    return "" if pd.isna(value) else f"{float(value):.4g}"


def _count(value) -> str:
    return "" if pd.isna(value) else str(int(value))


def presso_view(presso: pd.DataFrame, scale: str) -> pd.DataFrame:
    """The MR-PRESSO table narrowed to fit a page: per trait the raw IVW b and p, the global
    test p, the outliers, the outlier-corrected b and p, the distortion test and the note.
    Monte-Carlo p-values at their bound (no draw exceeded) print as ``< 1/n_draws``; the
    t statistics, SEs, RSS and bound flags stay in presso.tsv."""
    unit = B_UNIT[scale]
    rows = []
    for _, row in presso.iterrows():
        outliers = row.get("outliers", "")
        rows.append({
            "Exposure": row["exposure"], "Outcome": row["outcome"], "SNPs": _count(row.get("nsnp", np.nan)),
            f"Raw b ({unit})": _number(row.get("raw_b", np.nan)), "Raw P": format_p(row.get("raw_pval", np.nan)),
            "Global test P": _bounded_p(row, "global_pval", "global_pval_bound"),
            "Outliers": _count(row.get("n_outliers", np.nan)),
            "Outlier SNPs": ", ".join(str(outliers).split(",")) if isinstance(outliers, str) else "",
            f"Corrected b ({unit})": _number(row.get("corrected_b", np.nan)),
            "Corrected P": format_p(row.get("corrected_pval", np.nan)),
            "Distortion (%)": _number(row.get("distortion_coef", np.nan)),
            "Distortion P": _bounded_p(row, "distortion_pval", "distortion_pval_bound"),
            "Note": row.get("reason", "") if isinstance(row.get("reason", ""), str) else "",
        })
    frame = pd.DataFrame(rows)
    return frame[[c for c in frame.columns if (frame[c].astype(str) != "").any()]] if len(frame) else frame
