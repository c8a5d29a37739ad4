"""MV methods against the R goldens (lipids -> CHD MVMR; calcium -> glucose correlated instruments)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

import mrjax
from mrjax.methods import MV_R_EQUIVALENTS
from mrjax.mv.equivalents import CORRELATED_R_EQUIVALENTS, MV_NOT_IMPLEMENTED
from mrjax.mv.registry import resolve_specs, spec_name
from tests._golden_data import rel_err

RTOL = 1e-6
N_BOOT = 2000
EXPOSURES = ["ldlc", "hdlc", "trig"]


def _long_table(df: pd.DataFrame, exposures, outcome="chd") -> pd.DataFrame:
    return pd.concat(
        [pd.DataFrame({"SNP": [f"snp{i}" for i in df["snp_index"]], "exposure": e, "beta.exposure": df[e],
                       "se.exposure": df[e + "se"], "pval.exposure": 2 * __import__("scipy").stats.norm.sf(np.abs(df[e] / df[e + "se"])),
                       "outcome": outcome, "beta.outcome": df["chdlodds"], "se.outcome": df["chdloddsse"]})
         for e in exposures], ignore_index=True)


@pytest.fixture(scope="module")
def golden(shared_data):
    return json.loads((shared_data / "MendelianRandomization/golden_mvmr_lipids_chd.json").read_text())["results"]


@pytest.fixture(scope="module")
def lipids(shared_data):
    return pd.read_csv(shared_data / "MendelianRandomization/lipids_chd.csv")


@pytest.fixture(scope="module")
def table(lipids):
    return _long_table(lipids, EXPOSURES)


def _labels(golden):
    return [f"{pkg}.{key}" for pkg, sec in golden.items() for key in sec]


def _fields(entry):
    """(b, se, pval, lo, up) golden keys of an entry, by package convention."""
    if "b" in entry:
        return "b", "se", "pval", None, None
    if "StdError.Est" in entry:
        return "Estimate", "StdError.Est", "Pvalue.Est", "CILower.Est", "CIUpper.Est"
    return "Estimate", "StdError", "Pvalue", ("CILower" if "CILower" in entry else None), ("CIUpper" if "CIUpper" in entry else None)


def test_every_golden_label_is_mapped(golden):
    for label in _labels(golden):
        key = label.split(".", 1)[1]
        if key.endswith("_diagnostics"):
            continue
        assert label in MV_R_EQUIVALENTS or label in MV_NOT_IMPLEMENTED, label


def _mvmr_labels(golden, stochastic: bool):
    out = {}
    for label in _labels(golden):
        fn, kw = MV_R_EQUIVALENTS.get(label, (None, None))
        pkg, key = label.split(".", 1)
        if fn == "mvmr" and bool(golden[pkg][key].get("stochastic")) == stochastic:
            out[label] = kw["methods"][0]
    return out


# Deterministic in R but stopped short of the optimum by R's iteration: tested on their own.
STOPS_SHORT = {"mendelianrandomization.mvcML_noDP", "mvmr.qhet_mvmr_identity_noCI",
               "mendelianrandomization.mvgmm_default", "mendelianrandomization.mvgmm_nonrobust",
               "mendelianrandomization.mvpcgmm_vignette"}


@pytest.fixture(scope="module")
def deterministic(golden, table):
    labels = _mvmr_labels(golden, stochastic=False)
    labels = {k: v for k, v in labels.items() if v[0] != "mv_median" and k not in STOPS_SHORT}
    res = mrjax.mvmr(table, methods=list(labels.values()))
    return labels, res


def test_deterministic_labels_match_r(golden, deterministic):
    labels, res = deterministic
    assert len(labels) >= 20
    checked_heter = []
    for label, method in labels.items():
        pkg, key = label.split(".", 1)
        entry = golden[pkg][key]
        rows = res[res["method_id"] == spec_name(resolve_specs([method])[0])]
        exp_rows = rows[rows["exposure"].isin(EXPOSURES)].set_index("exposure").loc[EXPOSURES]
        for ours, theirs in zip(("b", "se", "pval", "lo_ci", "up_ci"), _fields(entry)):
            if theirs is not None:
                assert rel_err(exp_rows[ours], entry[theirs]).max() < RTOL, (label, ours)
        if isinstance(entry.get("Heter.Stat"), list):  # R's [Q, p]
            assert rel_err(exp_rows["heter_stat"], entry["Heter.Stat"][0]).max() < RTOL, (label, "Heter.Stat")
            assert rel_err(exp_rows["heter_pval"], entry["Heter.Stat"][1]).max() < RTOL, (label, "Heter.Stat p")
            checked_heter.append(label)
        if "Intercept" in entry:
            icpt = rows[rows["exposure"] == "(intercept)"].iloc[0]
            for ours, theirs in (("b", "Intercept"), ("se", "StdError.Int"), ("pval", "Pvalue.Int"),
                                 ("lo_ci", "CILower.Int"), ("up_ci", "CIUpper.Int")):
                assert rel_err(icpt[ours], entry[theirs]) < RTOL, (label, ours)
        if "nsnp" in entry and "mv_ivw" in key or "mv_basic" in key:
            assert list(exp_rows["nsnp"]) == entry["nsnp"], label
    assert len(checked_heter) >= 10, checked_heter


def test_median(golden, table):
    res = mrjax.mvmr(table, methods=[("mv_median", {"n_boot": 0}), ("mv_median", {"n_boot": N_BOOT})], seed=7)
    entry = golden["mendelianrandomization"]["mvmedian_default"]
    point = res[res["method_id"] == "mv_median[n_boot=0]"].set_index("exposure").loc[EXPOSURES]
    assert rel_err(point["b"], golden["mendelianrandomization"]["mvmedian_noboot"]["Estimate"]).max() < RTOL
    assert point["se"].isna().all() and (point["reason"] == "estimate only (no standard error)").all()
    boot = res[res["method_id"] == f"mv_median[n_boot={N_BOOT}]"].set_index("exposure").loc[EXPOSURES]
    assert rel_err(boot["b"], entry["Estimate"]).max() < RTOL
    # Monte-Carlo error of a bootstrap SD: R's seed replicates (10000 draws) scaled to N_BOOT,
    # and never below the normal-theory 1/sqrt(2 N_BOOT); allow 4 of them.
    reps = np.array(entry["seed_replicates"]["StdError"] + [entry["StdError"]])
    mc = np.maximum(reps.std(axis=0, ddof=1) / reps.mean(axis=0) * np.sqrt(10000 / N_BOOT), 1 / np.sqrt(2 * N_BOOT))
    assert np.all(rel_err(boot["se"], reps.mean(axis=0)) < 4 * mc), (boot["se"].to_numpy(), reps.mean(axis=0))


def test_strength_and_heterogeneity(golden, table):
    st = mrjax.mvmr_strength(table).set_index("exposure").loc[EXPOSURES]
    for label in ("strength_mvmr_gencov0", "strength_mvmr_phenocov_identity"):
        kw = MV_R_EQUIVALENTS["mvmr." + label][1]
        got = mrjax.mvmr_strength(table, **kw).set_index("exposure").loc[EXPOSURES]
        assert rel_err(got["F"], golden["mvmr"][label]["Fstat"]).max() < RTOL
    het = mrjax.mvmr_heterogeneity(table).iloc[0]
    g = golden["mvmr"]["pleiotropy_mvmr_gencov0"]
    assert rel_err(het["Q"], g["Qstat"]) < RTOL and rel_err(het["Q_pval"], g["Qpval"]) < RTOL and het["Q_df"] == g["df"]
    # Without a sample size cond_f is the nx -> inf limit: the minimum of the conditional F with
    # sigma = diag(sx^2) (scipy from many starts), below where R's nlminb stopped.
    sx = np.column_stack([table.loc[table.exposure == e, "se.exposure"].to_numpy() for e in EXPOSURES])
    bx = np.column_stack([table.loc[table.exposure == e, "beta.exposure"].to_numpy() for e in EXPOSURES])

    def q(v):
        return np.sum((bx @ v) ** 2 / ((sx**2) @ (v**2))) / (len(bx) - 3 + 1)

    best = min(optimize.minimize(lambda th: q(np.r_[1.0, -th]), x0, method="Nelder-Mead",
                                 options={"xatol": 1e-12, "fatol": 1e-14, "maxiter": 20000}).fun
               for x0 in ([0, 0], [3, 1], [-3, 1], [1, -3]))
    assert st["nx"].isna().all()
    assert rel_err(st["cond_f"], [best] * 3).max() < 1e-8
    assert np.all(st["cond_f"] <= np.array(golden["mendelianrandomization"]["mvivw_condF"]["CondFstat"]))


NX = 17723  # the golden's mr_mvivw(inp, nx = 17723)


def _r_condfstat_objective(bx, sx, nx, j):
    """Q.nr(tet) / (J - K + 1) of MendelianRandomization 0.10.0's condFstat (ld = I,
    cor.x = I), transcribed statement by statement in plain numpy."""
    J, K = bx.shape
    nx = np.full(K, float(nx))
    ax = 1 / (nx * sx**2 + bx**2)
    Ax = [np.outer(np.sqrt(ax[:, k]), np.sqrt(ax[:, k])) * np.eye(J) for k in range(K)]
    Bx = ax * bx

    def msqrt(a):
        val, vec = np.linalg.eigh(a)
        return vec @ np.diag(np.sqrt(val)) @ vec.T

    sqrt_ax = [msqrt(a) for a in Ax]

    def sig(k, l):
        inv = np.linalg.inv(sqrt_ax[k] @ sqrt_ax[l].T)
        return inv * (float(k == l) - Bx[:, k] @ inv @ Bx[:, l]) / (np.sqrt(nx[k] - J + 1) * np.sqrt(nx[l] - J + 1))

    sigx = np.block([[sig(k, l) for l in range(K)] for k in range(K)])
    gam = np.column_stack([np.linalg.solve(Ax[k], Bx[:, k]) for k in range(K)])
    order = np.r_[np.arange(j * J, (j + 1) * J), np.delete(np.arange(J * K), np.arange(j * J, (j + 1) * J))]
    sigxx = sigx[np.ix_(order, order)]
    others = [k for k in range(K) if k != j]

    def q_nr(tet):
        g = gam[:, j] - gam[:, others] @ tet
        m = np.hstack([np.eye(J), np.kron(-np.asarray(tet)[None, :], np.eye(J))])
        return g @ np.linalg.solve(m @ sigxx @ m.T, g) / (J - K + 1)

    return q_nr


@pytest.mark.parametrize("via", ["argument", "column"])
def test_cond_f_equals_r_true_minimum(golden, table, via):
    """CondFstat of mr_mvivw(nx = 17723) at the minimum of R's own objective: the golden's
    F_no_gradient (nlminb without the inexact gradient) and scipy on a transcription of R's
    Q.nr; R's reported values (where nlminb stopped) are evaluations of the same objective."""
    if via == "argument":
        st = mrjax.mvmr_strength(table, nx=NX)
    else:
        st = mrjax.mvmr_strength(table.assign(**{"samplesize.exposure": NX}))
    st = st.set_index("exposure").loc[EXPOSURES]
    assert (st["nx"] == NX).all()
    diag = golden["mendelianrandomization"]["mvivw_condF_diagnostics"]["per_exposure"]
    assert rel_err(st["cond_f"], [d["F_no_gradient"] for d in diag]).max() < 1e-6
    bx = np.column_stack([table.loc[table.exposure == e, "beta.exposure"].to_numpy() for e in EXPOSURES])
    sx = np.column_stack([table.loc[table.exposure == e, "se.exposure"].to_numpy() for e in EXPOSURES])
    for j, d in enumerate(diag):
        q_nr = _r_condfstat_objective(bx, sx, NX, j)
        # the transcription is R's objective: it reproduces R's values at R's stopping points
        assert rel_err(q_nr(np.array(d["stopped_theta"])), d["F_reported"]) < 1e-9
        assert rel_err(q_nr(np.array(d["no_gradient_theta"])), d["F_no_gradient"]) < 1e-9
        best = min(optimize.minimize(q_nr, x0, method="Nelder-Mead",
                                     options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 20000}).fun
                   for x0 in (d["start_theta"], [0.0, 0.0]))
        assert rel_err(st["cond_f"].iloc[j], best) < 1e-8
        assert st["cond_f"].iloc[j] <= d["F_reported"]


