"""Steiger directionality with a case/control side: TwoSampleMR ``get_r_from_lor`` against a
plain numpy transcription of the R source (``contingency`` -> ``get_population_allele_frequency``
-> ``get_r_from_lor``, TwoSampleMR 0.7.9 R/add_rsq.r), one SNP at a time as R loops."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import mrjax
from mrjax.diagnostics import r_from_pn, steiger
from mrjax.liability import r_from_lor


def r_zapsmall(x, digits=7):
    mx = max(abs(v) for v in x)
    places = max(0, digits - math.ceil(math.log10(mx))) if mx > 0 else digits
    return [round(v, places) for v in x]


def r_contingency(af, prop, odds_ratio, eps=1e-15):
    a = odds_ratio - 1
    b = (af + prop) * (1 - odds_ratio) - 1
    c_ = odds_ratio * af * prop
    if abs(a) < eps:
        zs = [-c_ / b]
    else:
        d = b**2 - 4 * a * c_
        s = [0] if d < eps * eps else [-1, 1]
        zs = [(-b + si * math.sqrt(max(0, d))) / (2 * a) for si in s]
    tables = [r_zapsmall([z, prop - z, af - z, 1 + z - af - prop]) for z in zs]  # column-major 2x2
    ok = [t for t in tables if all(v >= 0 for v in t)]
    return ok[0]


def r_get_r_from_lor(lor, af, ncase, ncontrol, prevalence, model="logit", correction=False):
    out = []
    for i in range(len(lor)):
        ve = math.pi**2 / 3 if model == "logit" else 1.0
        co = r_contingency(af[i], ncase / (ncase + ncontrol), math.exp(lor[i]))
        af_controls = co[2] / (co[2] + co[3])  # co[1,2] / (co[1,2] + co[2,2])
        af_cases = co[0] / (co[0] + co[1])  # co[1,1] / (co[1,1] + co[2,1])
        popaf = af_controls * (1 - prevalence) + af_cases * prevalence
        vg = lor[i] ** 2 * popaf * (1 - popaf)
        r = vg / (vg + ve)
        if correction:
            r = r / 0.58
        out.append(math.sqrt(r) * (1 if lor[i] > 0 else -1 if lor[i] < 0 else 0))
    return np.array(out)


@pytest.fixture()
def case_control():
    rng = np.random.default_rng(4)
    n = 40
    bx = rng.normal(0, 0.05, n)
    sx = np.full(n, 0.02)  # p-values stay > 0 (get_r_from_pn needs no fallback)
    lor = 0.3 * bx + rng.normal(0, 0.01, n)
    frame = pd.DataFrame({
        "SNP": [f"rs{i}" for i in range(n)],
        "beta.exposure": bx, "se.exposure": sx, "beta.outcome": lor, "se.outcome": np.full(n, 0.015),
        "pval.exposure": 2 * (1 - __import__("scipy").stats.norm.cdf(np.abs(bx / sx))),
        "samplesize.exposure": 300000.0,
        "eaf.outcome": rng.uniform(0.05, 0.95, n),
        "ncase.outcome": 60801.0, "ncontrol.outcome": 123504.0,
        "exposure": "x", "outcome": "y",
    })
    return frame


@pytest.mark.parametrize("model,correction", [("logit", False), ("probit", False), ("logit", True)])
def test_r_from_lor_matches_the_r_formula(case_control, model, correction):
    f = case_control
    args = (f["beta.outcome"].to_numpy(), f["eaf.outcome"].to_numpy(), 60801.0, 123504.0, 0.05)
    want = r_get_r_from_lor(*args, model=model, correction=correction)
    got = r_from_lor(*args, model=model, correction=correction)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


def test_r_from_lor_edge_cases():
    """OR = 1 (the linear branch), a rare allele and a strong effect, against the transcription."""
    lor = np.array([0.0, 1e-17, 2.0, -1.5])
    af = np.array([0.3, 0.5, 0.01, 0.99])
    np.testing.assert_allclose(r_from_lor(lor, af, 1000.0, 4000.0, 0.2), r_get_r_from_lor(lor, af, 1000.0, 4000.0, 0.2), rtol=1e-12)
    with pytest.raises(ValueError, match="prevalence"):
        r_from_lor(lor, af, 1000.0, 4000.0, 1.5)


def test_directionality_uses_liability_r_for_a_case_control_outcome(case_control):
    out = mrjax.directionality(case_control, prevalence=0.05)
    f = case_control
    r_out = r_get_r_from_lor(f["beta.outcome"].to_numpy(), f["eaf.outcome"].to_numpy(), 60801.0, 123504.0, 0.05)
    r_exp = r_from_pn(f["pval.exposure"].to_numpy(), f["samplesize.exposure"].to_numpy())
    want = steiger(None, None, f["samplesize.exposure"].to_numpy(), np.full(len(f), 60801.0 + 123504.0),
                   r_exp=r_exp, r_out=r_out)
    row = out.iloc[0]
    assert row["snp_r2.outcome"] == pytest.approx(np.sum(r_out**2), rel=1e-12)
    assert row["steiger_pval"] == pytest.approx(want.steiger_pval, rel=1e-10)
    assert bool(row["correct_causal_direction"]) == want.correct_causal_direction
    # a prevalence column wins over the argument; the dict form names the side
    col = mrjax.directionality(case_control.assign(**{"prevalence.outcome": 0.05}), prevalence=0.3)
    assert col["steiger_pval"].iloc[0] == pytest.approx(row["steiger_pval"], rel=1e-12)
    by_side = mrjax.directionality(case_control, prevalence={"outcome": 0.05})
    assert by_side["steiger_pval"].iloc[0] == pytest.approx(row["steiger_pval"], rel=1e-12)


def test_directionality_case_control_without_prevalence_is_a_clear_error(case_control):
    with pytest.raises(ValueError, match="outcome is case/control.*prevalence"):
        mrjax.directionality(case_control)
