"""mv_gmm (MendelianRandomization ``mr_mvgmm``) on the lipids -> CHD golden.

R's ``nlminb`` stops short of the GMM objective's minimum (its gradient leaves out
``d Om / d theta``; ``mvgmm_nlminb_diagnostics``), so R's estimates are not the method's. The
reference here is a literal numpy transcription of R's code (its ``p x p`` and ``pK x pK``
matrices, ``ld = I``): checked first to give R's ``Heter.Stat``, SEs and ``kappa`` at R's own
stopped points, then minimised with scipy; mrjax must reach those minima."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy import stats

import mrjax
from tests._golden_data import rel_err

EXPOSURES = ["ldlc", "hdlc", "trig"]
N = 17723  # nx = rep(17723, 3), ny = 17723 in the golden calls
NONROBUST = ("mv_gmm", {"nx": N, "ny": N, "robust": False})
ROBUST = ("mv_gmm", {"nx": N, "ny": N})


class Reference:
    """R's ``mr_mvgmm`` objects for one analysis, transcribed with its matrices."""

    def __init__(self, bx, sx, by, sy, nx, ny, cor_x=None):
        p, k = bx.shape
        cor_x = np.eye(k) if cor_x is None else np.asarray(cor_x)
        self.p, self.k, self.ny = p, k, ny
        nx = np.full(k, float(nx))
        ay = 1 / (ny * sy**2 + by**2)
        a_y, b_y = np.diag(ay), ay * by
        self.sig_y = np.linalg.inv(a_y) * (1 - b_y @ np.linalg.inv(a_y) @ b_y) / (ny - p + 1)
        self.gam_y = np.linalg.solve(a_y, b_y)
        ax = 1 / (nx * sx**2 + bx**2)
        b_x = ax * bx
        root = [np.diag(np.sqrt(ax[:, j])) for j in range(k)]
        self.sig_x = np.zeros((p * k, p * k))
        for j in range(k):
            for m in range(k):
                inv = np.linalg.inv(root[j] @ root[m].T)
                self.sig_x[j * p:(j + 1) * p, m * p:(m + 1) * p] = (
                    inv * (cor_x[j, m] - b_x[:, j] @ inv @ b_x[:, m]) / np.sqrt((nx[j] - p + 1) * (nx[m] - p + 1)))
        self.gam_x = np.column_stack([np.linalg.solve(np.diag(ax[:, j]), b_x[:, j]) for j in range(k)])

    def om(self, theta, kappa=0.0):
        kr = np.kron(np.asarray(theta)[None, :], np.eye(self.p))
        return self.sig_y + np.eye(self.p) * kappa / self.ny + kr @ self.sig_x @ kr.T

    def q(self, theta, kappa=0.0):
        g = self.gam_y - self.gam_x @ theta
        return g @ np.linalg.solve(self.om(theta, kappa), g)

    def se(self, theta, kappa=0.0):
        return np.sqrt(np.diag(np.linalg.inv(self.gam_x.T @ np.linalg.solve(self.om(theta, kappa), self.gam_x))))

    def kappa(self, theta):
        """The root of ``Q(theta; kappa) = p - K`` (R's ``uniroot``, solved to 1e-14)."""
        f = lambda kappa: self.q(theta, kappa) - (self.p - self.k)  # noqa: E731
        return optimize.brentq(f, 0.0, 1e3, xtol=1e-14, rtol=1e-15)

    def minimum(self, start, kappa=0.0):
        nm = optimize.minimize(self.q, start, args=(kappa,), method="Nelder-Mead",
                               options=dict(xatol=1e-12, fatol=1e-14, maxiter=20000, maxfev=40000))
        return optimize.minimize(self.q, nm.x, args=(kappa,), method="BFGS", options={"gtol": 1e-12})


@pytest.fixture(scope="module")
def golden(shared_data):
    return json.loads((shared_data / "MendelianRandomization/golden_mvmr_lipids_chd.json").read_text())["results"][
        "mendelianrandomization"]


