"""mv_qhet where the bare Newton iteration on tau2 cycled: on MV benchmark analyses (a scan-fixture
trait + a simulated second exposure) a Newton step from tau2 = 0 overshot far below the root,
was floored back to 0, and repeated (25 of 731 analyses came out NaN). The bracketed iteration
must reach the root there, also where a warm-started minimisation at some tau2 ran off along a
valley (it is retried from the tau2 = 0 minimiser): the estimate equals an independent scipy
reference (the lowest of Nelder–Mead + BFGS minima from three starts, tau2 by Brent's method)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

import mrjax
from mrjax.mv.data import from_mv_frame

CYCLED = ("trait_0018", "trait_0028", "trait_0052", "trait_0054")  # benchmark analyses 18, 28, 52, 54
RAN_OFF = ("trait_0285", "trait_0432")  # cycled, and a warm-started minimisation ran off along a valley


def _scipy_qhet(bx, sx, by, sy, pcor=None, with_tau2=False):
    df, k = len(by) - 2, bx.shape[1]
    pcor = np.eye(k) if pcor is None else np.asarray(pcor)

    def q(b, tau2):  # b' (pcor o sx_j sx_j') b = (sx_j o b)' pcor (sx_j o b)
        return np.sum((by - bx @ b) ** 2 / (sy ** 2 + np.einsum("sk,kl,sl->s", sx * b, pcor, sx * b) + tau2))

    starts = [np.zeros(k), np.linalg.lstsq(bx / sy[:, None], by / sy, rcond=None)[0], np.ones(k)]

    def lowest(tau2):
        fits = []
        for start in starts:
            nm = optimize.minimize(q, start, args=(tau2,), method="Nelder-Mead",
                                   options=dict(xatol=1e-12, fatol=1e-12, maxiter=20000, maxfev=40000))
            fits.append(optimize.minimize(q, nm.x, args=(tau2,), method="BFGS", options={"gtol": 1e-12}))
        return min(fits, key=lambda f: f.fun)

    assert lowest(0.0).fun > df  # heterogeneous: the root is positive
    hi = 1e-6
    while lowest(hi).fun > df:
        hi *= 4
    tau2 = optimize.brentq(lambda t: lowest(t).fun - df, 0.0, hi, xtol=1e-15)
    return (lowest(tau2).x, tau2) if with_tau2 else lowest(tau2).x


def test_qhet_reaches_the_root_where_newton_on_tau2_cycled(mv_benchmark_table):
    table = mv_benchmark_table[mv_benchmark_table["analysis"].isin(CYCLED + RAN_OFF)]
    batch = from_mv_frame(table)
    assert list(batch.analyses["analysis"]) == sorted(CYCLED + RAN_OFF)
    res = mrjax.mvmr(batch, methods=["mv_qhet"])
    for i, name in enumerate(batch.analyses["analysis"]):
        arr = batch.arrays[i]
        want = _scipy_qhet(arr["bx"], arr["sx"], arr["by"], arr["sy"])
        got = res[res["analysis"] == name].set_index("exposure").loc[[name, "Z"], "b"].to_numpy()
        np.testing.assert_allclose(got, want, rtol=2e-6, err_msg=name)


def test_qhet_with_a_phenotypic_correlation(shared_data, mv_benchmark_table):
    """R's ``pcor``: ``Sx_j = pcor o (sx_j sx_j')``; the lipids (3 exposures) and a benchmark analysis."""
    import pandas as pd
    from scipy import stats

    lipids = pd.read_csv(shared_data / "MendelianRandomization/lipids_chd.csv")
    exposures = ["ldlc", "hdlc", "trig"]
    table = pd.concat([pd.DataFrame({"SNP": lipids["snp_index"].astype(str), "exposure": e, "beta.exposure": lipids[e],
                                     "se.exposure": lipids[e + "se"],
                                     "pval.exposure": 2 * stats.norm.sf(np.abs(lipids[e] / lipids[e + "se"])),
                                     "outcome": "chd", "beta.outcome": lipids["chdlodds"],
                                     "se.outcome": lipids["chdloddsse"]}) for e in exposures], ignore_index=True)
    pcor = np.array([[1.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 1.0]])
    res = mrjax.mvmr(table, methods=[("mv_qhet", {"pcor": pcor}), "mv_qhet"])
    got = res[res["method_id"].str.startswith("mv_qhet[")].set_index("exposure").loc[exposures, "b"].to_numpy()
    plain = res[res["method_id"] == "mv_qhet"].set_index("exposure").loc[exposures, "b"].to_numpy()
    bx, sx = lipids[exposures].to_numpy(), lipids[[e + "se" for e in exposures]].to_numpy()
    want, tau2 = _scipy_qhet(bx, sx, lipids["chdlodds"].to_numpy(), lipids["chdloddsse"].to_numpy(), pcor, with_tau2=True)
    np.testing.assert_allclose(got, want, rtol=2e-6)
    overdispersion = res.loc[res["method_id"].str.startswith("mv_qhet["), "overdispersion"].to_numpy()
    np.testing.assert_allclose(overdispersion, tau2, rtol=1e-6)  # the root tau2, reported
    assert np.max(np.abs(got - plain) / np.abs(plain)) > 1e-3  # the correlation matters

    one = mv_benchmark_table[mv_benchmark_table["analysis"] == "trait_0018"]
    two = ((1.0, 0.4), (0.4, 1.0))
    got = mrjax.mvmr(one, methods=[("mv_qhet", {"pcor": two})]).set_index("exposure").loc[["trait_0018", "Z"], "b"]
    arr = from_mv_frame(one).arrays[0]
    np.testing.assert_allclose(got.to_numpy(), _scipy_qhet(arr["bx"], arr["sx"], arr["by"], arr["sy"], np.array(two)),
                               rtol=2e-6)
    with pytest.raises(ValueError, match="pcor must be a symmetric 2 x 2"):
        mrjax.mvmr(one, methods=[("mv_qhet", {"pcor": ((1.0, 0.4), (0.2, 1.0))})])
