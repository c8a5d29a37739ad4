"""MendelianRandomization ``mr_lasso`` and ``mr_conmix`` against the R goldens (all five
datasets in one bucket).

MR-Lasso: estimate, SE, CI, p, lambda and the number of valid instruments to 1e-10 relative
(they depend on the lasso solution only through its zero pattern); ``RegEstimate`` within 1e-5
(glmnet's coordinate descent stops at ``thresh = 1e-7``; ours runs to convergence).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from mrjax.batch import make_instruments
from mrjax.estimators import lasso

from _golden_data import rel_err
from _robust_golden import NAMES, robust_golden, value


@pytest.fixture(scope="module")
def data(shared_data):
    return robust_golden(shared_data)


@pytest.fixture(scope="module")
def lasso_fits(data):
    return jax.jit(jax.vmap(lasso.lasso_fit))(data.bucket.instruments)


@pytest.mark.parametrize("name", NAMES)
def test_lasso_matches_r(data, lasso_fits, name):
    want = data.entry(name, "mendelianrandomization", "lasso_default")
    i = data.row(name)
    for field, r_field in (("b", "Estimate"), ("se", "StdError"), ("lo", "CILower"), ("up", "CIUpper"),
                           ("pval", "Pvalue"), ("lam", "Lambda")):
        got = getattr(lasso_fits, field)[i]
        if r_field == "Pvalue" and want[r_field] == 0:
            assert got < 1e-300
        else:
            assert rel_err(got, value(want, r_field)) <= 1e-10, (field, got, want[r_field])
    assert int(lasso_fits.n_valid[i]) == want["Valid"]
    assert rel_err(lasso_fits.reg_estimate[i], want["RegEstimate"]) <= 1e-5
    assert bool(lasso_fits.ok[i])


def test_lasso_padding_invariance(data, lasso_fits):
    i = data.row("hdl_chd")
    small = data.batch.bucket(np.array([i]), width=32)
    one = jax.jit(jax.vmap(lasso.lasso_fit))(small.instruments)
    for field in ("b", "se", "lam", "n_valid"):
        np.testing.assert_allclose(getattr(one, field)[0], getattr(lasso_fits, field)[i], rtol=1e-12)


def test_lasso_with_too_few_instruments_is_nan_not_an_error():
    t = make_instruments([0.1, 0.2, 0.3], [0.01] * 3, [0.05, 0.1, 0.15], [0.02] * 3, mask=[True, True, False])
    out = lasso.mr_lasso(t, None, None)
    assert np.isnan(float(out.b)) and int(out.reason) != 0


# --- contamination mixture -----------------------------------------------------------------

from mrjax.estimators import conmix  # noqa: E402


@pytest.fixture(scope="module")
def conmix_fits(data):
    return jax.jit(jax.vmap(conmix.conmix_fit))(data.bucket.instruments)


@pytest.mark.parametrize("name", NAMES)
def test_conmix_matches_r(data, conmix_fits, name):
    """Grid estimate, CI, p, psi and the valid set (R's grid arithmetic reproduced: 1e-12)."""
    want = data.entry(name, "mendelianrandomization", "conmix_default")
    i = data.row(name)
    for field, r_field in (("b", "Estimate"), ("lo", "CILower"), ("up", "CIUpper"), ("pval", "Pvalue"), ("psi", "Psi")):
        got = getattr(conmix_fits, field)[i]
        assert rel_err(got, value(want, r_field)) <= 1e-12, (field, got, want[r_field])
    assert list(np.nonzero(np.asarray(conmix_fits.valid[i]))[0] + 1) == want["Valid"]
    assert not bool(conmix_fits.disjoint[i]) and bool(conmix_fits.ok[i])


def _conmix_numpy(bx, sx, by, sy):
    """Plain transcription of mr_conmix (MendelianRandomization 0.10.0), CI as R's interval list."""
    from scipy import stats

    ratio, rse = by / bx, np.abs(sy / bx)
    lo, hi = np.min((by - 2 * sy) / bx), np.max((by + 2 * sy) / bx)
    psi = 1.5 * np.std(ratio, ddof=1)
    theta = np.minimum(lo + np.arange(int(np.floor((hi - lo) / 0.01 + 1e-10)) + 1) * 0.01, hi)
    inc = -((theta[:, None] - ratio) ** 2) / 2 / rse**2 - np.log(np.sqrt(2 * np.pi * rse**2))
    exc = -(ratio**2) / 2 / (psi**2 + rse**2) - np.log(np.sqrt(2 * np.pi * (psi**2 + rse**2)))
    loglik = np.where(inc > exc, inc, exc).sum(axis=1)
    best = int(np.argmax(loglik))
    valid = inc[best] > exc
    w = rse[valid] ** -2
    mean = np.sum(ratio[valid] * w) / np.sum(w)
    phi = 1.0 if valid.sum() < 1.5 else max(np.sqrt(np.sum((ratio[valid] - mean) ** 2 * w) / (valid.sum() - 1)), 1.0)
    inside = np.nonzero(2 * loglik > 2 * loglik.max() - stats.chi2.isf(0.05, 1) * phi**2)[0]
    ci = lo + 0.01 * inside
    gaps = np.nonzero(np.diff(ci) > 1.01 * 0.01)[0]
    lower = np.concatenate([[ci.min()], ci[gaps + 1]])
    upper = np.concatenate([ci[gaps], [ci.max()]])
    return lo + 0.01 * best, lower, upper


def test_conmix_disjoint_ci_hull_and_flag():
    """Two clusters of ratios give a CI made of two intervals: we report its hull and the flag."""
    rng = np.random.default_rng(11)
    bx = rng.uniform(0.05, 0.1, 24)
    sx = np.full(24, 0.005)
    sy = np.full(24, 0.01)
    effect = np.where(np.arange(24) < 12, 0.4, -0.4)
    by = effect * bx + rng.normal(0, 0.002, 24)
    b, lower, upper = _conmix_numpy(bx, sx, by, sy)
    assert len(lower) >= 2  # the data really give a union of intervals
    fit = conmix.conmix_fit(make_instruments(bx, sx, by, sy))
    assert rel_err(fit.b, b) <= 1e-12
    assert rel_err(fit.lo, lower.min()) <= 1e-12 and rel_err(fit.up, upper.max()) <= 1e-12
    assert bool(fit.disjoint)


def test_conmix_padding_invariance(data, conmix_fits):
    i = data.row("trig_chd")
    small = data.batch.bucket(np.array([i]), width=32)
    one = jax.jit(jax.vmap(conmix.conmix_fit))(small.instruments)
    for field in ("b", "lo", "up", "pval", "psi"):
        np.testing.assert_allclose(getattr(one, field)[0], getattr(conmix_fits, field)[i], rtol=1e-13)


def _frame(name, bx, sx, by, sy):
    import pandas as pd

    return pd.DataFrame({"SNP": [f"{name}_{j}" for j in range(len(bx))], "beta.exposure": bx, "se.exposure": sx,
                         "beta.outcome": by, "se.outcome": sy, "exposure": name, "outcome": "y"})


def test_mr_reports_the_disjoint_ci_flag(data):
    """mrjax.mr: with conmix among the methods, a nullable-boolean ``ci_disjoint`` column (True
    for the two-cluster trait, False for ldl_chd, <NA> for a 2-SNP trait and for other
    methods' rows); without conmix the table is exactly what it was (no such column)."""
    import pandas as pd

    import mrjax

    rng = np.random.default_rng(11)
    bx, sx, sy = rng.uniform(0.05, 0.1, 24), np.full(24, 0.005), np.full(24, 0.01)
    by = np.where(np.arange(24) < 12, 0.4, -0.4) * bx + rng.normal(0, 0.002, 24)
    t, i = data.bucket.instruments, data.row("ldl_chd")
    m = np.asarray(t.mask[i])
    ldl = [np.asarray(a[i])[m] for a in (t.bx, t.sx, t.by, t.sy)]
    frame = pd.concat([_frame("clusters", bx, sx, by, sy), _frame("ldl", *ldl),
                       _frame("two", bx[:2], sx[:2], by[:2], sy[:2])], ignore_index=True)
    both = mrjax.mr(frame, methods=["ivw", "conmix"])
    assert both.columns[-1] == "ci_disjoint" and str(both["ci_disjoint"].dtype) == "boolean"
    flag = both.set_index(["exposure", "method_id"])["ci_disjoint"]
    assert bool(flag[("clusters", "conmix")]) is True
    assert bool(flag[("ldl", "conmix")]) is False
    assert pd.isna(flag[("two", "conmix")])
    assert both.loc[both["method_id"] == "ivw", "ci_disjoint"].isna().all()
    alone = mrjax.mr(frame, methods=["ivw"])
    assert "ci_disjoint" not in alone.columns
    pd.testing.assert_frame_equal(alone, both[both["method_id"] == "ivw"].drop(columns="ci_disjoint")
                                  .reset_index(drop=True))
