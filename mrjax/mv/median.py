"""MV-median (MendelianRandomization ``mr_mvmedian``): weighted L1 regression and its bootstrap.

R: ``quantreg::rq(By ~ Bx - 1, weights = Byse^-2)``, i.e. ``b = argmin sum_j w_j |By_j - Bx_j b|``
with ``w = Byse^-2`` (rq multiplies the rows by the weights), solved exactly by
:func:`mrjax.mv.l1.l1_fit` (a simplex walk over the LP's vertices that stops at each fit's own
optimum, with an exact optimality test). This reproduces the simplex (Barrodale–Roberts)
solution of ``rq`` whenever the optimum is unique (tests/test_mv_median.py: against scipy's
HiGHS LP).

SE: standard deviation of ``n_boot`` parametric-bootstrap fits with ``By* ~ N(By, Byse^2)``,
``Bx* ~ N(Bx, Bxse^2)`` (weights stay ``Byse^-2``), drawn from the analysis key — so it
matches R's up to Monte-Carlo error (R uses 10000 draws with its own seed). Normal CI and p.
Every bootstrap fit starts from IRLS steps (``BOOT_IRLS_STEPS``, from the point estimate) and
walks to its exact optimum; a draw whose fit did not converge is not silently used or dropped:
the analysis is then NaN with reason ``NOT_CONVERGED`` (it takes a singular vertex or more
than ``mrjax.mv.l1.MAX_PIVOTS`` pivots, which the data sets we checked never need).

The engine runs :func:`mv_median_batch`: the same numbers as :func:`mv_median` for each
analysis, with the bootstrap fits of every analysis of the call held column by column and
walked as one pool (most need at most one or two pivots, a few up to ~10). Two IRLS steps
start them: more steps cost more than the pivots they save (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mrjax.estimators.common import Reason
from mrjax.mv.data import MVInstruments
from mrjax.mv.draws import perturbation_normals
from mrjax.mv.fit import MVEstimate, assemble
from mrjax.mv.l1 import columns, irls_start, irls_start_columns, l1_fit, masked, walk_pooled

BOOT_IRLS_STEPS = 2


def _bootstrap_problems(t: MVInstruments, key, b, n_boot: int):
    """The ``n_boot`` perturbed fits of one analysis: designs ``x [B, S, K]``, outcomes
    ``y [B, S]`` (padded slots not yet zeroed: the fits mask them) and each fit's starting
    basis ``[B, K]`` (IRLS steps from the point estimate)."""
    w = 1.0 / (t.sy * t.sy)
    ex, ey = perturbation_normals(key, n_boot, t.bx.shape, t.bx.dtype)
    x, y = t.bx + t.sx * jnp.stack(ex, axis=-1), t.by + t.sy * ey
    start = jax.vmap(lambda xi, yi: irls_start(*masked(xi, yi, w, t.mask, t.xmask), t.mask, t.xmask, b0=b,
                                               steps=BOOT_IRLS_STEPS))(x, y)
    return x, y, start


def _pooled_problems(ts: MVInstruments, keys, n_boot: int):
    """The bootstrap fits of every analysis of ``ts`` (``[A, S, K]``) as ``A x n_boot`` fits
    held by column (:func:`mrjax.mv.l1.columns`, padded rows and columns zeroed), and their
    row masks ``[A x n_boot, S]``: the draws of :func:`_bootstrap_problems`, never stacked
    into a ``[.., S, K]`` design."""
    a, s, k = ts.bx.shape
    ex, ey = jax.vmap(lambda key: perturbation_normals(key, n_boot, (s, k), ts.bx.dtype))(keys)
    rows = ts.mask[:, None, :]

    def flat(v):
        return jnp.broadcast_to(v, (a, n_boot, s)).reshape(a * n_boot, s)

    xs = [flat(jnp.where(rows & ts.xmask[:, None, None, c], ts.bx[:, None, :, c] + ts.sx[:, None, :, c] * ex[c], 0.0))
          for c in range(k)]
    y = flat(jnp.where(rows, ts.by[:, None, :] + ts.sy[:, None, :] * ey, 0.0))
    w = flat(jnp.where(rows, 1.0 / (ts.sy * ts.sy)[:, None, :], 0.0))
    cols = [jnp.repeat(ts.xmask[:, c], n_boot) for c in range(k)]
    return columns(xs, y, w, cols), flat(rows)


def _point(t: MVInstruments):
    return l1_fit(t.bx, t.by, 1.0 / (t.sy * t.sy), t.mask, t.xmask)


def _estimate(t: MVInstruments, point, draws, draws_ok) -> MVEstimate:
    """Assemble one analysis's result from its point fit and bootstrap fits ``draws [B, K]``
    (``None``: no bootstrap, SE NaN)."""
    enough = t.nsnp > t.nexp
    converged = point.converged
    if draws is None:
        se = jnp.full_like(point.b, jnp.nan)
    else:
        converged = converged & jnp.all(draws_ok)
        se = jnp.std(draws, axis=0, ddof=1)
    return assemble(t, point.b, se, p_df=jnp.inf, ci_df=jnp.inf, ok=enough & converged,
                    reason=jnp.where(enough, Reason.NOT_CONVERGED, Reason.TOO_FEW_SNPS), estimate_only=draws is None)


def mv_median(t: MVInstruments, key, *, n_boot: int = 1000) -> MVEstimate:
    """MV-median estimate (deterministic) with bootstrap SE (``n_boot = 0``: estimate only,
    SE NaN); needs ``nsnp > K``. One analysis; :func:`mv_median_batch` computes the same for
    a batch of analyses with the bootstrap fits pooled."""
    point = _point(t)
    if n_boot == 0:
        return _estimate(t, point, None, None)
    x, y, start = _bootstrap_problems(t, key, point.b, n_boot)
    w = 1.0 / (t.sy * t.sy)
    fits = jax.vmap(lambda xi, yi, si: l1_fit(xi, yi, w, t.mask, t.xmask, si))(x, y, start)
    return _estimate(t, point, fits.b, fits.converged)


def mv_median_batch(ts: MVInstruments, keys, *, n_boot: int = 1000) -> MVEstimate:
    """:func:`mv_median` of every analysis of ``ts`` (``[A, ...]``, keys ``[A]``), equal to it
    analysis by analysis. The ``A x n_boot`` bootstrap fits are started and walked as one pool
    held by column (:func:`mrjax.mv.l1.irls_start_columns`, :func:`mrjax.mv.l1.walk_pooled`), so
    the few fits that need many pivots do not hold every other fit of the call in the walk's
    loop, and no ``[.., S, K]`` design is formed."""
    points = jax.vmap(_point)(ts)
    if n_boot == 0:
        return jax.vmap(lambda t, p: _estimate(t, p, None, None))(ts, points)
    problems, rows = _pooled_problems(ts, keys, n_boot)
    start = irls_start_columns(problems, rows, jnp.repeat(points.b, n_boot, axis=0), steps=BOOT_IRLS_STEPS)
    fits = walk_pooled(problems, start)
    a, k = points.b.shape
    draws, ok = fits.b.reshape(a, n_boot, k), fits.converged.reshape(a, n_boot)
    return jax.vmap(_estimate)(ts, points, draws, ok)
