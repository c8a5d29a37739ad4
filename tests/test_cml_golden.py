"""MendelianRandomization ``mr_cML`` (cML-MA-BIC) against the R goldens, with the sample size
each golden call used (``dataset.n_for_cML``).

Without data perturbation the method is deterministic: 1e-10 relative. With DP (200
perturbations from the trait's key, not R's seed 314) estimate and SE agree within their
Monte-Carlo error (measured over 40 keys on ldl_chd: sd 1% of b and 5% of the SE), and the GOF
p-values — which swing over (0.001, 0.4) between keys — only in order of magnitude class.
"""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
import pytest

import mrjax
from mrjax.batch import from_frame, make_instruments, trait_keys
from mrjax.estimators import cml

from _golden_data import load_golden, rel_err
from _robust_golden import robust_golden, value

CML_SETS = ("bmi_chd", "ldl_chd", "hdl_chd", "trig_chd")
LIPIDS = ("ldl_chd", "hdl_chd", "trig_chd")


@pytest.fixture(scope="module")
def data(shared_data):
    return robust_golden(shared_data)


@pytest.fixture(scope="module")
def no_dp(data):
    n = np.nan_to_num(data.cml_n(), nan=1.0)
    return jax.jit(jax.vmap(lambda s, nn: cml.cml_fit(s, nn, dp=False)))(data.bucket.instruments, n)


@pytest.mark.parametrize("name", CML_SETS)
def test_cml_without_perturbation_matches_r(data, no_dp, name):
    want = data.entry(name, "mendelianrandomization", "cML_noDP")
    i = data.row(name)
    for field, r_field in (("b", "Estimate"), ("se", "StdError"), ("lo", "CILower"), ("up", "CIUpper"), ("pval", "Pvalue")):
        assert rel_err(getattr(no_dp, field)[i], value(want, r_field)) <= 1e-10, field
    assert bool(no_dp.ok[i])


@pytest.fixture(scope="module")
def with_dp(data):
    rows = np.array([data.row(n) for n in LIPIDS])
    bucket = data.batch.bucket(rows, width=32)
    keys = trait_keys(20240101, bucket.uids)
    fit = jax.jit(jax.vmap(lambda s, k: cml.cml_fit(s, 17723.0, k, dp=True)))(bucket.instruments, keys)
    return {name: jax.tree_util.tree_map(lambda a, j=j: a[j], fit) for j, name in enumerate(LIPIDS)}, bucket


@pytest.mark.parametrize("name", LIPIDS)
def test_cml_with_perturbation_within_monte_carlo_error(data, with_dp, name):
    want = data.entry(name, "mendelianrandomization", "cML_default")
    got = with_dp[0][name]
    assert abs(got.b - want["Estimate"]) <= 0.3 * want["StdError"]
    assert abs(got.se - want["StdError"]) <= 0.25 * want["StdError"]
    for gof in ("gof1", "gof2"):
        ours, theirs = float(getattr(got, gof)), want[gof.upper() + "_p"]
        assert abs(np.log10(ours) - np.log10(theirs)) <= 2.5, (gof, ours, theirs)
    assert bool(got.ok)


def test_cml_dp_padding_invariance(data, with_dp):
    """The same trait and key at width 64: identical DP draws, identical result."""
    i = data.row("ldl_chd")
    wide = data.batch.bucket(np.array([i]), width=64)
    keys = trait_keys(20240101, wide.uids)
    one = jax.jit(jax.vmap(lambda s, k: cml.cml_fit(s, 17723.0, k, dp=True)))(wide.instruments, keys)
    for field in ("b", "se", "gof1"):
        np.testing.assert_allclose(getattr(one, field)[0], getattr(with_dp[0]["ldl_chd"], field), rtol=1e-12)


def test_samplesize_comes_from_the_data(shared_data):
    """bmi_chd's golden n (184305) is min(samplesize.exposure, samplesize.outcome) of its rows;
    mrjax.mr takes it from those columns, or from the n setting."""
    golden, frame = load_golden(shared_data, "bmi_chd")
    batch = from_frame(frame)
    assert batch.trait_samplesize(np.array([0]))[0] == golden["dataset"]["n_for_cML"]
    out = mrjax.mr(frame, methods=["cml"], dp=False)
    want = golden["mendelianrandomization"]["cML_noDP"]
    assert rel_err(out["b"].iloc[0], want["Estimate"]) <= 1e-10
    assert rel_err(out["se"].iloc[0], want["StdError"]) <= 1e-10
    lipid = load_golden(shared_data, "ldl_chd")[1]
    assert out["reason"].iloc[0] == ""
    missing = mrjax.mr(lipid, methods=["cml"], dp=False)
    assert np.isnan(missing["b"].iloc[0]) and missing["reason"].iloc[0] == "not applicable"
    given = mrjax.mr(lipid, methods=["cml"], dp=False, n=17723)
    assert rel_err(given["b"].iloc[0], load_golden(shared_data, "ldl_chd")[0]["mendelianrandomization"]["cML_noDP"]["Estimate"]) <= 1e-10


def test_too_few_instruments_is_nan():
    t = make_instruments([0.1, 0.2], [0.01] * 2, [0.05, 0.1], [0.02] * 2)
    out = cml.mr_cml(t, jax.random.key(0), mrjax.estimators.common.Params(n=1000.0, dp=False))
    assert np.isnan(float(out.b)) and int(out.reason) == 1
