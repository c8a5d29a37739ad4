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
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mrjax.estimators.common import Reason
from mrjax.mv.data import MVInstruments
from mrjax.mv.fit import MVEstimate, assemble
from mrjax.mv.l1 import irls_start, l1_fit

BOOT_IRLS_STEPS = 5


def _draws(key, n_boot: int, shape, dtype):
    """Standard normals ``[n_boot, S, K]`` (exposures) and ``[n_boot, S]`` (outcome), each
    SNP slot and exposure column keyed by its own index so that padding never changes them."""
    n, k = shape
    kx, ky = jax.random.split(key)

    def cell(base, i, j):
        return jax.random.normal(jax.random.fold_in(jax.random.fold_in(base, i), j), (n_boot,), dtype=dtype)

    ex = jax.vmap(lambda i: jax.vmap(lambda j: cell(kx, i, j))(jnp.arange(k)))(jnp.arange(n))
    ey = jax.vmap(lambda i: cell(ky, i, 0))(jnp.arange(n))
    return jnp.moveaxis(ex, -1, 0), jnp.moveaxis(ey, -1, 0)


def mv_median(t: MVInstruments, key, *, n_boot: int = 1000) -> MVEstimate:
    """MV-median estimate (deterministic) with bootstrap SE (``n_boot = 0``: estimate only,
    SE NaN); needs ``nsnp > K``."""
    w = 1.0 / (t.sy * t.sy)
    point = l1_fit(t.bx, t.by, w, t.mask, t.xmask)
    b, converged = point.b, point.converged
    enough = t.nsnp > t.nexp
    if n_boot > 0:
        ex, ey = _draws(key, n_boot, t.bx.shape, t.bx.dtype)
        x_cols = t.xmask.astype(t.bx.dtype)
        w_rows = jnp.where(t.mask, w, 0.0)

        def one(e_x, e_y):
            x = jnp.where(t.mask[:, None], (t.bx + t.sx * e_x) * x_cols, 0.0)
            y = jnp.where(t.mask, t.by + t.sy * e_y, 0.0)
            start = irls_start(x, y, w_rows, t.mask, t.xmask, b0=b, steps=BOOT_IRLS_STEPS)
            fit = l1_fit(x, y, w, t.mask, t.xmask, start)
            return fit.b, fit.converged

        draws, ok = jax.vmap(one)(ex, ey)
        converged = converged & jnp.all(ok)
        se = jnp.std(draws, axis=0, ddof=1)
    else:
        se = jnp.full_like(b, jnp.nan)
    return assemble(t, b, se, p_df=jnp.inf, ci_df=jnp.inf, ok=enough & converged,
                    reason=jnp.where(enough, Reason.NOT_CONVERGED, Reason.TOO_FEW_SNPS))