def test_cond_f_padding_and_small_nx(table):
    """Padding does not change cond_f; an nx no larger than nsnp - 1 (R: negative F -> NA) is NaN."""
    from mrjax import engine
    from mrjax.mv.api import as_mv_batch

    batch = as_mv_batch(table)
    inv = np.full((1, 3), 1.0 / NX)
    tight, _ = batch.padded()
    wide, _ = batch.padded(width=64, nexp=5, rows=3)
    sigma = lambda inst: np.broadcast_to(np.eye(inst.bx.shape[2]), inst.bx.shape + (inst.bx.shape[2],))  # noqa: E731
    a = engine.run_mv_strength(tight, sigma(tight), np.repeat(inv, tight.bx.shape[0], 0))[0].cond_f
    b = engine.run_mv_strength(wide, sigma(wide), np.pad(np.repeat(inv, 3, 0), ((0, 0), (0, 2))))[0].cond_f
    np.testing.assert_allclose(np.asarray(b)[0, :3], np.asarray(a)[0, :3], rtol=1e-10)
    assert np.isnan(np.asarray(b)[0, 3:]).all()
    assert mrjax.mvmr_strength(table, nx=27)["cond_f"].isna().all()
    with pytest.raises(ValueError, match="no sample size for exposure 'trig'"):
        mrjax.mvmr_strength(table, nx={"ldlc": NX, "hdlc": NX})


