"""Regression-based MV estimators: MV-IVW (MendelianRandomization ``mr_mvivw``; TwoSampleMR
``mv_multiple`` / ``mv_ivw``; MVMR ``ivw_mvmr``), MV-Egger (``mr_mvegger``) and TwoSampleMR's
residual method ``mv_basic``.

Each is a per-analysis function ``fn(t, key, **options) -> MVEstimate`` (options are static);
``mrjax.engine.run_mv`` vmaps and jits them. With a correlation matrix in ``t.rho`` the IVW and
Egger fits are GLS (``Omega = (sy sy') o rho``), as MendelianRandomization does when an
``MRMVInput``/``MRInput`` carries ``correlation``; with ``rho = I`` they are the weighted lm.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mrjax.estimators.common import Z_975, Reason
from mrjax.estimators.lmrob import lmrob
from mrjax.mv.data import MVInstruments
from mrjax.mv.fit import MVEstimate, assemble, least_squares, se_multiplier, uncorrelated, whiten
from mrjax.stats import norm_pval, t_pval, t_quantile_whole_df

INF = jnp.inf


def _floor_se(fit, model: str, nsnp):
    """MendelianRandomization's SE rule: ``fixed`` = ``sqrt(diag((X' Omega^-1 X)^-1))``,
    ``random`` = fixed * ``max(1, sigma)``; ``default`` = fixed below 4 variants, else random."""
    return jnp.sqrt(jnp.diag(fit.cov)) * se_multiplier(model, fit.sigma, nsnp)


def dist_df(distribution: str, df):
    """Degrees of freedom of a method's t quantile and p-value: ``inf`` for ``normal``, ``df`` for ``t-dist``."""
    if distribution == "normal":
        return INF
    if distribution in ("t-dist", "t"):
        return df
    raise ValueError(f"distribution must be 'normal' or 't-dist', got {distribution!r}")


def mv_ivw(t: MVInstruments, key, *, model: str = "default", distribution: str = "normal",
           robust: bool = False) -> MVEstimate:
    """MendelianRandomization ``mr_mvivw``: ``b = (X' Omega^-1 X)^-1 X' Omega^-1 y`` (the weighted
    lm ``By ~ Bx - 1, weights = Byse^-2`` when uncorrelated); SE by :func:`_floor_se`; CI and
    p normal or t with ``nsnp - K`` df. ``Heter.Stat = (nsnp - K) sigma^2`` on ``nsnp - K`` df.
    Needs ``nsnp > K``. ``robust``: :func:`_mv_ivw_robust`."""
    if robust:
        return _mv_ivw_robust(t, key, model, distribution)
    xw, yw = whiten(t, t.bx, t.by)
    fit = least_squares(xw, yw, t.mask, t.xmask)
    df = fit.n - fit.p
    se = _floor_se(fit, model, fit.n)
    d = dist_df(distribution, df)
    return assemble(t, fit.coef, se, p_df=d, ci_df=d, ok=df > 0, q=fit.rss, q_df=df)


def _mv_ivw_robust(t: MVInstruments, key, model: str, distribution: str) -> MVEstimate:
    """``mr_mvivw(robust = TRUE)``: ``robustbase::lmrob(By ~ Bx - 1, weights = Byse^-2, k.max =
    500, maxit.scale = 500)`` (:func:`mrjax.estimators.lmrob.lmrob`; its S-start from
    ``N_SUBSETS`` random elemental subsets drawn from the analysis key, as R draws 500 from its
    RNG), SE = lmrob's SE / ``min(1, sigma)`` (``random``) or / ``sigma`` (``fixed``; ``default``:
    fixed below 4 variants), as the univariable ``mr_ivw(robust = TRUE)``; ``Heter.Stat = (nsnp -
    K) sigma^2``. With a correlation matrix NaN (not applicable: R fits lmrob without it)."""
    cols = t.xmask.astype(t.bx.dtype)
    fit = lmrob(t.bx * cols * t.mask[:, None], t.by, 1.0 / t.sy ** 2, t.mask, key=key)
    n = t.nsnp
    df = n - t.nexp
    se = fit.se / fit.scale * se_multiplier(model, fit.scale, n)  # lmrob's SE is sigma times the fixed one
    d = dist_df(distribution, df)
    independent = uncorrelated(t)
    reason = jnp.where(independent, jnp.where(df > 0, Reason.NOT_CONVERGED, Reason.TOO_FEW_SNPS), Reason.NOT_APPLICABLE)
    return assemble(t, fit.coef, se, p_df=d, ci_df=d, ok=independent & (df > 0) & fit.converged, reason=reason,
                    q=df * fit.scale ** 2, q_df=df)


