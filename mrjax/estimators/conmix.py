"""Contamination mixture (MendelianRandomization 0.10.0 ``mr_conmix``, Burgess et al. 2020).

With ratios ``r_j = by_j / bx_j`` and first-order SEs ``s_j = sy_j / |bx_j|``, each SNP is
"valid" at ``theta`` when ``log N(r_j; theta, s_j^2) > log N(r_j; 0, psi^2 + s_j^2)`` and the
profile log-likelihood is ``L(theta) = sum_j max`` of the two; ``psi = 1.5 sd(r)``. ``L`` is
evaluated on R's grid ``theta_k = CIMin + 0.01 k``, ``CIMin = min((by - 2 sy)/bx)``, up to
``CIMax = max((by + 2 sy)/bx)`` (``seq(CIMin, CIMax, by = 0.01)``, its last point clamped at
``CIMax``); the estimate is the first grid maximiser. With ``phi = max(1, sqrt(weighted
residual variance of the ratios of the valid SNPs at the estimate))`` (1 with fewer than 2), the
CI is the set of grid points with ``2 L > 2 max L - qchisq(0.95, 1) phi^2``; it may be a union
of intervals: ``lo``/``up`` are its hull and ``disjoint`` says whether it has gaps. The p-value
is R's ``pchisq(2 (max L - L(0)) phi^2, 1, lower.tail = FALSE)`` (phi^2 multiplies, as in R).

The grid is walked in chunks of ``CHUNK`` points by ``lax.while_loop`` (two passes: the maximum,
then the CI), so the cost grows with ``(CIMax - CIMin) / 0.01``: R's cost too.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mrjax.batch import Instruments
from mrjax.estimators.common import Estimate, Params, Reason, estimate
from mrjax.stats import chi2_1_tail, masked_sd

CI_STEP = 0.01
CHUNK = 128  # grid points per step (a trait of the 731-trait fixture has 40-128; 512: 23 -> 4 ms)
QCHISQ_95 = 3.841458820694124
MIN_SNPS = 3


class ConmixFit(NamedTuple):
    """Grid estimate ``b``, CI hull ``lo``/``up``, ``disjoint`` (the CI is a union of
    intervals), ``pval``, ``psi``, ``n_valid`` and the ``valid`` mask at the estimate; ``ok``."""

    b: jax.Array
    lo: jax.Array
    up: jax.Array
    disjoint: jax.Array
    pval: jax.Array
    psi: jax.Array
    n_valid: jax.Array
    valid: jax.Array
    ok: jax.Array


def conmix_fit(t: Instruments) -> ConmixFit:
    """MendelianRandomization ``mr_conmix(object)`` with its defaults (module docstring)."""
    m = t.mask
    r = jnp.where(m, t.by / t.bx, 0.0)
    s = jnp.where(m, jnp.abs(t.sy / t.bx), 1.0)
    ci_min = jnp.min(jnp.where(m, (t.by - 2.0 * t.sy) / t.bx, jnp.inf))
    ci_max = jnp.max(jnp.where(m, (t.by + 2.0 * t.sy) / t.bx, -jnp.inf))
    psi = 1.5 * masked_sd(r, m)
    n_grid = jnp.floor((ci_max - ci_min) / CI_STEP + 1e-10).astype(jnp.int32) + 1
    exc = -r * r / 2.0 / (psi * psi + s * s) - jnp.log(jnp.sqrt(2.0 * np.pi * (psi * psi + s * s)))
    log_norm = jnp.log(jnp.sqrt(2.0 * np.pi * s * s))

    def inc(theta):
        return -((theta - r) ** 2) / 2.0 / (s * s) - log_norm

    def loglik(theta):
        """``[chunk]`` thetas -> ``[chunk]`` profile log-likelihoods."""
        i = inc(theta[:, None])
        return jnp.sum(jnp.where(m, jnp.where(i > exc, i, exc), 0.0), axis=-1)

    def grid(k):
        theta = ci_min + CI_STEP * k.astype(r.dtype)
        return jnp.minimum(theta, ci_max), k < n_grid

    offsets = jnp.arange(CHUNK, dtype=jnp.int32)

    def best(state):
        start, top, arg = state
        theta, real = grid(start + offsets)
        ll = jnp.where(real, loglik(theta), -jnp.inf)
        j = jnp.argmax(ll)
        better = ll[j] > top
        return start + CHUNK, jnp.where(better, ll[j], top), jnp.where(better, start + j.astype(jnp.int32), arg)

    def more(state):
        return state[0] < n_grid

    zero = jnp.zeros((), jnp.int32)
    _, top, arg = jax.lax.while_loop(more, best, (zero, jnp.asarray(-jnp.inf, r.dtype), zero))
    b = ci_min + CI_STEP * arg.astype(r.dtype)
    theta_best = grid(arg)[0]
    valid = m & (inc(theta_best) > exc)
    n_valid = jnp.sum(valid)
    w = jnp.where(valid, 1.0 / (s * s), 0.0)
    mean = jnp.sum(w * r) / jnp.sum(w)
    spread = jnp.sqrt(jnp.sum(w * (r - mean) ** 2) / (n_valid - 1))
    phi = jnp.where(n_valid < 1.5, 1.0, jnp.maximum(spread, 1.0))
    cut = 2.0 * top - QCHISQ_95 * phi * phi

    def interval(state):
        start, first, last, count = state
        ks = start + offsets
        theta, real = grid(ks)
        inside = real & (2.0 * loglik(theta) > cut)
        big = jnp.iinfo(jnp.int32).max
        first = jnp.minimum(first, jnp.min(jnp.where(inside, ks, big)))
        last = jnp.maximum(last, jnp.max(jnp.where(inside, ks, -1)))
        return start + CHUNK, first, last, count + jnp.sum(inside, dtype=jnp.int32)

    init = (zero, jnp.asarray(jnp.iinfo(jnp.int32).max), jnp.asarray(-1, jnp.int32), zero)
    _, first, last, count = jax.lax.while_loop(lambda st: st[0] < n_grid, interval, init)
    lo = ci_min + CI_STEP * first.astype(r.dtype)
    up = ci_min + CI_STEP * last.astype(r.dtype)
    disjoint = count < last - first + 1
    pval = chi2_1_tail(2.0 * (top - loglik(jnp.zeros((1,), r.dtype))[0]) * phi * phi)
    ok = (t.nsnp >= MIN_SNPS) & jnp.isfinite(top) & (psi > 0)
    return ConmixFit(b=b, lo=lo, up=up, disjoint=disjoint, pval=pval, psi=psi, n_valid=n_valid, valid=valid, ok=ok)


def mr_conmix(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """Method ``conmix``: MendelianRandomization ``mr_conmix`` (:func:`conmix_fit`). R reports no
    SE; ``se`` is NaN, ``lo_ci``/``up_ci`` the likelihood CI's hull and ``ci_disjoint`` whether
    that CI is several intervals (R prints each; False where the trait is not estimated)."""
    del key, params
    fit = conmix_fit(t)
    reason = jnp.where(t.nsnp >= MIN_SNPS, Reason.ZERO_WEIGHT, Reason.TOO_FEW_SNPS)
    est = estimate(fit.b, jnp.nan * fit.b, fit.pval, t.nsnp, ok=fit.ok, reason=reason, lo_ci=fit.lo, up_ci=fit.up)
    return est._replace(ci_disjoint=fit.ok & fit.disjoint)
