"""Constrained maximum likelihood with model averaging (MendelianRandomization 0.10.0
``mr_cML``, Xue, Shen and Pan 2021): cML-MA-BIC, with and without data perturbation (DP).

For each number ``K = 0 .. n-2`` of invalid instruments, R's ``cML_estimate`` runs (from
``theta = 0``, ``mu = 0``; at most ``maxit = 100`` sweeps, until ``|theta_old - theta| <= 1e-7``):
the K SNPs with the largest ``(by - theta mu)^2 / sy^2`` get a free pleiotropic effect
``r_j = by_j - theta mu_j`` (0 for the others); ``mu = (bx/sx^2 + theta (by - r)/sy^2) /
(1/sx^2 + theta^2/sy^2)``; ``theta = sum((by - r) mu / sy^2) / sum(mu^2 / sy^2)``; a last step sets
``mu_j = bx_j`` and ``r_j = by_j - theta bx_j`` for the invalid SNPs. ``l_K`` is the negative
log-likelihood ``sum((bx - mu)^2 / 2sx^2) + sum((by - theta mu - r)^2 / 2sy^2)``, the SE R's
``cML_SdTheta`` (NaN when its variance is not positive). BIC weights ``exp(-BIC_K/2)``,
``BIC_K = log(n) K + 2 l_K``; ``theta = sum w_K theta_K``, ``se = sum w_K sqrt(se_K^2 +
(theta_K - theta)^2)`` (NaN terms dropped, as R's ``na.rm``). With DP, the same is done on
``num_pert = 200`` perturbed data sets (``bx + sx Z``, ``by + sy Z'``) and the K-wise means of
theta and l and the SD of theta across perturbations replace them; GOF1/GOF2 compare the SE at
the BIC-best K with the perturbation SD. ``n`` is the GWAS sample size (R's ``n``).

Differs from R: the DP draws come from the trait's key (per instrument slot, so padding never
changes them), not R's ``random_seed = 314``; R's ``set.seed(314)`` stream is not reproduced,
so DP results agree with R within their Monte-Carlo error only.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.stats import norm

from mrjax.batch import Instruments
from mrjax.estimators.common import Estimate, Params, Reason, estimate
from mrjax.estimators.draws import slot_normals
from mrjax.stats import norm_pval

MAXIT = 100
TOL = 1e-7
NUM_PERT = 200
MIN_SNPS = 3


class KFit(NamedTuple):
    theta: jax.Array
    se: jax.Array
    negl: jax.Array


class CMLFit(NamedTuple):
    """cML-MA-BIC(-DP) ``b``, ``se``, normal ``lo``/``up``/``pval``; ``gof1``/``gof2``
    (goodness-of-fit p-values, DP only; NaN otherwise); ``ok``."""

    b: jax.Array
    se: jax.Array
    lo: jax.Array
    up: jax.Array
    pval: jax.Array
    gof1: jax.Array
    gof2: jax.Array
    ok: jax.Array


def cml_estimate(bx, by, sx, sy, mask, k) -> KFit:
    """R's ``cML_estimate`` + ``cML_SdTheta`` for ``k`` invalid SNPs (``k`` may be traced)."""
    wx = 1.0 / (sx * sx)
    wy = 1.0 / (sy * sy)
    idx = jnp.arange(bx.shape[-1])

    def invalid(theta, mu):
        """The ``k`` SNPs with the largest ``(by - theta mu)^2 / sy^2``."""
        imp = jnp.where(mask, (by - theta * mu) ** 2 * wy, -jnp.inf)
        # rank by counting (faster than a sort on CPU); ties broken by position as R's order()
        above = (imp[None, :] > imp[:, None]) | ((imp[None, :] == imp[:, None]) & (idx[None, :] < idx[:, None]))
        return mask & (jnp.sum(above, axis=1) < k)

    def sweep(state):
        theta, _, mu, _, it = state
        r = jnp.where(invalid(theta, mu), by - theta * mu, 0.0)
        mu = (bx * wx + theta * (by - r) * wy) / (wx + theta * theta * wy)
        new = jnp.sum(jnp.where(mask, (by - r) * mu * wy, 0.0)) / jnp.sum(jnp.where(mask, mu * mu * wy, 0.0))
        return new, theta, mu, r, it + 1

    def going(state):
        theta, old, _, _, it = state
        return (jnp.abs(old - theta) > TOL) & (it < MAXIT)

    zero = jnp.zeros_like(bx)
    theta, _, mu, r, _ = jax.lax.while_loop(going, sweep, (jnp.zeros((), bx.dtype), -jnp.ones((), bx.dtype),
                                                          zero, zero, 0))
    bad = mask & (r != 0)
    mu = jnp.where(bad, bx, mu)
    r = jnp.where(bad, by - theta * mu, r)
    negl = jnp.sum(jnp.where(mask, (bx - mu) ** 2 * wx / 2.0 + (by - theta * mu - r) ** 2 * wy / 2.0, 0.0))
    good = mask & (r == 0)
    info = jnp.sum(jnp.where(good, mu * mu * wy - (2.0 * mu * theta - by) ** 2 * wy * wy / (wx + theta * theta * wy), 0.0))
    se = jnp.where(info > 0, jnp.sqrt(1.0 / jnp.where(info > 0, info, 1.0)), jnp.nan)
    return KFit(theta=theta, se=se, negl=negl)