def mv_ivw_lm(t: MVInstruments, key, *, intercept: bool = False, pval_threshold: float | None = None,
              distribution: str = "normal") -> MVEstimate:
    """The plain ``lm`` SE convention (no ``max(1, sigma)`` floor: SE = fixed SE * sigma).

    TwoSampleMR ``mv_multiple`` (``pval_threshold=None``: every SNP; ``intercept=True`` adds an
    intercept without orientating) and ``mv_multiple(instrument_specific=TRUE)`` /
    ``mv_ivw(pval_threshold=)``: for exposure ``i`` the MV lm is refit on SNPs with
    ``px[, i] < pval_threshold`` (strict), p normal; MVMR ``ivw_mvmr``: p from t with
    ``nsnp - K`` df (``distribution="t-dist"``). ``nsnp`` is the number of SNPs each exposure's
    fit used (TwoSampleMR's ``mv_multiple`` reports the count passing 5e-8 even when it uses
    all SNPs; we report what was used).
    """
    del key
    k = t.bx.shape[-1]
    design = jnp.concatenate([jnp.ones_like(t.by)[:, None], t.bx], axis=1) if intercept else t.bx
    colmask = jnp.concatenate([jnp.ones((1,), bool), t.xmask]) if intercept else t.xmask
    xw, yw = whiten(t, design, t.by)
    off = 1 if intercept else 0

    def for_exposure(i):
        rows = t.mask if pval_threshold is None else t.mask & (t.px[:, i] < pval_threshold)
        fit = least_squares(xw, yw, rows, colmask)
        df = fit.n - fit.p
        se = jnp.sqrt(jnp.diag(fit.cov)) * fit.sigma
        return fit.coef[i + off], se[i + off], df, fit.n

    b, se, df, n = jax.vmap(for_exposure)(jnp.arange(k))
    d = dist_df(distribution, df)
    return assemble(t, b, se, p_df=d, ci_df=d, nsnp=n, ok=df > 0)


def mv_basic(t: MVInstruments, key, *, pval_threshold: float = 5e-8) -> MVEstimate:
    """TwoSampleMR ``mv_basic`` (residual method): for exposure ``i`` the outcome effects are
    residualised on the OTHER exposures by an unweighted lm with intercept over all SNPs, then
    regressed (unweighted lm with intercept) on exposure ``i`` over the SNPs with
    ``px[, i] < pval_threshold``; lm SE, normal p."""
    del key
    k = t.bx.shape[-1]
    ones = jnp.ones_like(t.by)[:, None]
    m = t.mask.astype(t.by.dtype)

    def for_exposure(i):
        others = t.xmask & (jnp.arange(k) != i)
        design = jnp.concatenate([ones, t.bx], axis=1) * m[:, None]
        fit = least_squares(design, t.by * m, t.mask, jnp.concatenate([jnp.ones((1,), bool), others]))
        resid = (t.by - design @ fit.coef) * m
        rows = t.mask & (t.px[:, i] < pval_threshold)
        second = least_squares(jnp.concatenate([ones, t.bx[:, i][:, None]], axis=1), resid, rows, jnp.ones((2,), bool))
        se = jnp.sqrt(second.cov[1, 1]) * second.sigma
        return second.coef[1], se, second.n - 2, second.n

    b, se, df, n = jax.vmap(for_exposure)(jnp.arange(k))
    return assemble(t, b, se, p_df=INF, ci_df=INF, nsnp=n, ok=df > 0)


