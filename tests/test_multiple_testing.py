"""mrjax.multiple_testing and mrjax.effects against independent references.

BH and Bonferroni are compared with scipy.stats.false_discovery_control and with R's
``p.adjust`` written out as plain Python (never with the code under test); odds ratios with
TwoSampleMR's ``generate_odds_ratios`` transcribed here.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import false_discovery_control

from mrjax import effects, multiple_testing


def p_adjust_bh(p):
    """R's stats::p.adjust(p, "BH") transcribed: i <- lp:1; o <- order(p, decreasing = TRUE);
    ro <- order(o); pmin(1, cummin(n / i * p[o]))[ro], with NA kept out of n."""
    p = [float(v) for v in p]
    keep = [i for i, v in enumerate(p) if not math.isnan(v)]
    n = len(keep)
    order = sorted(keep, key=lambda i: -p[i])  # decreasing
    out = [math.nan] * len(p)
    running = math.inf
    for position, i in enumerate(order):
        rank = n - position
        running = min(running, n / rank * p[i])
        out[i] = min(1.0, running)
    return out


def test_bh_matches_scipy_and_r_transcription():
    rng = np.random.default_rng(1)
    p = np.concatenate([rng.uniform(0, 1, 40) ** 4, [0.0, 1.0, 0.01, 0.01, 0.01]])  # ties, 0 and 1
    q = multiple_testing.bh_fdr(p)
    np.testing.assert_allclose(q, false_discovery_control(p, method="bh"), rtol=1e-14, atol=0)
    np.testing.assert_allclose(q, p_adjust_bh(p), rtol=1e-14, atol=0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.floats(0, 1), st.just(float("nan"))), min_size=1, max_size=30))
def test_bh_keeps_missing_pvalues_out_of_m(p):
    q = multiple_testing.bh_fdr(p)
    expected = np.asarray(p_adjust_bh(p))
    assert np.array_equal(np.isnan(q), np.isnan(expected))
    np.testing.assert_allclose(q[~np.isnan(q)], expected[~np.isnan(q)], rtol=1e-12, atol=1e-300)
    finite = np.asarray(p, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size:
        np.testing.assert_allclose(q[~np.isnan(q)], false_discovery_control(finite, method="bh"), rtol=1e-12, atol=1e-300)


def test_bonferroni_is_m_times_p_capped_at_one():
    p = np.array([0.001, 0.02, np.nan, 0.5, 0.3])
    m = 4  # the NaN is not a test
    expected = [min(1.0, v * m) if not math.isnan(v) else math.nan for v in p]
    np.testing.assert_allclose(multiple_testing.bonferroni(p), expected, rtol=1e-15)


def test_pvalues_outside_unit_interval_are_refused():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        multiple_testing.bh_fdr([0.2, 1.5])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        multiple_testing.bonferroni([-0.1])
    rounded = np.float32(1) + np.float32(1.2e-7)  # a float32 p of 1 after rounding
    np.testing.assert_array_equal(multiple_testing.bonferroni([rounded, 0.2]), [1.0, 0.4])
    np.testing.assert_array_equal(multiple_testing.bh_fdr([rounded, 0.2]), [1.0, 0.4])


def test_adjust_by_group_corrects_within_each_group_only():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"direction": ["forward"] * 6 + ["reverse"] * 4, "pval": rng.uniform(0, 0.2, 10)})
    out = multiple_testing.adjust_by_group(frame, by=["direction"])
    for _, group in out.groupby("direction"):
        np.testing.assert_allclose(group["qval_fdr"], false_discovery_control(group["pval"].to_numpy()), rtol=1e-14)
        np.testing.assert_allclose(group["pval_bonferroni"], np.minimum(1, group["pval"] * len(group)), rtol=1e-14)
    assert "qval_fdr" not in frame.columns  # the input is not modified
    with pytest.raises(ValueError, match="method_id"):
        multiple_testing.adjust_by_group(frame, by=["method_id"])


def generate_odds_ratios(b, se):
    """TwoSampleMR R/format_mr_results2.R generate_odds_ratios, transcribed (1.96 literal)."""
    lo_ci, up_ci = b - 1.96 * se, b + 1.96 * se
    return lo_ci, up_ci, math.exp(b), math.exp(lo_ci), math.exp(up_ci)


def test_odds_ratios_follow_twosamplemr_generate_odds_ratios():
    results = pd.DataFrame({"method": ["IVW", "Egger", "none"], "b": [0.26, -0.57, np.nan], "se": [0.054, 0.4, np.nan]})
    res = effects.odds_ratios(results)
    assert list(res.columns) == ["method", "b", "se", "lo_ci", "up_ci", "or", "or_lci95", "or_uci95"]
    for i in range(2):
        expected = generate_odds_ratios(results["b"][i], results["se"][i])
        got = res.loc[i, ["lo_ci", "up_ci", "or", "or_lci95", "or_uci95"]].to_numpy(float)
        np.testing.assert_allclose(got, expected, rtol=1e-15)
    assert res.iloc[2][["or", "or_lci95", "or_uci95"]].isna().all()
    assert "or" not in results.columns
    with pytest.raises(ValueError, match="'se'"):
        effects.odds_ratios(results.drop(columns="se"))


def test_one_quantile_for_every_interval():
    """The public odds_ratios and the report's intervals use the same 1.96."""
    import mrjax
    from mrjax.report import tables

    assert mrjax.odds_ratios is effects.odds_ratios
    low, high = effects.ci95(0.5, 0.1)
    assert (low, high) == (0.5 - 1.96 * 0.1, 0.5 + 1.96 * 0.1)
    res = tables.scan_results(pd.DataFrame({"exposure": ["x"], "outcome": ["y"], "method": ["IVW"], "nsnp": [5],
                                            "b": [0.5], "se": [0.1], "pval": [0.01]}))
    np.testing.assert_allclose(res.loc[0, ["or_lci95", "or_uci95"]].to_numpy(float), np.exp([low, high]), rtol=1e-15)
    assert tables.format_effect("beta", 0.5, 0.1, np.nan, np.nan, np.nan) == f"0.500 ({low:.3f} to {high:.3f})"