@pytest.fixture(scope="module")
def calcium(shared_data):
    g = json.loads((shared_data / "MendelianRandomization/golden_methods_calcium_fastgluc.json").read_text())
    raw = pd.read_csv(shared_data / "MendelianRandomization/calcium_fastgluc.csv")
    rho = pd.read_csv(shared_data / "MendelianRandomization/calcium_rho.csv").to_numpy()
    table = pd.DataFrame({"SNP": [f"snp{i}" for i in raw["snp_index"]], "exposure": "calcium",
                          "beta.exposure": raw["calcium"], "se.exposure": raw["calciumse"], "outcome": "fastgluc",
                          "beta.outcome": raw["fastgluc"], "se.outcome": raw["fastglucse"]})
    return g["mendelianrandomization"], table, rho


def test_correlated_instruments(calcium):
    golden, table, rho = calcium
    methods = {label: kw["methods"][0] for label, (_, kw) in CORRELATED_R_EQUIVALENTS.items()}
    res = mrjax.mvmr(table, methods=list(methods.values()), correlation=rho)
    for label, method in methods.items():
        entry = golden[label.split(".", 1)[1]]
        row = res[(res["method_id"] == spec_name(resolve_specs([method])[0])) & (res["exposure"] == "calcium")].iloc[0]
        tol = RTOL if method[0] != "maxlik" else 2e-3  # R's Nelder-Mead stops short (see below)
        for ours, theirs in zip(("b", "se", "pval", "lo_ci", "up_ci"), _fields(entry)):
            assert rel_err(row[ours], entry[theirs]) < tol, (label, ours, row[ours], entry[theirs])
        for ours, theirs in zip(("heter_stat", "heter_pval"), entry["Heter.Stat"]):  # R's [Q, p]
            assert rel_err(row[ours], theirs) < tol, (label, ours, row[ours], theirs)
        if "Intercept" in entry:
            icpt = res[(res["method_id"] == row["method_id"]) & (res["exposure"] == "(intercept)")].iloc[0]
            assert rel_err(icpt["b"], entry["Intercept"]) < RTOL and rel_err(icpt["se"], entry["StdError.Int"]) < RTOL
    # ML: our optimum of the exact joint likelihood is no worse than R's Nelder-Mead point.
    b_r = golden["maxlik_default"]["Estimate"]
    bx, sx = table["beta.exposure"].to_numpy(), table["se.exposure"].to_numpy()
    by, sy = table["beta.outcome"].to_numpy(), table["se.outcome"].to_numpy()

    def profile(b):
        r = by - b * bx
        return r @ np.linalg.solve(rho * np.outer(sy, sy) + b * b * rho * np.outer(sx, sx), r)

    ours = res[res["method_id"] == "maxlik"].iloc[0]["b"]
    ref = optimize.minimize_scalar(profile, bracket=(b_r - 0.5, b_r), tol=1e-12).x
    assert rel_err(ours, ref) < 1e-7 and profile(ours) <= profile(b_r)