@pytest.fixture(scope="module")
def lipids(shared_data):
    return pd.read_csv(shared_data / "MendelianRandomization/lipids_chd.csv")


def _long_table(df, exposures, analysis="lipids"):
    return pd.concat(
        [pd.DataFrame({"analysis": analysis, "SNP": [f"snp{i}" for i in df["snp_index"]], "exposure": e,
                       "beta.exposure": df[e], "se.exposure": df[e + "se"],
                       "pval.exposure": 2 * stats.norm.sf(np.abs(df[e] / df[e + "se"])),
                       "outcome": "chd", "beta.outcome": df["chdlodds"], "se.outcome": df["chdloddsse"]})
         for e in exposures], ignore_index=True)


@pytest.fixture(scope="module")
def reference(lipids):
    return Reference(lipids[EXPOSURES].to_numpy(), lipids[[e + "se" for e in EXPOSURES]].to_numpy(),
                     lipids["chdlodds"].to_numpy(), lipids["chdloddsse"].to_numpy(), N, N)


@pytest.fixture(scope="module")
def results(lipids):
    res = mrjax.mvmr(_long_table(lipids, EXPOSURES), methods=[NONROBUST, ROBUST])
    by = {mid: g.set_index("exposure").loc[EXPOSURES] for mid, g in res.groupby("method_id")}
    return by["mv_gmm[nx=17723,ny=17723,robust=False]"], by["mv_gmm[nx=17723,ny=17723]"]


def test_reference_reproduces_r_at_its_stopped_points(golden, reference):
    nonrobust, robust = golden["mvgmm_nonrobust"], golden["mvgmm_default"]
    r_first, r_kappa = np.array(nonrobust["Estimate"]), robust["Overdispersion"]
    assert rel_err(reference.q(r_first), nonrobust["Heter.Stat"][0]) < 1e-10
    assert rel_err(reference.se(r_first), nonrobust["StdError"]).max() < 1e-9
    assert abs(reference.kappa(r_first) - r_kappa) < 1.3e-4  # uniroot's tolerance, .Machine$double.eps^0.25
    r_robust = np.array(robust["Estimate"])
    assert rel_err(reference.q(r_robust, r_kappa), robust["Heter.Stat"]) < 1e-10
    assert rel_err(reference.se(r_robust, r_kappa), robust["StdError"]).max() < 1e-9
    # and its minimisation is the one R's nlminb reaches without the gradient
    steps = golden["mvgmm_nlminb_diagnostics"]["robust_TRUE"]
    first = reference.minimum(steps[3]["start"])
    assert rel_err(first.x, steps[3]["no_gradient_par"]).max() < 1e-6
    assert first.fun <= steps[3]["no_gradient_objective"] * (1 + 1e-12)
    second = reference.minimum(steps[4]["start"], r_kappa)
    assert rel_err(second.x, steps[4]["no_gradient_par"]).max() < 1e-6


def test_nonrobust_reaches_the_minimum_r_stops_short_of(golden, reference, results):
    ours = results[0]
    b = ours["b"].to_numpy()
    steps = golden["mvgmm_nlminb_diagnostics"]["robust_TRUE"]
    assert rel_err(b, steps[3]["no_gradient_par"]).max() < 1e-6
    assert reference.q(b) <= steps[3]["no_gradient_objective"] * (1 + 1e-12)
    assert reference.q(b) < golden["mvgmm_nonrobust"]["Heter.Stat"][0] - 0.1  # R's stopped point: 47.509
    assert rel_err(ours["se"], reference.se(b)).max() < 1e-8
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(ours["lo_ci"], b - z * ours["se"], rtol=1e-12)
    np.testing.assert_allclose(ours["pval"], 2 * stats.norm.sf(np.abs(b / ours["se"])), rtol=1e-10)
    assert (ours["reason"] == "").all()
    p, k = len(reference.gam_y), len(EXPOSURES)
    assert rel_err(ours["heter_stat"], reference.q(b)).max() < 1e-10 and (ours["heter_df"] == p - k).all()
    np.testing.assert_allclose(ours["heter_pval"], stats.chi2.sf(reference.q(b), p - k), rtol=1e-10)


