"""MendelianRandomization 0.10.0 ``mr_ivw`` and ``mr_egger`` (uncorrelated instruments), with
their ``model``, ``distribution``, ``weights``, ``psi``, ``penalized`` and ``robust`` options.

Both are weighted regressions of ``by`` on ``bx`` (IVW through the origin; Egger with an
intercept, after orienting every SNP so ``bx >= 0`` with R's ``sign``, which leaves a ``bx``
of 0 at 0). The SE is the regression SE divided by ``min(1, sigma)`` (random-effects model:
never below the fixed-effect SE), or by ``sigma`` (fixed-effect model, IVW only); the CI is
``b ∓ q se`` with ``q`` the normal (default) or t quantile (n − 1 df for IVW, n − 2 for
Egger), the p-value from the same distribution.

- ``weights = "simple"``: ``w = sy^-2``; ``"delta"`` (IVW): ``w = 1 / (sy^2 + by^2 sx^2 / bx^2
  - 2 psi by sx sy / bx)``.
- ``penalized``: IVW penalises ``w_j min(1, 100 P_j)`` with ``P_j`` the chi-square(1) tail of
  ``(bx_j^2 / sy_j^2) (r_j - median(r))^2`` (the plain median of the ratios ``r = by/bx``);
  with delta weights the statistic is ``w_j bx_j^2 (r_j - median(r))^2`` and the constant 20
  (MendelianRandomization's rule; no golden entry covers this combination). Egger penalises
  ``sy^-2 min(1, 100 P_j)`` with ``P_j`` the tail of ``sy_j^-2 (y_j - a - b x_j)^2`` from the
  unpenalised Egger fit.
- ``robust``: the regression is ``robustbase::lmrob`` (:mod:`mrjax.estimators.lmrob`) with the
  same weights; ``sigma`` is its S-scale.
- ``model`` (IVW): ``"default"`` is fixed below 4 instruments, random otherwise.
- ``distribution = "t"`` for Egger: where ``sigma < 1`` R uses the more conservative of the
  normal interval with ``se`` and the t interval with ``sigma se`` (the unscaled SE), and the
  larger p-value.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax.batch import Instruments
from mrjax.estimators.common import Z_975, Estimate, Params, Reason, estimate
from mrjax.estimators.lmrob import RobustFit, lmrob, lmrob_batch
from mrjax.estimators.regression import wls_intercept, wls_origin
from mrjax.stats import chi2_1_tail, masked_median, norm_pval, t_pval, t_quantile_whole_df

IVW_MIN_SNPS = 2
EGGER_MIN_SNPS = 3
PENALTY_SIMPLE = 100.0
PENALTY_DELTA = 20.0


class Line(NamedTuple):
    """A fitted coefficient, its unscaled regression SE, and the residual scale ``sigma``."""

    b: jax.Array
    lm_se: jax.Array
    sigma: jax.Array
    ok: jax.Array


def ci_and_p(b, se, df, params: Params, width: int):
    """95% CI ``b ∓ q se`` and p-value: normal, or t with ``df`` (a whole number below the
    instrument tensor's ``width``) for ``distribution = "t"``."""
    if params.distribution == "t":
        q = t_quantile_whole_df(0.975, df, width)
        return b - q * se, b + q * se, t_pval(b / se, df)
    return b - Z_975 * se, b + Z_975 * se, norm_pval(b / se)


def ivw_weights(t: Instruments, params: Params):
    """First-order ``sy^-2`` or second-order (``psi``) weights of ``mr_ivw``, penalised if asked."""
    if params.weights == "simple":
        w = 1.0 / t.sy**2
    else:
        w = 1.0 / (t.sy**2 + t.by**2 * t.sx**2 / t.bx**2 - 2.0 * params.psi * t.by * t.sx * t.sy / t.bx)
    if params.penalized:
        r = t.by / t.bx
        dev = (r - masked_median(r, t.mask)) ** 2
        if params.weights == "simple":
            w = w * jnp.minimum(1.0, PENALTY_SIMPLE * chi2_1_tail(t.bx**2 / t.sy**2 * dev))
        else:
            w = w * jnp.minimum(1.0, PENALTY_DELTA * chi2_1_tail(w * t.bx**2 * dev))
    return jnp.where(t.mask, w, 0.0)


def mr_ivw(t: Instruments, key: jax.Array, params: Params, robust_fit: RobustFit | None = None) -> Estimate:
    """MendelianRandomization ``mr_ivw`` (see the module docstring); needs 2 instruments.
    ``robust_fit``: the lmrob fit when the caller made it (:func:`mr_ivw_batch`)."""
    del key
    n = t.nsnp
    w = ivw_weights(t, params)
    if params.robust:
        fit = lmrob(t.bx[:, None], t.by, w, t.mask) if robust_fit is None else robust_fit
        line = Line(fit.coef[0], fit.se[0], fit.scale, fit.converged)
    else:
        fit = wls_origin(t.bx, t.by, w, t.mask)
        line = Line(fit.b, fit.se, fit.sigma, fit.sxx > 0)
    fixed = params.model == "fixed" or (params.model == "default") & (n < 4)
    se = line.lm_se / jnp.where(fixed, line.sigma, jnp.minimum(1.0, line.sigma))
    lo, up, p = ci_and_p(line.b, se, n - 1, params, t.bx.shape[-1])
    ok = (n >= IVW_MIN_SNPS) & line.ok
    reason = jnp.where(n < IVW_MIN_SNPS, Reason.TOO_FEW_SNPS, Reason.NOT_CONVERGED if params.robust else Reason.ZERO_WEIGHT)
    return estimate(line.b, se, p, n, ok=ok, reason=reason, lo_ci=lo, up_ci=up)


class EggerLines(NamedTuple):
    """Slope and intercept of an Egger fit (each a :class:`Line`)."""

    slope: Line
    intercept: Line


def _egger_data(t: Instruments, params: Params):
    """Egger's regression data: ``x = |bx|``, ``y = by sign(bx)`` and the (penalised) weights."""
    x = jnp.abs(t.bx)
    y = t.by * jnp.sign(t.bx)
    w = jnp.where(t.mask, 1.0 / t.sy**2, 0.0)
    if params.penalized:
        first = wls_intercept(x, y, w, t.mask)
        resid = y - first.a - first.b * x
        w = jnp.where(t.mask, w * jnp.minimum(1.0, PENALTY_SIMPLE * chi2_1_tail(resid**2 / t.sy**2)), 0.0)
    return x, y, w


def _with_intercept(x):
    return jnp.stack([jnp.ones_like(x), x], axis=-1)


def _egger_robust_data(t: Instruments, params: Params):
    """lmrob's arguments for the robust Egger line."""
    x, y, w = _egger_data(t, params)
    return _with_intercept(x), y, w, t.mask


def egger_lines(t: Instruments, params: Params, robust_fit: RobustFit | None = None) -> EggerLines:
    """The (penalised / robust) Egger regression of ``by sign(bx)`` on ``|bx|``; ``robust_fit``:
    the lmrob fit when the caller made it (:func:`mr_egger_batch`)."""
    x, y, w = _egger_data(t, params)
    if params.robust:
        fit = lmrob(_with_intercept(x), y, w, t.mask) if robust_fit is None else robust_fit
        return EggerLines(Line(fit.coef[1], fit.se[1], fit.scale, fit.converged),
                          Line(fit.coef[0], fit.se[0], fit.scale, fit.converged))
    fit = wls_intercept(x, y, w, t.mask)
    ok = jnp.isfinite(fit.b)
    return EggerLines(Line(fit.b, fit.se_b, fit.sigma, ok), Line(fit.a, fit.se_a, fit.sigma, ok))


def _egger_inference(line: Line, df, params: Params, width: int):
    """SE ``lm_se / min(1, sigma)``, CI and p (see the module docstring for the t rule)."""
    se = line.lm_se / jnp.minimum(1.0, line.sigma)
    lo, up, p = ci_and_p(line.b, se, df, params, width)
    if params.distribution == "t":
        half = jnp.maximum(Z_975 * se, t_quantile_whole_df(0.975, df, width) * line.lm_se)
        small = line.sigma < 1.0
        lo = jnp.where(small, line.b - half, lo)
        up = jnp.where(small, line.b + half, up)
        p = jnp.where(small, jnp.maximum(norm_pval(line.b / se), t_pval(line.b / line.lm_se, df)), p)
    return se, lo, up, p


def mr_egger(t: Instruments, key: jax.Array, params: Params, robust_fit: RobustFit | None = None) -> Estimate:
    """MendelianRandomization ``mr_egger``: the causal estimate (slope) of :func:`egger_lines`
    with its SE, CI and p-value; needs 3 instruments."""
    del key
    n = t.nsnp
    slope = egger_lines(t, params, robust_fit).slope
    se, lo, up, p = _egger_inference(slope, n - 2, params, t.bx.shape[-1])
    ok = (n >= EGGER_MIN_SNPS) & slope.ok
    reason = jnp.where(n < EGGER_MIN_SNPS, Reason.TOO_FEW_SNPS, Reason.NOT_CONVERGED if params.robust else Reason.ZERO_WEIGHT)
    return estimate(slope.b, se, p, n, ok=ok, reason=reason, lo_ci=lo, up_ci=up)


def mr_egger_intercept(t: Instruments, key: jax.Array, params: Params, robust_fit: RobustFit | None = None) -> Estimate:
    """The intercept of MendelianRandomization ``mr_egger`` (``Intercept``, ``StdError.Int``,
    ``CILower.Int``, ``CIUpper.Int``, ``Pvalue.Int``) as an :class:`Estimate`, with the same
    settings as :func:`mr_egger`."""
    del key
    n = t.nsnp
    lines = egger_lines(t, params, robust_fit)
    se, lo, up, p = _egger_inference(lines.intercept, n - 2, params, t.bx.shape[-1])
    ok = (n >= EGGER_MIN_SNPS) & lines.intercept.ok
    reason = jnp.where(n < EGGER_MIN_SNPS, Reason.TOO_FEW_SNPS, Reason.NOT_CONVERGED if params.robust else Reason.ZERO_WEIGHT)
    return estimate(lines.intercept.b, se, p, n, ok=ok, reason=reason, lo_ci=lo, up_ci=up)


def _batched(per_trait, robust_data):
    """The batched form of ``per_trait`` (``fn(t, key, params, robust_fit)``): with
    ``robust = TRUE`` the lmrob fits of every trait come from :func:`lmrob_batch` (one pool for
    the refinements), otherwise ``per_trait`` vmapped. Equal to ``per_trait`` trait by trait."""

    def batch(ts: Instruments, keys: jax.Array, params: Params) -> Estimate:
        if not params.robust:
            return jax.vmap(per_trait, in_axes=(0, 0, None))(ts, keys, params)
        fits = lmrob_batch(*jax.vmap(robust_data, in_axes=(0, None))(ts, params))
        return jax.vmap(per_trait, in_axes=(0, 0, None, 0))(ts, keys, params, fits)

    batch.__name__ = batch.__qualname__ = f"{per_trait.__name__}_batch"
    batch.__doc__ = (f":func:`{per_trait.__name__}` of every trait of ``ts`` (``[T, width]``, keys ``[T]``), equal to it "
                     "trait by trait; with ``robust = TRUE`` its lmrob fits come from :func:`lmrob_batch`.")
    return batch


def _ivw_robust_data(t: Instruments, params: Params):
    return t.bx[:, None], t.by, ivw_weights(t, params), t.mask


mr_ivw_batch = _batched(mr_ivw, _ivw_robust_data)
mr_egger_batch = _batched(mr_egger, _egger_robust_data)
mr_egger_intercept_batch = _batched(mr_egger_intercept, _egger_robust_data)