def test_egger_t_rule_of_the_univariable_mr_egger(table, calcium):
    """``mv_egger(t_rule="egger")`` on a single exposure gives what the univariable
    ``mr_egger(distribution = "t-dist")`` gives (mrjax.mr's ``mregger``, tested against R): on
    ldlc (sigma > 1: the t interval) and on calcium without its correlation (sigma < 1: the
    wider of the normal and t intervals, the larger p; all 6 SNPs: the normal one, the first 5:
    the t one)."""
    _, calcium_table, _ = calcium
    for single in (table[table["exposure"] == "ldlc"], calcium_table, calcium_table.iloc[:5]):
        mv = mrjax.mvmr(single, methods=[("mv_egger", {"distribution": "t-dist", "t_rule": "egger"})])
        uni = mrjax.mr(single, methods=["mregger"], distribution="t").iloc[0]
        slope = mv[mv["exposure"] != "(intercept)"].iloc[0]
        assert rel_err(slope[["b", "se", "pval", "lo_ci", "up_ci"]].to_numpy(float),
                       uni[["b", "se", "pval", "lo_ci", "up_ci"]].to_numpy(float)).max() < 1e-10


def test_mv_lasso_valid_set_lambda_and_regularised_estimate(golden, table):
    """Beyond the post-lasso estimates (test_deterministic_labels_match_r): R's lambda, valid
    variants, RegEstimate and RegIntercept (glmnet's coordinate descent stops at 1e-7: 1e-6)."""
    import jax

    from mrjax.mv.data import from_mv_frame
    from mrjax.mv.lasso import mv_lasso_fit

    entry = golden["mendelianrandomization"]["mvlasso_default"]
    batch = from_mv_frame(table)
    inst, _ = batch.padded()
    fit = jax.tree_util.tree_map(lambda a: np.asarray(a)[0], jax.vmap(mv_lasso_fit)(inst))
    order = batch.analyses["nsnp"].iloc[0]
    snps = list(table[table["exposure"] == EXPOSURES[0]]["SNP"])
    assert list(batch.exposures[0]) == EXPOSURES and order == len(snps)
    assert rel_err(fit.lam, entry["Lambda"]) < RTOL
    assert [snps[i] for i in np.flatnonzero(fit.valid[:order])] == entry["ValidSNPs"]
    assert rel_err(fit.reg_estimate[:3], entry["RegEstimate"]).max() < 1e-6
    np.testing.assert_allclose(fit.reg_intercept[:order], entry["RegIntercept"], rtol=0, atol=1e-6)


def _ivwme_reference(bx, sx, by, sy, theta, alpha=0.05, correl_x=None):
    """``mr_mvivwme``'s SE, CI, p, RSE and Heter.Stat at ``theta``, transcribed from its R code
    (its ``SigX``, ``dt`` and ``dt2`` written out; random model, normal distribution)."""
    from scipy import stats

    p, k = bx.shape
    correl_x = np.eye(k) if correl_x is None else np.asarray(correl_x)
    sig = [np.diag(sx[j]) @ correl_x @ np.diag(sx[j]) for j in range(p)]
    v = np.array([sy[j] ** 2 + theta @ sig[j] @ theta for j in range(p)])
    e = by - bx @ theta
    t = e / np.sqrt(v)
    dt = np.array([(-v[j] * bx[j] - e[j] * sig[j] @ theta) / v[j] ** 1.5 for j in range(p)]).T
    a = np.zeros((k, k))
    for j in range(p):
        s = sig[j] @ theta
        d2 = np.array([[v[j] ** -1.5 * (-2 * s[m] * bx[j, l] + s[l] * bx[j, m] - e[j] * sig[j][l, m])
                        + 3 * v[j] ** -2.5 * (v[j] * bx[j, l] + e[j] * s[l]) * s[m] for m in range(k)] for l in range(k)])
        a += t[j] * d2
    big_a = dt @ dt.T + a
    var = np.linalg.solve(big_a, dt @ dt.T) @ np.linalg.solve(big_a, np.eye(k)).T
    rmse = np.sqrt(np.sum(e ** 2 / sy ** 2) / (p - k))
    se = np.sqrt(np.diag(var)) * max(rmse, 1.0)
    q = stats.norm.ppf(1 - alpha / 2)
    return {"se": se, "pval": 2 * stats.norm.sf(np.abs(theta / se)), "lo_ci": theta - q * se, "up_ci": theta + q * se,
            "rse": rmse, "heter": (p - k) * rmse ** 2}


def test_ivwme_reaches_the_minimum_r_stops_short_of(golden, table, lipids):
    """``mr_mvivwme`` stops when -Q/2 changes by < 1e-4 from a random start: mrjax's estimate is
    the minimum of Q (scipy's BFGS finds the same point), strictly below Q at R's estimate, which
    lies within R's stopping precision of it; R's SE rule, transcribed in numpy, reproduces R's SE,
    RSE and Heter.Stat at R's estimate (1e-6) and mrjax's at mrjax's (1e-8)."""
    entry = golden["mendelianrandomization"]["mvivwme_default"]
    bx, sx = lipids[EXPOSURES].to_numpy(), lipids[[e + "se" for e in EXPOSURES]].to_numpy()
    by, sy = lipids["chdlodds"].to_numpy(), lipids["chdloddsse"].to_numpy()

    def q(theta):
        return np.sum((by - bx @ theta) ** 2 / (sy ** 2 + sx ** 2 @ theta ** 2))

    res = mrjax.mvmr(table, methods=["mv_ivwme"]).set_index("exposure").loc[EXPOSURES]
    ours, theirs = res["b"].to_numpy(), np.array(entry["Estimate"])
    best = optimize.minimize(q, theirs, method="BFGS", options={"gtol": 1e-12})
    assert rel_err(ours, best.x).max() < 1e-6
    assert q(ours) <= best.fun * (1 + 1e-14) and q(ours) < q(theirs) - 1e-6
    assert q(theirs) - q(ours) < 2e-4  # R's stopping rule on -Q/2
    assert rel_err(ours, theirs).max() < 2e-3
    at_r = _ivwme_reference(bx, sx, by, sy, theirs)
    assert rel_err(at_r["se"], entry["StdError"]).max() < 1e-6
    assert rel_err(at_r["rse"], entry["RSE"]) < 1e-6 and rel_err(at_r["heter"], entry["Heter.Stat"][0]) < 1e-6
    at_ours = _ivwme_reference(bx, sx, by, sy, ours)
    for f in ("se", "pval", "lo_ci", "up_ci"):
        assert rel_err(res[f].to_numpy(), at_ours[f]).max() < 1e-8, f
    assert rel_err(res["se"].to_numpy(), entry["StdError"]).max() < 1e-3


