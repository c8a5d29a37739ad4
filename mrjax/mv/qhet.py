"""Q minimisation with heterogeneity, robust to weak instruments (MVMR ``qhet_mvmr``;
Sanderson, Spiller & Bowden 2021, Stat Med 40:5434), with the exposures' phenotypic correlation
``pcor`` (R's argument; default the identity).

``Q(b, tau2) = sum_j (By_j - Bx_j' b)^2 / (sy_j^2 + b' Sx_j b + tau2)`` with ``Sx_j = pcor o (sx_j sx_j')``
(R's ``cov``).
The heterogeneity ``tau2`` is where ``min_b Q(b, tau2)`` equals R's degrees of freedom
``nsnp - 2`` (as coded, whatever the number of exposures), 0 when the minimum at ``tau2 = 0`` is
already at or below it; the estimate is ``argmin_b Q(b, tau2)``. Each minimum over ``b`` is
:func:`mrjax.mv.ivwme.newton_minimise`'s (from mv_ivwme's start at ``tau2 = 0``, then warm). ``tau2``
from 0 by Newton steps on ``min_b Q``, its derivative ``-sum_j e_j^2 / w_j^2`` by the envelope
theorem, kept inside the bracket of the values seen (``min_b Q`` above ``nsnp - 2`` at the lower
end, at or below it at the upper): a step that leaves it is replaced by the midpoint. Each
``Q(b, .)`` is convex and decreasing, but ``min_b Q`` need not be convex in ``tau2``: on 23 of the
MV benchmark's 731 simulated analyses the bare Newton step from 0 overshot far below the root,
was floored back to 0 and cycled (NaN); with the bracket they reach the root, which equals an
independent scipy reference (tests/test_mv_qhet.py). It stops once ``|min_b Q - (nsnp - 2)| <=
1e-12 (nsnp - 2)`` (at most :data:`TAU_STEPS` updates). A minimisation that does not converge
from the warm start (on 2 of the 731 it ran off along a valley) is started once more from the
``tau2 = 0`` minimiser. ``converged`` needs every minimisation to have converged and that gap
below ``1e-9 (nsnp - 2)``, else the analysis is NaN.

Where R differs, and why mrjax does not follow it: R finds ``tau2`` with ``optimize()`` on
``(-10, 10)`` minimising ``(min_b Q - (nsnp - 2))^2``, each ``min_b Q`` a Nelder–Mead ``optim()``
from 0, and then uses the minimised *objective value* (``limltauest$objective``) as ``tau2``, not
the minimiser. Solved exactly, that value is 0 whenever the root exists, and the estimate would
be mv_ivwme's; R's non-zero value is its optimisers' residual (on the lipids golden R's estimate is
the minimum of ``Q(., tau2)`` for a ``tau2`` about 20 times the root: tests/test_mvmr_golden.py).
mrjax uses the minimiser, the paper's method. A negative ``tau2`` (R's interval allows it) would
make weights negative; the floor is 0. ``qhet_mvmr(CI = FALSE)`` gives estimates only, so ``se``,
``pval`` and the CI are NaN (its ``CI = TRUE`` bootstrap is not offered); ``tau2`` itself, which R
does not return, is reported (``overdispersion``). With a correlation
matrix the analysis is NaN (not applicable).

A batch runs its analyses in one pool (:func:`mrjax.estimators.pool.pooled_while`), each slot
stepping through its analysis's Newton minimisations and ``tau2`` updates: most analyses need ~11
Newton steps in all, a few reach the 100-step cap in one minimisation, and a batch no longer
takes every analysis through the slowest's steps of every round.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax.estimators.common import Reason
from mrjax.estimators.pool import pooled_while
from mrjax.mv.data import MVInstruments
from mrjax.mv.fit import MVEstimate, assemble, exposure_correlation, exposure_effects, uncorrelated
from mrjax.mv.ivwme import ALTERNATING_STEPS, NewtonState, _alternate, newton_going, newton_start, newton_step
from mrjax.mv.strength import snp_quadratic

TAU_STEPS = 60  # the most tau2 updates; an analysis stops once |min_b Q - df| <= ROOT_TOL df
ROOT_TOL = 1e-12
# Analyses stepped at once: this fraction of a batch, at least MIN_SLOTS (731 benchmark analyses
# on one padded batch, warm: 1/4 0.79 s, 1/16 0.31 s, 1/64 0.21 s, 1/256 0.29 s; all at once 1.71 s).
SLOT_FRACTION = 1 / 64
MIN_SLOTS = 8


class _Data(NamedTuple):
    """One analysis's outcome effects and SEs, exposure effects and variances ``sx^2`` (padded rows
    and columns zero), with a ``pcor`` their covariances ``Sx_j = pcor o (sx_j sx_j')``
    (``[S, K, K]``; without one None), mask and degrees of freedom ``nsnp - 2``."""

    by: jax.Array
    bx: jax.Array
    sy: jax.Array
    var_x: jax.Array
    cov_x: jax.Array | None
    mask: jax.Array
    xmask: jax.Array
    df: jax.Array


class _Search(NamedTuple):
    """Where an analysis's search is: ``rounds`` tau2 updates made, ``tau2``, the Newton
    minimisation over ``b`` at that ``tau2``, whether every finished one converged, the bracket
    ``lo < root < hi`` (``min_b Q`` above ``df`` at ``lo``, not above at ``hi``), whether the
    root is ``found``, the ``tau2 = 0`` minimiser ``theta0`` and whether the minimisation at this
    ``tau2`` was ``retried`` from it."""

    data: _Data
    rounds: jax.Array
    tau2: jax.Array
    newton: NewtonState
    ok: jax.Array
    lo: jax.Array
    hi: jax.Array
    found: jax.Array
    theta0: jax.Array
    retried: jax.Array


def _q(d: _Data, tau2):
    """``Q(., tau2)``: ``sum_j (By_j - Bx_j' b)^2 / (sy_j^2 + b' Sx_j b + tau2)`` over the real rows."""

    def q(theta):
        e = (d.by - d.bx @ theta) * d.mask
        return jnp.sum(e * e / (d.sy ** 2 + _spread(d, theta) + tau2))

    return q


def _pinned(d: _Data):
    return jnp.diag(1.0 - d.xmask.astype(d.bx.dtype))


def _slope(d: _Data, tau2, theta):
    """``d min_b Q / d tau2 = -sum_j e_j^2 / w_j^2`` at ``theta = argmin_b Q(b, tau2)``."""
    e = (d.by - d.bx @ theta) * d.mask
    w = d.sy ** 2 + _spread(d, theta) + tau2
    return -jnp.sum(e * e / (w * w))


def _data(t: MVInstruments, pcor) -> _Data:
    bx, var_x = exposure_effects(t)
    sx = t.sx * t.xmask * t.mask[:, None]
    cov_x = None if pcor is None else pcor[None] * sx[:, :, None] * sx[:, None, :]
    return _Data(t.by, bx, t.sy, var_x, cov_x, t.mask, t.xmask, t.nsnp - 2.0)


def _spread(d: _Data, theta):
    """``b' Sx_j b`` for every SNP ``j`` (``sum_k sx_jk^2 b_k^2`` without a ``pcor``: the same
    value, ~15 % faster on the 731 benchmark analyses than the K x K form)."""
    return d.var_x @ (theta * theta) if d.cov_x is None else snp_quadratic(d.cov_x, theta)


def _at_root(d: _Data, tau2, excess, tol):
    return (jnp.abs(excess) <= tol * d.df) | ((tau2 == 0.0) & (excess <= 0.0))


def _step(s: _Search) -> _Search:
    """A Newton step at the current ``tau2`` or, once that minimisation has stopped, either the
    root (``|excess| <= ROOT_TOL df``) or the next ``tau2``: a Newton step on ``min_b Q - df``
    where it lands inside the bracket, else the bracket's midpoint (a step can overshoot where
    ``min_b Q`` is not convex in ``tau2``; the bare Newton iteration then cycled), and a fresh
    minimisation from the current ``theta``. A minimisation that did not converge is first
    retried once from ``theta0``."""
    d, theta = s.data, s.newton.theta
    stepped = s._replace(newton=newton_step(_q(d, s.tau2), _pinned(d), s.newton))
    excess = _q(d, s.tau2)(theta) - d.df
    lo, hi = jnp.where(excess > 0, s.tau2, s.lo), jnp.where(excess > 0, s.hi, s.tau2)
    newton = s.tau2 - excess / _slope(d, s.tau2, theta)
    inside = jnp.isfinite(newton) & (newton > lo) & (newton < hi)
    tau2 = jnp.where(inside, newton, jnp.where(jnp.isinf(hi), 2.0 * lo, 0.5 * (lo + hi)))
    retry = ~s.newton.done & ~s.retried & (s.rounds > 0)
    kept = lambda old, new: jnp.where(retry, old, new)  # noqa: E731 (a retry keeps tau2, the bracket, ok)
    tau2, ok = kept(s.tau2, tau2), kept(s.ok, s.ok & s.newton.done)
    start = newton_start(_q(d, tau2), _pinned(d), kept(s.theta0, theta))
    moved_on = _Search(d, s.rounds + kept(0, 1), tau2, start, ok, kept(s.lo, lo), kept(s.hi, hi), s.found,
                       jnp.where(s.rounds == 0, theta, s.theta0), retry)
    root = _at_root(d, s.tau2, excess, ROOT_TOL) & ~retry
    settled = jax.tree_util.tree_map(lambda a, b: jnp.where(root, a, b), s._replace(ok=ok, found=True), moved_on)
    minimising = newton_going(s.newton)
    return jax.tree_util.tree_map(lambda a, b: jnp.where(minimising, a, b), stepped, settled)


def _searching(s: _Search):
    return newton_going(s.newton) | (~s.found & (s.rounds < TAU_STEPS))


def mv_qhet_batch(ts: MVInstruments, keys, *, pcor=None) -> MVEstimate:
    """:func:`mv_qhet` of every analysis of a batch (``[A, ...]``), equal to it analysis by
    analysis, the analyses in one pool (module docstring)."""
    del keys
    pcor = exposure_correlation(pcor, ts.bx.shape[-1], ts.bx.dtype, "mv_qhet", "pcor")
    data = jax.vmap(lambda t: _data(t, pcor))(ts)
    # The start is mv_ivwme's alternation, which takes the variances only.
    starts = jax.vmap(lambda t, d: _alternate(t, d.bx, lambda theta: d.var_x * theta, ALTERNATING_STEPS))(ts, data)

    def load(a):
        d = jax.tree_util.tree_map(lambda x: x[a], data)
        zero = jnp.zeros((), d.bx.dtype)
        return _Search(d, jnp.zeros((), jnp.int32), zero, newton_start(_q(d, zero), _pinned(d), starts[a]),
                       jnp.ones((), bool), zero, jnp.full((), jnp.inf, d.bx.dtype), jnp.zeros((), bool), starts[a],
                       jnp.zeros((), bool))

    def result(s: _Search):
        excess = _q(s.data, s.tau2)(s.newton.theta) - s.data.df
        return s.newton.theta, s.tau2, s.ok & s.newton.done & _at_root(s.data, s.tau2, excess, 1e-9)

    n = ts.by.shape[0]
    theta, tau2, ok = pooled_while(load, _searching, _step, n, max(MIN_SLOTS, int(n * SLOT_FRACTION)), keep=result)
    return jax.vmap(_finish)(ts, theta, tau2, ok)


def _finish(t: MVInstruments, theta, tau2, ok) -> MVEstimate:
    enough = (t.nsnp > t.nexp) & (t.nsnp > 2)
    nan = jnp.full_like(theta, jnp.nan)
    independent = uncorrelated(t)
    reason = jnp.where(independent, jnp.where(enough, Reason.NOT_CONVERGED, Reason.TOO_FEW_SNPS), Reason.NOT_APPLICABLE)
    return assemble(t, theta, nan, p_df=jnp.inf, ci_df=jnp.inf, ok=independent & enough & ok, reason=reason,
                    estimate_only=True, overdispersion=tau2)


def mv_qhet(t: MVInstruments, key, *, pcor=None) -> MVEstimate:
    """``qhet_mvmr(F.data, pcor, CI = FALSE)`` with ``tau2`` the root (module docstring);
    ``pcor`` the exposures' phenotypic correlation, ``K x K`` over the exposure columns (None:
    the identity); needs ``nsnp > K`` and ``nsnp > 2``."""
    one = jax.tree_util.tree_map(lambda a: a[None], (t, key))
    return jax.tree_util.tree_map(lambda a: a[0], mv_qhet_batch(*one, pcor=pcor))
