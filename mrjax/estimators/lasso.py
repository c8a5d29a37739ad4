"""MR-Lasso (MendelianRandomization ``mr_lasso``, Rees et al. 2019) with glmnet's path.

Orient ``bx >= 0``; with ``S = diag(sy^-2)`` and ``b = S^(1/2) bx``, project out ``b``:
``X = (I - P_b) S^(1/2)``, ``y = (I - P_b) S^(1/2) by``. The SNP-specific pleiotropy ``a`` solves
the lasso ``glmnet(X, y, intercept = FALSE)`` (glmnet 4.1 defaults: ``standardize = TRUE`` —
columns scaled by their population SD, not centred —, 100 lambdas from ``lambda_max =
max_j |x_j'y| / (n sd_j)`` down to ``1e-4 lambda_max`` geometrically, the path cut after the
first lambda (from the 5th on) where the explained deviance exceeds 0.999 or grows by less than
a relative 1e-5). Along the path, from the smallest lambda up, lambda is the one before the
first jump of the residual SE of the IVW fit on the SNPs with ``a_j = 0`` ("valid") above 1 by
more than ``qchisq(0.95, 1) / #valid``, else the largest, and at least the first with 2 valid
SNPs. Reported: the post-lasso IVW on the valid SNPs (``se / min(1, sigma)``, normal CI and p),
``#valid``, lambda and the lasso-adjusted IVW ``RegEstimate``.

The lasso is solved exactly along the whole path by the homotopy (:func:`_lasso_path`, one
linear solve per join or leave of a coordinate, ~width events) and read off at glmnet's
lambdas, where glmnet runs coordinate descent to ``thresh = 1e-7``; the zero pattern, and so
every reported number but ``RegEstimate``, is that of the exact lasso solution (``RegEstimate``
agrees with R to ~1e-5, glmnet's precision).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.stats import norm

from mrjax.batch import Instruments
from mrjax.estimators.common import Estimate, Params, Reason, estimate
from mrjax.stats import norm_pval

N_LAMBDA = 100
LAMBDA_MIN_RATIO = 1e-4  # glmnet: nobs >= nvars (here nobs == nvars)
MIN_PATH = 5  # glmnet.control(mnlam)
DEV_MAX = 0.999  # glmnet.control(devmax)
FDEV = 1e-5  # glmnet.control(fdev)
EVENTS_PER_SNP = 4  # cap on joins and leaves along the homotopy path, per instrument slot
QCHISQ_95 = 3.841458820694124
MIN_SNPS = 3


class LassoFit(NamedTuple):
    """Post-lasso ``b``, ``se``, normal ``lo``/``up``/``pval``; ``n_valid`` SNPs with zero
    pleiotropy; the chosen ``lam``; ``reg_estimate`` (R's ``RegEstimate``); ``ok``."""

    b: jax.Array
    se: jax.Array
    lo: jax.Array
    up: jax.Array
    pval: jax.Array
    n_valid: jax.Array
    lam: jax.Array
    reg_estimate: jax.Array
    ok: jax.Array


def _ivw_on(x, y, keep):
    """IVW of ``y`` on ``x`` (already scaled by 1/sy) through the origin on ``keep``: slope,
    its lm SE and the residual SE (NaN with fewer than 2 SNPs)."""
    sxx = jnp.sum(jnp.where(keep, x * x, 0.0))
    slope = jnp.sum(jnp.where(keep, x * y, 0.0)) / sxx
    k = jnp.sum(keep)
    rss = jnp.sum(jnp.where(keep, (y - slope * x) ** 2, 0.0))
    sigma = jnp.sqrt(rss / jnp.where(k > 1, k - 1, jnp.nan))
    return slope, sigma / jnp.sqrt(sxx), sigma


def _lasso_path(gram, c, real, lams):
    """Exact solutions ``z(lambda)`` of ``min_z z'Gz/2 - c'z + lambda |z|_1`` (the lasso in
    glmnet's scaling) at every ``lams`` (descending, ``lams[0] = max|c|``), by the homotopy
    (LARS-lasso, Efron et al. 2004; Osborne et al. 2000): on a stretch of the path with active
    set A and signs s, ``z_A = G_AA^-1 (c_A - lambda s_A)``; the stretch ends where an inactive
    coordinate's correlation ``c_j - G_j z`` reaches ``+-lambda`` (it joins) or an active
    coordinate reaches 0 (it leaves). Coordinates not ``real`` never join. Returns the
    ``[len(lams), width]`` solutions and whether the path reached ``lams[-1]`` within
    ``EVENTS_PER_SNP * width + 16`` events (each coordinate joins once on a path without
    leaves)."""
    width = c.shape[0]
    eye = jnp.eye(width, dtype=c.dtype)
    score = jnp.where(real, jnp.abs(c), -1.0)
    first = jnp.argmax(score)
    onehot = jnp.arange(width) == first
    lam_end = lams[-1]

    def event(state):
        active, sign, lam, grid, last, count, _ = state
        both = active[:, None] & active[None, :]
        m = jnp.where(both, gram, eye)
        rhs = jnp.stack([jnp.where(active, c, 0.0), jnp.where(active, sign, 0.0)], axis=1)
        sol = jnp.linalg.solve(m, rhs)
        uu, vv = sol[:, 0], sol[:, 1]  # z_A(lambda) = uu - lambda vv
        a = c - gram @ uu  # correlation c - G z(lambda) = a + lambda d
        d = gram @ vv
        below = lam * (1.0 - 1e-12)
        free = real & ~active & (jnp.arange(width) != last)

        def valid(x, ok):
            return jnp.where(ok & (x > 0) & (x < below), x, 0.0)

        up = valid(a / (1.0 - d), free & (d != 1.0))
        down = valid(-a / (1.0 + d), free & (d != -1.0))
        leave = valid(uu / jnp.where(vv != 0, vv, 1.0), active & (vv != 0) & (jnp.arange(width) != last))
        join = jnp.maximum(up, down)
        nxt = jnp.maximum(jnp.max(join), jnp.max(leave))
        seg = (lams <= lam * (1.0 + 1e-12)) & (lams >= nxt)
        grid = jnp.where(seg[:, None], jnp.where(active[None, :], uu[None, :] - lams[:, None] * vv[None, :], 0.0), grid)
        j_join, j_leave = jnp.argmax(join), jnp.argmax(leave)
        joins = jnp.max(join) >= jnp.max(leave)
        j = jnp.where(joins, j_join, j_leave)
        hit = jnp.arange(width) == j
        new_sign = jnp.sign(a[j] + nxt * d[j])
        active = jnp.where(hit, joins, active)
        sign = jnp.where(hit & joins, new_sign, sign)
        return active, sign, nxt, grid, j, count + 1, nxt <= lam_end

    def going(state):
        return ~state[6] & (state[5] < EVENTS_PER_SNP * width + 16)

    grid = jnp.zeros((lams.shape[0], width), c.dtype)
    state = (real & onehot, jnp.where(onehot, jnp.sign(c), 0.0), lams[0], grid, first, 0, ~jnp.any(real))
    _, _, _, grid, _, _, done = jax.lax.while_loop(going, event, state)
    return grid.at[0].set(0.0), done  # exactly 0 at lambda_max (uu - lambda vv may miss by an ulp)


class LassoChoice(NamedTuple):
    """The lasso solution at the lambda the heterogeneity rule chose: ``valid`` (rows with zero
    pleiotropy), ``a`` (the per-row pleiotropy, R's ``RegIntercept``), ``lam``; ``ok`` (the
    path was traced and some lambda leaves enough valid rows)."""

    valid: jax.Array
    a: jax.Array
    lam: jax.Array
    ok: jax.Array


def heterogeneity_lasso(x, y, mask, n, residual_se, min_valid: int) -> LassoChoice:
    """glmnet's lasso path of ``y`` on the columns of ``x`` (``[width, width]``, rows and columns
    of padded slots zero) and the module docstring's choice of lambda along it; ``residual_se
    (keep)`` is the residual SE of the IVW fit on the rows ``keep``, and a lambda must leave more
    than ``min_valid`` valid rows. Shared by :func:`lasso_fit` and
    :func:`mrjax.mv.lasso.mv_lasso_fit`."""
    nf = n.astype(x.dtype)
    # glmnet's standardisation without an intercept still divides by the (population) SD.
    xs = jnp.sqrt(jnp.sum(x * x, axis=0) / nf - (jnp.sum(x, axis=0) / nf) ** 2)
    real = mask & (xs > 0)
    xt = jnp.where(real[None, :], x / jnp.where(real, xs, 1.0)[None, :], 0.0)
    gram = xt.T @ xt / nf
    c = xt.T @ y / nf
    null_dev = jnp.sum(y * y)
    lam_max = jnp.max(jnp.abs(c))
    lams = lam_max * LAMBDA_MIN_RATIO ** (jnp.arange(N_LAMBDA, dtype=x.dtype) / (N_LAMBDA - 1))
    path, converged = _lasso_path(gram, c, real, lams)  # [N_LAMBDA, width]

    resid = y[None, :] - path @ xt.T
    rsq = 1.0 - jnp.sum(resid * resid, axis=1) / null_dev
    zeros = real[None, :] & (path == 0)
    rse = jax.vmap(residual_se)(zeros)
    n_zero = jnp.sum(zeros, axis=1)
    coef = path / jnp.where(real, xs, 1.0)[None, :]
    # glmnet's path cut: after the first lambda (5th or later) with a non-zero fit whose
    # explained deviance exceeds DEV_MAX or grew by less than FDEV relative
    rsq_prev = jnp.concatenate([jnp.zeros(1, rsq.dtype), rsq[:-1]])
    cut = ((jnp.arange(N_LAMBDA) + 1 >= MIN_PATH) & jnp.any(path != 0, axis=1)
           & ((rsq - rsq_prev < FDEV * rsq) | (rsq > DEV_MAX)))
    on_path = jnp.cumsum(cut) - cut <= 0

    # Ascending lambda position j = 1..L is descending index L - j.
    length = jnp.sum(on_path)
    pos = jnp.arange(1, N_LAMBDA + 1)
    desc = jnp.clip(length - pos, 0, N_LAMBDA - 1)
    rse_asc, valid_asc = rse[desc], n_zero[desc]
    in_path = pos <= length
    nxt = jnp.clip(pos, 0, N_LAMBDA - 1)  # position j + 1 (0-based index j)
    jump = (in_path & (pos + 1 <= length) & (rse_asc[nxt] > 1.0)
            & (rse_asc[nxt] - rse_asc > QCHISQ_95 / valid_asc[nxt]))
    lam_pos = jnp.where(jnp.any(jump), jnp.argmax(jump) + 1, length)
    enough = in_path & (valid_asc > min_valid)
    lam_pos = jnp.maximum(lam_pos, jnp.argmax(enough) + 1)
    chosen = jnp.clip(length - lam_pos, 0, N_LAMBDA - 1)
    return LassoChoice(valid=zeros[chosen], a=coef[chosen], lam=lams[chosen], ok=jnp.any(enough) & converged)


def lasso_fit(t: Instruments, alpha: float = 0.05) -> LassoFit:
    """MendelianRandomization ``mr_lasso(object)`` with its defaults (see the module docstring)."""
    m = t.mask
    n = t.nsnp
    width = t.bx.shape[-1]
    bx = jnp.abs(t.bx)
    by = jnp.where(t.bx < 0, -t.by, t.by)  # R's sign(): 0 stays 0
    by = jnp.where(t.bx == 0, 0.0, by)
    inv = jnp.where(m, 1.0 / t.sy, 0.0)
    b = bx * inv
    u = by * inv
    proj = jnp.outer(b, b) / jnp.sum(b * b)
    eye = jnp.where(m[:, None] & m[None, :], jnp.eye(width, dtype=b.dtype), 0.0)
    x = (eye - proj) * inv[None, :]
    y = u - b * (jnp.sum(b * u) / jnp.sum(b * b))
    choice = heterogeneity_lasso(x, y, m, n, lambda keep: _ivw_on(b, u, keep)[2], min_valid=1)
    n_valid = jnp.sum(choice.valid)
    slope, se_lm, sigma = _ivw_on(b, u, choice.valid)
    se = se_lm / jnp.minimum(sigma, 1.0)
    reg = jnp.sum(b * inv * (by - choice.a) * jnp.where(m, 1.0, 0.0)) / jnp.sum(b * b)
    z = norm.isf(alpha / 2)
    ok = (n >= MIN_SNPS) & choice.ok & (n_valid > 1)
    return LassoFit(b=slope, se=se, lo=slope - z * se, up=slope + z * se, pval=norm_pval(slope / se),
                    n_valid=n_valid, lam=choice.lam, reg_estimate=reg, ok=ok)


def mr_lasso(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """Method ``lasso``: MendelianRandomization ``mr_lasso`` (:func:`lasso_fit`); ``nsnp`` is
    the number of instruments given (R's ``SNPs``; the valid ones are in :func:`lasso_fit`)."""
    del key, params
    fit = lasso_fit(t)
    reason = jnp.where(t.nsnp >= MIN_SNPS, Reason.NOT_CONVERGED, Reason.TOO_FEW_SNPS)
    return estimate(fit.b, fit.se, fit.pval, t.nsnp, ok=fit.ok, reason=reason, lo_ci=fit.lo, up_ci=fit.up)
