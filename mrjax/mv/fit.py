"""Masked (generalised) least squares for one MV analysis, and the result type of MV methods.

Every linear MV estimator is a regression of the outcome effects on the exposure effects. With
the instruments' correlation ``rho`` the outcome errors have covariance
``Omega = (sy sy') o rho``; we whiten with its Cholesky factor ``L`` (``Omega = L L'``) and
solve ordinary least squares on ``L^-1 X, L^-1 y``. With ``rho = I`` this is exactly
``lm(y ~ X, weights = 1/sy^2)``. Padded SNP rows are zero rows; padded exposure columns are
zero columns whose diagonal entry of ``X'X`` is set to 1 (so their coefficient is 0).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from mrjax.estimators.common import Reason
from mrjax.estimators.lmrob import small_solve
from mrjax.mv.data import MVInstruments
from mrjax.stats import norm_pval, t_pval


class MVEstimate(NamedTuple):
    """One MV method's result for one analysis.

    ``b, se, pval, nsnp, reason``: ``[K + 1]`` — slots ``0..K-1`` are the exposures, slot ``K``
    the intercept (NaN for methods without one). The confidence interval is formed on the host
    as ``b -/+ q ci_se``, ``q`` the t quantile with ``ci_df [K + 1]`` degrees of freedom
    (``inf`` = normal); ``ci_se`` is ``se`` except where a method's rule takes the interval from
    another SE. ``q, q_df``: the method's heterogeneity statistic (R's ``Heter.Stat``), NaN if none;
    ``overdispersion``: its estimated heterogeneity variance (mv_gmm's ``kappa``, mv_qhet's
    ``tau2``), NaN if none.
    """

    b: jax.Array
    se: jax.Array
    pval: jax.Array
    ci_df: jax.Array
    ci_se: jax.Array
    nsnp: jax.Array
    reason: jax.Array
    q: jax.Array
    q_df: jax.Array
    overdispersion: jax.Array


class LinearFit(NamedTuple):
    """``coef [P]``, ``cov = (X' Omega^-1 X)^-1 [P, P]``, whitened ``rss``, ``n`` rows, ``p``
    columns, ``sigma = sqrt(rss / (n - p))`` (R's residual standard error)."""

    coef: jax.Array
    cov: jax.Array
    rss: jax.Array
    n: jax.Array
    p: jax.Array
    sigma: jax.Array


def whiten(t: MVInstruments, columns: jax.Array, y: jax.Array, rho: jax.Array | None = None):
    """``L^-1 columns`` and ``L^-1 y`` with ``L L' = (sy sy') o rho`` (padded rows zero)."""
    rho = t.rho if rho is None else rho
    omega = rho * jnp.outer(t.sy, t.sy)
    chol = jnp.linalg.cholesky(omega)
    m = t.mask.astype(columns.dtype)
    xw = solve_triangular(chol, columns * m[:, None], lower=True)
    yw = solve_triangular(chol, y * m, lower=True)
    return xw, yw


def scale_rows(t: MVInstruments, columns: jax.Array, y: jax.Array):
    """``columns / sy`` and ``y / sy`` (padded rows zero): :func:`whiten` for independent
    instruments (``rho = I``, ``L = diag(sy)``) without its ``S x S`` Cholesky and triangular
    solves, for fits repeated inside loops."""
    m = t.mask.astype(columns.dtype) / t.sy
    return columns * m[:, None], y * m


def se_multiplier(model: str, sigma, nsnp):
    """MendelianRandomization's fixed / random-effects SE rule as the factor on the fixed-effect
    SE: ``fixed`` 1, ``random`` ``max(1, sigma)`` (``sigma`` the residual standard error),
    ``default`` fixed below 4 variants, else random."""
    if model == "fixed":
        return jnp.ones_like(sigma)
    if model == "random":
        return jnp.maximum(1.0, sigma)
    if model == "default":
        return jnp.where(nsnp < 4, 1.0, jnp.maximum(1.0, sigma))
    raise ValueError(f"model must be 'default', 'random' or 'fixed', got {model!r}")


def uncorrelated(t: MVInstruments):
    """Whether the analysis's instruments are independent (``rho`` is the identity)."""
    return jnp.all(t.rho == jnp.eye(t.rho.shape[0], dtype=t.rho.dtype))


def least_squares(xw, yw, rows, colmask) -> LinearFit:
    """OLS of ``yw`` on the columns of ``xw`` where ``colmask``; only ``rows`` count (others
    are zeroed)."""
    x, y, a = _normal_equations(xw, yw, rows, colmask)
    coef = jnp.linalg.solve(a, x.T @ y)
    resid = y - x @ coef
    rss = resid @ resid
    n = jnp.sum(rows)
    p = jnp.sum(colmask)
    df = n - p
    sigma = jnp.sqrt(rss / jnp.where(df > 0, df, jnp.nan))
    return LinearFit(coef=coef, cov=jnp.linalg.inv(a), rss=rss, n=n, p=p, sigma=sigma)


def exposure_effects(t: MVInstruments):
    """The analysis's exposure effects ``Bx`` and their variances ``sx^2`` (``[S, K]``), zero in
    padded rows and exposure columns."""
    cols = t.xmask.astype(t.bx.dtype)
    return t.bx * cols * t.mask[:, None], (t.sx * cols) ** 2


def least_squares_coef(xw, yw, rows, colmask):
    """``least_squares(xw, yw, rows, colmask).coef`` by :func:`mrjax.estimators.lmrob.small_solve`
    (no LAPACK call: for fits repeated inside vmapped loops, where those calls deadlocked
    XLA:CPU)."""
    x, y, a = _normal_equations(xw, yw, rows, colmask)
    return small_solve(a, x.T @ y)


def _normal_equations(xw, yw, rows, colmask):
    """The design and response with other rows and columns zeroed, and ``X'X`` with 1 on the
    diagonal of each column left out (its coefficient is then 0)."""
    r = rows.astype(xw.dtype)
    c = colmask.astype(xw.dtype)
    x = xw * r[:, None] * c[None, :]
    return x, yw * r, x.T @ x + jnp.diag(1.0 - c)


def pvalue(z, df):
    """Two-sided p of ``z``: normal where ``df`` is inf, Student t otherwise."""
    return jnp.where(jnp.isinf(df), norm_pval(z), t_pval(z, jnp.where(jnp.isinf(df), 1.0, df)))


def assemble(t: MVInstruments, b, se, *, p_df, ci_df, nsnp=None, ok=True, reason=Reason.TOO_FEW_SNPS,
             intercept=None, q=jnp.nan, q_df=jnp.nan, ci_se=None, pval=None, estimate_only=False,
             overdispersion=jnp.nan) -> MVEstimate:
    """Stack exposure results ``[K]`` (+ an optional intercept ``(b, se, p_df, ci_df)``) into an
    :class:`MVEstimate`; padded exposures and failed analyses (``ok`` False) are NaN with a
    reason code (``NOT_APPLICABLE`` for padding). ``ci_se`` and ``pval`` (``[K + 1]``, the
    intercept's slot included) replace the default ``se`` of the interval and the p-value of
    ``b / se`` on ``p_df`` where a method's rule differs. ``estimate_only``: the method gives no
    SE (NaN), and a finite ``b`` is coded ``ESTIMATE_ONLY`` rather than ``NON_FINITE``."""
    k = b.shape[0]
    nan = jnp.full((), jnp.nan, dtype=b.dtype)
    ib, ise, ip_df, ici_df = (nan, nan, jnp.inf, jnp.inf) if intercept is None else intercept
    has_int = intercept is not None
    b = jnp.append(b, ib)
    se = jnp.append(se, ise)
    ci_se = se if ci_se is None else ci_se
    p_df = jnp.append(jnp.broadcast_to(p_df, (k,)), ip_df)
    ci_df = jnp.append(jnp.broadcast_to(ci_df, (k,)), ici_df).astype(b.dtype)
    nsnp = jnp.broadcast_to(t.nsnp if nsnp is None else nsnp, (k,))
    nsnp = jnp.append(nsnp, t.nsnp).astype(jnp.int32)
    real = jnp.append(t.xmask, has_int)
    ok = jnp.asarray(ok)
    ok = jnp.append(ok, jnp.all(ok)) if ok.ndim == 1 else jnp.broadcast_to(ok, (k + 1,))
    ok = ok & real
    code = jnp.where(real, jnp.broadcast_to(reason, (k + 1,)), Reason.NOT_APPLICABLE)
    b = jnp.where(ok, b, jnp.nan)
    se = jnp.where(ok, se, jnp.nan)
    pval = jnp.where(ok, pvalue(b / se, p_df) if pval is None else pval, jnp.nan)
    ci_se = jnp.where(ok, ci_se, jnp.nan)
    done = Reason.ESTIMATE_ONLY if estimate_only else Reason.OK
    code = jnp.where(ok, jnp.where(jnp.isfinite(b) & (estimate_only | jnp.isfinite(se)), done, Reason.NON_FINITE), code)
    ok_any = jnp.any(ok)
    return MVEstimate(b=b, se=se, pval=pval, ci_df=ci_df, ci_se=ci_se, nsnp=nsnp, reason=code.astype(jnp.int32),
                      q=jnp.where(ok_any, q, jnp.nan).astype(b.dtype), q_df=jnp.asarray(q_df, b.dtype),
                      overdispersion=jnp.where(ok_any, overdispersion, jnp.nan).astype(b.dtype))


def exposure_correlation(value, k: int, dtype, method: str, option: str):
    """A method's ``K x K`` exposure-correlation option (``mv_qhet``'s ``pcor``, the GMMs'
    ``cor_x``, ``mv_ivwme``'s ``correl_x``) as a ``[k, k]`` array (None stays None: the identity); a matrix of another shape,
    or one not symmetric with a unit diagonal, is a ValueError naming the method and option."""
    if value is None:
        return None
    mat = np.asarray(value, dtype=float)
    if mat.shape != (k, k) or not np.allclose(mat, mat.T) or not np.allclose(np.diag(mat), 1.0):
        raise ValueError(f"{method}: {option} must be a symmetric {k} x {k} correlation matrix (one row and column "
                         f"per exposure column of the analyses), got {mat.tolist()}")
    return jnp.asarray(mat, dtype)
