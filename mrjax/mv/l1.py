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

import functools

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


def irls_start(x, y, w, mask, colmask, b0=None, steps: int = IRLS_STEPS):
    """Basis of the K rows with the smallest residuals after ``steps`` IRLS iterations
    (weights ``w / max(|r|, eps)``) from ``b0`` (default: weighted least squares), for data
    already :func:`masked`: :func:`irls_start_columns` on the design's columns."""
    p = _columns(x, y, w, colmask)
    b0 = jnp.stack(_weighted_solve(p, p.w), axis=-1) if b0 is None else b0
    return irls_start_columns(p, mask, b0, steps)


def smallest_rows(values, k: int):
    """Indices of the ``k`` smallest entries of the last axis (distinct rows, first index on
    ties), by repeated ``argmin`` and removal (no sort)."""
    rows = []
    index = jnp.arange(values.shape[-1])
    taken = jnp.zeros(values.shape, bool)
    for i in range(k):
        j = jnp.argmin(jnp.where(taken, jnp.inf, values), axis=-1)
        if i:  # (none is taken yet at i = 0: argmin's first index already is the first row; a reduction
            # over the constant ``~taken`` would be folded by XLA at compile time, for minutes at 10^5 fits)
            j = jnp.where(_at(taken, j), jnp.argmax(~taken, axis=-1), j)  # only infinities left: the first row not taken
        rows.append(j)
        taken = taken | (index == j[..., None])
    return jnp.stack(rows, axis=-1)


def _at(v, rows):
    """``v[..., rows]`` per fit: ``v [..., S]``, ``rows [...]`` -> ``[...]``."""
    return jnp.take_along_axis(v, rows[..., None], axis=-1)[..., 0]


def _inverse(m):
    """Inverse of a K x K matrix held as nested lists of arrays (entry ``m[i][j]`` one value
    per fit): closed form for K <= 3, batched LAPACK above."""
    k = len(m)
    if k == 1:
        return [[1.0 / m[0][0]]]
    if k == 2:
        (a, b), (c, d) = m
        det = a * d - b * c
        return [[d / det, -b / det], [-c / det, a / det]]
    if k == 3:
        cof = [[m[(i + 1) % 3][(j + 1) % 3] * m[(i + 2) % 3][(j + 2) % 3] - m[(i + 1) % 3][(j + 2) % 3] * m[(i + 2) % 3][(j + 1) % 3]
                for j in range(3)] for i in range(3)]
        det = m[0][0] * cof[0][0] + m[0][1] * cof[0][1] + m[0][2] * cof[0][2]
        return [[cof[j][i] / det for j in range(3)] for i in range(3)]
    inv = jnp.linalg.inv(jnp.stack([jnp.stack(row, -1) for row in m], -2))
    return [[inv[..., i, j] for j in range(k)] for i in range(k)]


class _Columns(NamedTuple):
    """Fits held column by column: ``xs`` K arrays ``[..., S]`` (the design's columns), ``y, w
    [..., S]``, ``cols`` K arrays ``[...]`` (real exposure columns), ``scale [...]`` (the
    residual tolerance's scale). Whole ``[N, S]`` columns keep XLA's kernels on contiguous rows;
    slicing a ``[N, S, K]`` design inside every kernel made them several times slower."""

    xs: tuple
    y: jax.Array
    w: jax.Array
    cols: tuple
    scale: jax.Array


def _columns(x, y, w, colmask) -> _Columns:
    k = x.shape[-1]
    return columns(tuple(x[..., c] for c in range(k)), y, w, tuple(colmask[..., c] for c in range(k)))


def columns(xs, y, w, cols) -> _Columns:
    """Fits held by column from data already :func:`masked`: ``xs`` K arrays ``[..., S]``,
    ``y, w [..., S]``, ``cols`` K boolean arrays ``[...]`` (real exposure columns)."""
    scale = jnp.max(jnp.abs(y), axis=-1) + functools.reduce(jnp.maximum, [jnp.max(jnp.abs(xc), axis=-1) for xc in xs]) + 1e-300
    return _Columns(tuple(map(jnp.asarray, xs)), jnp.asarray(y), jnp.asarray(w), tuple(map(jnp.asarray, cols)), scale)


def _weighted_solve(p: _Columns, u):
    """Weighted least squares ``(x' U x) b = x' U y`` (K arrays ``[...]``) with padded columns
    pinned to 0, the normal equations summed column pair by column pair."""
    k = len(p.xs)
    ux = [u * p.xs[c] for c in range(k)]
    m = [[None] * k for _ in range(k)]
    for c in range(k):
        for d in range(c, k):
            m[c][d] = m[d][c] = jnp.sum(ux[c] * p.xs[d], axis=-1) + (0.0 if c != d else 1.0 - p.cols[c].astype(u.dtype))
    rhs = [jnp.sum(ux[c] * p.y, axis=-1) for c in range(k)]
    inv = _inverse(m)
    return tuple(sum(inv[c][d] * rhs[d] for d in range(k)) for c in range(k))


