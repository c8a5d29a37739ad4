"""``mrjax scan --adjust-for FILE...``: every exposure of the scan adjusted for the given GWAS.

For each exposure trait of the forward direction, its harmonised instruments (after selection,
clumping, the strength filter and the outcome look-up) form one multivariable analysis: the
exposure itself plus every adjust-for trait, whose effects are looked up at the same SNPs and
harmonised to the exposure's effect allele (``mrjax.harmonise``). All analyses are estimated in
one engine call (``mrjax.mvmr``: MV-IVW, MV-Egger, MV-median) and get the MVMR conditional F
and the conditional-F minimum (``mrjax.mvmr_strength``). A SNP missing in (or not usable for)
an adjust-for GWAS is dropped from that exposure's analysis and listed in ``mvmr_excluded``.

Differs from TwoSampleMR ``mv_extract_exposures``: the instruments are the exposure's own, not
the union with the adjust-for traits' instruments, so each analysis stays tied to the scan's
instrument selection (the adjusted estimate answers "X on Y given Z" with X's instruments).
"""

from __future__ import annotations

import pandas as pd

from mrjax.gwas.harmonise import NoUsableSNPError, harmonise
from mrjax.scan.config import FORWARD, ScanError
from mrjax.scan.inputs import read_table, trait_name_of

EXPOSURE_COLUMNS = ["SNP", "exposure", "id.exposure", "beta.exposure", "se.exposure", "pval.exposure",
                    "effect_allele.exposure", "other_allele.exposure", "eaf.exposure"]
MV_COLUMNS = ["analysis", "SNP", "exposure", "beta.exposure", "se.exposure", "pval.exposure",
              "outcome", "beta.outcome", "se.outcome"]


def _analysis_names(table: pd.DataFrame, many_outcomes: bool | None = None) -> pd.Series:
    """One analysis per exposure (per exposure and outcome in a many-outcome scan)."""
    many = table["outcome"].nunique() > 1 if many_outcomes is None else many_outcomes
    names = table["exposure"].astype(str)
    return names + " -> " + table["outcome"].astype(str) if many else names


def mv_table(instruments: pd.DataFrame, adjusters: dict[str, pd.DataFrame], action: int = 2) -> pd.DataFrame:
    """The long MV table (one analysis per exposure trait) of the forward ``instruments``
    adjusted for each of ``adjusters`` (normalised GWAS tables by trait name)."""
    forward = instruments
    if "direction" in forward.columns:
        forward = forward[forward["direction"] == FORWARD]
    if "mr_keep" in forward.columns:
        forward = forward[forward["mr_keep"].astype(bool)]
    if not len(forward):
        raise ScanError("--adjust-for: no forward instruments to adjust", "check the scan's audit_counts.tsv")
    forward = forward.assign(analysis=_analysis_names(forward))
    exp_side = forward[[c for c in EXPOSURE_COLUMNS if c in forward.columns]]
    # sample sizes, where known, give the conditional F its nx (MendelianRandomization CondFstat)
    sizes = ["samplesize.exposure"] if "samplesize.exposure" in forward.columns else []
    rows = [forward[MV_COLUMNS + sizes]]
    for name, gwas in adjusters.items():
        if name in set(forward["exposure"].astype(str)):
            raise ScanError(f"--adjust-for trait {name!r} is also a scan exposure", "rename the file or drop it from --adjust-for")
        try:
            h = harmonise(exp_side, gwas.assign(trait=name), action=action, audited=True).table
        except NoUsableSNPError:
            continue  # every analysis then lacks this trait's rows: dropped with a reason below
        h = h[h["mr_keep"]]
        outcome_cols = forward[["exposure", "SNP", "outcome", "beta.outcome", "se.outcome"]]
        if sizes and "samplesize.outcome" not in h.columns:
            h = h.assign(**{"samplesize.outcome": float("nan")})
        merged = h[["exposure", "SNP", "beta.outcome", "se.outcome", "pval.outcome"] + (["samplesize.outcome"] if sizes else [])].rename(
            columns={"beta.outcome": "beta.exposure", "se.outcome": "se.exposure", "pval.outcome": "pval.exposure",
                     "samplesize.outcome": "samplesize.exposure"}
        ).merge(outcome_cols, on=["exposure", "SNP"], how="inner")
        merged["analysis"] = _analysis_names(merged, many_outcomes=forward["outcome"].nunique() > 1)
        merged["exposure"] = name
        rows.append(merged[MV_COLUMNS + sizes])
    return pd.concat(rows, ignore_index=True)


def adjusted_tables(instruments: pd.DataFrame, config) -> dict[str, pd.DataFrame]:
    """``mvmr_results``, ``mvmr_strength`` and ``mvmr_excluded`` of the scan's exposures adjusted
    for ``config.adjust_for`` (one engine call for all analyses)."""
    from mrjax.mv.api import mvmr, mvmr_strength
    from mrjax.mv.data import from_mv_frame

    adjusters = {trait_name_of(path): read_table(path, config.read_options, trait=trait_name_of(path), audited=True).table
                 for path in config.adjust_for}
    long = mv_table(instruments, adjusters, action=config.action)
    batch = from_mv_frame(long, on_missing="drop", source="--adjust-for MV table")
    incomplete = batch.analyses["nexp"] < 1 + len(adjusters)
    methods = ["mv_ivw", "mv_egger", ("mv_median", {"n_boot": config.n_boot})]
    results = mvmr(batch, methods=methods, seed=config.seed)
    strength = mvmr_strength(batch)
    excluded = batch.excluded[["analysis", "SNP", "exposure", "reason"]] if len(batch.excluded) else pd.DataFrame(
        columns=["analysis", "SNP", "exposure", "reason"])
    if incomplete.any():
        lacking = pd.DataFrame({"analysis": batch.analyses.loc[incomplete, "analysis"], "SNP": "(all)",
                                "exposure": "(adjust-for)", "reason": "an adjust-for trait has no usable SNP here"})
        excluded = pd.concat([excluded, lacking], ignore_index=True)
    return {"mvmr_results": results, "mvmr_strength": strength, "mvmr_excluded": excluded}