def test_ivwme_with_correlated_exposure_errors(table, lipids):
    """R's ``correl.x``: ``Sx_j = diag(sx_j) correl.x diag(sx_j)`` in ``Q`` and in R's SE rule;
    mrjax's estimate is scipy's minimum of that ``Q`` and its SE the transcription's there."""
    correl_x = np.array([[1.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 1.0]])
    bx, sx = lipids[EXPOSURES].to_numpy(), lipids[[e + "se" for e in EXPOSURES]].to_numpy()
    by, sy = lipids["chdlodds"].to_numpy(), lipids["chdloddsse"].to_numpy()

    def q(theta):
        return np.sum((by - bx @ theta) ** 2 / (sy ** 2 + np.einsum("sk,kl,sl->s", sx * theta, correl_x, sx * theta)))

    res = mrjax.mvmr(table, methods=[("mv_ivwme", {"correl_x": correl_x})]).set_index("exposure").loc[EXPOSURES]
    ours = res["b"].to_numpy()
    best = optimize.minimize(q, ours + 0.05, method="BFGS", options={"gtol": 1e-12})
    assert rel_err(ours, best.x).max() < 1e-6 and q(ours) <= best.fun * (1 + 1e-12)
    plain = mrjax.mvmr(table, methods=["mv_ivwme"]).set_index("exposure").loc[EXPOSURES, "b"].to_numpy()
    assert rel_err(ours, plain).max() > 1e-4
    at_ours = _ivwme_reference(bx, sx, by, sy, ours, correl_x=correl_x)
    for f in ("se", "pval", "lo_ci", "up_ci"):
        assert rel_err(res[f].to_numpy(), at_ours[f]).max() < 1e-8, f
    with pytest.raises(ValueError, match="mv_ivwme: correl_x must be a symmetric 3 x 3"):
        mrjax.mvmr(table, methods=[("mv_ivwme", {"correl_x": np.eye(2)})])


def test_ivwme_minimum_far_along_a_collinear_valley(lipids):
    """Nearly collinear exposures (z = 0.3 ldlc + noise, 12 SNPs) put Q's minimum far out along a
    flat valley (|theta| 20-110): mrjax reaches it — the best of Nelder-Mead runs from four starts
    (its tolerance: 1e-6), never above it in Q."""
    d = lipids.iloc[:12]
    x, sx, y, sy = (d[c].to_numpy() for c in ("ldlc", "ldlcse", "chdlodds", "chdloddsse"))
    for seed in (0, 1):
        z = 0.3 * x + np.random.default_rng(seed).normal(0.0, sx)
        tab = pd.concat([pd.DataFrame({"SNP": [f"s{i}" for i in range(12)], "exposure": e, "beta.exposure": b,
                                       "se.exposure": sx, "outcome": "o", "beta.outcome": y, "se.outcome": sy})
                         for e, b in (("x", x), ("z", z))], ignore_index=True)
        ours = mrjax.mvmr(tab, methods=["mv_ivwme"]).set_index("exposure").loc[["x", "z"], "b"].to_numpy()
        design = np.c_[x, z]

        def q(theta):
            return np.sum((y - design @ theta) ** 2 / (sy ** 2 + sx ** 2 * np.sum(theta ** 2)))

        best = min((optimize.minimize(q, np.array(s0, float), method="Nelder-Mead",
                                      options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20000})
                    for s0 in [(0, 0), (10, -30), (-10, 30), (50, -150)]), key=lambda o: o.fun)
        assert np.abs(ours).max() > 20
        assert rel_err(ours, best.x).max() < 1e-6 and q(ours) <= best.fun * (1 + 1e-12)


def _hessian(f, x, step=1e-4):
    """Central-difference Hessian of ``f`` at ``x`` (relative steps)."""
    h = step * (1 + np.abs(x))
    k = len(x)
    out = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            ei, ej = np.eye(k)[i] * h[i], np.eye(k)[j] * h[j]
            out[i, j] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h[i] * h[j])
    return out