def test_robust_takes_kappa_at_the_true_first_estimate(reference, results):
    first, ours = (r["b"].to_numpy() for r in results)
    kappa = reference.kappa(first)
    assert 17.7 < kappa < 17.8  # R: 17.369 at its stopped first estimate
    want = reference.minimum(first, kappa)
    assert rel_err(ours, want.x).max() < 1e-6
    assert reference.q(ours, kappa) <= want.fun * (1 + 1e-12)
    assert rel_err(results[1]["se"], reference.se(ours, kappa)).max() < 1e-8
    # Heter.Stat: Q at the estimate, without a p-value (R gives none for the robust fit)
    assert rel_err(results[1]["heter_stat"], reference.q(ours, kappa)).max() < 1e-10
    assert results[1]["heter_df"].isna().all() and results[1]["heter_pval"].isna().all()
    assert rel_err(results[1]["overdispersion"], kappa).max() < 1e-9  # R's Overdispersion
    assert results[0]["overdispersion"].isna().all()


def test_padding_and_batch_invariance(lipids, results):
    """With a two-exposure analysis (padded to three) and a wider one in the same call."""
    wide = pd.concat([lipids, lipids.assign(snp_index=lipids["snp_index"] + 1000,
                                            chdlodds=lipids["chdlodds"] * 0.7)], ignore_index=True)
    table = pd.concat([_long_table(lipids, EXPOSURES), _long_table(lipids, EXPOSURES[:2], "two"),
                       _long_table(wide, EXPOSURES, "wide")], ignore_index=True)
    res = mrjax.mvmr(table, methods=[NONROBUST, ROBUST])
    for (_, kept), alone in zip(res[res["analysis"] == "lipids"].groupby("method_id", sort=False), results):
        np.testing.assert_allclose(kept.set_index("exposure").loc[EXPOSURES, ["b", "se"]], alone[["b", "se"]], rtol=1e-12)
    two = mrjax.mvmr(_long_table(lipids, EXPOSURES[:2], "two"), methods=[NONROBUST, ROBUST])
    np.testing.assert_allclose(res.loc[res["analysis"] == "two", ["b", "se"]], two[["b", "se"]], rtol=1e-12)


def test_correlated_instruments_are_not_applicable(lipids):
    rho = np.eye(len(lipids))
    rho[0, 1] = rho[1, 0] = 0.2
    res = mrjax.mvmr(_long_table(lipids, EXPOSURES), methods=[ROBUST], correlation=rho)
    assert res["b"].isna().all() and (res["reason"] == "not applicable").all()


RUN_OFF = ("trait_0032", "trait_0089")  # MV benchmark analyses (a scan-fixture trait + a simulated second exposure)


def test_no_finite_minimum_is_nan(mv_benchmark_table):
    """Where ``Q`` falls forever as ``|theta|`` grows along a direction the exposure data hardly
    identify (21 of the MV benchmark's 731 analyses at nx = ny = 50,000), there is no estimate."""
    table = mv_benchmark_table[mv_benchmark_table["analysis"].isin(RUN_OFF)]
    res = mrjax.mvmr(table, methods=[("mv_gmm", {"nx": 50000, "ny": 50000, "robust": False})])
    assert res["b"].isna().all() and (res["reason"] == "did not converge").all()
    for name in RUN_OFF:
        one = table[table["analysis"] == name]
        bx = np.column_stack([one.loc[one["exposure"] == e, "beta.exposure"].to_numpy() for e in (name, "Z")])
        sx = np.column_stack([one.loc[one["exposure"] == e, "se.exposure"].to_numpy() for e in (name, "Z")])
        by, sy = (one.loc[one["exposure"] == name, c].to_numpy() for c in ("beta.outcome", "se.outcome"))
        ref = Reference(bx, sx, by, sy, 50000, 50000)
        assert np.max(np.abs(ref.minimum(np.linalg.lstsq(bx, by, rcond=None)[0]).x)) > 1e6, name  # scipy runs off too