def irls_start_columns(p: _Columns, mask, b0, steps: int = IRLS_STEPS):
    """:func:`irls_start` from ``b0`` (``[..., K]``) on fits held by column: the K x K normal
    equations ``sum_j u_j x_jc x_jd`` summed column pair by column pair over ``[..., S]``
    rows (a ``[..., S, K]`` design's matrix products cost several times more at K <= 3)."""
    k = len(p.xs)
    eps = (1e-10 * (jnp.max(jnp.abs(p.y), axis=-1) + 1e-300))[..., None]

    def residual(b):
        return p.y - sum(p.xs[c] * b[c][..., None] for c in range(k))

    def irls(_, b):
        return _weighted_solve(p, p.w / jnp.maximum(jnp.abs(residual(b)), eps))

    b = jax.lax.fori_loop(0, steps, irls, tuple(b0[..., c] for c in range(k)))
    return smallest_rows(jnp.where(mask, jnp.abs(residual(b)), jnp.inf), k)


def _take(p: _Columns, rows) -> _Columns:
    return jax.tree_util.tree_map(lambda v: v[rows], p)


def _pivot(p: _Columns, basis, lookahead: int):
    """One step of the walk at the vertex ``basis`` (K arrays of row indices): returns the
    next basis, the vertex's ``b`` (K arrays), whether it pivoted and whether ``b`` is finite."""
    xs, y, w, cols = p.xs, p.y, p.w, p.cols
    k = len(xs)
    xb = [[jnp.where(cols[e], _at(xs[c], basis[e]), float(e == c)) for c in range(k)] for e in range(k)]
    d = _inverse(xb)  # x_B d = I: column e of d is the edge that frees basis slot e
    yb = [jnp.where(cols[e], _at(y, basis[e]), 0.0) for e in range(k)]
    b = [jnp.where(cols[c], sum(d[c][e] * yb[e] for e in range(k)), 0.0) for c in range(k)]
    r = y - sum(xs[c] * b[c][..., None] for c in range(k))
    index = jnp.arange(y.shape[-1])
    in_basis = functools.reduce(jnp.logical_or, [cols[e][..., None] & (index == basis[e][..., None]) for e in range(k)])
    zero = in_basis | (jnp.abs(r) <= 1e-13 * p.scale[..., None])
    signed = jnp.where(zero, 0.0, w * jnp.sign(r))
    held = jnp.where(zero, w, 0.0)

    def edge(e):  # how the fitted values move along edge e
        return sum(xs[c] * d[c][e][..., None] for c in range(k))

    rate, e_best, up_best, down_best = None, None, None, None
    for e in range(k):
        lin = jnp.sum(signed * edge(e), axis=-1)
        deg = jnp.sum(held * jnp.abs(edge(e)), axis=-1)
        up, down = deg - lin, deg + lin  # loss derivative along +d_e and -d_e
        rate_e = jnp.where(cols[e], jnp.minimum(up, down), jnp.inf)
        if e == 0:
            rate, e_best, up_best, down_best = rate_e, jnp.zeros(rate_e.shape, jnp.int32), up, down
        else:  # strictly lower: the first of tied edges, as argmin
            lower = rate_e < rate
            rate, e_best = jnp.where(lower, rate_e, rate), jnp.where(lower, e, e_best)
            up_best, down_best = jnp.where(lower, up, up_best), jnp.where(lower, down, down_best)
    sign = jnp.where(up_best <= down_best, 1.0, -1.0)
    step = [sign * sum(jnp.where(e_best == e, d[c][e], 0.0) for e in range(k)) for c in range(k)]  # the chosen edge
    a = sum(xs[c] * step[c][..., None] for c in range(k))
    v = w * jnp.abs(a)
    improving = rate < -1e-12 * jnp.sum(v, axis=-1)
    row = _long_step(r, a, v, zero, rate, lookahead)
    finite = functools.reduce(jnp.logical_and, [jnp.isfinite(bc) for bc in b])
    moves = improving & finite
    new = tuple(jnp.where(moves & (e_best == e), row.astype(basis[e].dtype), basis[e]) for e in range(k))
    return new, b, moves, finite


def _long_step(r, a, v, zero, rate, lookahead: int):
    """The row where the walk along an edge stops: from derivative ``rate < 0`` at ``t = 0``,
    passing breakpoint ``tau_j = r_j / a_j > 0`` (weight ``v_j = w_j |a_j|``) adds ``2 v_j``;
    stop at the first breakpoint where it turns >= 0, or at the ``lookahead``-th. Rows with
    zero residual (``zero``: the basis, ties) have their breakpoint at 0, already in ``rate``."""
    tau = jnp.where(~zero & (v > 0) & (r * a > 0), r / jnp.where(a != 0, a, 1.0), jnp.inf)
    index = jnp.arange(tau.shape[-1])
    row, stopped = jnp.argmin(tau, axis=-1), jnp.zeros(rate.shape, bool)
    for _ in range(lookahead):
        j = jnp.argmin(tau, axis=-1)
        row = jnp.where(stopped, row, j)
        rate = rate + 2.0 * _at(v, j)
        stopped = stopped | (rate >= 0)
        tau = jnp.where(index == j[..., None], jnp.inf, tau)
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
    """The simplex walk of :func:`l1_fit` from ``basis`` on data already :func:`masked`;
    every argument may carry leading batch axes (``max_pivots`` a scalar or one per fit)."""
    return _walk(_columns(x, y, w, colmask), basis, max_pivots, lookahead)