def test_mvcml_nodp_reaches_the_optimum_r_stops_short_of(golden, table, lipids):
    """``mr_mvcML(n = 17723, DP = FALSE)``: BIC picks one invalid variant (R's ``BIC_invalid`` =
    snp20), and mrjax's estimate is the minimum of the profile Q on the other 27 (scipy's BFGS
    agrees to 1e-6); R's sweeps stop ~5e-5 short of it (Q higher there). R's SE rule — the
    inverse Hessian of Q/2 on the valid variants, here by central differences — reproduces R's SE
    at R's estimate and mrjax's at mrjax's (1e-6)."""
    entry = golden["mendelianrandomization"]["mvcML_noDP"]
    assert MV_R_EQUIVALENTS["mendelianrandomization.mvcML_noDP"] == ("mvmr", {"methods": [("mv_cml", {"n": 17723, "dp": False})]})
    res = mrjax.mvmr(table, methods=[("mv_cml", {"n": 17723, "dp": False})]).set_index("exposure").loc[EXPOSURES]
    bx, sx = lipids[EXPOSURES].to_numpy(), lipids[[e + "se" for e in EXPOSURES]].to_numpy()
    by, sy = lipids["chdlodds"].to_numpy(), lipids["chdloddsse"].to_numpy()
    valid = np.arange(len(by)) != entry["BIC_invalid"] - 1

    def half_q(theta):
        return 0.5 * np.sum(((by - bx @ theta) ** 2 / (sy ** 2 + sx ** 2 @ theta ** 2))[valid])

    ours, theirs = res["b"].to_numpy(), np.array(entry["Estimate"])
    best = optimize.minimize(half_q, theirs, method="BFGS", options={"gtol": 1e-12})
    assert rel_err(ours, best.x).max() < 1e-6 and half_q(ours) < half_q(theirs)
    assert rel_err(ours, theirs).max() < 1e-4
    assert entry["K_hat"] == 1
    se_at = lambda theta: np.sqrt(np.diag(np.linalg.inv(_hessian(half_q, theta))))  # noqa: E731
    assert rel_err(se_at(theirs), entry["StdError"]).max() < 1e-6
    assert rel_err(res["se"].to_numpy(), se_at(ours)).max() < 1e-6
    assert rel_err(res["se"].to_numpy(), entry["StdError"]).max() < 1e-5


def test_qhet_takes_the_root_r_takes_its_residual(golden, table, lipids):
    """``qhet_mvmr(pcor = diag(3), CI = FALSE)``. The method: ``tau2`` where ``min_b Q(b, tau2)``
    equals ``nsnp - 2``, the estimate ``argmin_b Q(b, tau2)``: mrjax's equals scipy's (Brent root
    of Nelder–Mead + BFGS minima). R's code takes the minimised objective value as ``tau2``:
    its estimate is ``argmin_b Q(b, tau_R)`` (to R's Nelder–Mead precision) for a ``tau_R`` ~26
    times the root, i.e. its optimisers' residual ``(min Q - 26)^2``, which is 0 solved exactly."""
    entry = golden["mvmr"]["qhet_mvmr_identity_noCI"]
    assert MV_R_EQUIVALENTS["mvmr.qhet_mvmr_identity_noCI"] == ("mvmr", {"methods": [("mv_qhet", {})]})
    res = mrjax.mvmr(table, methods=["mv_qhet"]).set_index("exposure").loc[EXPOSURES]
    bx, sx = lipids[EXPOSURES].to_numpy(), lipids[[e + "se" for e in EXPOSURES]].to_numpy()
    by, sy = lipids["chdlodds"].to_numpy(), lipids["chdloddsse"].to_numpy()
    df = len(by) - 2

    def q(b, tau2):
        return np.sum((by - bx @ b) ** 2 / (sy ** 2 + sx ** 2 @ b ** 2 + tau2))

    def argmin(tau2, start):
        nm = optimize.minimize(q, start, args=(tau2,), method="Nelder-Mead",
                               options=dict(xatol=1e-12, fatol=1e-12, maxiter=20000, maxfev=40000))
        return optimize.minimize(q, nm.x, args=(tau2,), method="BFGS", options={"gtol": 1e-12})

    assert argmin(0.0, np.zeros(3)).fun > df  # heterogeneous: the root is positive
    root = optimize.brentq(lambda tau2: argmin(tau2, np.zeros(3)).fun - df, 0.0, 0.01, xtol=1e-15)
    want = argmin(root, np.zeros(3)).x
    assert rel_err(res["b"].to_numpy(), want).max() < 1e-6
    assert res["se"].isna().all() and (res["reason"] == "estimate only (no standard error)").all()
    r_b = np.array(entry["Estimate"])
    tau_r = np.exp(optimize.minimize_scalar(
        lambda lt: np.linalg.norm(optimize.approx_fprime(r_b, q, 1e-8, np.exp(lt))),
        bounds=(np.log(1e-5), 0.0), method="bounded", options={"xatol": 1e-10}).x)
    assert rel_err(argmin(tau_r, r_b).x, r_b).max() < 1e-3
    assert 20 < tau_r / root < 30


def test_mvivw_robust_matches_r_whatever_the_subsets(golden, table):
    """``set.seed(1); mr_mvivw(robust = TRUE)``: lmrob's S-start from 500 random elemental
    triples — R's from its RNG, mrjax's from the analysis key. Every seed reaches R's
    S-estimate, so the MM fit, its SE (R's rule: lmrob SE / min(1, sigma)), p and CI match R
    to lmrob's tolerance (1e-5)."""
    entry = golden["mendelianrandomization"]["mvivw_robust"]
    assert MV_R_EQUIVALENTS["mendelianrandomization.mvivw_robust"] == ("mvmr", {"methods": [("mv_ivw", {"robust": True})]})
    for seed in (0, 1, 2):
        res = mrjax.mvmr(table, methods=[("mv_ivw", {"robust": True})], seed=seed).set_index("exposure").loc[EXPOSURES]
        for ours, theirs in zip(("b", "se", "pval", "lo_ci", "up_ci"), _fields(entry)):
            assert rel_err(res[ours], entry[theirs]).max() < 1e-5, (seed, ours)


DP_DRAWS = 1000
# Kurtosis of the perturbation estimates (a mixture over the BIC-chosen invalid sets): 5.2-8.5
# for the three exposures with 2000 perturbations; 9 bounds it.
DP_KURTOSIS = 9.0


