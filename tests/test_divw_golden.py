"""MendelianRandomization ``mr_divw`` / ``mr_pivw`` against the R goldens (all five datasets in
one bucket). Deterministic values to 1e-10 relative; pIVW's bootstrap-Fieller CI within its
Monte-Carlo error (1000 draws, as R); padding does not change any result."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from mrjax.batch import trait_keys
from mrjax.estimators import divw

from _golden_data import rel_err
from _robust_golden import NAMES, robust_golden, value

RTOL = 1e-10


@pytest.fixture(scope="module")
def data(shared_data):
    return robust_golden(shared_data)


@pytest.fixture(scope="module")
def fits(data):
    t = data.bucket.instruments
    keys = trait_keys(20240101, data.bucket.uids)
    return {
        "divw_default": jax.jit(jax.vmap(lambda s: divw.divw_fit(s, True)))(t),
        "divw_no_overdispersion": jax.jit(jax.vmap(lambda s: divw.divw_fit(s, False)))(t),
        "pivw_default": jax.jit(jax.vmap(divw.pivw_fit))(t, keys),
    }


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("label", ["divw_default", "divw_no_overdispersion"])
def test_divw_matches_r(data, fits, name, label):
    want = data.entry(name, "mendelianrandomization", label)
    fit, i = fits[label], data.row(name)
    for field, r_field in (("b", "Estimate"), ("se", "StdError"), ("lo", "CILower"), ("up", "CIUpper"),
                           ("pval", "Pvalue"), ("condition", "Condition")):
        assert rel_err(getattr(fit, field)[i], value(want, r_field)) <= RTOL, (field, getattr(fit, field)[i], want[r_field])
    assert bool(fit.ok[i])


@pytest.mark.parametrize("name", NAMES)
def test_pivw_matches_r(data, fits, name):
    want = data.entry(name, "mendelianrandomization", "pivw_default")
    fit, i = fits["pivw_default"], data.row(name)
    for field, r_field in (("b", "Estimate"), ("se", "StdError"), ("condition", "Condition")):
        assert rel_err(getattr(fit, field)[i], value(want, r_field)) <= RTOL, field
    assert want["Lambda"] == 1
    # Bootstrap-Fieller bounds: the 95% quantile of 1000 draws has ~3% Monte-Carlo error in the
    # half-width; allow 10% of R's half-width.
    half = 0.5 * (want["CIUpper"] - want["CILower"])
    assert abs(fit.lo[i] - want["CILower"]) <= 0.1 * half
    assert abs(fit.up[i] - want["CIUpper"]) <= 0.1 * half
    # Bootstrap p: share of 1000 draws beyond z0 (R gives 0 or 0.001 here).
    assert abs(fit.pval[i] - want["Pvalue"]) <= 0.005


def test_divw_tau2_is_not_truncated_as_in_r():
    """R's mr_divw keeps a negative tau2 (pIVW truncates it): check both against numpy on data
    built to have less residual spread than the SEs imply."""
    rng = np.random.default_rng(3)
    bx = rng.normal(0.1, 0.02, 20)
    sx = np.full(20, 0.01)
    sy = np.full(20, 0.02)
    by = 0.5 * bx + rng.normal(0, 0.002, 20)
    from mrjax.batch import make_instruments

    t = make_instruments(bx, sx, by, sy)
    fit = divw.divw_fit(t, True)
    b = np.sum(by * bx / sy**2) / np.sum((bx**2 - sx**2) / sy**2)
    tau2 = np.sum(((by - b * bx) ** 2 - sy**2 - b**2 * sx**2) / sy**2) / np.sum(sy**-2.0)
    assert tau2 < 0
    assert rel_err(fit.tau2, tau2) <= 1e-12
    assert float(divw.pivw_fit(t, jax.random.key(0)).tau2) == 0.0


def test_padding_and_batch_invariance(data, fits):
    """The same trait padded to width 64 (alone) gives the same numbers, the bootstrap included."""
    i = data.row("ldl_chd")
    small = data.batch.bucket(np.array([i]), width=64)
    keys = trait_keys(20240101, small.uids)
    one = jax.jit(jax.vmap(divw.pivw_fit))(small.instruments, keys)
    for field in ("b", "se", "lo", "up", "pval", "tau2"):
        np.testing.assert_allclose(getattr(one, field)[0], getattr(fits["pivw_default"], field)[i], rtol=1e-12)


# ---- pivw_lambda (mr_pivw's lambda): the goldens all use R's default lambda = 1; for other
# values a plain numpy transcription of mr_pivw's estimate and SE (Xu, Wang, Shao 2022, eq. 3
# and the package's se formula), written per variant.

def _np_pivw(bx, by, sx, sy, lam):
    mu1 = np.sum(bx * by / sy**2)
    mu2 = np.sum((bx**2 - sx**2) / sy**2)
    v2 = np.sum((4 * bx**2 * sx**2 - 2 * sx**4) / sy**4)
    v12 = np.sum(2 * bx * by * sx**2 / sy**4)
    mu2p = mu2 / 2 + np.sign(mu2) * np.sqrt(mu2**2 / 4 + lam * v2)
    mu1p = mu1 + v12 / v2 * (mu2p - mu2)
    b = mu1p / mu2p
    tau2 = max(0.0, np.sum(((by - b * bx) ** 2 - sy**2 - b**2 * sx**2) / sy**2) / np.sum(1 / sy**2))
    se = np.sqrt(np.sum(bx**2 / sy**2 * (1 + tau2 / sy**2) + b**2 * sx**2 / sy**4 * (bx**2 + sx**2))) / abs(mu2p)
    return b, se


@pytest.mark.parametrize("lam", [0.25, 1.0, 4.0])
def test_pivw_lambda_matches_numpy(data, lam):
    t = data.bucket.instruments
    keys = trait_keys(20240101, data.bucket.uids)
    fit = jax.jit(jax.vmap(lambda s, k: divw.pivw_fit(s, k, lam=lam, n_boot=200)))(t, keys)
    for name in NAMES:
        i = data.row(name)
        m = np.asarray(t.mask[i])
        b, se = _np_pivw(*(np.asarray(a[i])[m] for a in (t.bx, t.by, t.sx, t.sy)), lam)
        assert rel_err(fit.b[i], b) <= 1e-10 and rel_err(fit.se[i], se) <= 1e-10, name
        if lam == 1.0:
            assert rel_err(b, data.entry(name, "mendelianrandomization", "pivw_default")["Estimate"]) <= 1e-10
        assert fit.lo[i] < fit.b[i] < fit.up[i]


def test_pivw_lambda_through_mr(shared_data, data):
    from _golden_data import load_golden
    import mrjax

    frame = load_golden(shared_data, "ldl_chd")[1]
    t, i = data.bucket.instruments, data.row("ldl_chd")
    m = np.asarray(t.mask[i])
    b, se = _np_pivw(*(np.asarray(a[i])[m] for a in (t.bx, t.by, t.sx, t.sy)), 2.5)
    out = mrjax.mr(frame, methods=["pivw"], pivw_lambda=2.5, n_boot=200)
    assert rel_err(out["b"].iloc[0], b) <= 1e-10 and rel_err(out["se"].iloc[0], se) <= 1e-10


@pytest.mark.parametrize("bad", [0, -1.0, "1", True, None, [1.0]])
def test_bad_pivw_lambda_is_a_clear_error(bad):
    from mrjax.estimators.common import make_params

    with pytest.raises(ValueError, match="pivw_lambda"):
        make_params(pivw_lambda=bad)
