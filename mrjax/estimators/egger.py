"""MR-Egger regression (TwoSampleMR ``mr_egger_regression``) and its parametric bootstrap
(``mr_egger_regression_bootstrap``). Both need at least 3 instruments."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax.batch import Instruments
from mrjax.estimators.common import Estimate, Params, Reason, estimate
from mrjax.estimators.ivw import Heterogeneity
from mrjax.estimators.regression import wls_intercept
from mrjax.estimators.wide import draw_chunk
from mrjax.stats import masked_mean, masked_sd, t_pval

MIN_SNPS = 3


class EggerFit(NamedTuple):
    """Slope ``b`` and intercept ``b_i`` with SEs (already divided by min(1, sigma)),
    t(n−2) p-values, the residual SE ``sigma`` and ``q`` (Rücker's Q′) on ``df = n − 2``;
    ``ok`` is False where the fit is undefined (fewer than 3 SNPs or collinear)."""

    b: jax.Array
    se: jax.Array
    pval: jax.Array
    b_i: jax.Array
    se_i: jax.Array
    pval_i: jax.Array
    sigma: jax.Array
    q: jax.Array
    df: jax.Array
    ok: jax.Array
    reason: jax.Array


def sign0(x):
    """R TwoSampleMR's ``sign0``: the sign with 0 counted as +1."""
    return jnp.where(x < 0, -1.0, 1.0)


def egger_fit(t: Instruments) -> EggerFit:
    """MR-Egger as TwoSampleMR fits it.

    Orient every SNP so ``bx >= 0`` (``by * sign0(bx)``, ``|bx|``), then
    ``lm(by ~ bx, weights = 1/sy^2)``; slope and intercept SEs are the lm SEs divided by
    ``min(1, sigma)``; p-values from t with n − 2 df; ``Q = sigma^2 (n - 2)``.
    """
    n = t.nsnp
    x = jnp.abs(t.bx)
    y = t.by * sign0(t.bx)
    fit = wls_intercept(x, y, 1.0 / (t.sy * t.sy), t.mask)
    scale = jnp.minimum(1.0, fit.sigma)
    se = fit.se_b / scale
    se_i = fit.se_a / scale
    df = n - 2
    ok = (n >= MIN_SNPS) & jnp.isfinite(fit.b)
    reason = jnp.where(n >= MIN_SNPS, Reason.ZERO_WEIGHT, Reason.TOO_FEW_SNPS)
    nan = jnp.nan
    # One incomplete-beta evaluation for both p-values (it dominates compile time).
    pvals = t_pval(jnp.stack([fit.b / se, fit.a / se_i]), df)
    return EggerFit(
        b=jnp.where(ok, fit.b, nan),
        se=jnp.where(ok, se, nan),
        pval=jnp.where(ok, pvals[0], nan),
        b_i=jnp.where(ok, fit.a, nan),
        se_i=jnp.where(ok, se_i, nan),
        pval_i=jnp.where(ok, pvals[1], nan),
        sigma=jnp.where(ok, fit.sigma, nan),
        q=jnp.where(ok, fit.rss, nan),
        df=df,
        ok=ok,
        reason=jnp.where(ok, Reason.OK, reason),
    )


def egger_regression(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """TwoSampleMR ``mr_egger_regression`` ("MR Egger"): the slope of :func:`egger_fit`."""
    del key, params
    f = egger_fit(t)
    return estimate(f.b, f.se, f.pval, t.nsnp, ok=f.ok, reason=f.reason)


def egger_heterogeneity(t: Instruments) -> Heterogeneity:
    """Rücker's Q′ (TwoSampleMR ``mr_heterogeneity``, "MR Egger"):
    ``sum((by - a - b bx)^2 / sy^2)`` after orientation, on n − 2 df."""
    f = egger_fit(t)
    return Heterogeneity(q=f.q, df=f.df)


def _bootstrap_slope(key: jax.Array, t: Instruments):
    """One replicate: ``bx* ~ N(bx, sx)``, ``by* ~ N(by, sy)`` (1-D draws of the trait's width),
    oriented on ``sign(bx*)``; slope ``cov(x* w, y* w) / var(x* w)`` with ``w = 1/sy^2``."""
    kx, ky = jax.random.split(key)
    xs = t.bx + t.sx * jax.random.normal(kx, t.bx.shape, dtype=t.bx.dtype)
    ys = t.by + t.sy * jax.random.normal(ky, t.by.shape, dtype=t.by.dtype)
    ys = ys * jnp.sign(xs)
    xs = jnp.abs(xs)
    w = 1.0 / (t.sy * t.sy)
    xw = jnp.where(t.mask, xs * w, 0.0)
    yw = jnp.where(t.mask, ys * w, 0.0)
    mx = masked_mean(xw, t.mask)
    my = masked_mean(yw, t.mask)
    dx = jnp.where(t.mask, xw - mx, 0.0)
    dy = jnp.where(t.mask, yw - my, 0.0)
    return jnp.sum(dx * dy) / jnp.sum(dx * dx)


def egger_regression_bootstrap(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """TwoSampleMR ``mr_egger_regression_bootstrap`` ("MR Egger (bootstrap)").

    ``n_boot`` parametric replicates (see :func:`_bootstrap_slope`; each replicate draws from
    its own split key, so results do not depend on padding). ``b`` = mean of the slopes,
    ``se`` = their sd (n − 1), ``pval`` = share of slopes whose sign is opposite to ``b``.
    """
    keys = jax.random.split(key, params.n_boot)
    chunk = draw_chunk(t.bx.shape[-1], params.n_boot)
    if chunk >= params.n_boot:
        slopes = jax.vmap(_bootstrap_slope, in_axes=(0, None))(keys, t)
    else:  # wide traits: replicates in chunks, memory bounded by the chunk (mrjax.estimators.wide)
        slopes = jax.lax.map(lambda k: _bootstrap_slope(k, t), keys, batch_size=chunk)
    every = jnp.ones(slopes.shape, dtype=bool)
    b = jnp.mean(slopes)
    se = masked_sd(slopes, every)
    pval = jnp.sum(jnp.sign(b) * slopes < 0) / params.n_boot
    n = t.nsnp
    return estimate(b, se, pval, n, ok=n >= MIN_SNPS, reason=Reason.TOO_FEW_SNPS)