def test_mvcml_dp_within_monte_carlo_error(golden, table):
    """``mr_mvcML(n = 17723)`` (DP = TRUE, R's 200 perturbations from its own seed): mrjax's
    mean and SD of the BIC estimates over DP_DRAWS perturbations from the analysis key agree
    with R's within 4 Monte-Carlo errors of both: ``se / sqrt(B)`` for a mean, ``sqrt((kurtosis
    - 1) / (4 B))`` relative for an SD."""
    entry = golden["mendelianrandomization"]["mvcML_default"]
    assert MV_R_EQUIVALENTS["mendelianrandomization.mvcML_default"] == ("mvmr", {"methods": [("mv_cml", {"n": 17723})]})
    assert entry["eff_DP_B"] == 200
    res = mrjax.mvmr(table, methods=[("mv_cml", {"n": 17723, "num_pert": DP_DRAWS})], seed=11)
    res = res.set_index("exposure").loc[EXPOSURES]
    b, se = res["b"].to_numpy(), res["se"].to_numpy()
    r_b, r_se = np.array(entry["Estimate"]), np.array(entry["StdError"])
    assert np.all(np.abs(b - r_b) < 4 * np.sqrt(r_se ** 2 / 200 + se ** 2 / DP_DRAWS)), (b, r_b)
    sd_error = np.sqrt((DP_KURTOSIS - 1) / 4 * (1 / 200 + 1 / DP_DRAWS))
    assert np.all(np.abs(se / r_se - 1) < 4 * sd_error), (se, r_se)
    assert np.all(se > 0) and np.all(np.isfinite(res["lo_ci"]))
    np.testing.assert_allclose(res["up_ci"] - res["lo_ci"], 2 * 1.959963984540054 * se, rtol=1e-12)


def test_ivwme_with_correlated_instruments_is_not_applicable(table, lipids):
    rho = np.eye(len(lipids))
    rho[0, 1] = rho[1, 0] = 0.2
    res = mrjax.mvmr(table, methods=["mv_ivwme"], correlation=rho)
    assert res["b"].isna().all() and (res["reason"] != "").all()


def test_padding_and_batch_invariance(table, lipids):
    from mrjax import engine
    from mrjax.batch import trait_keys
    from mrjax.mv.data import from_mv_frame

    two = pd.concat([table, _long_table(lipids.iloc[:25], ["hdlc", "ldlc"], outcome="chd2")], ignore_index=True)
    specs = resolve_specs(["mv_ivw", "mv_egger", ("mv_median", {"n_boot": 50}), "mv_ivwme", "mv_lasso",
                           ("mv_cml", {"n": 17723, "dp": False}), ("mv_cml", {"n": 17723, "num_pert": 20}),
                           ("mv_ivw", {"robust": True}), "mv_qhet"])
    batch = from_mv_frame(two)
    small, uids = batch.padded()
    big, big_uids = batch.padded(width=64, nexp=5, rows=4)
    a = engine.run_mv(small, trait_keys(3, uids), specs)
    b = engine.run_mv(big, trait_keys(3, big_uids), specs)
    alone_batch = from_mv_frame(table)
    alone, alone_uids = alone_batch.padded()
    c = engine.run_mv(alone, trait_keys(3, alone_uids), specs)
    for name in a:
        for f in ("b", "se", "pval"):
            x, y, z = (np.asarray(getattr(o[name], f)) for o in (a, b, c))
            np.testing.assert_allclose(x[:2, :3], y[:2, :3], rtol=1e-10, atol=0, err_msg=name)
            np.testing.assert_allclose(x[:2, -1], y[:2, -1], rtol=1e-10, atol=0, err_msg=name)
            np.testing.assert_allclose(x[0, :3], z[0, :3], rtol=1e-10, atol=0, err_msg=name)
    assert batch.analyses["nsnp"].tolist() == [28, 25]


def test_api_buckets_by_width_without_changing_results(table, lipids):
    """``mrjax.mvmr`` pads analyses into width buckets, one call each (with an MV-median
    bootstrap :data:`mrjax.batch.DRAW_BUCKETS`: 28 SNPs at 32, 20 at 24, 12 at 16; else
    :data:`mrjax.batch.PANEL_BUCKETS`): every analysis's numbers equal those of a run of that
    analysis alone, and those of the engine on one batch padded to the widest (rtol 1e-10)."""
    from mrjax import engine
    from mrjax.batch import trait_keys
    from mrjax.mv.api import _policy
    from mrjax.mv.data import from_mv_frame

    short = {n: _long_table(lipids.iloc[:n], ["hdlc", "ldlc"], outcome=f"chd{n}") for n in (12, 20)}
    both = pd.concat([table, *short.values()], ignore_index=True)
    methods = ["mv_ivw", "mv_egger", ("mv_median", {"n_boot": 50})]
    together = mrjax.mvmr(both, methods=methods, seed=3)
    alone = pd.concat([mrjax.mvmr(t, methods=methods, seed=3) for t in [table, *short.values()]], ignore_index=True)
    key = ["outcome", "method_id", "exposure"]
    merged = together.merge(alone, on=key, suffixes=("", "_alone"))
    assert len(merged) == len(together) == len(alone)
    for f in ("b", "se", "pval"):
        np.testing.assert_allclose(merged[f], merged[f + "_alone"], rtol=1e-10, atol=0, err_msg=f)

    batch = from_mv_frame(both)
    assert batch.analyses["nsnp"].tolist() == [28, 12, 20]
    assert [w for _, w in _policy(resolve_specs(methods)).plan(batch.analyses["nsnp"].to_numpy())] == [16, 24, 32]
    assert [w for _, w in _policy(resolve_specs(methods[:2])).plan(batch.analyses["nsnp"].to_numpy())] == [16, 32]
    inst, uids = batch.padded()  # all at width 32
    one_call = engine.run_mv(inst, trait_keys(3, uids), resolve_specs(methods))
    for row_index, n in ((1, 12), (2, 20)):
        rows = together[together["outcome"] == f"chd{n}"].set_index(["method_id", "exposure"])
        for name, est in one_call.items():
            for slot, exposure in enumerate(["hdlc", "ldlc"]):
                row = rows.loc[(name, exposure)]
                np.testing.assert_allclose([row["b"], row["se"]], [float(est.b[row_index, slot]), float(est.se[row_index, slot])],
                                           rtol=1e-10, atol=0, err_msg=f"{name}, {n} SNPs")


