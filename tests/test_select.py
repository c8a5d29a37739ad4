"""Instrument selection (p threshold), strength (R², F) and the weak-instrument filter."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from mrjax.audit import audit_of, counts_of
from mrjax.gwas import filter_weak, read_gwas, select_instruments, strength_columns
from mrjax.gwas._audit import unlisted_of
from mrjax.gwas.select import NoInstrumentWarning


def _table():
    return pd.DataFrame(
        {
            "SNP": ["rs1", "rs2", "rs3", "rs4", "rs5", "rs1", "rs2"],
            "trait": ["A", "A", "A", "A", "A", "B", "B"],
            "beta": [0.05, 0.02, -0.1, 0.3, 0.01, 0.2, 0.01],
            "se": [0.01, 0.01, 0.01, 0.01, 0.01, 0.02, 0.01],
            "eaf": [0.3, 0.5, np.nan, 0.1, 0.2, 0.4, 0.4],
            "n": [10_000, 10_000, 10_000, np.nan, 10_000, 5_000, 5_000],
            "pval": [1e-5, 2e-6, 0.0, 0.0, 0.3, 1e-12, 0.2],
            "mlog10p": [5.0, -math.log10(2e-6), 400.0, np.nan, 0.52, 12.0, 0.7],
        }
    )


def test_selection_is_strict_and_per_trait():
    out = select_instruments(_table(), p=1e-5)
    assert list(zip(out["trait"], out["SNP"])) == [("A", "rs2"), ("A", "rs3"), ("A", "rs4"), ("B", "rs1")]
    counts = counts_of(out).set_index("trait")
    assert counts.loc["A", ["n_in", "n_kept", "n_dropped"]].tolist() == [5, 3, 2]
    assert counts.loc["B", ["n_in", "n_kept", "n_dropped"]].tolist() == [2, 1, 1]
    assert unlisted_of(out).set_index("trait")["n"].to_dict() == {"A": 2, "B": 1}
    assert len(audit_of(out)) == 0  # "not significant" is counted, never listed per variant


def test_p_zero_uses_minus_log10_p():
    table = _table().assign(pval=[0.0] * 7, mlog10p=[400.0, 3.0, 9.0, np.nan, 1.0, 6.0, 4.0])
    out = select_instruments(table, p=1e-5)
    # p = 0 with no -log10 p is taken at its word (it underflowed): significant
    assert list(zip(out["trait"], out["SNP"])) == [("A", "rs1"), ("A", "rs3"), ("A", "rs4"), ("B", "rs1")]


def test_missing_p_is_a_listed_bad_value():
    table = _table()
    table.loc[1, ["pval", "mlog10p"]] = np.nan
    out = select_instruments(table, p=1e-5)
    drops = audit_of(out)
    assert drops[["SNP", "reason"]].values.tolist() == [["rs2", "bad value"]]
    counts = counts_of(out)
    assert (counts["n_in"] == counts["n_kept"] + counts["n_dropped"]).all()


def test_twosamplemr_columns_and_empty_results():
    table = _table().rename(columns={"pval": "pval.exposure", "trait": "exposure"}).drop(columns="mlog10p")
    table["pval.exposure"] = [1e-5, 2e-6, 1e-7, 1e-7, 0.3, 1e-12, 0.2]
    out = select_instruments(table, p=1e-5)
    assert out["SNP"].tolist() == ["rs2", "rs3", "rs4", "rs1"]
    with pytest.warns(NoInstrumentWarning, match=r"no instrument left for trait\(s\) \['A'\]"):
        only_b = select_instruments(table, p=1e-8)
    assert only_b["exposure"].tolist() == ["B"]
    with pytest.raises(ValueError, match="no instrument left"):
        select_instruments(table, p=1e-20)
    with pytest.raises(ValueError, match="none of the columns"):
        select_instruments(table.drop(columns="pval.exposure"))
    with pytest.raises(ValueError, match="p must lie"):
        select_instruments(table, p=0)


def test_strength_formulas():
    beta, se, eaf, n = np.array([0.1, 0.02]), np.array([0.01, 0.01]), np.array([0.3, np.nan]), np.array([1000.0, 500.0])
    s = strength_columns(beta, se, eaf, n)
    r2 = 2 * 0.3 * 0.7 * 0.1**2  # 0.0042
    assert s.r2[0] == pytest.approx(0.0042, rel=1e-14)
    assert s.f_stat[0] == pytest.approx(r2 * 998 / (1 - r2), rel=1e-14)
    assert np.isnan(s.r2[1]) and np.isnan(s.f_stat[1])
    np.testing.assert_allclose(s.f_stat_z2, [100.0, 4.0], rtol=1e-14)


def test_r2_form_matches_a_simulated_regression():
    """For a standardised trait, 2·EAF·(1−EAF)·β² and R²(N−2)/(1−R²) match least squares."""
    rng = np.random.default_rng(3)
    n, p = 20_000, 0.3
    g = rng.binomial(2, p, n).astype(float)
    y = 0.15 * g + rng.normal(size=n)
    y = (y - y.mean()) / y.std()
    slope, intercept = np.polyfit(g, y, 1)
    resid = y - slope * g - intercept
    r2_sample = 1 - resid.var() / y.var()
    se = math.sqrt(resid.var() * n / (n - 2) / (g.var() * n))
    eaf = g.mean() / 2
    s = strength_columns([slope], [se], [eaf], [n])
    assert s.r2[0] == pytest.approx(r2_sample, rel=0.03)  # var(g) = 2pq up to sampling (HWE)
    assert s.f_stat[0] == pytest.approx(r2_sample * (n - 2) / (1 - r2_sample), rel=0.03)
    assert s.f_stat_z2[0] == pytest.approx(r2_sample * (n - 2) / (1 - r2_sample), rel=1e-9)  # t² = F exactly


def test_filter_weak_drops_and_audits():
    table = select_instruments(_table(), p=1e-5)
    out = filter_weak(table, f_min=10)
    # rs2 (A): R² form, F ≈ 2·.5·.5·.02²·9998/(1−R²) ≈ 2.0 → weak; rs3 has no EAF → β²/se² = 100
    assert list(zip(out["trait"], out["SNP"])) == [("A", "rs3"), ("A", "rs4"), ("B", "rs1")]
    drops = audit_of(out)
    assert drops[["SNP", "reason"]].values.tolist() == [["rs2", "weak instrument"]]
    assert "R2 form" in drops["detail"].iloc[0]
    expected_r2 = 2 * 0.5 * 0.5 * 0.02**2
    assert float(drops["detail"].iloc[0].split()[2]) == pytest.approx(expected_r2 * 9998 / (1 - expected_r2), rel=1e-3)
    counts = counts_of(out)
    assert counts["step"].tolist() == ["select", "select", "strength", "strength"]
    assert (counts["n_in"] == counts["n_kept"] + counts["n_dropped"]).all()
    np.testing.assert_allclose(out["f_stat_z2"], (out["beta"] / out["se"]) ** 2)


def test_filter_weak_forms():
    table = select_instruments(_table(), p=1e-5)
    z2 = filter_weak(table, f_min=10, form="z2")
    assert z2["SNP"].tolist() == ["rs3", "rs4", "rs1"]  # rs2: z² = 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r2 = filter_weak(table, f_min=10, form="r2")
    dropped = audit_of(r2).set_index("SNP")["reason"].to_dict()
    assert dropped == {"rs2": "weak instrument", "rs3": "bad value", "rs4": "bad value"}
    with pytest.raises(ValueError, match="form must be"):
        filter_weak(table, form="x")
    with pytest.raises(ValueError, match="no instrument left"):
        filter_weak(table, f_min=1e9)


def test_read_select_filter_chain_on_a_real_file(shared_data):
    gwas = read_gwas(shared_data / "gwas" / "exposure_b.vcf.gz", p_max=1e-3, trait="b")
    selected = select_instruments(gwas, p=5e-8)
    assert (selected["pval"] < 5e-8).all() and len(selected) == (gwas["pval"] < 5e-8).sum()
    strong = filter_weak(selected, f_min=30)
    f_r2 = 2 * selected["eaf"] * (1 - selected["eaf"]) * selected["beta"] ** 2
    f_r2 = f_r2 * (selected["n"] - 2) / (1 - f_r2)
    assert strong["SNP"].tolist() == selected.loc[f_r2 >= 30, "SNP"].tolist()
    counts = counts_of(strong)
    assert counts["step"].tolist() == ["read", "select", "strength"]
    assert (counts["n_in"] == counts["n_kept"] + counts["n_dropped"]).all()
    assert counts["n_in"].iloc[0] == 39314
    assert unlisted_of(strong)["step"].tolist() == ["read", "select"]
