"""Shared loaders for the R golden files (used by the estimator, diagnostics and API tests)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

GOLDEN_SETS = {
    "bmi_chd": ("TwoSampleMR/golden_methods_bmi_chd.json", "TwoSampleMR/bmi_chd_harmonised.csv"),
    "ldl_chd": ("MendelianRandomization/golden_methods_ldl_chd.json", "MendelianRandomization/lipids_chd.csv"),
    "hdl_chd": ("MendelianRandomization/golden_methods_hdl_chd.json", "MendelianRandomization/lipids_chd.csv"),
    "trig_chd": ("MendelianRandomization/golden_methods_trig_chd.json", "MendelianRandomization/lipids_chd.csv"),
    "presso_e1": ("MRPRESSO/golden_methods_summarystats_e1.json", "MRPRESSO/SummaryStats.csv"),
}
# Goldens with only a MendelianRandomization section (correlated instruments: its IVW, Egger and
# ML entries use the correlation matrix; the median and mode-based entries do not).
MENDELIAN_ONLY_SETS = {
    "calcium_fastgluc": (
        "MendelianRandomization/golden_methods_calcium_fastgluc.json",
        "MendelianRandomization/calcium_fastgluc.csv",
    ),
}


def load_golden(shared_data: Path, name: str) -> tuple[dict, pd.DataFrame]:
    """The golden JSON and the harmonised table it was computed on, as TwoSampleMR columns.

    Columns and SNP names follow the JSON's ``dataset`` block (``snp_order`` names the rows
    when the data carry no SNP column). The exposure is named after the dataset so several
    datasets can share one table.
    """
    golden_file, data_file = {**GOLDEN_SETS, **MENDELIAN_ONLY_SETS}[name]
    golden = json.loads((shared_data / golden_file).read_text())
    raw = pd.read_csv(shared_data / data_file)
    cols = golden["dataset"]["columns"]
    if "mr_keep" in raw.columns:
        raw = raw[raw["mr_keep"].astype(str).str.upper() == "TRUE"]
    frame = pd.DataFrame(
        {
            "SNP": golden["dataset"]["snp_order"],
            "beta.exposure": raw[cols["bx"]].to_numpy(float),
            "se.exposure": raw[cols["sx"]].to_numpy(float),
            "beta.outcome": raw[cols["by"]].to_numpy(float),
            "se.outcome": raw[cols["sy"]].to_numpy(float),
            "exposure": name,
            "outcome": "outcome",
        }
    )
    if "snp" in cols:
        assert [str(s) for s in raw[cols["snp"]]] == [s.removeprefix("snp") if cols["snp"] == "snp_index" else s for s in frame["SNP"]]
    for extra in ("pval.exposure", "pval.outcome", "samplesize.exposure", "samplesize.outcome", "eaf.exposure"):
        if extra in raw.columns:
            frame[extra] = raw[extra].to_numpy(float)
    return golden, frame


def rel_err(actual, expected) -> np.ndarray:
    """|actual − expected| / |expected| (absolute where expected is 0); NaN pairs count as 0."""
    a = np.asarray(actual, dtype=float)
    e = np.asarray(expected, dtype=float)
    both_nan = np.isnan(a) & np.isnan(e)
    err = np.abs(a - e) / np.where(e != 0, np.abs(e), 1.0)
    return np.where(both_nan, 0.0, err)
