"""MVMR-cML-BIC without data perturbation (MendelianRandomization ``mr_mvcML(DP = FALSE)``; Lin,
Xue & Pan 2023).

For each number ``k = 0 .. nsnp - K - 1`` of invalid variants, R's iteration from ``theta = 0``,
``b = Bx`` (``random_start = 0``; at most :data:`MAXIT` sweeps): the ``k`` variants with the largest
``(By_j - b_j' theta)^2 / sy_j^2`` get a free pleiotropic effect ``r_j = By_j - b_j' theta`` (0 for
the others); the true exposure effects ``b_j = Bx_j + Sx_j theta (By_j - r_j - Bx_j' theta) / v_j``
(``v_j = sy_j^2 + theta' Sx_j theta``, ``Sx_j = diag(sx_j^2)``: the joint likelihood's minimum in
``b_j``); ``theta`` the weighted regression of ``By - r`` on ``b`` (weights ``sy^-2``). On the valid
variants this is the alternation of :mod:`mrjax.mv.ivwme`, whose fixed point minimises the profile
``Q_k(theta) = sum_valid (By_j - Bx_j' theta)^2 / v_j``; the sweeps fix the invalid set and
:func:`mrjax.mv.ivwme._newton` then takes ``theta`` to that minimum (R stops its sweeps when
``theta`` moves little, ~5e-5 relative short of it on the lipids golden). ``BIC_k = Q_k + log(n) k``
(twice the negative log-likelihood plus the penalty); the estimate is the ``theta`` of the smallest
BIC, its SE ``sqrt(diag(H^-1))`` with ``H`` the Hessian of ``Q_k / 2`` on the valid variants (R:
``numDeriv::hessian`` of the same profile; here exact). Normal CI and p. ``n`` is the GWAS sample
size (R's ``n``). The data-perturbation version (R's default ``DP = TRUE``) is not offered; with a
correlation matrix the analysis is NaN (not applicable).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax.estimators.common import Reason
from mrjax.mv.data import MVInstruments
from mrjax.mv.fit import MVEstimate, assemble, least_squares, uncorrelated, whiten
from mrjax.mv.ivwme import _newton

MAXIT = 100
TOL = 1e-7


class _KFit(NamedTuple):
    theta: jax.Array
    valid: jax.Array
    q: jax.Array
    converged: jax.Array


def _fit_k(t: MVInstruments, k, bx, var_x):
    """R's sweeps for ``k`` invalid variants, then Newton on ``Q_k`` (module docstring)."""
    m = t.mask
    eye = jnp.eye(t.by.shape[0], dtype=t.by.dtype)

    def invalid_set(theta, b):
        importance = jnp.where(m, (t.by - b @ theta) ** 2 / t.sy ** 2, -jnp.inf)
        rank = jnp.argsort(jnp.argsort(-importance, stable=True), stable=True)
        return m & (rank < k)

    def sweep(state):
        it, theta, b, _ = state
        bad = invalid_set(theta, b)
        target = jnp.where(bad, b @ theta, t.by)  # By - r
        e = target - bx @ theta
        v = t.sy ** 2 + var_x @ (theta * theta)
        b = bx + var_x * theta * (e / v)[:, None]
        xw, yw = whiten(t, b, target, rho=eye)
        new = least_squares(xw, yw, m, t.xmask).coef
        return it + 1, new, b, theta

    def going(state):
        it, theta, _, old = state
        return (it == 0) | ((it < MAXIT) & (jnp.sum(jnp.abs(theta - old)) > TOL))

    zero = jnp.zeros(bx.shape[-1], bx.dtype)
    _, theta, b, _ = jax.lax.while_loop(going, sweep, (jnp.zeros((), jnp.int32), zero, bx, zero))
    valid = m & ~invalid_set(theta, b)
    w = valid.astype(bx.dtype)

    def q(theta):
        return jnp.sum(w * (t.by - bx @ theta) ** 2 / (t.sy ** 2 + var_x @ (theta * theta)))

    pinned = jnp.diag(1.0 - t.xmask.astype(bx.dtype))
    theta, converged = _newton(q, pinned, theta)
    return _KFit(theta=theta, valid=valid, q=q(theta), converged=converged)


def mv_cml(t: MVInstruments, key, *, n: float) -> MVEstimate:
    """``mr_mvcML(object, n = n, DP = FALSE)`` (module docstring); needs ``nsnp > K + 1``."""
    del key
    cols = t.xmask.astype(t.bx.dtype)
    bx = t.bx * cols * t.mask[:, None]
    var_x = (t.sx * cols) ** 2
    width = t.by.shape[0]
    ks = jnp.arange(width)
    fits = jax.vmap(lambda k: _fit_k(t, k, bx, var_x))(ks)
    k_ok = ks <= t.nsnp - t.nexp - 1
    bic = jnp.where(k_ok & fits.converged, fits.q + jnp.log(n) * ks, jnp.inf)
    best = jax.tree_util.tree_map(lambda a: a[jnp.argmin(bic)], fits)
    w = best.valid.astype(bx.dtype)

    def half_q(theta):
        return 0.5 * jnp.sum(w * (t.by - bx @ theta) ** 2 / (t.sy ** 2 + var_x @ (theta * theta)))

    hess = jax.hessian(half_q)(best.theta) + jnp.diag(1.0 - cols)
    se = jnp.sqrt(jnp.diag(jnp.linalg.inv(hess)))
    enough = t.nsnp > t.nexp + 1
    reason = jnp.where(uncorrelated(t), jnp.where(enough, Reason.NOT_CONVERGED, Reason.TOO_FEW_SNPS), Reason.NOT_APPLICABLE)
    return assemble(t, best.theta, se, p_df=jnp.inf, ci_df=jnp.inf, ok=uncorrelated(t) & enough & jnp.isfinite(jnp.min(bic)),
                    reason=reason)
