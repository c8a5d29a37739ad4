"""Two-sample maximum likelihood (TwoSampleMR ``mr_two_sample_ml``), solved exactly.

R minimises ``f(g, beta) = 1/2 sum((bx - g)^2/sx^2) + 1/2 sum((by - beta g)^2/sy^2)`` over the
n + 1 parameters with Nelder–Mead. For fixed ``beta`` the optimal ``g`` is closed form,
``g_j = (bx_j/sx_j^2 + beta by_j/sy_j^2) / (1/sx_j^2 + beta^2/sy_j^2)``, which leaves the profile
``f(beta) = 1/2 sum((by - beta bx)^2 / (sy^2 + beta^2 sx^2))``; we minimise it with
safeguarded Newton steps from the IVW estimate (R's start) until the Newton step is below
``CLOSE`` times the start's scale (at most ``NEWTON_STEPS``; one or two on the 731-trait
fixture), then three plain Newton steps. Nelder–Mead stops early,
so R's numbers agree with these to about 1e-4 relative, not to machine precision.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax.batch import Instruments
from mrjax.estimators.common import Estimate, Params, Reason, estimate
from mrjax.estimators.ivw import Heterogeneity, ivw_fit
from mrjax.stats import norm_pval

MIN_SNPS = 2
NEWTON_STEPS = 40
CLOSE = 1e-6  # guarded steps stop once the Newton step is this small relative to the start


class MLFit(NamedTuple):
    """``b`` (beta at the optimum), ``se`` from the inverse Hessian of the full objective,
    ``q = 2 * min f`` on ``df = n − 1``, and ``converged``."""

    b: jax.Array
    se: jax.Array
    q: jax.Array
    df: jax.Array
    converged: jax.Array


def _profile(beta, t: Instruments):
    v = t.sy * t.sy + beta * beta * t.sx * t.sx
    r = t.by - beta * t.bx
    return 0.5 * jnp.sum(jnp.where(t.mask, r * r / v, 0.0))


def _slope_and_curvature(beta, t: Instruments):
    """``f'(beta)`` and ``f''(beta)`` of the profile, written out (``r = by - beta bx``,
    ``v = sy^2 + beta^2 sx^2``): ``f' = -sum(bx r / v + beta sx^2 r^2 / v^2)``,
    ``f'' = sum(bx^2 / v + 4 beta sx^2 bx r / v^2 - sx^2 r^2 / v^2 + 4 beta^2 sx^4 r^2 / v^3)``
    (cheaper to compile than nested ``jax.grad``)."""
    sx2 = t.sx * t.sx
    v = t.sy * t.sy + beta * beta * sx2
    r = t.by - beta * t.bx
    a = sx2 * r * r / (v * v)
    slope = -jnp.sum(jnp.where(t.mask, t.bx * r / v + beta * a, 0.0))
    curvature = jnp.sum(jnp.where(t.mask, t.bx * t.bx / v + 4.0 * beta * sx2 * t.bx * r / (v * v) - a
                                  + 4.0 * beta * beta * sx2 * a / v, 0.0))
    return slope, curvature


def ml_fit(t: Instruments) -> MLFit:
    """Exact two-sample ML for one trait (see the module docstring).

    SE: the ``beta`` entry of the inverse Hessian of the full (n+1)-parameter objective, via the
    Schur complement ``1 / (H_bb - sum_j H_bj^2 / H_jj)`` with ``H_jj = 1/sx^2 + beta^2/sy^2``,
    ``H_bj = (2 beta g_j - by_j)/sy^2`` and ``H_bb = sum g_j^2/sy^2``.
    """
    start = ivw_fit(t).b
    start = jnp.where(jnp.isfinite(start), start, 0.0)
    scale = jnp.maximum(jnp.abs(start), 1e-3)

    def far(beta):
        """Whether beta is still further from the optimum than the final Newton steps reach
        (a trait without instruments, slope 0 or not finite, stops at once)."""
        g, h = _slope_and_curvature(beta, t)
        return jnp.isfinite(g) & jnp.isfinite(h) & (jnp.abs(g) > CLOSE * scale * jnp.maximum(h, 0.0))

    def step(c):
        it, beta = c
        g, h = _slope_and_curvature(beta, t)
        newton = jnp.where(h > 0, g / jnp.where(h > 0, h, 1.0), jnp.sign(g) * 0.1 * scale)
        move = jnp.clip(newton, -scale, scale)
        here = _profile(beta, t)
        # Halve the step while it does not decrease the objective (a few fixed tries).
        for _ in range(4):
            move = jnp.where(_profile(beta - move, t) > here, 0.5 * move, move)
        trial = beta - move
        return it + 1, jnp.where(_profile(trial, t) <= here, trial, beta)

    _, beta = jax.lax.while_loop(lambda c: (c[0] < NEWTON_STEPS) & far(c[1]), step, (0, start))
    # Near the optimum the objective is flat to rounding, so the guarded steps above may stall
    # ~sqrt(eps) away; finish with plain Newton steps on the gradient (quadratic convergence).
    for _ in range(3):
        g, h = _slope_and_curvature(beta, t)
        move = g / jnp.where(h > 0, h, 1.0)
        beta = jnp.where((h > 0) & (jnp.abs(move) < 1e-4 * scale), beta - move, beta)
    fmin = _profile(beta, t)
    sx2 = t.sx * t.sx
    sy2 = t.sy * t.sy
    hjj = 1.0 / sx2 + beta * beta / sy2
    g = (t.bx / sx2 + beta * t.by / sy2) / hjj
    hbj = (2.0 * beta * g - t.by) / sy2
    hbb = jnp.sum(jnp.where(t.mask, g * g / sy2, 0.0))
    schur = hbb - jnp.sum(jnp.where(t.mask, hbj * hbj / hjj, 0.0))
    se = jnp.sqrt(1.0 / jnp.where(schur > 0, schur, jnp.nan))
    g, h = _slope_and_curvature(beta, t)
    converged = jnp.abs(g) <= 1e-8 * jnp.maximum(1.0, jnp.abs(h) * scale)
    return MLFit(b=beta, se=se, q=2.0 * fmin, df=t.nsnp - 1, converged=converged)


def two_sample_ml(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """TwoSampleMR ``mr_two_sample_ml`` ("Maximum likelihood"): ``b`` and the Hessian SE of
    :func:`ml_fit` (no over-dispersion scaling), normal p. Needs 2 instruments."""
    del key, params
    f = ml_fit(t)
    n = t.nsnp
    ok = (n >= MIN_SNPS) & f.converged & jnp.isfinite(f.se)
    reason = jnp.where(n >= MIN_SNPS, Reason.NOT_CONVERGED, Reason.TOO_FEW_SNPS)
    return estimate(f.b, f.se, norm_pval(f.b / f.se), n, ok=ok, reason=reason)


def ml_heterogeneity(t: Instruments) -> Heterogeneity:
    """ML heterogeneity (TwoSampleMR ``mr_heterogeneity``, "Maximum likelihood"):
    ``Q = 2 * min f`` on n − 1 df."""
    f = ml_fit(t)
    ok = (t.nsnp >= MIN_SNPS) & f.converged
    return Heterogeneity(q=jnp.where(ok, f.q, jnp.nan), df=f.df)
