"""Exact weighted L1 regression for small designs: ``argmin_b sum_j w_j |y_j - x_j b|``.

This is the fit of R's ``quantreg::rq(y ~ x - 1, weights = w)`` (tau = 0.5), which
MendelianRandomization's ``mr_mvmedian`` calls. ``rq`` solves the linear program with the
Barrodale–Roberts simplex; we walk the same LP's vertices, vectorised over fits:

- a *vertex* is a basis of K rows that the fit interpolates (``x_B b = y_B``);
- at a vertex the loss along the edge that frees basis row ``e`` (``b + t d_e`` with
  ``x_B d_e = unit_e``, ``a = x d_e``) changes at the rate
  ``sum_{j: r_j != 0} -w_j sign(r_j) a_j t + sum_{j: r_j = 0} w_j |a_j t|`` — a reduced cost,
  computed for every edge at once from ``A = x D`` (no sort). A vertex where no edge descends is
  the optimum (LP duality: ``|u_e| <= w_e``), so the convergence flag is exact;
- otherwise we move along the steepest edge past its breakpoints ``tau_j = r_j / a_j`` in
  increasing order while the derivative stays negative (Barrodale–Roberts' long step, whose end
  is the weighted median of the breakpoints), looking at most ``LOOKAHEAD`` breakpoints ahead per
  pivot (found by repeated minima, not a sort); every pivot lowers the loss strictly, so the
  walk never cycles and ends at the optimum.

The walk is a per-fit ``lax.while_loop`` (each fit stops at its own optimum; under ``vmap`` the
finished ones idle) capped at ``max_pivots``; :func:`l1_fit_pooled` walks many fits in passes
over a shrinking pool, so that they do not all idle through the slowest one's pivots. Started
from a nearby basis — the vertex of the K smallest residuals of a few IRLS steps, or the
optimal basis of a nearby problem (the point estimate, for bootstrap draws) — it needs a few
pivots. K x K systems are solved in
closed form for K <= 3 (batched LAPACK calls cost more than the arithmetic at these sizes).
The optimum is unique unless the data are degenerate; there any optimal vertex is returned
(``rq`` returns one of them too, and can differ).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

IRLS_STEPS = 5
MAX_PIVOTS = 64
LOOKAHEAD = 4


class L1Fit(NamedTuple):
    """``b [K]`` (0 at padded exposures), ``basis [K]`` (the interpolated rows), ``converged``
    (no descending edge: the exact optimum), ``pivots`` taken."""

    b: jax.Array
    basis: jax.Array
    converged: jax.Array
    pivots: jax.Array


def small_inv(m):
    """Inverse of a K x K matrix: closed form (adjugate / determinant) for K <= 3, LAPACK above."""
    k = m.shape[-1]
    if k == 1:
        return 1.0 / m
    if k == 2:
        a, b, c, d = m[0, 0], m[0, 1], m[1, 0], m[1, 1]
        return jnp.array([[d, -b], [-c, a]]) / (a * d - b * c)
    if k == 3:
        cof = jnp.cross(m[jnp.array([1, 2, 0])], m[jnp.array([2, 0, 1])])  # rows: cofactors of rows 0,1,2
        return cof.T / jnp.dot(m[0], cof[0])
    return jnp.linalg.inv(m)


def _normal_solve(x, u, y, colmask):
    """Weighted least squares ``(x' U x) b = x' U y`` with padded columns pinned to 0."""
    c = colmask.astype(x.dtype)
    xu = x * u[:, None]
    return small_inv(xu.T @ x + jnp.diag(1.0 - c)) @ (xu.T @ y)


def irls_start(x, y, w, mask, colmask, b0=None, steps: int = IRLS_STEPS):
    """Basis of the K rows with the smallest residuals after ``steps`` IRLS iterations
    (weights ``w / max(|r|, eps)``) from ``b0`` (default: weighted least squares)."""
    scale = jnp.max(jnp.where(mask, jnp.abs(y), 0.0)) + 1e-300
    eps = 1e-10 * scale
    b = _normal_solve(x, w, y, colmask) if b0 is None else b0

    def irls(_, b):
        return _normal_solve(x, w / jnp.maximum(jnp.abs(y - x @ b), eps), y, colmask)

    b = jax.lax.fori_loop(0, steps, irls, b)
    return smallest_rows(jnp.where(mask, jnp.abs(y - x @ b), jnp.inf), x.shape[1])


def first_min(values):
    """``argmin(values)`` (the first minimum; NaN counts as the minimum, as in ``jnp.argmin``)
    from two plain min-reductions, which XLA vectorises, instead of one (value, index) pair
    reduction, which it does not."""
    values = jnp.where(jnp.isnan(values), -jnp.inf, values)
    index = jnp.arange(values.shape[0])
    return jnp.min(jnp.where(values == jnp.min(values), index, values.shape[0]))


def smallest_rows(values, k: int):
    """Indices of the ``k`` smallest entries (distinct rows; repeated minima, no sort)."""
    rows = []
    index = jnp.arange(values.shape[0])
    for _ in range(k):
        j = first_min(values)
        rows.append(j)
        values = jnp.where(index == j, jnp.inf, values)
    return jnp.stack(rows)


def _vertex(x, y, basis, colmask):
    """``b`` interpolating the basis rows and ``D = x_B^-1`` (padded slots: identity rows)."""
    eye = jnp.eye(x.shape[1], dtype=x.dtype)
    d = small_inv(jnp.where(colmask[:, None], x[basis], eye))
    return d @ jnp.where(colmask, y[basis], 0.0), d


def _long_step(r, a, v, zero, rate, lookahead: int):
    """The row where the walk along an edge stops: from derivative ``rate < 0`` at ``t = 0``,
    passing breakpoint ``tau_j = r_j / a_j > 0`` (weight ``v_j = w_j |a_j|``) adds ``2 v_j``;
    stop at the first breakpoint where it turns >= 0, or at the ``lookahead``-th. Rows with
    zero residual (``zero``: the basis, ties) have their breakpoint at 0, already in ``rate``."""
    tau = jnp.where(~zero & (v > 0) & (r * a > 0), r / jnp.where(a != 0, a, 1.0), jnp.inf)
    index = jnp.arange(tau.shape[0])
    row, stopped = first_min(tau), jnp.asarray(False)
    for _ in range(lookahead):
        j = first_min(tau)
        row = jnp.where(stopped, row, j)
        rate = rate + 2.0 * jnp.sum(jnp.where(index == j, v, 0.0))
        stopped = stopped | (rate >= 0)
        tau = jnp.where(index == j, jnp.inf, tau)
    return row


def masked(x, y, w, mask, colmask):
    """``x, y, w`` with the padded rows (``~mask``) and columns (``~colmask``) zeroed."""
    c = colmask.astype(x.dtype)
    return jnp.where(mask[..., None], x * c[..., None, :], 0.0), jnp.where(mask, y, 0.0), jnp.where(mask, w, 0.0)


def l1_fit(x, y, w, mask, colmask, basis=None, *, irls_steps: int = IRLS_STEPS, max_pivots=MAX_PIVOTS,
           lookahead: int = LOOKAHEAD) -> L1Fit:
    """Exact ``argmin_b sum(w |y - x b|)`` over the rows in ``mask`` and the columns in
    ``colmask`` (see the module docstring), from ``basis`` (K row indices) or, when None, from
    :func:`irls_start`. ``converged`` is False only if ``max_pivots`` pivots did not reach the
    optimum or the basis matrix is singular."""
    x, y, w = masked(x, y, w, mask, colmask)
    if basis is None:
        basis = irls_start(x, y, w, mask, colmask, steps=irls_steps)
    return walk(x, y, w, colmask, basis, max_pivots=max_pivots, lookahead=lookahead)


def walk(x, y, w, colmask, basis, *, max_pivots=MAX_PIVOTS, lookahead: int = LOOKAHEAD) -> L1Fit:
    """The simplex walk of :func:`l1_fit` from ``basis`` on data already :func:`masked`."""
    scale = jnp.max(jnp.abs(y)) + jnp.max(jnp.abs(x)) + 1e-300
    slots = jnp.arange(x.shape[1])

    def cond(state):
        _, _, done, it = state
        return ~done & (it < max_pivots)

    def body(state):
        basis, _, _, it = state
        b, d = _vertex(x, y, basis, colmask)
        r = y - x @ b
        a = x @ d  # column e: how the fitted values move along edge e
        in_basis = jnp.any(jnp.arange(x.shape[0])[:, None] == jnp.where(colmask, basis, -1)[None, :], axis=1)
        zero = in_basis | (jnp.abs(r) <= 1e-13 * scale)
        lin = jnp.where(zero, 0.0, w * jnp.sign(r)) @ a
        deg = jnp.where(zero, w, 0.0) @ jnp.abs(a)
        up, down = deg - lin, deg + lin  # loss derivative along +d_e and -d_e
        rate = jnp.where(colmask, jnp.minimum(up, down), jnp.inf)
        e = first_min(rate)
        size = w @ jnp.abs(a[:, e])
        improving = rate[e] < -1e-12 * size
        sign = jnp.where(up[e] <= down[e], 1.0, -1.0)
        row = _long_step(r, sign * a[:, e], w * jnp.abs(a[:, e]), zero, rate[e], lookahead)
        finite = jnp.all(jnp.isfinite(b))
        new = jnp.where(improving & finite & (slots == e), row.astype(basis.dtype), basis)
        return new, jnp.where(colmask, b, 0.0), ~improving | ~finite, it + jnp.where(improving & finite, 1, 0)

    b0 = jnp.zeros(x.shape[1], x.dtype)
    basis, b, done, it = jax.lax.while_loop(cond, body, (basis.astype(jnp.int32), b0, jnp.asarray(False), jnp.asarray(0)))
    # ``done``: the last body found no descending edge at a finite vertex, whose fit is ``b``.
    return L1Fit(b=b, basis=basis, converged=done & jnp.all(jnp.isfinite(b)), pivots=it)


# The pooled walk's passes: (share of the pool walked, total pivots a fit may reach in it).
POOL_PASSES = ((1.0, 2), (0.35, 4), (0.05, MAX_PIVOTS))


def l1_fit_pooled(x, y, w, mask, colmask, basis, *, max_pivots: int = MAX_PIVOTS, passes=POOL_PASSES) -> L1Fit:
    """:func:`l1_fit` of each of ``N`` problems (every argument with a leading ``[N]`` axis),
    walked in passes over a shrinking pool instead of one ``vmap``-ed loop.

    Under ``vmap`` the walk's loop runs until the slowest of all ``N`` fits is done, every fit
    paying every pivot step. Most bootstrap fits need at most one pivot, a few need many: pass
    ``i`` walks the ``share_i x N`` fits not yet converged (converged ones too when fewer are
    left: a walk from an optimal basis stops at once with the same ``b``) on from their basis,
    to ``pivots_i`` pivots in all; if fits that may still pivot are left after the passes, a
    last pass walks every fit on to ``max_pivots`` (``lax.cond``: skipped when none is). A
    walk is its basis, so a fit resumed ends exactly where :func:`l1_fit` would have.
    """
    n = x.shape[0]
    x, y, w = masked(x, y, w, mask, colmask)

    def capped(fit):  # stopped at its pivot limit (a singular vertex leaves b non-finite)
        return ~fit.converged & jnp.all(jnp.isfinite(fit.b), axis=-1) & (fit.pivots < max_pivots)

    def resume(fit, rows, limit):
        before = fit.pivots[rows]
        budget = jnp.minimum(limit, max_pivots) - before
        part = jax.vmap(walk)(x[rows], y[rows], w[rows], colmask[rows], fit.basis[rows], max_pivots=budget)
        part = part._replace(pivots=before + part.pivots)
        moved = budget > 0  # a walk with no budget takes no step and returns no vertex: keep the old fit

        def put(full, new):
            return full.at[rows].set(jnp.where(moved.reshape(moved.shape + (1,) * (new.ndim - 1)), new, full[rows]))

        return jax.tree_util.tree_map(put, fit, part)

    everyone = jnp.arange(n)
    fit = jax.vmap(walk)(x, y, w, colmask, basis, max_pivots=jnp.full(n, min(passes[0][1], max_pivots)))
    for share, limit in passes[1:]:
        rows = jnp.argsort(~capped(fit), stable=True)[:min(n, max(1, int(np.ceil(share * n))))]  # capped fits first
        fit = resume(fit, rows, limit)
    return jax.lax.cond(jnp.any(capped(fit)), lambda f: resume(f, everyone, max_pivots), lambda f: f, fit)
