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


# ---- K_vec (mr_cML's K_vec): no golden uses it; a plain numpy transcription of R's
# cML_estimate / cML_SdTheta / BIC averaging, itself checked against the default-K golden.

def _np_cml_estimate(bx, by, sx, sy, k, maxit=100, tol=1e-7):
    """R's ``cML_estimate`` (loop as written in MendelianRandomization) and ``cML_SdTheta``
    (inverse of the full (theta, mu_valid) Hessian)."""
    p = len(bx)
    theta, theta_old, mu = 0.0, -1.0, np.zeros(p)
    it = 0
    invalid = np.array([], dtype=int)
    while abs(theta_old - theta) > tol and it < maxit:
        theta_old, it = theta, it + 1
        r = np.zeros(p)
        if k > 0:
            importance = (by - theta * mu) ** 2 / sy**2
            invalid = np.sort(np.argsort(-importance, kind="stable")[:k])
            r[invalid] = (by - theta * mu)[invalid]
        mu = (bx / sx**2 + theta * (by - r) / sy**2) / (1 / sx**2 + theta**2 / sy**2)
        theta = np.sum((by - r) * mu / sy**2) / np.sum(mu**2 / sy**2)
    if k > 0:
        mu[invalid] = bx[invalid]
        r[invalid] = by[invalid] - theta * mu[invalid]
    negl = np.sum((bx - mu) ** 2 / (2 * sx**2)) + np.sum((by - theta * mu - r) ** 2 / (2 * sy**2))
    v = np.setdiff1d(np.arange(p), invalid)
    hess = np.zeros((len(v) + 1, len(v) + 1))
    hess[0, 0] = np.sum(mu[v] ** 2 / sy[v] ** 2)
    hess[0, 1:] = hess[1:, 0] = (2 * theta * mu[v] - by[v]) / sy[v] ** 2
    hess[1:, 1:] = np.diag(1 / sx[v] ** 2 + theta**2 / sy[v] ** 2)
    var = np.linalg.inv(hess)[0, 0]
    return theta, (np.sqrt(var) if var > 0 else np.nan), negl


def _np_cml_ma(bx, by, sx, sy, n, k_vec):
    fits = np.array([_np_cml_estimate(bx, by, sx, sy, k) for k in k_vec])
    bic = np.log(n) * np.asarray(k_vec) + 2 * fits[:, 2]
    w = np.exp(-0.5 * (bic - bic.min()))
    w /= w.sum()
    b = np.sum(w * fits[:, 0])
    return b, np.nansum(w * np.sqrt(fits[:, 1] ** 2 + (fits[:, 0] - b) ** 2))


def _trait(data, name):
    """Dataset ``name``'s unpadded (bx, by, sx, sy) from the golden bucket."""
    i = data.row(name)
    t = data.bucket.instruments
    m = np.asarray(t.mask[i])
    return tuple(np.asarray(a[i])[m] for a in (t.bx, t.by, t.sx, t.sy))


def test_numpy_reference_reproduces_the_default_k_golden(data):
    bx, by, sx, sy = _trait(data, "ldl_chd")
    want = data.entry("ldl_chd", "mendelianrandomization", "cML_noDP")
    b, se = _np_cml_ma(bx, by, sx, sy, 17723.0, range(len(bx) - 1))
    assert rel_err(b, want["Estimate"]) <= 1e-8 and rel_err(se, want["StdError"]) <= 1e-8


@pytest.fixture(scope="module")
def k_vec_fits(data):
    rows = np.array([data.row(n) for n in LIPIDS])
    bucket = data.batch.bucket(rows, width=32)

    def fit(k_vec):
        return jax.jit(jax.vmap(lambda s: cml.cml_fit(s, 17723.0, dp=False, k_vec=k_vec)))(bucket.instruments)

    return fit


@pytest.mark.parametrize("k_vec", [(0,), (0, 1, 2), (1, 4, 6)])
def test_restricted_k_vec_matches_numpy(data, k_vec_fits, k_vec):
    fit = k_vec_fits(k_vec)
    for j, name in enumerate(LIPIDS):
        b, se = _np_cml_ma(*_trait(data, name), 17723.0, k_vec)
        assert rel_err(fit.b[j], b) <= 1e-9, name
        assert rel_err(fit.se[j], se) <= 1e-9, name


def test_full_k_vec_is_the_default(data, no_dp):
    """K_vec = 0..width-2 (and beyond: larger K are skipped) equals R's default on every trait."""
    width = data.bucket.instruments.bx.shape[-1]
    n = np.nan_to_num(data.cml_n(), nan=1.0)
    full = jax.jit(jax.vmap(lambda s, nn: cml.cml_fit(s, nn, dp=False, k_vec=tuple(range(width + 5)))))(
        data.bucket.instruments, n)
    np.testing.assert_array_equal(np.asarray(full.b), np.asarray(no_dp.b))
    np.testing.assert_array_equal(np.asarray(full.se), np.asarray(no_dp.se))


def test_k_vec_through_mr_and_padding(shared_data, data):
    """mrjax.mr(..., k_vec=...) gives the numpy value, and a K above a trait's nsnp - 2 is skipped."""
    frame = load_golden(shared_data, "ldl_chd")[1]
    bx, by, sx, sy = _trait(data, "ldl_chd")
    out = mrjax.mr(frame, methods=["cml"], dp=False, n=17723, k_vec=[2, 0, 1, 500])
    b, se = _np_cml_ma(bx, by, sx, sy, 17723.0, (0, 1, 2))
    assert rel_err(out["b"].iloc[0], b) <= 1e-9 and rel_err(out["se"].iloc[0], se) <= 1e-9


@pytest.mark.parametrize("bad", [-1, [0, 1.5], [], [True], "0:3", [0, "a"]])
def test_bad_k_vec_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="k_vec"):
        mrjax.estimators.common.make_params(k_vec=bad)


def test_k_vec_needs_cml(shared_data):
    frame = load_golden(shared_data, "ldl_chd")[1]
    with pytest.raises(ValueError, match="k_vec"):
        mrjax.mr(frame, methods=["ivw"], k_vec=[0, 1])
