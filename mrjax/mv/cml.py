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
:func:`mrjax.mv.ivwme.newton_minimise` then takes ``theta`` to that minimum (R stops its sweeps when
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

Every (analysis, data set, ``k``) fit of a batch runs in one pool
(:func:`mrjax.estimators.pool.pooled_while`), first its sweeps, then its Newton steps: a batch no
longer sweeps all its fits as often as the slowest (a seventh of the perturbed fits of the MV
benchmark reach R's 100-sweep cap, the median takes ~30) nor takes the slowest's ~70 Newton steps
(most take none). Each fit is the same as on its own.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax.estimators.common import Reason
from mrjax.estimators.median import stable_ranks
from mrjax.estimators.pool import pooled_while
from mrjax.mv.data import MVInstruments
from mrjax.mv.draws import perturbation_normals
from mrjax.mv.fit import MVEstimate, assemble, exposure_effects, least_squares_coef, uncorrelated
from mrjax.mv.ivwme import CONVERGED_DECREMENT, NewtonState, newton_going, newton_start, newton_step, profile_objective

MAXIT = 100
TOL = 1e-7
NUM_PERT = 200  # R's num_pert
# The perturbed data sets' fits stop at a Newton decrement of 1e-12 * max(1, Q) instead of
# 1e-14: a few of 10^4 sit at rounding level between the two and ran every fit of their batch
# to the step cap (DP 17.5 -> 12.7 s on 64 benchmark analyses x 20 perturbations); their theta
# is then ~1e-6 off at worst, far inside the Monte-Carlo error of the perturbation mean.
PERTURBED_DECREMENT = 1e-12
# Fits swept / minimised at once: this fraction of a batch's fits, at least MIN_SLOTS (fewer slots
# wait less for the slowest fit at the end, more take fewer turns: on the MV benchmark 1/128 was
# fastest with 200 perturbations, 64 slots without, benchmarks/RESULTS.md).
SLOT_FRACTION = 1 / 128
MIN_SLOTS = 64


class _Lane(NamedTuple):
    """One fit's data: a data set ``bx [S, K]``, ``by [S]`` of an analysis (its ``sy``,
    ``var_x = sx^2``, ``mask``, ``xmask``) and the number ``k`` of invalid variants."""

    bx: jax.Array
    by: jax.Array
    sy: jax.Array
    var_x: jax.Array
    mask: jax.Array
    xmask: jax.Array
    k: jax.Array


class _Sweeps(NamedTuple):
    """R's sweeps of one fit: ``theta`` and ``b`` after ``it`` sweeps, the ``theta`` before
    (``old``) and the invalid set at ``theta, b`` (``bad``), which the next sweep uses."""

    lane: _Lane
    it: jax.Array
    theta: jax.Array
    b: jax.Array
    old: jax.Array
    bad: jax.Array


class _Minimum(NamedTuple):
    lane: _Lane
    valid: jax.Array
    newton: NewtonState


def _invalid_set(lane: _Lane, theta, b):
    """The ``k`` variants with the largest ``(By_j - b_j' theta)^2 / sy_j^2`` (ties: R's order)."""
    importance = (lane.by - b @ theta) ** 2 / lane.sy ** 2
    return lane.mask & (stable_ranks(-importance, lane.mask) < lane.k)


def _sweeps_start(lane: _Lane, first_ranks) -> _Sweeps:
    """R's start ``theta = 0``, ``b = Bx``; ``first_ranks`` are the variants' ranks there (by
    ``By^2 / sy^2``, the same for every ``k``)."""
    zero = jnp.zeros(lane.bx.shape[-1], lane.bx.dtype)
    return _Sweeps(lane, jnp.zeros((), jnp.int32), zero, lane.bx, zero, lane.mask & (first_ranks < lane.k))


def _sweep(s: _Sweeps) -> _Sweeps:
    """One of R's sweeps (module docstring)."""
    lane, bad = s.lane, s.bad
    target = jnp.where(bad, s.b @ s.theta, lane.by)  # By - r
    e = target - lane.bx @ s.theta
    v = lane.sy ** 2 + lane.var_x @ (s.theta * s.theta)
    b = lane.bx + lane.var_x * s.theta * (e / v)[:, None]
    rows = lane.mask.astype(b.dtype) / lane.sy
    new = least_squares_coef(b * rows[:, None], target * rows, lane.mask, lane.xmask)
    return _Sweeps(lane, s.it + 1, new, b, s.theta, _invalid_set(lane, new, b))


def _sweeping(s: _Sweeps):
    return (s.it == 0) | ((s.it < MAXIT) & (jnp.sum(jnp.abs(s.theta - s.old)) > TOL))


def _objective(lane: _Lane, valid):
    """``Q_k`` on the ``valid`` variants, and the pin of the padded exposures at 0."""
    q = profile_objective(lane.by, lane.bx, lane.sy, lane.var_x, valid.astype(lane.bx.dtype))
    return q, jnp.diag(1.0 - lane.xmask.astype(lane.bx.dtype))


def _k_values(t: MVInstruments):
    """The numbers of invalid variants tried, ``0 .. ceiling(width / 2)``, and which of them count:
    R's ``K_vec = 0:ceiling(nsnp / 2)``, and at most ``nsnp - K - 1`` (so that more variants
    than parameters stay valid)."""
    ks = jnp.arange((t.by.shape[-1] + 1) // 2 + 1)
    return ks, (ks <= jnp.ceil(t.nsnp / 2)) & (ks <= t.nsnp - t.nexp - 1)


class _BestFits(NamedTuple):
    theta: jax.Array  # [A, D, K]
    valid: jax.Array  # [A, D, S]
    found: jax.Array  # [A, D]: some k converged


def _bic_fits(ts: MVInstruments, bxs, bys, n, decrement_tol=CONVERGED_DECREMENT) -> _BestFits:
    """MVMR-cML-BIC on data sets ``bxs [A, D, S, K]``, ``bys [A, D, S]`` of every analysis of
    ``ts`` (the weights stay the analyses'): for every ``k`` that counts, R's sweeps then Newton on
    ``Q_k`` to ``decrement_tol``; per data set the fit of smallest ``BIC_k = Q_k + log(n) k``
    among those that converged. All fits of the batch share one pool (module docstring)."""
    n_analyses, n_sets, width, _ = bxs.shape
    ks, k_ok = jax.vmap(_k_values)(ts)
    ks = ks[0]
    n_ks = ks.shape[0]
    counts = jnp.broadcast_to(k_ok[:, None, :], (n_analyses, n_sets, n_ks)).ravel()
    order = jnp.argsort(~counts, stable=True)  # the fits that count, first; the others never run
    n_items = counts.shape[0]
    slots = max(MIN_SLOTS, int(n_items * SLOT_FRACTION))
    var_x = (ts.sx * ts.xmask.astype(bxs.dtype)[:, None, :]) ** 2

    first_ranks = jax.vmap(jax.vmap(stable_ranks, (0, None)))(-(bys ** 2) / ts.sy[:, None] ** 2, ts.mask)

    def where(item):
        fit = order[item]
        return fit // (n_sets * n_ks), (fit // n_ks) % n_sets, fit % n_ks

    def lane(item) -> _Lane:
        a, d, q = where(item)
        return _Lane(bxs[a, d], bys[a, d], ts.sy[a], var_x[a], ts.mask[a], ts.xmask[a], ks[q])

    def sweeps_start(item):
        a, d, _ = where(item)
        return _sweeps_start(lane(item), first_ranks[a, d])

    theta, valid = pooled_while(sweeps_start, _sweeping, _sweep, n_items, slots, total=jnp.sum(counts),
                                keep=lambda s: (s.theta, s.lane.mask & ~s.bad))

    def minimum_start(item) -> _Minimum:
        fit = lane(item)
        q, pinned = _objective(fit, valid[item])
        return _Minimum(fit, valid[item], newton_start(q, pinned, theta[item], decrement_tol))

    def minimise(m: _Minimum) -> _Minimum:
        q, pinned = _objective(m.lane, m.valid)
        return m._replace(newton=newton_step(q, pinned, m.newton, decrement_tol))

    def result(m: _Minimum):
        return m.newton.theta, m.newton.done, _objective(m.lane, m.valid)[0](m.newton.theta)

    theta, converged, q = pooled_while(minimum_start, lambda m: newton_going(m.newton), minimise, n_items, slots,
                                       total=jnp.sum(counts), keep=result)
    by_fit = lambda a: jnp.zeros_like(a).at[order].set(a).reshape((n_analyses, n_sets, n_ks) + a.shape[1:])  # noqa: E731
    theta, valid, converged, q = by_fit(theta), by_fit(valid), by_fit(converged), by_fit(q)
    bic = jnp.where(k_ok[:, None, :] & converged, q + jnp.log(n) * ks, jnp.inf)
    best = jnp.argmin(bic, axis=-1)[..., None]
    pick = lambda a: jnp.take_along_axis(a, best.reshape(best.shape + (1,) * (a.ndim - 3)), axis=2)[:, :, 0]  # noqa: E731
    return _BestFits(theta=pick(theta), valid=pick(valid), found=jnp.isfinite(jnp.min(bic, axis=-1)))


def _hessian_se(t: MVInstruments, theta, valid, bx, var_x):
    """``sqrt(diag(H^-1))``, ``H`` the Hessian of ``Q / 2`` at ``theta`` on the ``valid`` variants."""
    q = profile_objective(t.by, bx, t.sy, var_x, valid.astype(bx.dtype))
    hess = 0.5 * jax.hessian(q)(theta) + jnp.diag(1.0 - t.xmask.astype(bx.dtype))
    return jnp.sqrt(jnp.diag(jnp.linalg.inv(hess)))


def _perturbed(t: MVInstruments, key, bx, num_pert: int):
    """R's ``num_pert`` perturbed data sets ``bx + sx Z``, ``by + sy Z'`` (``[num_pert, S, K]``,
    ``[num_pert, S]``; padded rows and exposures stay 0), drawn from ``key`` slot by slot."""
    ex, ey = perturbation_normals(key, num_pert, t.bx.shape, t.bx.dtype)
    keep = t.mask.astype(bx.dtype)[:, None] * t.xmask.astype(bx.dtype)[None, :]
    return bx + t.sx * keep * jnp.stack(ex, axis=-1), t.by + t.sy * t.mask * ey


def mv_cml_batch(ts: MVInstruments, keys, *, n: float, dp: bool = True, num_pert: int = NUM_PERT) -> MVEstimate:
    """:func:`mv_cml` of every analysis of a batch (``[A, ...]`` instruments, ``[A]`` keys),
    equal to it analysis by analysis, with every fit of the batch in one pool."""
    if dp and num_pert < 2:
        raise ValueError(f"mv_cml with data perturbation needs num_pert >= 2 (got {num_pert}); dp=False runs without")
    bx, var_x = jax.vmap(exposure_effects)(ts)
    if dp:
        bxs, bys = jax.vmap(lambda t, k, b: _perturbed(t, k, b, num_pert))(ts, keys, bx)
        fits = _bic_fits(ts, bxs, bys, n, PERTURBED_DECREMENT)
        used = fits.found.astype(bx.dtype)[..., None]
        count = jnp.sum(used, axis=1)
        theta = jnp.sum(used * fits.theta, axis=1) / count
        se = jnp.sqrt(jnp.sum(used * (fits.theta - theta[:, None]) ** 2, axis=1) / jnp.where(count > 1, count - 1, jnp.nan))
        found = count[:, 0] > 1
    else:
        fits = _bic_fits(ts, bx[:, None], ts.by[:, None], n)
        theta, found = fits.theta[:, 0], fits.found[:, 0]
        se = jax.vmap(_hessian_se)(ts, theta, fits.valid[:, 0], bx, var_x)

    def finish(t, theta, se, found):
        enough = t.nsnp > t.nexp + 1
        reason = jnp.where(uncorrelated(t), jnp.where(enough, Reason.NOT_CONVERGED, Reason.TOO_FEW_SNPS), Reason.NOT_APPLICABLE)
        return assemble(t, theta, se, p_df=jnp.inf, ci_df=jnp.inf, ok=uncorrelated(t) & enough & found, reason=reason)

    return jax.vmap(finish)(ts, theta, se, found)


def mv_cml(t: MVInstruments, key, *, n: float, dp: bool = True, num_pert: int = NUM_PERT) -> MVEstimate:
    """``mr_mvcML(object, n = n, DP = dp, num_pert = num_pert)`` (module docstring); needs
    ``nsnp > K + 1``. With ``dp`` the estimate and SE are the mean and SD of the BIC estimates of
    the perturbed data sets whose fit converged (at least 2 are needed)."""
    one = jax.tree_util.tree_map(lambda a: a[None], (t, key))
    return jax.tree_util.tree_map(lambda a: a[0], mv_cml_batch(*one, n=n, dp=dp, num_pert=num_pert))