def _k_values(width: int, k_vec) -> jax.Array:
    """The K to fit: R's default ``0 .. width-2``, or ``k_vec`` less those a trait of this
    width cannot have (at least one entry, so shapes stay non-empty; ``k_ok`` masks it)."""
    if k_vec is None:
        return jnp.arange(width - 1)
    return jnp.asarray([k for k in k_vec if k <= width - 2] or [0])


def _all_k(bx, by, sx, sy, mask, ks) -> KFit:
    """``cml_estimate`` for every K of ``ks`` (``[len(ks)]`` arrays)."""
    return jax.vmap(lambda k: cml_estimate(bx, by, sx, sy, mask, k))(ks)


def _bic_weights(negl, n_sample, ks, k_ok):
    bic = jnp.where(k_ok, jnp.log(n_sample) * ks.astype(negl.dtype) + 2.0 * negl, jnp.inf)
    bic = bic - jnp.min(bic)
    w = jnp.where(k_ok, jnp.exp(-0.5 * bic), 0.0)
    return w / jnp.sum(w), jnp.argmin(bic)


def _average(theta, se, w):
    b = jnp.sum(w * theta)
    term = w * jnp.sqrt(se * se + (theta - b) ** 2)
    return b, jnp.sum(jnp.where(jnp.isnan(term), 0.0, term))


def cml_fit(t: Instruments, n_sample, key: jax.Array | None = None, dp: bool = True, num_pert: int = NUM_PERT,
            alpha: float = 0.05, k_vec: tuple[int, ...] | None = None) -> CMLFit:
    """MendelianRandomization ``mr_cML(object, n = n_sample, MA = TRUE, DP = dp, K_vec =
    k_vec)`` (module docstring; ``k_vec = None`` is R's default ``0:(length(Bx) - 2)``; K above
    the trait's ``nsnp - 2`` are left out, where R would fit them); ``key`` gives the DP draws."""
    m = t.mask
    n = t.nsnp
    ks = _k_values(t.bx.shape[-1], k_vec)
    k_ok = ks <= n - 2
    fits = _all_k(t.bx, t.by, t.sx, t.sy, m, ks)
    w, best = _bic_weights(fits.negl, n_sample, ks, k_ok)
    nan = jnp.full((), jnp.nan, t.bx.dtype)
    if not dp:
        b, se = _average(fits.theta, fits.se, w)
        gof1 = gof2 = nan
    else:
        width = t.bx.shape[-1]
        kx, ky = jax.random.split(key)
        zx = slot_normals(kx, num_pert, width, t.bx.dtype).T  # [num_pert, width]
        zy = slot_normals(ky, num_pert, width, t.bx.dtype).T

        def perturbed(z):
            return _all_k(t.bx + z[0] * t.sx, t.by + z[1] * t.sy, t.sx, t.sy, m, ks)

        pert = jax.lax.map(perturbed, (zx, zy))  # fields [num_pert, width - 1]
        theta_bar = jnp.mean(pert.theta, axis=0)
        sd_pert = jnp.std(pert.theta, axis=0, ddof=1)
        w_dp, _ = _bic_weights(jnp.mean(pert.negl, axis=0), n_sample, ks, k_ok)
        b, se = _average(theta_bar, sd_pert, w_dp)
        x = pert.theta[:, best]
        var_x = jnp.var(x, ddof=1)
        more_var = jnp.var(pert.se[:, best] ** 2, ddof=1)
        gap = fits.se[best] ** 2 - sd_pert[best] ** 2
        npert = float(num_pert)
        sd_x = jnp.sqrt((jnp.mean((x - jnp.mean(x)) ** 4) - (npert - 3) / (npert - 1) * var_x ** 2) / npert + more_var)
        gof1 = 2.0 * norm.sf(jnp.abs(gap / sd_x))
        gof2 = 2.0 * norm.sf(jnp.abs(gap / jnp.sqrt(2.0 / (npert - 1) * sd_pert[best] ** 4 + more_var)))
    z = norm.isf(alpha / 2)
    ok = (n >= MIN_SNPS) & jnp.isfinite(n_sample) & (n_sample > 0) & jnp.isfinite(b) & jnp.isfinite(se)
    return CMLFit(b=b, se=se, lo=b - z * se, up=b + z * se, pval=norm_pval(b / se), gof1=gof1, gof2=gof2, ok=ok)


def mr_cml(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """Method ``cml``: MendelianRandomization ``mr_cML(object, n, MA = TRUE, DP = params.dp,
    K_vec = params.k_vec)`` with ``n = params.n`` or else the trait's ``samplesize`` (NaN, "not applicable", without
    either); ``params.n_boot`` is unused (R's ``num_pert = 200``)."""
    if params.n is not None:
        n_sample = jnp.asarray(params.n, t.bx.dtype)
    elif t.samplesize is not None:
        n_sample = t.samplesize
    else:
        n_sample = jnp.asarray(jnp.nan, t.bx.dtype)
    fit = cml_fit(t, n_sample, key, dp=params.dp, k_vec=params.k_vec)
    reason = jnp.where(t.nsnp < MIN_SNPS, Reason.TOO_FEW_SNPS,
                       jnp.where(jnp.isfinite(n_sample), Reason.NOT_CONVERGED, Reason.NOT_APPLICABLE))
    return estimate(fit.b, fit.se, fit.pval, t.nsnp, ok=fit.ok, reason=reason, lo_ci=fit.lo, up_ci=fit.up)