def _walk(p: _Columns, basis, max_pivots, lookahead: int = LOOKAHEAD) -> L1Fit:
    """The walk on fits held by column: every fit pivots until no edge descends (its optimum)
    or it has taken ``max_pivots``; a fit that has stopped keeps its state while others go on."""
    k = len(p.xs)
    batch = p.y.shape[:-1]
    limit = jnp.broadcast_to(jnp.asarray(max_pivots), batch)

    def cond(state):
        _, _, done, it = state
        return jnp.any(~done & (it < limit))

    def body(state):
        basis, b, done, it = state
        active = ~done & (it < limit)
        new, b_new, moves, finite = _pivot(p, basis, lookahead)
        basis = tuple(jnp.where(active, n, o) for n, o in zip(new, basis))
        b = tuple(jnp.where(active, n, o) for n, o in zip(b_new, b))
        # ``done``: no descending edge at a finite vertex (the optimum, whose fit is ``b``), or a singular vertex
        return basis, b, done | (active & ~moves), it + (active & moves)

    start = tuple(jnp.asarray(basis[..., e], jnp.int32) for e in range(k))
    zeros = tuple(jnp.zeros(batch, p.y.dtype) for _ in range(k))
    basis, b, done, it = jax.lax.while_loop(cond, body, (start, zeros, jnp.zeros(batch, bool), jnp.zeros(batch, jnp.int32)))
    b = jnp.stack(b, axis=-1)
    return L1Fit(b=b, basis=jnp.stack(basis, axis=-1), converged=done & jnp.all(jnp.isfinite(b), axis=-1), pivots=it)


# The pooled walk's passes: (share of the pool walked, total pivots a fit may reach in it).
POOL_PASSES = ((1.0, 2), (0.35, 4), (0.05, MAX_PIVOTS))


def l1_fit_pooled(x, y, w, mask, colmask, basis, *, max_pivots: int = MAX_PIVOTS, passes=POOL_PASSES) -> L1Fit:
    """:func:`l1_fit` of each of ``N`` problems (every argument with a leading ``[N]`` axis),
    walked in passes over a shrinking pool instead of one ``vmap``-ed loop.

    Under ``vmap`` the walk's loop runs until the slowest of all ``N`` fits is done, every fit
    paying every pivot step. Most bootstrap fits need at most one pivot, a few need many: pass
    ``i`` walks the ``share_i x N`` fits not yet converged (converged ones too when fewer are
    left: a walk from an optimal basis stops at once with the same ``b``) on from their basis,
    to ``pivots_i`` pivots in all; while fits that may still pivot are left after the passes
    (more than the passes' shares foresaw), the last share of them at a time is walked on to
    ``max_pivots``. A walk is its basis, so a fit resumed ends exactly where :func:`l1_fit`
    would have.
    """
    return walk_pooled(_columns(*masked(x, y, w, mask, colmask), colmask), basis, max_pivots=max_pivots, passes=passes)


def walk_pooled(problems: _Columns, basis, *, max_pivots: int = MAX_PIVOTS, passes=POOL_PASSES) -> L1Fit:
    """The pooled walk of :func:`l1_fit_pooled` on ``[N]`` fits held by :func:`columns`."""
    n = problems.y.shape[0]

    def capped(fit):  # stopped at its pivot limit (a singular vertex leaves b non-finite)
        return ~fit.converged & jnp.all(jnp.isfinite(fit.b), axis=-1) & (fit.pivots < max_pivots)

    def resume(fit, rows, limit):
        before = fit.pivots[rows]
        budget = jnp.minimum(limit, max_pivots) - before
        part = _walk(_take(problems, rows), fit.basis[rows], budget)
        part = part._replace(pivots=before + part.pivots)
        moved = budget > 0  # a walk with no budget takes no step and returns no vertex: keep the old fit

        def put(full, new):
            return full.at[rows].set(jnp.where(moved.reshape(moved.shape + (1,) * (new.ndim - 1)), new, full[rows]))

        return jax.tree_util.tree_map(put, fit, part)

    def first_capped(fit, share):  # capped fits first, then converged ones
        return jnp.argsort(~capped(fit), stable=True)[:min(n, max(1, int(np.ceil(share * n))))]

    fit = _walk(problems, basis, min(passes[0][1], max_pivots))
    for share, limit in passes[1:]:
        fit = resume(fit, first_capped(fit, share), limit)
    # Each turn leaves the fits it walks uncapped (optimal, singular or at max_pivots): it ends.
    return jax.lax.while_loop(lambda f: jnp.any(capped(f)), lambda f: resume(f, first_capped(f, passes[-1][0]), max_pivots), fit)
