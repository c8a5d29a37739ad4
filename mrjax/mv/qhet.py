"""Q minimisation with heterogeneity, robust to weak instruments (MVMR ``qhet_mvmr``;
Sanderson, Spiller & Bowden 2021, Stat Med 40:5434), phenotypic correlation the identity (R's
``pcor = diag(K)``).

``Q(b, tau2) = sum_j (By_j - Bx_j' b)^2 / (sy_j^2 + b' Sx_j b + tau2)`` with ``Sx_j = diag(sx_j^2)``.
The heterogeneity ``tau2`` is where ``min_b Q(b, tau2)`` equals R's degrees of freedom
``nsnp - 2`` (as coded, whatever the number of exposures), 0 when the minimum at ``tau2 = 0`` is
already at or below it; the estimate is ``argmin_b Q(b, tau2)``. Each minimum over ``b`` is
:func:`mrjax.mv.ivwme._newton`'s (from mv_ivwme's start at ``tau2 = 0``, then warm); ``tau2`` by
:data:`TAU_STEPS` Newton steps on ``min_b Q`` from 0, its derivative ``-sum_j e_j^2 / w_j^2`` by the
envelope theorem (``Q`` is convex and decreasing in ``tau2``, so the steps climb to the root from
below). ``converged`` needs every minimum found and ``|min_b Q - (nsnp - 2)| <= 1e-9 (nsnp - 2)``.

Where R differs, and why mrjax does not follow it: R finds ``tau2`` with ``optimize()`` on
``(-10, 10)`` minimising ``(min_b Q - (nsnp - 2))^2``, each ``min_b Q`` a Nelder–Mead ``optim()``
from 0, and then uses the minimised *objective value* (``limltauest$objective``) as ``tau2``, not
the minimiser. Solved exactly, that value is 0 whenever the root exists, and the estimate would
be mv_ivwme's; R's non-zero value is its optimisers' residual (on the lipids golden R's estimate is
the minimum of ``Q(., tau2)`` for a ``tau2`` about 20 times the root: tests/test_mvmr_golden.py).
mrjax uses the minimiser, the paper's method. A negative ``tau2`` (R's interval allows it) would
make weights negative; the floor is 0. ``qhet_mvmr(CI = FALSE)`` gives estimates only, so ``se``,
``pval`` and the CI are NaN (its ``CI = TRUE`` bootstrap is not offered). With a correlation
matrix the analysis is NaN (not applicable).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mrjax.estimators.common import Reason
from mrjax.mv.data import MVInstruments
from mrjax.mv.fit import MVEstimate, assemble, uncorrelated
from mrjax.mv.ivwme import ALTERNATING_STEPS, _alternate, _newton, profile_objective

TAU_STEPS = 12


def _q(t: MVInstruments, bx, var_x, tau2):
    return profile_objective(t.by, bx, t.sy, var_x, t.mask.astype(bx.dtype), tau2)


def _slope(t: MVInstruments, bx, var_x, tau2, theta):
    """``d min_b Q / d tau2 = -sum_j e_j^2 / w_j^2`` at ``theta = argmin_b Q(b, tau2)``."""
    e = (t.by - bx @ theta) * t.mask
    w = t.sy ** 2 + var_x @ (theta * theta) + tau2
    return -jnp.sum(e * e / (w * w))


def mv_qhet(t: MVInstruments, key) -> MVEstimate:
    """``qhet_mvmr(F.data, pcor = diag(K), CI = FALSE)`` with ``tau2`` the root (module
    docstring); needs ``nsnp > K`` and ``nsnp > 2``."""
    del key
    cols = t.xmask.astype(t.bx.dtype)
    bx = t.bx * cols * t.mask[:, None]
    var_x = (t.sx * cols) ** 2
    pinned = jnp.diag(1.0 - cols)
    df = t.nsnp - 2.0
    tau2 = jnp.zeros((), bx.dtype)
    theta, ok = _newton(_q(t, bx, var_x, tau2), pinned, _alternate(t, bx, var_x, ALTERNATING_STEPS))

    def tau_step(_, state):  # a loop, not unrolled: one Newton iteration to compile, not TAU_STEPS
        tau2, theta, ok = state
        excess = _q(t, bx, var_x, tau2)(theta) - df
        tau2 = jnp.maximum(tau2 - excess / _slope(t, bx, var_x, tau2, theta), 0.0)
        theta, done = _newton(_q(t, bx, var_x, tau2), pinned, theta)
        return tau2, theta, ok & done

    tau2, theta, ok = jax.lax.fori_loop(0, TAU_STEPS, tau_step, (tau2, theta, ok))
    excess = _q(t, bx, var_x, tau2)(theta) - df
    at_root = (jnp.abs(excess) <= 1e-9 * df) | ((tau2 == 0.0) & (excess <= 0.0))
    enough = (t.nsnp > t.nexp) & (t.nsnp > 2)
    nan = jnp.full_like(theta, jnp.nan)
    independent = uncorrelated(t)
    reason = jnp.where(independent, jnp.where(enough, Reason.NOT_CONVERGED, Reason.TOO_FEW_SNPS), Reason.NOT_APPLICABLE)
    return assemble(t, theta, nan, p_df=jnp.inf, ci_df=jnp.inf, ok=independent & enough & ok & at_root, reason=reason,
                    estimate_only=True)
