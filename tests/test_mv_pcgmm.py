"""mv_pcgmm (MendelianRandomization ``mr_mvpcgmm``) on the lipids -> CHD golden (identity LD, as
the vignette's call) and with a correlation matrix.

The reference is a literal numpy transcription of R's code (``prcomp`` by the SVD of the centred
``Phi``, R's matrices); it gives R's ``PCs``, ``Heter.Stat`` and SEs at R's estimate, and shows
that R's estimate is not the minimum of R's own objective (its ``nlminb`` gradient leaves out
``d Om / d theta``, as in ``mr_mvgmm``). mrjax must reach the reference's minima."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mrjax
from mrjax.mv.pcgmm import _spd_solve
from tests._golden_data import rel_err
from tests.test_mv_gmm import EXPOSURES, N, _long_table
from tests.test_mv_gmm import Reference as GMMReference

NONROBUST = ("mv_pcgmm", {"nx": N, "ny": N, "robust": False})
ROBUST = ("mv_pcgmm", {"nx": N, "ny": N})


class Reference(GMMReference):
    """R's ``mr_mvpcgmm`` objects for one analysis (``thres`` 0.99, or ``r`` components): the GMM
    reference's objective on the ``r`` components (its ``p`` is ``r`` here)."""

    def __init__(self, bx, sx, by, sy, ld, nx, ny, thres=0.99, r=None):
        p, k = bx.shape
        nx = np.full(k, float(nx))
        u = np.abs(bx).sum(axis=1) / sy
        phi = np.outer(u, u) * ld
        _, sv, vt = np.linalg.svd(phi - phi.mean(axis=0))
        share = np.cumsum(sv ** 2) / np.sum(sv ** 2)
        self.r = r = int(np.argmax(share > thres)) + 1 if r is None else r
        self.p, self.k, self.ny = r, k, ny
        lam = np.sqrt(p) * vt[:r].T
        w, v = np.linalg.eigh(lam.T @ lam)
        lam = lam @ np.linalg.inv(v @ np.diag(np.sqrt(w)) @ v.T)

        def sqrtm(a):
            w, v = np.linalg.eigh(a)
            return v @ np.diag(np.sqrt(w)) @ v.T

        ay = 1 / (ny * sy ** 2 + by ** 2)
        a_y, b_y = lam.T @ (np.outer(np.sqrt(ay), np.sqrt(ay)) * ld) @ lam, lam.T @ (ay * by)
        self.sig_y = np.linalg.inv(a_y) * (1 - b_y @ np.linalg.solve(a_y, b_y)) / (ny - r + 1)
        self.gam_y = np.linalg.solve(a_y, b_y)
        ax = 1 / (nx * sx ** 2 + bx ** 2)
        a_x = [lam.T @ (np.outer(np.sqrt(ax[:, j]), np.sqrt(ax[:, j])) * ld) @ lam for j in range(k)]
        b_x = lam.T @ (ax * bx)
        roots = [sqrtm(a) for a in a_x]
        self.sig_x = np.zeros((r * k, r * k))
        for j in range(k):
            for m in range(k):
                inv = np.linalg.inv(roots[j] @ roots[m].T)
                self.sig_x[j * r:(j + 1) * r, m * r:(m + 1) * r] = (
                    inv * ((j == m) - b_x[:, j] @ inv @ b_x[:, m]) / np.sqrt((nx[j] - r + 1) * (nx[m] - r + 1)))
        self.gam_x = np.column_stack([np.linalg.solve(a_x[j], b_x[:, j]) for j in range(k)])

    def start(self):
        return np.linalg.lstsq(self.gam_x, self.gam_y, rcond=None)[0]


@pytest.fixture(scope="module")
def golden(shared_data):
    return json.loads((shared_data / "MendelianRandomization/golden_mvmr_lipids_chd.json").read_text())["results"][
        "mendelianrandomization"]["mvpcgmm_vignette"]


@pytest.fixture(scope="module")
def lipids(shared_data):
    return pd.read_csv(shared_data / "MendelianRandomization/lipids_chd.csv")


def _arrays(lipids):
    return (lipids[EXPOSURES].to_numpy(), lipids[[e + "se" for e in EXPOSURES]].to_numpy(),
            lipids["chdlodds"].to_numpy(), lipids["chdloddsse"].to_numpy())


