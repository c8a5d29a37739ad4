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

The lasso at each lambda is solved by cyclic coordinate descent (glmnet's algorithm) with warm
starts, to a tighter tolerance than glmnet's ``thresh = 1e-7``; the zero pattern, and so every
reported number but ``RegEstimate``, is then that of the exact lasso solution.
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
CD_TOL = 1e-11
CD_MAX_SWEEPS = 1000
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
    nf = n.astype(b.dtype)
    # glmnet's standardisation without an intercept still divides by the (population) SD.
    xs = jnp.sqrt(jnp.sum(x * x, axis=0) / nf - (jnp.sum(x, axis=0) / nf) ** 2)
    real = m & (xs > 0)
    xt = jnp.where(real[None, :], x / jnp.where(real, xs, 1.0)[None, :], 0.0)
    gram = xt.T @ xt / nf
    c = xt.T @ y / nf
    null_dev = jnp.sum(y * y)
    lam_max = jnp.max(jnp.abs(c))
    lams = lam_max * LAMBDA_MIN_RATIO ** (jnp.arange(N_LAMBDA, dtype=b.dtype) / (N_LAMBDA - 1))
    diag = jnp.where(real, jnp.diagonal(gram), 1.0)

    def solve(z, lam):
        """Cyclic coordinate descent at ``lam`` from ``z`` (gradient kept up to date)."""

        def sweep(state):
            z, grad, _, k = state

            def coord(j, carry):
                z, grad, biggest = carry
                old = z[j]
                g = grad[j] + diag[j] * old
                new = jnp.where(real[j], jnp.sign(g) * jnp.maximum(jnp.abs(g) - lam, 0.0) / diag[j], 0.0)
                d = new - old
                return z.at[j].set(new), grad - gram[:, j] * d, jnp.maximum(biggest, diag[j] * d * d)

            z, grad, biggest = jax.lax.fori_loop(0, width, coord, (z, grad, jnp.zeros((), z.dtype)))
            return z, grad, biggest, k + 1

        def going(state):
            return (state[2] > CD_TOL * null_dev / nf) & (state[3] < CD_MAX_SWEEPS)

        grad = c - gram @ z
        z, _, biggest, _ = jax.lax.while_loop(going, sweep, sweep((z, grad, jnp.inf, 0)))
        return z, biggest <= CD_TOL * null_dev / nf

    def along_path(carry, inputs):
        z, rsq_prev, stopped = carry
        k, lam = inputs
        z, converged = solve(z, lam)
        resid = y - xt @ z
        rsq = 1.0 - jnp.sum(resid * resid) / null_dev
        zero = real & (z == 0)
        slope, _, sigma = _ivw_on(b, u, zero)
        on_path = ~stopped
        cut = (k + 1 >= MIN_PATH) & jnp.any(z != 0) & ((rsq - rsq_prev < FDEV * rsq) | (rsq > DEV_MAX))
        out = (on_path, zero, sigma, jnp.sum(zero), z / jnp.where(real, xs, 1.0), converged | ~on_path)
        return (z, rsq, stopped | cut), out

    init = (jnp.zeros(width, dtype=b.dtype), jnp.zeros((), b.dtype), jnp.zeros((), bool))
    _, (on_path, zeros, rse, n_zero, coef, converged) = jax.lax.scan(
        along_path, init, (jnp.arange(N_LAMBDA), lams))

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
    enough = in_path & (valid_asc > 1)
    lam_pos = jnp.maximum(lam_pos, jnp.argmax(enough) + 1)
    chosen = jnp.clip(length - lam_pos, 0, N_LAMBDA - 1)

    valid = zeros[chosen]
    n_valid = jnp.sum(valid)
    slope, se_lm, sigma = _ivw_on(b, u, valid)
    se = se_lm / jnp.minimum(sigma, 1.0)
    a = coef[chosen]
    reg = jnp.sum(b * inv * (by - a) * jnp.where(m, 1.0, 0.0)) / jnp.sum(b * b)
    z = norm.isf(alpha / 2)
    ok = (n >= MIN_SNPS) & jnp.any(enough) & (n_valid > 1) & jnp.all(converged)
    return LassoFit(b=slope, se=se, lo=slope - z * se, up=slope + z * se, pval=norm_pval(slope / se),
                    n_valid=n_valid, lam=lams[chosen], reg_estimate=reg, ok=ok)


def mr_lasso(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """Method ``lasso``: MendelianRandomization ``mr_lasso`` (:func:`lasso_fit`); ``nsnp`` is
    the number of instruments given (R's ``SNPs``; the valid ones are in :func:`lasso_fit`)."""
    del key, params
    fit = lasso_fit(t)
    reason = jnp.where(t.nsnp >= MIN_SNPS, Reason.NOT_CONVERGED, Reason.TOO_FEW_SNPS)
    return estimate(fit.b, fit.se, fit.pval, t.nsnp, ok=fit.ok, reason=reason, lo_ci=fit.lo, up_ci=fit.up)
