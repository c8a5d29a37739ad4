"""R golden labels of the MV and correlated-instrument methods -> the mrjax call that computes them.

``MV_R_EQUIVALENTS[label] = (function, kwargs)``: ``label`` is ``"<package>.<key>"`` with the
keys of ``golden_mvmr_lipids_chd.json``'s ``results`` sections; ``function`` names a function
of ``mrjax`` taking the long MV table (``mvmr`` -> ``b, se, pval, lo_ci, up_ci`` per exposure;
``mvmr_strength`` -> ``F``, ``cond_f``; ``mvmr_heterogeneity`` -> ``Q, Q_df, Q_pval``;
``from_mv_frame`` for the packages' data-format steps). ``CORRELATED_R_EQUIVALENTS`` does the
same for ``golden_methods_calcium_fastgluc.json`` (single-exposure analyses with the SNP
correlation matrix passed as ``correlation=``). ``MV_NOT_IMPLEMENTED`` names the golden labels
mrjax does not compute yet and why.
"""

from __future__ import annotations


def _mv(method: str, **options):
    return ("mvmr", {"methods": [(method, options)]})


_MR = "mendelianrandomization."
_TS = "twosamplemr."
_MVMR = "mvmr."

MV_R_EQUIVALENTS: dict[str, tuple[str, dict]] = {
    _MR + "mvivw_default": _mv("mv_ivw"),
    _MR + "mvivw_fixed": _mv("mv_ivw", model="fixed"),
    _MR + "mvivw_random": _mv("mv_ivw", model="random"),
    _MR + "mvivw_tdist": _mv("mv_ivw", distribution="t-dist"),
    # Its estimates are mv_ivw's; its CondFstat is mvmr_strength(table, nx=17723)'s cond_f at
    # the true minimum (mvivw_condF_diagnostics' F_no_gradient), not where R's nlminb stopped.
    _MR + "mvivw_condF": _mv("mv_ivw"),
    _MR + "mvivw_correlation_identity": _mv("mv_ivw"),  # GLS with rho = I is the weighted lm
    # lmrob's S-start from 500 random subsets (R: set.seed(1); mrjax: the analysis key).
    _MR + "mvivw_robust": _mv("mv_ivw", robust=True),
    _MR + "mvegger_default": _mv("mv_egger"),
    _MR + "mvegger_orientate2": _mv("mv_egger", orientate=2),
    _MR + "mvegger_orientate3": _mv("mv_egger", orientate=3),
    _MR + "mvegger_tdist": _mv("mv_egger", distribution="t-dist"),
    _MR + "mvegger_correlation_identity": _mv("mv_egger"),
    _MR + "mvmedian_default": _mv("mv_median", n_boot=10000),
    _MR + "mvmedian_outer_seed": _mv("mv_median", n_boot=10000),
    _MR + "mvmedian_noboot": _mv("mv_median", n_boot=0),
    # R stops its iteration early from a random start (seed 20201201): mrjax reaches Q's minimum
    # (tests/test_mvmr_golden.py::test_ivwme_reaches_the_minimum_r_stops_short_of).
    _MR + "mvivwme_default": _mv("mv_ivwme"),
    _MR + "mvlasso_default": _mv("mv_lasso"),
    # R's sweeps stop short of the profile optimum (tests/test_mvmr_golden.py::test_mvcml_nodp_reaches_the_optimum_r_stops_short_of).
    _MR + "mvcML_noDP": _mv("mv_cml", n=17723, dp=False),
    # Monte-Carlo: the analysis key's 200 perturbations, not R's seed 314159265 (tests/test_mvmr_golden.py::test_mvcml_dp_within_monte_carlo_error).
    _MR + "mvcML_default": _mv("mv_cml", n=17723),
    # R's nlminb stops short of Q's minimum (its gradient leaves out d Om / d theta); mrjax
    # reaches it, and the robust kappa there (mrjax.mv.gmm; tests/test_mv_gmm.py).
    _MR + "mvgmm_default": _mv("mv_gmm", nx=17723, ny=17723),
    _MR + "mvgmm_nonrobust": _mv("mv_gmm", nx=17723, ny=17723, robust=False),
    # The same stop short, on 20 principal components (R's inp.cor has the identity LD: mrjax's
    # default; tests/test_mv_pcgmm.py).
    _MR + "mvpcgmm_vignette": _mv("mv_pcgmm", nx=17723, ny=17723),
    _MVMR + "format_mvmr": ("from_mv_frame", {}),
    _MVMR + "strength_mvmr_gencov0": ("mvmr_strength", {"gencov": 0}),
    _MVMR + "strength_mvmr_phenocov_identity": ("mvmr_strength", {"gencov": "identity"}),
    _MVMR + "pleiotropy_mvmr_gencov0": ("mvmr_heterogeneity", {"gencov": 0}),
    _MVMR + "ivw_mvmr_gencov0": _mv("mv_ivw_lm", distribution="t-dist"),
    # R takes its optimiser's residual as tau2 where the method takes the root; mrjax the root
    # (mrjax.mv.qhet; tests/test_mvmr_golden.py::test_qhet_takes_the_root_r_takes_its_residual).
    _MVMR + "qhet_mvmr_identity_noCI": _mv("mv_qhet"),
    _TS + "mvdat": ("from_mv_frame", {}),
    _TS + "mv_multiple_default": _mv("mv_ivw_lm"),
    _TS + "mv_multiple_intercept": _mv("mv_ivw_lm", intercept=True),
    _TS + "mv_multiple_instrument_specific": _mv("mv_ivw_lm", pval_threshold=5e-8),
    _TS + "mv_ivw_all": _mv("mv_ivw_lm", pval_threshold=2.0),
    _TS + "mv_ivw_p1": _mv("mv_ivw_lm", pval_threshold=1.0),
    _TS + "mv_ivw_default": _mv("mv_ivw_lm", pval_threshold=5e-8),
    _TS + "mv_basic_all": _mv("mv_basic", pval_threshold=2.0),
    _TS + "mv_basic_default": _mv("mv_basic", pval_threshold=5e-8),
}

CORRELATED_R_EQUIVALENTS: dict[str, tuple[str, dict]] = {
    _MR + "ivw_default": _mv("mv_ivw"),
    _MR + "ivw_fixed": _mv("mv_ivw", model="fixed"),
    _MR + "ivw_random": _mv("mv_ivw", model="random"),
    _MR + "ivw_tdist": _mv("mv_ivw", distribution="t-dist"),
    # With a correlation matrix mr_ivw ignores weights='delta', penalized and robust (the golden
    # values equal ivw_default), so these map to the plain GLS fit.
    _MR + "ivw_delta": _mv("mv_ivw"),
    _MR + "ivw_penalized": _mv("mv_ivw"),
    _MR + "ivw_robust": _mv("mv_ivw"),
    _MR + "ivw_robust_penalized": _mv("mv_ivw"),
    _MR + "egger_default": _mv("mv_egger"),
    _MR + "egger_penalized": _mv("mv_egger"),
    _MR + "egger_robust": _mv("mv_egger"),
    _MR + "egger_tdist": _mv("mv_egger", distribution="t-dist", t_rule="egger"),
    _MR + "maxlik_default": _mv("maxlik"),
    _MR + "maxlik_fixed": _mv("maxlik", model="fixed"),
    _MR + "maxlik_random": _mv("maxlik", model="random"),
}

MV_NOT_IMPLEMENTED: dict[str, str] = {}
