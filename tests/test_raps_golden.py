"""mr.raps 0.4.2 (``mr.raps.mle`` for l2/huber/tukey with and without over-dispersion, and
``mr.raps(shrinkage = FALSE)``) against the R goldens of all five datasets (one bucket).

Tolerances: ``mr.raps.mle`` without over-dispersion 1e-7 (R's ``optimize`` tolerance);
``mr.raps()`` 1e-4 (the issue's bound; we reach ~1e-8). Where R stops short (the alternating
l2 over-dispersed fit; the robust over-dispersed ``mr.raps.mle``; one ``multiroot`` failure),
the test shows that our point solves the documented equations better than R's, with an
independent numpy/scipy evaluation of those equations.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from scipy import integrate, stats

from mrjax.batch import make_instruments
from mrjax.estimators import raps

from _golden_data import rel_err
from _robust_golden import NAMES, robust_golden

FIELDS = (("b", "beta.hat"), ("se", "beta.se"), ("tau2", "tau2.hat"), ("tau2_se", "tau2.se"))


@pytest.fixture(scope="module")
def data(shared_data):
    return robust_golden(shared_data)


_CACHE: dict = {}


def fit(data, kind: str, loss: str, od: bool):
    key = (kind, loss, od)
    if key not in _CACHE:
        fn = raps.raps_mle if kind == "mle" else raps.mr_raps
        _CACHE[key] = jax.jit(jax.vmap(lambda s: fn(s, loss, od)))(data.bucket.instruments)
    return _CACHE[key]


def arrays(data, name):
    i = data.row(name)
    t = data.bucket.instruments
    m = np.asarray(t.mask[i])
    return tuple(np.asarray(getattr(t, f)[i])[m] for f in ("bx", "sx", "by", "sy"))


def check(got, i, want, rtol):
    for field, r_field in FIELDS:
        assert rel_err(getattr(got, field)[i], want[r_field]) <= rtol, (field, getattr(got, field)[i], want[r_field])
    assert bool(got.converged[i])
    if want["beta.p.value"] == 0:  # R's 2 * (1 - pnorm(z)) underflows
        assert got.pval[i] < 1e-15
    else:
        assert rel_err(got.pval[i], want["beta.p.value"]) <= max(rtol, 1e-6)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("loss", raps.LOSSES)
def test_mle_without_overdispersion(data, name, loss):
    check(fit(data, "mle", loss, False), data.row(name), data.golden[name]["mr_raps"][f"mle_{loss}_odFALSE"], 1e-7)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("label", ["mr.raps_l2_odFALSE", "mr.raps_huber_odFALSE", "mr.raps_l2_odTRUE",
                                   "mr.raps_huber_odTRUE", "mr.raps_tukey_odTRUE"])
def test_mr_raps_shrinkage_false(data, name, label):
    if (name, label) == ("presso_e1", "mr.raps_tukey_odTRUE"):
        pytest.skip("R's multiroot returned a non-root here: see test_r_tukey_root_on_presso_is_not_a_root")
    _, loss, od = label.split("_")
    check(fit(data, "raps", loss, od == "odTRUE"), data.row(name), data.golden[name]["mr_raps"][label], 1e-4)


def test_mr_raps_is_twosamplemr_mr_raps(data):
    """TwoSampleMR mr_raps = mr.raps(huber, over.dispersion = TRUE, shrinkage = FALSE)."""
    got = fit(data, "raps", "huber", True)
    for name in NAMES:
        want = data.golden[name]["twosamplemr"]["mr"]["mr_raps"]
        i = data.row(name)
        assert rel_err(got.b[i], want["b"]) <= 1e-6 and rel_err(got.se[i], want["se"]) <= 1e-6


def _np_loss(loss):
    k = raps.K[loss]
    if loss == "l2":
        return lambda t: t
    if loss == "huber":
        return lambda t: np.clip(t, -k, k)
    return lambda t: np.where(np.abs(t) <= k, t * (1 - (t / k) ** 2) ** 2, 0.0)


def test_r_tukey_root_on_presso_is_not_a_root(data):
    """R's mr.raps(tukey, over.dispersion) on presso_e1 returns beta = -2.9, tau2 = 1.23: there all
    |t| exceed k so psi1 vanishes trivially, but psi2 = sum((t psi(t) - delta)/v) is far from 0.
    Near the mr.raps.mle estimates the only root has tau2 < 0, so (R's own rule) we return the
    fit without over-dispersion."""
    bx, sx, by, sy = arrays(data, "presso_e1")
    want = data.golden["presso_e1"]["mr_raps"]["mr.raps_tukey_odTRUE"]
    psi = _np_loss("tukey")
    delta = integrate.quad(lambda x: x * psi(x) * stats.norm.pdf(x), -np.inf, np.inf)[0]
    beta, tau2 = want["beta.hat"], want["tau2.hat"]
    v = tau2 + sy**2 + beta**2 * sx**2
    t = (by - beta * bx) / np.sqrt(v)
    assert abs(np.sum((t * psi(t) - delta) / v)) > 1.0
    got = fit(data, "raps", "tukey", True)
    i = data.row("presso_e1")
    assert got.tau2[i] == 0 and got.tau2_se[i] == 0 and bool(got.converged[i])
    assert abs(got.b[i] - data.golden["presso_e1"]["mr_raps"]["mle_tukey_odFALSE"]["beta.hat"]) < 0.05


def _l2_od_stationarity(bx, sx, by, sy, beta, tau2):
    """Gradients of mr.raps.overdispersed's two profiles: d/dbeta of -1/2 sum(r^2/v) and d/dtau2
    of -1/2 sum(sx^2 (log v + r^2/v)), written out."""
    v = tau2 + sy**2 + beta**2 * sx**2
    r = by - beta * bx
    g_beta = np.sum(bx * r / v + beta * sx**2 * r**2 / v**2)
    g_tau = -0.5 * np.sum(sx**2 * (1 / v - r**2 / v**2))
    return g_beta, g_tau


@pytest.mark.parametrize("name", NAMES)
def test_mle_l2_overdispersed(data, name):
    """R alternates two optimize() calls and stops at a relative change of 1.5e-8, up to 5e-6 off
    in tau2 (bmi_chd); ours is the fixed point (both gradients ~0 in an independent evaluation)."""
    got = fit(data, "mle", "l2", True)
    i = data.row(name)
    want = data.golden[name]["mr_raps"]["mle_l2_odTRUE"]
    for field, r_field in FIELDS:
        assert rel_err(getattr(got, field)[i], want[r_field]) <= 1e-5
    bx, sx, by, sy = arrays(data, name)
    ours = _l2_od_stationarity(bx, sx, by, sy, float(got.b[i]), float(got.tau2[i]))
    theirs = _l2_od_stationarity(bx, sx, by, sy, want["beta.hat"], want["tau2.hat"])
    scale = np.sum(bx**2 / sy**2)
    assert abs(ours[0]) <= 1e-9 * scale * abs(want["beta.hat"]) + 1e-12
    assert abs(ours[0]) <= abs(theirs[0]) + 1e-9 * scale
    if got.tau2[i] > 0:
        assert abs(ours[1]) <= abs(theirs[1]) + 1e-6 * np.sum(sx**2 / sy**4) * want["tau2.hat"]


@pytest.mark.parametrize("loss", ["huber", "tukey"])
def test_mle_robust_overdispersed_solves_the_documented_equations(data, loss):
    """mr.raps 0.4.2's robust over-dispersed mr.raps.mle reports tau2 = 0 with a beta that is not a
    stationary point of -sum(rho(t)) at tau2 = 0 on the real datasets (|gradient| > 0.1); ours
    solves the documented equations (tau2 root of sum(sx^2 (t psi - delta)/v), beta stationary)."""
    psi = _np_loss(loss)
    delta = raps.gaussian_constants(loss)[0]
    got = fit(data, "mle", loss, True)
    for name in ("bmi_chd", "ldl_chd", "trig_chd"):
        bx, sx, by, sy = arrays(data, name)
        want = data.golden[name]["mr_raps"][f"mle_{loss}_odTRUE"]

        def score(beta, tau2):
            v = tau2 + sy**2 + beta**2 * sx**2
            t = (by - beta * bx) / np.sqrt(v)
            dt = (-bx * v - (by - beta * bx) * beta * sx**2) / v**1.5
            return np.sum(psi(t) * dt), np.sum(sx**2 * (t * psi(t) - delta) / v)

        theirs = score(want["beta.hat"], want["tau2.hat"])
        i = data.row(name)
        ours = score(float(got.b[i]), float(got.tau2[i]))
        assert want["tau2.hat"] == 0 and abs(theirs[0]) > 0.1
        assert abs(ours[0]) < 1e-6 and (abs(ours[1]) < 1e-6 * abs(theirs[1]) or got.tau2[i] == 0)
        assert bool(got.converged[i])


def test_padding_invariance(data):
    i = data.row("ldl_chd")
    small = data.batch.bucket(np.array([i]), width=32)
    one = jax.jit(jax.vmap(lambda s: raps.raps_mle(s, "huber", False)))(small.instruments)
    wide = fit(data, "mle", "huber", False)
    for field in ("b", "se", "tau2", "tau2_se"):
        np.testing.assert_allclose(getattr(one, field)[0], getattr(wide, field)[i], rtol=1e-12)


def test_too_few_or_degenerate_traits_do_not_raise():
    t = make_instruments([0.1, 0.2], [0.01, 0.01], [0.0, 0.0], [0.1, 0.1], mask=[True, False])
    out = raps.mr_raps(t, "huber", True)
    assert np.all(np.isfinite(np.asarray(out.converged, dtype=float)))
