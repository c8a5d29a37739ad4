"""Debiased and penalised IVW (MendelianRandomization ``mr_divw``, ``mr_pivw``).

Both correct the IVW denominator for the noise in ``bx``: ``sum((bx^2 - sx^2)/sy^2)`` instead
of ``sum(bx^2/sy^2)`` (Ye, Shao, Kang 2021); pIVW (Xu, Wang, Shao 2022) additionally penalises
that denominator away from zero and gives a bootstrap-Fieller confidence interval.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.stats import norm

from mrjax.batch import Instruments
from mrjax.estimators.common import Estimate, Params, Reason, estimate
from mrjax.estimators.draws import slot_normals, slot_sum
from mrjax.stats import masked_sum, norm_pval

MIN_SNPS = 2


class DebiasedFit(NamedTuple):
    """``b``, ``se``, the CI ``lo``/``up``, ``pval``, the over-dispersion ``tau2`` and the
    instrument-strength ``condition`` (``(mean(bx^2/sx^2) - 1) sqrt(n)``); ``ok`` is False for
    fewer than 2 instruments."""

    b: jax.Array
    se: jax.Array
    lo: jax.Array
    up: jax.Array
    pval: jax.Array
    tau2: jax.Array
    condition: jax.Array
    ok: jax.Array


def _condition(t: Instruments):
    n = t.nsnp
    return (masked_sum((t.bx / t.sx) ** 2, t.mask) / n - 1.0) * jnp.sqrt(n)


def divw_fit(t: Instruments, over_dispersion: bool = True, alpha: float = 0.05) -> DebiasedFit:
    """MendelianRandomization ``mr_divw`` (0.10.0).

    ``b = sum(by bx / sy^2) / sum((bx^2 - sx^2) / sy^2)``; with over-dispersion
    ``tau2 = sum(((by - b bx)^2 - sy^2 - b^2 sx^2) / sy^2) / sum(sy^-2)`` — *not* truncated at
    0, as in R (a negative tau2 shrinks the SE); with ``k = sx/sy``, ``mu = bx/sx``:
    ``se = sqrt(sum(k^2 mu^2 + b^2 k^4 (mu^2 + 1) + tau2 k^2 mu^2 / sy^2)) / sum(k^2 (mu^2 - 1))``.
    Normal CI and p.
    """
    m = t.mask
    w = 1.0 / (t.sy * t.sy)
    b = masked_sum(t.by * t.bx * w, m) / masked_sum((t.bx * t.bx - t.sx * t.sx) * w, m)
    if over_dispersion:
        resid = (t.by - b * t.bx) ** 2 - t.sy * t.sy - b * b * t.sx * t.sx
        tau2 = masked_sum(resid * w, m) / masked_sum(w, m)
    else:
        tau2 = jnp.zeros_like(b)
    k2 = (t.sx / t.sy) ** 2
    mu2 = (t.bx / t.sx) ** 2
    v1 = masked_sum(k2 * mu2 + b * b * k2 * k2 * (mu2 + 1.0) + tau2 * k2 * w * mu2, m)
    v2 = masked_sum(k2 * (mu2 - 1.0), m)
    se = jnp.sqrt(v1 / (v2 * v2))
    z = norm.isf(alpha / 2)
    return DebiasedFit(b=b, se=se, lo=b - z * se, up=b + z * se, pval=norm_pval(b / se), tau2=tau2,
                       condition=_condition(t), ok=t.nsnp >= MIN_SNPS)


class _Moments(NamedTuple):
    mu1p: jax.Array
    mu2p: jax.Array
    mu2: jax.Array
    v2: jax.Array
    v12: jax.Array


def _penalised_moments(bx, by, sx, sy, mask, lam):
    """pIVW's moments (``Byse^-4``-weighted variances ``v2``, ``v12``; the penalised
    denominator ``mu2p = mu2/2 + sign(mu2) sqrt(mu2^2/4 + lambda v2)`` and the matching
    numerator ``mu1p = mu1 + (v12/v2)(mu2p - mu2)``) of ``[width]`` data."""
    terms = _moment_terms(bx, by, sx, sy, jnp.zeros((), bx.dtype))[:4]
    return _penalise(*(masked_sum(x, mask) for x in terms), lam)


def _moment_terms(bx, by, sx, sy, tau2):
    """Per-SNP terms of ``mu1``, ``mu2``, ``v2``, ``v12`` and (with ``tau2``) ``v1p``."""
    w = 1.0 / (sy * sy)
    sx2 = sx * sx
    bx2 = bx * bx
    by2 = by * by
    return (w * by * bx, w * (bx2 - sx2), w * w * (4.0 * (bx2 - sx2) * sx2 + 2.0 * sx2 * sx2),
            2.0 * w * w * by * bx * sx2, w * w * (by2 * bx2 - (by2 - sy * sy - tau2) * (bx2 - sx2)))


def _penalise(mu1, mu2, v2, v12, lam):
    mu2p = 0.5 * mu2 + jnp.sign(mu2) * jnp.sqrt(0.25 * mu2 * mu2 + lam * v2)
    mu1p = mu1 + (v12 / v2) * (mu2p - mu2)
    return _Moments(mu1p=mu1p, mu2p=mu2p, mu2=mu2, v2=v2, v12=v12)


def _fieller_stat(mom: _Moments, v1p, beta):
    """``(mu1p - beta mu2p)^2 / (v1p - 2 beta v12p + beta^2 v2p)`` with pIVW's adjusted
    ``w = mu2p / (2 mu2p - mu2)``, ``v2p = w^2 v2``, ``v12p = w v12``."""
    w = mom.mu2p / (2.0 * mom.mu2p - mom.mu2)
    num = (mom.mu1p - beta * mom.mu2p) ** 2
    return num / (v1p - 2.0 * beta * w * mom.v12 + beta * beta * w * w * mom.v2)


def _v1p(bx, by, sx, sy, mask, tau2):
    return masked_sum(_moment_terms(bx, by, sx, sy, tau2)[4], mask)


def pivw_fit(t: Instruments, key: jax.Array, lam=1.0, over_dispersion: bool = True, alpha: float = 0.05,
             n_boot: int = 1000) -> DebiasedFit:
    """MendelianRandomization ``mr_pivw`` (0.10.0; ``delta = 0``, ``Boot.Fieller = TRUE``).

    ``b = mu1p / mu2p`` (:func:`_penalised_moments`); ``tau2 = max(0, sum(((by - b bx)^2 - sy^2
    - b^2 sx^2) / sy^2) / sum(sy^-2))``; ``se = sqrt(sum(bx^2/sy^2 (1 + tau2/sy^2) + b^2 sx^2 /
    sy^4 (bx^2 + sx^2))) / |mu2p|``. Bootstrap-Fieller (R ``BF_dist``): ``n_boot`` data sets
    ``bx* ~ N(bx, sx)``, ``by* ~ N(b bx + N(0, tau2), sy)``, each giving the Fieller statistic at
    ``b``; p = share of draws above ``z0 = mu1p^2 / v1p``; with ``q`` the ``round(n (1 - alpha))``-th
    smallest draw the CI solves ``A beta^2 + B beta + C <= 0`` (``A = mu2p^2 - q v2p``,
    ``B = 2 (q v12p - mu1p mu2p)``, ``C = mu1p^2 - q v1p``). Where that set is two half-lines
    (``A < 0 < D``) or the whole line, the hull ``(-inf, inf)`` is returned.

    Differs from R: R redraws a data set whose statistic is negative until it has ``n_boot``
    valid ones; here the ``n_boot`` draws are fixed and invalid ones are left out of the
    quantile and the p-value (same distribution; such draws are rare). Draws come from the
    trait's ``key`` (per instrument slot, so padding never changes them), not R's seed 1.
    """
    m = t.mask
    mom = _penalised_moments(t.bx, t.by, t.sx, t.sy, m, lam)
    b = mom.mu1p / mom.mu2p
    w = 1.0 / (t.sy * t.sy)
    if over_dispersion:
        resid = (t.by - b * t.bx) ** 2 - t.sy * t.sy - b * b * t.sx * t.sx
        tau2 = jnp.maximum(0.0, masked_sum(resid * w, m) / masked_sum(w, m))
    else:
        tau2 = jnp.zeros_like(b)
    var = masked_sum(t.bx * t.bx * w * (1.0 + tau2 * w) + b * b * t.sx * t.sx * w * w * (t.bx * t.bx + t.sx * t.sx), m)
    se = jnp.sqrt(var) / jnp.abs(mom.mu2p)

    width = t.bx.shape[-1]
    k_alpha, k_y, k_x = jax.random.split(key, 3)
    col = lambda a: a[:, None]  # noqa: E731  ([width] -> [width, 1] beside [width, n_boot] draws)
    z = lambda k: slot_normals(k, n_boot, width, t.bx.dtype, row_by_row=True)  # noqa: E731
    bx_b = col(t.bx) + col(t.sx) * z(k_x)
    by_b = col(t.bx) * b + jnp.sqrt(tau2) * z(k_alpha) + col(t.sy) * z(k_y)
    sums = slot_sum(lambda j: jnp.where(m[j], jnp.stack(_moment_terms(bx_b[j], by_b[j], t.sx[j], t.sy[j], tau2)), 0.0),
                    width)
    stat = _fieller_stat(_penalise(*sums[:4], lam), sums[4], b)
    valid = stat >= 0
    n_valid = jnp.sum(valid)
    ordered = jnp.sort(jnp.where(valid, stat, jnp.inf))
    q = ordered[jnp.clip(jnp.round(n_valid * (1.0 - alpha)).astype(jnp.int32) - 1, 0, n_boot - 1)]
    v1p = _v1p(t.bx, t.by, t.sx, t.sy, m, tau2)
    z0 = mom.mu1p ** 2 / v1p
    pval = jnp.sum(valid & (stat > z0)) / n_valid

    wt = mom.mu2p / (2.0 * mom.mu2p - mom.mu2)
    a = mom.mu2p ** 2 - q * wt * wt * mom.v2
    bq = 2.0 * (q * wt * mom.v12 - mom.mu1p * mom.mu2p)
    c = mom.mu1p ** 2 - q * v1p
    d = bq * bq - 4.0 * a * c
    root = jnp.sqrt(jnp.where(d > 0, d, 0.0))
    bounded = a > 0
    lo = jnp.where(bounded, (-bq - root) / (2.0 * a), -jnp.inf)
    up = jnp.where(bounded, (-bq + root) / (2.0 * a), jnp.inf)
    return DebiasedFit(b=b, se=se, lo=lo, up=up, pval=pval, tau2=tau2, condition=_condition(t),
                       ok=t.nsnp >= MIN_SNPS)


def _setting(value, default):
    return default if value is None else value


def _finish(t: Instruments, fit: DebiasedFit) -> Estimate:
    ok = fit.ok & jnp.isfinite(fit.se)
    reason = jnp.where(fit.ok, Reason.ZERO_WEIGHT, Reason.TOO_FEW_SNPS)
    return estimate(fit.b, fit.se, fit.pval, t.nsnp, ok=ok, reason=reason, lo_ci=fit.lo, up_ci=fit.up)


def mr_divw(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """Method ``divw``: MendelianRandomization ``mr_divw(over.dispersion = TRUE)`` (:func:`divw_fit`);
    ``params.over_dispersion = False`` drops tau2."""
    del key
    return _finish(t, divw_fit(t, _setting(params.over_dispersion, True)))


def mr_pivw(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """Method ``pivw``: MendelianRandomization ``mr_pivw(lambda = params.pivw_lambda (R: 1),
    over.dispersion = TRUE)`` (:func:`pivw_fit`) with ``params.n_boot`` bootstrap-Fieller draws (R: 1000) from ``key``;
    the p-value is the bootstrap one, the CI the Fieller hull."""
    return _finish(t, pivw_fit(t, key, lam=params.pivw_lambda, over_dispersion=_setting(params.over_dispersion, True), n_boot=params.n_boot))