MANY_ANALYSES = """
import sys
import numpy as np, pandas as pd
import mrjax
table = pd.read_parquet(sys.argv[1])
copies = pd.concat([table.assign(outcome=f"chd{i}") for i in range(64)], ignore_index=True)
res = mrjax.mvmr(copies, methods=["mv_ivw", "mv_egger"])
one = mrjax.mvmr(table, methods=["mv_ivw", "mv_egger"])
for outcome, part in res.groupby("outcome"):
    np.testing.assert_allclose(part["b"].to_numpy(), one["b"].to_numpy(), rtol=1e-12)
print("finished", len(res))
"""

MANY_CML = """
import sys
import numpy as np, pandas as pd
sys.path.insert(0, sys.argv[1])
import mrjax
from make_scan_fixture import make
fx = make(731, 1).rename(columns=lambda c: c.replace("_exposure", ".exposure").replace("_outcome", ".outcome"))
fx = fx.assign(analysis=fx["exposure"], outcome="outcome")
rng = np.random.default_rng(2)
z = fx.assign(exposure="Z", **{"beta.exposure": 0.3 * fx["beta.exposure"] + rng.normal(0.0, fx["se.exposure"]),
                               "pval.exposure": np.nan})
cols = ["analysis", "SNP", "exposure", "beta.exposure", "se.exposure", "pval.exposure", "samplesize.exposure",
        "outcome", "beta.outcome", "se.outcome"]
table = pd.concat([fx[cols], z[cols]], ignore_index=True)
table = table[table["analysis"].isin(fx["analysis"].unique()[:64])]
res = mrjax.mvmr(table, methods=[("mv_cml", {"n": 10000, "dp": False})])
print("finished", len(res))
"""


def test_mv_fits_of_many_analyses_do_not_hang(table, tmp_path):
    """MV-IVW + MV-Egger on 64 analyses in one call deadlocked XLA:CPU (jax 0.10.2) until
    :mod:`mrjax.xla_flags` turned off its concurrency-optimised scheduler: in a fresh process,
    the call must finish, each copy of the lipids analysis with the numbers of the one alone.
    The fresh process (no conftest) also checks that the first call computes in float64: it
    made its arrays before ``jax_enable_x64`` was on and gave float32 numbers (6e-7 off)."""
    import subprocess
    import sys

    path = tmp_path / "lipids_long.parquet"
    table.to_parquet(path)
    env = {k: v for k, v in __import__("os").environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    try:
        done = subprocess.run([sys.executable, "-c", MANY_ANALYSES, str(path)], capture_output=True, text=True,
                              env=env, timeout=180)
    except subprocess.TimeoutExpired:
        pytest.fail("mrjax.mvmr(mv_ivw, mv_egger) on 64 analyses did not finish in 180 s (XLA:CPU deadlock)")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "finished 448" in done.stdout  # 64 analyses x (3 exposures x 2 methods + the Egger intercept)


def test_mv_cml_of_many_analyses_does_not_hang(shared_data):
    """mv_cml on the MV benchmark's first 64 analyses (a scan-fixture trait + a simulated second
    exposure each) deadlocked XLA:CPU (jax 0.10.2) while its sweeps whitened with an ``S x S``
    Cholesky and triangular solves inside the vmapped loops (mrjax.mv.fit.scale_rows replaced
    them): in a fresh process the call must finish."""
    import subprocess
    import sys

    env = {k: v for k, v in __import__("os").environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    try:
        done = subprocess.run([sys.executable, "-c", MANY_CML, str(shared_data.parent / "tools")], capture_output=True,
                              text=True, env=env, timeout=180)
    except subprocess.TimeoutExpired:
        pytest.fail("mrjax.mvmr(mv_cml) on 64 analyses did not finish in 180 s (XLA:CPU deadlock)")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "finished 128" in done.stdout  # 64 analyses x 2 exposures


def test_one_exposure_equals_univariable(table):
    ldl = table[table["exposure"] == "ldlc"]
    mv = mrjax.mvmr(ldl, methods=["mv_ivw", "mv_egger"]).set_index(["method_id", "exposure"])
    uni = mrjax.mr(ldl, methods=["ivw", "egger_regression"]).set_index("method_id")
    assert rel_err(mv.loc[("mv_ivw", "ldlc"), ["b", "se", "pval"]].to_numpy(float), uni.loc["ivw", ["b", "se", "pval"]].to_numpy(float)).max() < 1e-10
    # TwoSampleMR Egger orientates with sign0 and uses t p-values; b and se agree (no SNP has bx = 0).
    assert rel_err(mv.loc[("mv_egger", "ldlc"), ["b", "se"]].to_numpy(float), uni.loc["egger_regression", ["b", "se"]].to_numpy(float)).max() < 1e-10


def test_missing_snp_is_an_error_or_dropped_with_a_reason(table):
    holed = table.drop(index=table.index[(table["exposure"] == "hdlc") & (table["SNP"] == "snp5")])
    with pytest.raises(ValueError, match="snp5.*hdlc"):
        mrjax.mvmr(holed, methods=["mv_ivw"])
    from mrjax.mv.data import from_mv_frame

    batch = from_mv_frame(holed, on_missing="drop")
    assert batch.analyses["nsnp"].iloc[0] == 27
    assert set(batch.excluded["SNP"]) == {"snp5"} and batch.excluded["reason"].str.contains("missing").all()