def mv_egger(t: MVInstruments, key, *, orientate: int = 1, model: str = "random",
             distribution: str = "normal", t_rule: str = "mvegger") -> MVEstimate:
    """MendelianRandomization ``mr_mvegger``: rows multiplied by ``sign(bx[, orientate])`` (R's
    ``sign``: 0 gives 0), then ``lm(By ~ Bx, weights = Byse^-2)`` (GLS with ``rho``, whose
    entries are flipped with the rows' signs); slope and intercept SE = lm SE / min(1, sigma)
    (random; fixed = lm SE / sigma). Normal CI/p, or with ``t-dist`` the package's mixed rule:
    CI from t with ``nsnp - K - 1`` df, p from t with ``nsnp - K`` df. ``Heter.Stat`` on
    ``nsnp - K - 1`` df. ``orientate`` is 1-based as in R.

    ``t_rule = "egger"``: the t rule of the univariable ``mr_egger`` instead (what it applies to
    a single exposure with a ``correlation``): CI and p from t with ``nsnp - K - 1`` df, except
    where ``sigma < 1``: there the wider of the normal interval with the SE and the t interval
    with the lm SE (``sigma`` times smaller), and the larger of their p-values — as
    :func:`mrjax.estimators.mendelian_regression.mr_egger`, the choice made at the 95% level."""
    del key
    sign = jnp.sign(t.bx[:, orientate - 1])
    bx = t.bx * sign[:, None]
    by = t.by * sign
    rho = jnp.where(t.mask[:, None] & t.mask[None, :], t.rho * jnp.outer(sign, sign), t.rho)
    rho = jnp.where(jnp.eye(rho.shape[0], dtype=bool), t.rho, rho)
    design = jnp.concatenate([jnp.ones_like(by)[:, None], bx], axis=1)
    colmask = jnp.concatenate([jnp.ones((1,), bool), t.xmask])
    xw, yw = whiten(t, design, by, rho=rho)
    fit = least_squares(xw, yw, t.mask, colmask)
    df = fit.n - fit.p
    se = _floor_se(fit, model, fit.n)
    ci_se = pval = None
    if distribution == "normal":
        p_df, ci_df = INF, INF
    elif t_rule == "mvegger":
        dist_df(distribution, df)
        p_df, ci_df = df + 1, df
    elif t_rule == "egger":
        dist_df(distribution, df)
        p_df, ci_df, ci_se, pval = _egger_t_rule(fit, se, df, t.bx.shape[0])
    else:
        raise ValueError(f"t_rule must be 'mvegger' or 'egger', got {t_rule!r}")
    ci_df = jnp.broadcast_to(ci_df, se.shape)
    return assemble(t, fit.coef[1:], se[1:], p_df=p_df, ci_df=ci_df[1:], ok=df > 0,
                    intercept=(fit.coef[0], se[0], p_df, ci_df[0]), q=fit.rss, q_df=df,
                    ci_se=None if ci_se is None else jnp.append(ci_se[1:], ci_se[0]),
                    pval=None if pval is None else jnp.append(pval[1:], pval[0]))


def _egger_t_rule(fit, se, df, width: int):
    """``mv_egger``'s ``t_rule = "egger"`` for every coefficient (intercept first): ``p_df``,
    per-coefficient ``ci_df`` and ``ci_se``, and the p-values."""
    lm_se = jnp.sqrt(jnp.diag(fit.cov)) * fit.sigma
    small = fit.sigma < 1.0
    normal_wider = Z_975 * se >= t_quantile_whole_df(0.975, df, width) * lm_se
    ci_df = jnp.where(small & normal_wider, INF, df)
    ci_se = jnp.where(small & ~normal_wider, lm_se, se)
    t_p = t_pval(fit.coef / jnp.where(small, lm_se, se), df)
    pval = jnp.where(small, jnp.maximum(norm_pval(fit.coef / se), t_p), t_p)
    return df, ci_df, ci_se, pval