def _by_method(res):
    return {mid: g.set_index("exposure").loc[EXPOSURES] for mid, g in res.groupby("method_id")}


def test_reference_is_r_and_r_stops_short(golden, lipids):
    ref = Reference(*_arrays(lipids), np.eye(len(lipids)), N, N)
    assert ref.r == golden["PCs"] == 20
    r_est, r_kappa = np.array(golden["Estimate"]), golden["Overdispersion"]
    assert rel_err(ref.q(r_est, r_kappa), golden["Heter.Stat"]) < 1e-10
    assert rel_err(ref.se(r_est, r_kappa), golden["StdError"]).max() < 1e-9
    # R's estimate is not where its own objective (at its own kappa) is least
    lowest = ref.minimum(r_est, r_kappa)
    assert lowest.fun < golden["Heter.Stat"] - 1e-3 and rel_err(lowest.x, r_est).max() > 1e-3


def test_identity_ld_reaches_the_minima(lipids):
    ref = Reference(*_arrays(lipids), np.eye(len(lipids)), N, N)
    res = _by_method(mrjax.mvmr(_long_table(lipids, EXPOSURES), methods=[NONROBUST, ROBUST]))
    first = res["mv_pcgmm[nx=17723,ny=17723,robust=False]"]
    robust = res["mv_pcgmm[nx=17723,ny=17723]"]
    want = ref.minimum(ref.start())
    b = first["b"].to_numpy()
    assert rel_err(b, want.x).max() < 1e-6 and ref.q(b) <= want.fun * (1 + 1e-12)
    assert rel_err(first["se"], ref.se(b)).max() < 1e-8
    assert rel_err(first["heter_stat"], ref.q(b)).max() < 1e-10 and (first["heter_df"] == 20 - 3).all()
    np.testing.assert_allclose(first["heter_pval"], stats.chi2.sf(ref.q(b), 17), rtol=1e-10)
    kappa = ref.kappa(b)
    want = ref.minimum(b, kappa)
    br = robust["b"].to_numpy()
    assert rel_err(br, want.x).max() < 1e-6 and ref.q(br, kappa) <= want.fun * (1 + 1e-12)
    assert rel_err(robust["se"], ref.se(br, kappa)).max() < 1e-8
    assert rel_err(robust["overdispersion"], kappa).max() < 1e-9
    assert (robust["reason"] == "").all()


def test_correlated_variants_and_a_given_r(lipids):
    """An AR(1) LD matrix (the method's use: variants of one gene region), and R's ``r``."""
    p = len(lipids)
    ld = 0.5 ** np.abs(np.subtract.outer(np.arange(p), np.arange(p)))
    res = mrjax.mvmr(_long_table(lipids, EXPOSURES), methods=[NONROBUST, ("mv_pcgmm", {"nx": N, "ny": N, "robust": False, "r": 8})],
                     correlation=ld)
    for mid, r in (("mv_pcgmm[nx=17723,ny=17723,robust=False]", None), ("mv_pcgmm[nx=17723,ny=17723,r=8,robust=False]", 8)):
        ref = Reference(*_arrays(lipids), ld, N, N, r=r)
        got = _by_method(res)[mid]
        want = ref.minimum(ref.start())
        assert rel_err(got["b"], want.x).max() < 1e-6, (mid, got["b"].to_numpy(), want.x)
        assert rel_err(got["se"], ref.se(got["b"].to_numpy())).max() < 1e-7
        assert (got["heter_df"] == ref.r - 3).all()


def test_too_few_components_is_nan(lipids):
    res = mrjax.mvmr(_long_table(lipids, EXPOSURES), methods=[("mv_pcgmm", {"nx": N, "ny": N, "r": 3})])
    assert res["b"].isna().all() and (res["reason"] == "too few instruments").all()


def test_spd_solve_equals_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 12))
    a = x @ x.T + 0.1 * np.eye(12)
    b = rng.normal(size=12)
    np.testing.assert_allclose(np.asarray(_spd_solve(jnp.asarray(a), jnp.asarray(b))), np.linalg.solve(a, b), rtol=1e-10)
