"""MVMR-cML-BIC, with and without data perturbation (MendelianRandomization ``mr_mvcML``; Lin,
Xue & Pan 2023).

For each number ``k = 0 .. ceiling(nsnp / 2)`` of invalid variants (R's ``K_vec`` default; ``k``
above ``nsnp - K - 1``, which would leave no more valid variants than parameters, are left out),
R's iteration from ``theta = 0``, ``b = Bx`` (its one start; at most :data:`MAXIT` sweeps):
the ``k`` variants with the largest ``(By_j - b_j' theta)^2 / sy_j^2`` get a free pleiotropic
effect ``r_j = By_j - b_j' theta`` (0 for the others); the true exposure effects
``b_j = Bx_j + Sx_j theta (By_j - r_j - Bx_j' theta) / v_j`` (``v_j = sy_j^2 + theta' Sx_j
theta``, ``Sx_j = diag(sx_j^2)``: the joint likelihood's minimum in ``b_j``); ``theta`` the
weighted regression of ``By - r`` on ``b`` (weights ``sy^-2``). On the valid
variants this is the alternation of :mod:`mrjax.mv.ivwme`, whose fixed point minimises the profile
``Q_k(theta) = sum_valid (By_j - Bx_j' theta)^2 / v_j``; the sweeps fix the invalid set and
:func:`mrjax.mv.ivwme._newton` then takes ``theta`` to that minimum (R stops its sweeps when
``theta`` moves little, ~5e-5 relative short of it on the lipids golden). ``BIC_k = Q_k + log(n) k``
(twice the negative log-likelihood plus the penalty); the estimate is the ``theta`` of the smallest
BIC, its SE ``sqrt(diag(H^-1))`` with ``H`` the Hessian of ``Q_k / 2`` on the valid variants (R:
``numDeriv::hessian`` of the same profile; here exact). Normal CI and p. ``n`` is the GWAS sample
size (R's ``n``). R drops a ``k`` whose sweeps did not settle within ``maxit``; here a ``k``
counts when its Newton iteration converged.

Data perturbation (``dp``, R's default ``DP = TRUE``): the same BIC fit on ``num_pert`` data sets
``Bx + sx Z``, ``By + sy Z'`` (standard normals from the analysis key, slot by slot, so padding
never changes them; R: its own ``seed = 314159265``), with the weights of the data; the estimate
is the mean of their ``theta``, the SE their SD, over the data sets whose fit converged (R's
``eff_DP_B``). Monte-Carlo: it matches R's within the error of R's 200 perturbations. With a
correlation matrix the analysis is NaN (not applicable).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax.estimators.common import Reason
from mrjax.mv.data import MVInstruments
from mrjax.mv.fit import MVEstimate, assemble, least_squares, scale_rows, uncorrelated
from mrjax.mv.draws import perturbation_normals
from mrjax.mv.ivwme import CONVERGED_DECREMENT, _newton, profile_objective

MAXIT = 100
TOL = 1e-7
NUM_PERT = 200  # R's num_pert
# The perturbed data sets' fits stop at a Newton decrement of 1e-12 * max(1, Q) instead of
# 1e-14: a few of 10^4 sit at rounding level between the two and ran every fit of their batch
# to the step cap (DP 17.5 -> 12.7 s on 64 benchmark analyses x 20 perturbations); their theta
# is then ~1e-6 off at worst, far inside the Monte-Carlo error of the perturbation mean.
PERTURBED_DECREMENT = 1e-12


class _KFit(NamedTuple):
    theta: jax.Array
    valid: jax.Array
    q: jax.Array
    converged: jax.Array


def _fit_k(t: MVInstruments, k, bx, by, var_x, decrement_tol=CONVERGED_DECREMENT):
    """R's sweeps for ``k`` invalid variants, then Newton on ``Q_k`` (module docstring) to
    ``decrement_tol``."""
    m = t.mask

    def invalid_set(theta, b):
        importance = jnp.where(m, (by - b @ theta) ** 2 / t.sy ** 2, -jnp.inf)
        rank = jnp.argsort(jnp.argsort(-importance, stable=True), stable=True)
        return m & (rank < k)

    def sweep(state):
        it, theta, b, _ = state
        bad = invalid_set(theta, b)
        target = jnp.where(bad, b @ theta, by)  # By - r
        e = target - bx @ theta
        v = t.sy ** 2 + var_x @ (theta * theta)
        b = bx + var_x * theta * (e / v)[:, None]
        xw, yw = scale_rows(t, b, target)
        new = least_squares(xw, yw, m, t.xmask).coef
        return it + 1, new, b, theta

    def going(state):
        it, theta, _, old = state
        return (it == 0) | ((it < MAXIT) & (jnp.sum(jnp.abs(theta - old)) > TOL))

    zero = jnp.zeros(bx.shape[-1], bx.dtype)
    _, theta, b, _ = jax.lax.while_loop(going, sweep, (jnp.zeros((), jnp.int32), zero, bx, zero))
    valid = m & ~invalid_set(theta, b)
    q = profile_objective(by, bx, t.sy, var_x, valid.astype(bx.dtype))
    pinned = jnp.diag(1.0 - t.xmask.astype(bx.dtype))
    theta, converged = _newton(q, pinned, theta, decrement_tol)
    return _KFit(theta=theta, valid=valid, q=q(theta), converged=converged)


def _k_values(t: MVInstruments):
    """The numbers of invalid variants tried, ``0 .. ceiling(width / 2)``, and which of them count:
    R's ``K_vec = 0:ceiling(nsnp / 2)``, and at most ``nsnp - K - 1`` (so that more variants
    than parameters stay valid)."""
    ks = jnp.arange((t.by.shape[0] + 1) // 2 + 1)
    return ks, (ks <= jnp.ceil(t.nsnp / 2)) & (ks <= t.nsnp - t.nexp - 1)


def _bic_fit(t: MVInstruments, bx, by, var_x, n, decrement_tol=CONVERGED_DECREMENT) -> tuple[_KFit, jax.Array]:
    """MVMR-cML-BIC on one data set (``bx``, ``by``; the weights stay the analysis's): the fit
    of every ``k``, the one of smallest ``BIC_k = Q_k + log(n) k`` among those that converged,
    and whether there was one."""
    ks, k_ok = _k_values(t)
    # A k that does not count is fitted as the largest that does (a cheap duplicate, masked
    # below): left as is it would leave too few valid variants, and its Newton iteration would
    # run to its cap, holding up every fit of the batch.
    largest = jnp.max(jnp.where(k_ok, ks, 0))
    fits = jax.vmap(lambda k: _fit_k(t, jnp.minimum(k, largest), bx, by, var_x, decrement_tol))(ks)
    bic = jnp.where(k_ok & fits.converged, fits.q + jnp.log(n) * ks, jnp.inf)
    best = jax.tree_util.tree_map(lambda a: a[jnp.argmin(bic)], fits)
    return best, jnp.isfinite(jnp.min(bic))


def _hessian_se(t: MVInstruments, best: _KFit, bx, var_x):
    """``sqrt(diag(H^-1))``, ``H`` the Hessian of ``Q / 2`` on ``best``'s valid variants."""
    q = profile_objective(t.by, bx, t.sy, var_x, best.valid.astype(bx.dtype))
    hess = 0.5 * jax.hessian(q)(best.theta) + jnp.diag(1.0 - t.xmask.astype(bx.dtype))
    return jnp.sqrt(jnp.diag(jnp.linalg.inv(hess)))


def _perturbed(t: MVInstruments, key, bx, num_pert: int):
    """R's ``num_pert`` perturbed data sets ``bx + sx Z``, ``by + sy Z'`` (``[num_pert, S, K]``,
    ``[num_pert, S]``; padded rows and exposures stay 0), drawn from ``key`` slot by slot."""
    ex, ey = perturbation_normals(key, num_pert, t.bx.shape, t.bx.dtype)
    keep = t.mask.astype(bx.dtype)[:, None] * t.xmask.astype(bx.dtype)[None, :]
    return bx + t.sx * keep * jnp.stack(ex, axis=-1), t.by + t.sy * t.mask * ey


def mv_cml(t: MVInstruments, key, *, n: float, dp: bool = True, num_pert: int = NUM_PERT) -> MVEstimate:
    """``mr_mvcML(object, n = n, DP = dp, num_pert = num_pert)`` (module docstring); needs
    ``nsnp > K + 1``. With ``dp`` the estimate and SE are the mean and SD of the BIC estimates of
    the perturbed data sets whose fit converged (at least 2 are needed)."""
    if dp and num_pert < 2:
        raise ValueError(f"mv_cml with data perturbation needs num_pert >= 2 (got {num_pert}); dp=False runs without")
    cols = t.xmask.astype(t.bx.dtype)
    bx = t.bx * cols * t.mask[:, None]
    var_x = (t.sx * cols) ** 2
    if dp:
        bxs, bys = _perturbed(t, key, bx, num_pert)
        fits, found = jax.vmap(lambda bxi, byi: _bic_fit(t, bxi, byi, var_x, n, PERTURBED_DECREMENT))(bxs, bys)
        used = found.astype(bx.dtype)
        count = jnp.sum(used)
        theta = jnp.sum(used[:, None] * fits.theta, axis=0) / count
        spread = jnp.sum(used[:, None] * (fits.theta - theta) ** 2, axis=0)
        se = jnp.sqrt(spread / jnp.where(count > 1, count - 1, jnp.nan))
        found = count > 1
    else:
        best, found = _bic_fit(t, bx, t.by, var_x, n)
        theta, se = best.theta, _hessian_se(t, best, bx, var_x)
    enough = t.nsnp > t.nexp + 1
    reason = jnp.where(uncorrelated(t), jnp.where(enough, Reason.NOT_CONVERGED, Reason.TOO_FEW_SNPS), Reason.NOT_APPLICABLE)
    return assemble(t, theta, se, p_df=jnp.inf, ci_df=jnp.inf, ok=uncorrelated(t) & enough & found, reason=reason)
