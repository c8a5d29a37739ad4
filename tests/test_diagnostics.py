"""Diagnostics and edge cases checked against independent numpy/scipy references."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from scipy import stats as sps

import mrjax  # noqa: F401
from mrjax import diagnostics
from mrjax.batch import make_instruments
from mrjax.engine import run_diagnostics, run_methods
from mrjax.estimators.common import Reason

WIDTH = 8


def random_traits(seed, counts):
    rng = np.random.default_rng(seed)
    arrays = {k: np.ones((len(counts), WIDTH)) for k in ("bx", "sx", "by", "sy")}
    mask = np.zeros((len(counts), WIDTH), dtype=bool)
    for i, n in enumerate(counts):
        arrays["bx"][i, :n] = rng.normal(0.1, 0.05, n)
        arrays["sx"][i, :n] = rng.uniform(0.005, 0.02, n)
        arrays["by"][i, :n] = 0.3 * arrays["bx"][i, :n] + rng.normal(0, 0.02, n)
        arrays["sy"][i, :n] = rng.uniform(0.005, 0.03, n)
        mask[i, :n] = True
    return arrays, mask


def numpy_ivw(bx, by, sy):
    """mr_ivw by hand: WLS through the origin, se * max(1, sigma), normal p."""
    w = 1 / sy**2
    b = np.sum(w * bx * by) / np.sum(w * bx**2)
    sigma = np.sqrt(np.sum(w * (by - b * bx) ** 2) / (len(bx) - 1))
    se = np.sqrt(1 / np.sum(w * bx**2)) * max(1.0, sigma)
    return b, se, 2 * sps.norm.sf(abs(b / se))


COUNTS = [1, 2, 3, 5, 8]


@pytest.fixture(scope="module")
def diag():
    arrays, mask = random_traits(3, COUNTS)
    return arrays, mask, run_diagnostics(make_instruments(mask=mask, **arrays))


def test_leave_one_out_equals_refitting(diag):
    arrays, mask, d = diag
    for i, n in enumerate(COUNTS):
        bx, by, sy = (arrays[k][i, :n] for k in ("bx", "by", "sy"))
        got = np.stack([np.asarray(x)[i] for x in d.loo])
        if n <= 2:
            assert np.isnan(got).all()
            continue
        for j in range(n):
            keep = np.arange(n) != j
            np.testing.assert_allclose(got[:, j], numpy_ivw(bx[keep], by[keep], sy[keep]), rtol=1e-11)
        assert np.isnan(got[:, n:]).all()
        np.testing.assert_allclose([np.asarray(x)[i] for x in d.ivw], numpy_ivw(bx, by, sy), rtol=1e-12)


def test_heterogeneity_pvalues_and_i2(diag):
    arrays, mask, d = diag
    for m, h in d.heterogeneity.items():
        q, df, p = (np.asarray(x) for x in h)
        ok = np.isfinite(q)
        np.testing.assert_allclose(p[ok], sps.chi2.sf(q[ok], df[ok]), rtol=1e-11, err_msg=m)
        assert np.isnan(p[~ok]).all()
    # IVW Q needs 2 instruments, Egger's Q' 3.
    assert np.isnan(np.asarray(d.heterogeneity["ivw"].q)[0]) and np.isfinite(np.asarray(d.heterogeneity["ivw"].q)[1])
    assert np.isnan(np.asarray(d.heterogeneity["egger_regression"].q)[1])
    q = np.array([5.0, 0.5, 10.0])
    np.testing.assert_allclose(np.asarray(diagnostics.i_squared(q, 2)), [0.6, 0.0, 0.8])


def test_single_snp_is_wald_ratio(diag):
    arrays, mask, d = diag
    b = np.where(mask, arrays["by"] / arrays["bx"], np.nan)
    se = np.where(mask, arrays["sy"] / np.abs(arrays["bx"]), np.nan)
    np.testing.assert_allclose(np.asarray(d.single.b), b, rtol=1e-15)
    np.testing.assert_allclose(np.asarray(d.single.se), se, rtol=1e-15)
    np.testing.assert_allclose(np.asarray(d.single.pval), 2 * sps.norm.sf(np.abs(b / se)), rtol=1e-12)


def test_isq_ignores_padding():
    y = np.array([1.0, 2.0, 4.0, 99.0])
    s = np.array([0.5, 1.0, 1.0, 1e-9])
    mask = np.array([True, True, True, False])
    w = 1 / s[:3] ** 2
    mu = np.sum(w * y[:3]) / np.sum(w)
    q = np.sum(w * (y[:3] - mu) ** 2)
    assert float(diagnostics.isq(y, s, mask)) == pytest.approx(max(0, (q - 2) / q), rel=1e-14)


def test_r_from_pn_against_f_quantile():
    p = np.array([0.5, 1e-3, 1e-12])
    n = np.array([1000.0, 5000.0, 20000.0])
    f = sps.f.isf(p, 1, n - 1)
    np.testing.assert_allclose(diagnostics.r_from_pn(p, n), np.sqrt(f / (n - 2 + f)), rtol=1e-12)
    # scipy's F quantile overflows below ~1e-25 for large n; R's does at smaller p (then R
    # searches numerically). Check the tail against the normal limit (df = 3e5: z^2 ~ t^2).
    tiny_p = np.array([1e-150, 1e-30])
    tiny = diagnostics.r_from_pn(tiny_p, np.array([3e5, 3e5]))
    z2 = sps.norm.isf(tiny_p / 2) ** 2
    np.testing.assert_allclose(tiny, np.sqrt(z2 / (3e5 - 2 + z2)), rtol=2e-3)
    assert tiny[0] > tiny[1]
    assert np.isnan(diagnostics.r_from_pn(np.array([0.0]), np.array([100.0]))).all()


def test_steiger_with_given_correlations():
    r_exp = np.array([0.05, 0.08, -0.03])
    r_out = np.array([0.01, 0.02, 0.015])
    n_exp, n_out = np.full(3, 1e4), np.full(3, 5e4)
    s = diagnostics.steiger(None, None, n_exp, n_out, r_exp=r_exp, r_out=r_out)
    re, ro = np.sqrt(np.sum(r_exp**2)), np.sqrt(np.sum(r_out**2))
    z = (np.arctanh(re) - np.arctanh(ro)) / np.sqrt(1 / (1e4 - 3) + 1 / (5e4 - 3))
    assert s.r2_exposure == pytest.approx(re**2, rel=1e-14)
    assert s.r2_outcome == pytest.approx(ro**2, rel=1e-14)
    assert s.correct_causal_direction is True
    assert s.steiger_pval == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-12)


def test_degenerate_traits_are_nan_with_reasons():
    """Zero exposure effects, collinear Egger designs, too few usable SNPs for the sign test,
    and a zero bx in GRIP give NaN plus a reason, never an exception."""
    n = 6
    bx = np.array(
        [
            np.zeros(n),  # every bx = 0: IVW has no weight
            np.full(n, 0.1),  # |bx| constant: Egger is collinear
            [0.1, -0.1, 0.2, 0.0, 0.1, 0.3],  # one zero: sign has 5 usable, GRIP undefined
        ]
    )
    by = np.array([np.linspace(0.01, 0.06, n), np.linspace(0.01, 0.06, n), [0.02, 0.01, 0.05, 0.01, 0.03, 0.07]])
    ones = np.full_like(bx, 0.01)
    inst = make_instruments(bx, ones, by, ones)
    keys = jax.random.split(jax.random.key(0), 3)
    est = run_methods(inst, keys, ("ivw", "egger_regression", "sign", "grip", "two_sample_ml", "wald_ratio"))
    reason = {m: np.asarray(e.reason) for m, e in est.items()}
    assert np.isnan(np.asarray(est["ivw"].b)[0]) and reason["ivw"][0] == Reason.ZERO_WEIGHT
    assert np.isnan(np.asarray(est["egger_regression"].b)[1]) and reason["egger_regression"][1] == Reason.ZERO_WEIGHT
    assert np.isnan(np.asarray(est["sign"].b)[2]) and reason["sign"][2] == Reason.TOO_FEW_SNPS
    assert np.isnan(np.asarray(est["grip"].b)[2]) and reason["grip"][2] == Reason.ZERO_WEIGHT
    assert (reason["wald_ratio"] == Reason.NOT_APPLICABLE).all()
    assert np.isfinite(np.asarray(est["ivw"].b)[1:]).all()
    # A zero bx is fine for Egger (oriented as positive, TwoSampleMR's sign0).
    assert np.isfinite(np.asarray(est["egger_regression"].b)[2])


def test_sign_concordance_counts():
    bx = np.array([0.1, 0.2, -0.1, 0.3, -0.2, 0.1, 0.0, 0.2])
    by = np.array([0.1, 0.1, -0.2, -0.1, -0.1, 0.2, 0.3, 0.0])
    inst = make_instruments(bx, np.full(8, 0.01), by, np.full(8, 0.01))
    est = run_methods(inst, jax.random.key(0), ("sign",))["sign"]
    # usable: first six (bx or by zero excluded); concordant: 5 of 6.
    assert int(est.nsnp) == 6
    assert float(est.b) == pytest.approx(2 * (5 / 6 - 0.5))
    assert float(est.pval) == pytest.approx(sps.binomtest(5, 6, 0.5).pvalue, rel=1e-12)
    assert np.isnan(float(est.se))


def test_chi_square_tail_for_whole_degrees_of_freedom_matches_scipy():
    """The Q tests' closed-form chi-square tail against scipy's (R's pchisq) for every df up
    to the width it serves, from q = 0 through the far tail (relative precision kept)."""
    max_df = 64
    q = np.concatenate([[0.0], np.logspace(-8, np.log10(2000.0), 120), np.linspace(0.5, 150.0, 60)])
    df = np.arange(1, max_df + 1, dtype=float)
    qq, dd = np.meshgrid(q, df)
    got = np.asarray(jax.jit(diagnostics.chi2_sf_counts, static_argnums=2)(qq, dd, max_df))
    want = sps.chi2.sf(qq, dd)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)
    assert (got[:, 0] == 1.0).all()
    assert (got[want > 1e-300] > 0).all()  # no early underflow (denormals aside)
