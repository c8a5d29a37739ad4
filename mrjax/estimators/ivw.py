"""Inverse-variance weighted estimators (TwoSampleMR ``mr_ivw``, ``mr_ivw_fe``, ``mr_ivw_mre``,
``mr_ivw_radial``, ``mr_uwr``) and their Cochran's Q.

All are regressions of ``by`` on ``bx`` through the origin; they differ in weights and in how
the residual standard error ``sigma`` enters the SE. Each needs at least 2 instruments.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax.batch import Instruments
from mrjax.estimators.common import Estimate, Params, Reason, estimate
from mrjax.estimators.regression import OriginFit, wls_origin
from mrjax.stats import norm_pval

MIN_SNPS = 2


class Heterogeneity(NamedTuple):
    """Cochran-type heterogeneity statistic ``q`` (NaN where undefined) on ``df`` degrees of
    freedom; ``mrjax.diagnostics`` adds the chi-square p-values of all methods in one call."""

    q: jax.Array
    df: jax.Array


def ivw_fit(t: Instruments) -> OriginFit:
    """``lm(by ~ -1 + bx, weights = 1/sy^2)``: ``b = sum(bx by / sy^2) / sum(bx^2 / sy^2)``."""
    return wls_origin(t.bx, t.by, 1.0 / (t.sy * t.sy), t.mask)


def _finish(t: Instruments, fit: OriginFit, se) -> Estimate:
    n = t.nsnp
    ok = (n >= MIN_SNPS) & (fit.sxx != 0)
    reason = jnp.where(n >= MIN_SNPS, Reason.ZERO_WEIGHT, Reason.TOO_FEW_SNPS)
    return estimate(fit.b, se, norm_pval(fit.b / se), n, ok=ok, reason=reason)


def _q(fit: OriginFit, n) -> Heterogeneity:
    """``Q = sigma^2 (n-1)`` (the weighted residual sum of squares) on n − 1 df."""
    return Heterogeneity(q=jnp.where(n >= MIN_SNPS, fit.rss, jnp.nan), df=n - 1)


def ivw(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """TwoSampleMR ``mr_ivw`` ("Inverse variance weighted"): IVW slope with
    ``se = sqrt(1 / sum(bx^2/sy^2)) * max(1, sigma)`` (lm SE / min(1, sigma)), normal p."""
    del key, params
    fit = ivw_fit(t)
    return _finish(t, fit, fit.se / jnp.minimum(1.0, fit.sigma))


def ivw_fe(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """TwoSampleMR ``mr_ivw_fe``: IVW slope with the fixed-effect SE
    ``sqrt(1 / sum(bx^2/sy^2))`` (lm SE / sigma), normal p."""
    del key, params
    fit = ivw_fit(t)
    return _finish(t, fit, jnp.sqrt(1.0 / jnp.where(fit.sxx != 0, fit.sxx, jnp.nan)))


def ivw_mre(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """TwoSampleMR ``mr_ivw_mre``: IVW slope with the plain lm SE
    ``sigma * sqrt(1 / sum(bx^2/sy^2))`` — smaller than the fixed-effect SE when sigma < 1."""
    del key, params
    fit = ivw_fit(t)
    return _finish(t, fit, fit.se)


def ivw_heterogeneity(t: Instruments) -> Heterogeneity:
    """Cochran's Q of IVW (TwoSampleMR ``mr_heterogeneity``, "Inverse variance weighted"):
    ``Q = sum((by - b bx)^2 / sy^2)`` on n − 1 df."""
    return _q(ivw_fit(t), t.nsnp)


def radial_fit(t: Instruments) -> OriginFit:
    """RadialMR ``ivw_radial(weights = 3)`` (modified second-order weights), refit once.

    First the first-order fit ``b1`` (= IVW); then with ``W_j = bx_j^2 / (sy_j^2 + b1^2 sx_j^2)``
    the radial regression of ``r_j sqrt(W_j)`` on ``sqrt(W_j)`` through the origin (``r_j =
    by_j / bx_j``), i.e. ``lm(by ~ -1 + bx, weights = 1 / (sy^2 + b1^2 sx^2))``.
    """
    b1 = ivw_fit(t).b
    b1 = jnp.where(jnp.isfinite(b1), b1, 0.0)
    v = t.sy * t.sy + b1 * b1 * t.sx * t.sx
    return wls_origin(t.bx, t.by, 1.0 / v, t.mask)


def ivw_radial(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """TwoSampleMR ``mr_ivw_radial`` ("IVW radial"): the modified second-order radial IVW of
    :func:`radial_fit` with its lm SE (no max(1, sigma) rule) and a normal p."""
    del key, params
    fit = radial_fit(t)
    return _finish(t, fit, fit.se)


def radial_heterogeneity(t: Instruments) -> Heterogeneity:
    """Radial Q with the modified second-order weights: ``sum(W_j (r_j - b)^2)`` on n − 1 df."""
    return _q(radial_fit(t), t.nsnp)


def uwr_fit(t: Instruments) -> OriginFit:
    """Unweighted ``lm(by ~ -1 + bx)``."""
    return wls_origin(t.bx, t.by, jnp.ones_like(t.by), t.mask)


def uwr(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """TwoSampleMR ``mr_uwr`` ("Unweighted regression"): OLS slope through the origin with
    ``se = lm SE / min(1, sigma)``, normal p."""
    del key, params
    fit = uwr_fit(t)
    return _finish(t, fit, fit.se / jnp.minimum(1.0, fit.sigma))


def uwr_heterogeneity(t: Instruments) -> Heterogeneity:
    """TwoSampleMR's UWR "Q": ``sigma^2 (n-1)`` on the unweighted residual scale (not a
    chi-square statistic; its p-value is ~1 on real data), df n − 1."""
    return _q(uwr_fit(t), t.nsnp)
