"""Instrument strength and validity of an MV analysis (MVMR ``strength_mvmr`` /
``pleiotropy_mvmr``; the minimum of MendelianRandomization's conditional-F objective).

``sigma [S, K, K]`` is the covariance of each SNP's exposure effects: ``diag(sx^2)`` for
MVMR's ``gencov = 0``, or ``pcor o (sx sx')`` for ``gencov = phenocov_mvmr(pcor, sx)``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax.mv.data import MVInstruments
from mrjax.mv.fit import least_squares, whiten
from mrjax.stats import chi2_sf

NEWTON_STEPS = 40


class Strength(NamedTuple):
    """``f [K]``: MVMR conditional F; ``cond_f [K]``: minimum of the conditional-F objective
    (see :func:`cond_f_min`), NaN for padded exposures."""

    f: jax.Array
    cond_f: jax.Array


class Pleiotropy(NamedTuple):
    """MVMR ``pleiotropy_mvmr``: ``q`` on ``df = nsnp - K - 1`` with chi-square ``pval``."""

    q: jax.Array
    df: jax.Array
    pval: jax.Array


def _others_fit(t: MVInstruments, j):
    """Unweighted OLS (no intercept) of ``bx[, j]`` on the other exposures: ``delta [K]``
    (0 at ``j`` and at padding) and the residuals ``[S]``."""
    k = t.bx.shape[-1]
    others = t.xmask & (jnp.arange(k) != j)
    fit = least_squares(t.bx, t.bx[:, j], t.mask, others)
    resid = jnp.where(t.mask, t.bx[:, j] - t.bx @ fit.coef, 0.0)
    return fit.coef, resid


def _quad(sigma, v):
    """``v' sigma_s v`` for every SNP ``s``."""
    return jnp.einsum("k,skl,l->s", v, sigma, v)


def conditional_f(t: MVInstruments, sigma) -> jax.Array:
    """MVMR ``strength_mvmr``: for exposure ``j``, ``delta`` = OLS of ``bx_j`` on ``bx_-j``,
    ``v = e_j - delta``, ``F_j = sum_s (bx_sj - bx_s,-j delta)^2 / (v' sigma_s v) / nsnp``
    (divided by the number of SNPs, as coded in MVMR 0.4.6)."""
    k = t.bx.shape[-1]

    def one(j):
        delta, resid = _others_fit(t, j)
        v = jnp.zeros(k, t.bx.dtype).at[j].set(1.0) - delta
        den = jnp.where(t.mask, _quad(sigma, v), 1.0)
        return jnp.sum(jnp.where(t.mask, resid * resid / den, 0.0)) / t.nsnp

    f = jax.vmap(one)(jnp.arange(k))
    return jnp.where(t.xmask & (t.nsnp > t.nexp), f, jnp.nan)


def cond_f_min(t: MVInstruments, sigma) -> jax.Array:
    """The minimum over ``theta`` of the conditional-F objective
    ``Q_j(theta) = sum_s (bx_sj - bx_s,-j theta)^2 / (v' sigma_s v) / (nsnp - K + 1)`` with
    ``v = e_j - theta`` (Sanderson, Spiller & Bowden 2021; MendelianRandomization's internal
    ``condFstat`` minimises an objective of this form with ``nlminb``).

    We report the TRUE minimum, found by damped Newton steps from the OLS start. R's
    ``nlminb`` is given a gradient that ignores ``d sigma / d theta`` and stops early ("false
    convergence") at or near the start, so R's ``CondFstat`` is not the minimum; its golden
    diagnostics record both. Because ``Q`` is invariant to rescaling ``v``, the minimum is the
    same for every exposure ``j``. Differences from R: MendelianRandomization first rescales
    the exposure effects with ``1/(nx sx^2 + bx^2)``; this function uses ``bx`` and ``sigma``
    as given, so its minimum differs from R's true minimum by the effect of that rescaling
    (1.3% on the lipids golden).
    """
    k = t.bx.shape[-1]
    df = t.nsnp - t.nexp + 1
    eye = jnp.eye(k, dtype=t.bx.dtype)

    def qv(v):
        r = t.bx @ v
        den = jnp.where(t.mask, _quad(sigma, v), 1.0)
        return jnp.sum(jnp.where(t.mask, r * r / den, 0.0))

    def minimise(j, theta0):
        free = t.xmask & (jnp.arange(k) != j)
        q = lambda theta: qv(eye[j] - jnp.where(free, theta, 0.0))  # noqa: E731
        grad = jax.grad(q)
        hess = jax.hessian(q)
        pin = jnp.diag(1.0 - free.astype(t.bx.dtype))

        def step(_, carry):
            theta, damp = carry
            g = jnp.where(free, grad(theta), 0.0)
            h = hess(theta) * jnp.outer(free, free) + pin
            move = jnp.linalg.solve(h + damp * jnp.diag(jnp.diag(h)), g)
            trial = theta - move
            better = q(trial) <= q(theta)
            return jnp.where(better, trial, theta), jnp.where(better, damp * 0.1, damp * 10.0)

        theta, _ = jax.lax.fori_loop(0, NEWTON_STEPS, step, (jnp.where(free, theta0, 0.0), jnp.asarray(1e-3, t.bx.dtype)))
        return eye[j] - jnp.where(free, theta, 0.0)

    # Q is not convex in theta: start each exposure from its OLS fit, then again from the best
    # direction found for any exposure (the minimum is shared where that direction's v_j != 0).
    starts = jax.vmap(lambda j: _others_fit(t, j)[0])(jnp.arange(k))
    first = jax.vmap(minimise)(jnp.arange(k), starts)
    q_first = jax.vmap(qv)(first)
    best = first[jnp.argmin(jnp.where(t.xmask, q_first, jnp.inf))]

    def restart(j):
        ok = jnp.abs(best[j]) > 1e-12 * jnp.max(jnp.abs(best))
        theta0 = jnp.where(ok, eye[j] - best / jnp.where(ok, best[j], 1.0), 0.0)
        return qv(minimise(j, theta0))

    f = jnp.minimum(q_first, jax.vmap(restart)(jnp.arange(k))) / df
    return jnp.where(t.xmask & (t.nsnp > t.nexp), f, jnp.nan)


def strength(t: MVInstruments, sigma) -> Strength:
    """Both strength statistics of one analysis."""
    return Strength(f=conditional_f(t, sigma), cond_f=cond_f_min(t, sigma))


def pleiotropy(t: MVInstruments, sigma) -> Pleiotropy:
    """MVMR ``pleiotropy_mvmr``: ``theta`` = MV-IVW (``lm(by ~ -1 + bx, weights = 1/sy^2)``),
    ``Q = sum((by - bx theta)^2 / (sy^2 + theta' sigma_s theta))`` on ``nsnp - K - 1`` df —
    the package's df as coded (one less than the ``nsnp - K`` of an MV-IVW fit)."""
    xw, yw = whiten(t, t.bx, t.by)
    theta = least_squares(xw, yw, t.mask, t.xmask).coef
    r = t.by - t.bx @ theta
    den = jnp.where(t.mask, t.sy * t.sy + _quad(sigma, theta), 1.0)
    q = jnp.sum(jnp.where(t.mask, r * r / den, 0.0))
    df = t.nsnp - t.nexp - 1
    ok = df > 0
    return Pleiotropy(q=jnp.where(ok, q, jnp.nan), df=df, pval=jnp.where(ok, chi2_sf(q, df), jnp.nan))