def test_nx_per_exposure_and_bad_lengths(lipids, results):
    table = _long_table(lipids, EXPOSURES)
    per = mrjax.mvmr(table, methods=[("mv_gmm", {"nx": (N, N, N), "ny": N, "robust": False})])
    np.testing.assert_allclose(per.set_index("exposure").loc[EXPOSURES, "b"], results[0]["b"], rtol=1e-12)
    with pytest.raises(ValueError, match="nx gives 2 sample sizes"):
        mrjax.mvmr(table, methods=[("mv_gmm", {"nx": (N, N), "ny": N})])


def test_a_method_without_its_sample_sizes_is_a_clear_error(lipids):
    table = _long_table(lipids, EXPOSURES)
    with pytest.raises(ValueError, match=r"'mv_gmm' needs the option\(s\) 'nx', 'ny'"):
        mrjax.mvmr(table, methods=["mv_gmm"])
    with pytest.raises(ValueError, match=r"'mv_gmm' needs the option\(s\) 'ny'"):
        mrjax.mvmr(table, methods=[("mv_gmm", {"nx": N})])
    with pytest.raises(ValueError, match=r"'mv_cml' needs the option\(s\) 'n'"):
        mrjax.mvmr(table, methods=["mv_cml"])


COR_X = ((1.0, 0.3, 0.1), (0.3, 1.0, -0.2), (0.1, -0.2, 1.0))


def test_exposure_correlation_cor_x(lipids):
    """R's ``cor.x`` (the exposures' phenotypic correlation in ``SigX``): mrjax reaches the
    transcription's minima with it, non-robust and robust; a matrix without a unit diagonal is
    an error naming the option."""
    ref = Reference(lipids[EXPOSURES].to_numpy(), lipids[[e + "se" for e in EXPOSURES]].to_numpy(),
                    lipids["chdlodds"].to_numpy(), lipids["chdloddsse"].to_numpy(), N, N, cor_x=np.array(COR_X))
    table = _long_table(lipids, EXPOSURES)
    res = mrjax.mvmr(table, methods=[("mv_gmm", {**NONROBUST[1], "cor_x": COR_X}), ("mv_gmm", {**ROBUST[1], "cor_x": COR_X})])
    by = {mid: g.set_index("exposure").loc[EXPOSURES] for mid, g in res.groupby("method_id")}
    first, robust = [by[m] for m in sorted(by, key=lambda m: "robust=False" not in m)]
    start = np.linalg.lstsq(ref.gam_x, ref.gam_y, rcond=None)[0]
    want = ref.minimum(start)
    b = first["b"].to_numpy()
    assert rel_err(b, want.x).max() < 1e-6 and ref.q(b) <= want.fun * (1 + 1e-12)
    assert rel_err(first["se"], ref.se(b)).max() < 1e-8
    kappa = ref.kappa(b)
    br = robust["b"].to_numpy()
    assert rel_err(br, ref.minimum(b, kappa).x).max() < 1e-6 and rel_err(robust["overdispersion"], kappa).max() < 1e-9
    plain = mrjax.mvmr(table, methods=[NONROBUST]).set_index("exposure").loc[EXPOSURES, "b"].to_numpy()
    assert rel_err(b, plain).max() > 1e-4  # the option reaches the estimate
    with pytest.raises(ValueError, match="mv_gmm: cor_x must be a symmetric 3 x 3 correlation matrix"):
        mrjax.mvmr(table, methods=[("mv_gmm", {**NONROBUST[1], "cor_x": ((2.0, 0, 0), (0, 1.0, 0), (0, 0, 1.0))})])
