"""MV-median's weighted L1 fit: exact against scipy's HiGHS LP, and its convergence flag."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

from mrjax.mv.l1 import l1_fit


def _highs_l1(x, y, w):
    """``argmin_b sum(w |y - x b|)`` as an LP: ``x b + u - v = y``, ``u, v >= 0``."""
    n, k = x.shape
    res = optimize.linprog(np.concatenate([np.zeros(k), w, w]), A_eq=np.hstack([x, np.eye(n), -np.eye(n)]), b_eq=y,
                           bounds=[(None, None)] * k + [(0, None)] * (2 * n), method="highs")
    return res.x[:k]


def _problems(n_problems=6, n=20, width=24, k=3, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n_problems, width, k))
    y = np.zeros((n_problems, width))
    x[:, :n] = rng.normal(size=(n_problems, n, k))
    y[:, :n] = x[:, :n] @ np.array([1.0, -0.5, 0.2]) + rng.standard_t(2, size=(n_problems, n)) * 0.3
    w = np.where(np.arange(width) < n, rng.uniform(0.5, 2.0, size=(n_problems, width)), 0.0)
    mask = np.broadcast_to(np.arange(width) < n, (n_problems, width))
    return x, y, w, mask, np.ones((n_problems, k), bool)


def test_l1_fit_is_the_lp_optimum_and_says_it_converged():
    x, y, w, mask, cols = _problems()
    fit = jax.vmap(l1_fit)(x, y, w, mask, cols)
    b = fit.b
    assert np.asarray(fit.converged).all()
    for i in range(len(x)):
        ref = _highs_l1(x[i, :20], y[i, :20], w[i, :20])
        np.testing.assert_allclose(np.asarray(b)[i], ref, rtol=1e-8, atol=1e-10)


def test_l1_fit_without_pivots_is_flagged_not_converged():
    x, y, w, mask, cols = _problems()
    fit = jax.vmap(lambda *a: l1_fit(*a, max_pivots=0))(x, y, w, mask, cols)
    assert not np.asarray(fit.converged).any()


def test_smallest_rows_are_a_stable_argsorts_first_rows_with_ties_and_infinities():
    from mrjax.mv.l1 import smallest_rows

    rng = np.random.default_rng(3)
    cases = [rng.normal(size=17), np.array([2.0, 1.0, 1.0, 3.0]), np.array([np.inf, 1.0, np.inf, np.inf]),
             rng.integers(0, 3, size=12).astype(float)]
    for values in cases:
        np.testing.assert_array_equal(np.asarray(smallest_rows(values, 3)), np.argsort(values, kind="stable")[:3])
    batch = rng.integers(0, 4, size=(5, 9)).astype(float)
    np.testing.assert_array_equal(np.asarray(smallest_rows(batch, 2)), np.argsort(batch, axis=1, kind="stable")[:, :2])


def test_column_form_irls_start_picks_the_basis_of_irls_start():
    """irls_start_columns (the batched bootstrap's start, data held column by column) chooses
    the rows irls_start chooses on the [S, K] design, padded columns and rows included."""
    from mrjax.mv.l1 import columns, irls_start, irls_start_columns, masked

    x, y, w, mask, cols = _problems(n_problems=40, seed=8)
    cols = cols.copy()
    cols[::4, 2] = False  # some fits with a padded exposure column
    b0 = np.random.default_rng(9).normal(size=(40, 3)) * 0.2
    for steps in (0, 2, 5):
        alone = jax.vmap(lambda *a: irls_start(*masked(*a[:5]), a[3], a[4], b0=a[5] * a[4], steps=steps))(x, y, w, mask, cols, b0)
        xm, ym, wm = masked(x, y, w, mask, cols)
        problems = columns([xm[..., c] for c in range(3)], ym, wm, [cols[:, c] for c in range(3)])
        pooled = irls_start_columns(problems, mask, b0 * cols, steps=steps)
        np.testing.assert_array_equal(np.asarray(pooled), np.asarray(alone), err_msg=f"steps={steps}")


def _far_starts(n_problems, k):
    """Each fit starts from the basis of its first K rows: far from the optimum, many pivots."""
    return np.broadcast_to(np.arange(k), (n_problems, k)).astype(np.int32)


@pytest.mark.parametrize("passes", [None, ((1.0, 1), (0.5, 2)), ((1.0, 1), (0.01, 3))])
def test_pooled_walk_equals_one_fit_at_a_time(passes):
    """The pooled passes (default, and shares too small for the fits left, which end in turns
    of the last share until none is left) give each fit the vertex, flag and pivot count of l1_fit."""
    from mrjax.mv.l1 import l1_fit_pooled

    x, y, w, mask, cols = _problems(n_problems=200, seed=4)
    start = _far_starts(200, 3)
    alone = jax.vmap(l1_fit)(x, y, w, mask, cols, start)
    kw = {} if passes is None else {"passes": passes}
    pooled = l1_fit_pooled(x, y, w, mask, cols, start, **kw)
    assert np.asarray(alone.pivots).max() > 3  # the passes' limits are really crossed
    for field in ("b", "basis", "converged", "pivots"):
        np.testing.assert_array_equal(np.asarray(getattr(pooled, field)), np.asarray(getattr(alone, field)), err_msg=field)


def test_pooled_walk_keeps_the_pivot_cap():
    from mrjax.mv.l1 import l1_fit_pooled

    x, y, w, mask, cols = _problems(n_problems=60, seed=5)
    start = _far_starts(60, 3)
    alone = jax.vmap(lambda *a: l1_fit(*a, max_pivots=2))(x, y, w, mask, cols, start)
    pooled = l1_fit_pooled(x, y, w, mask, cols, start, max_pivots=2)
    assert not np.asarray(alone.converged).all()
    np.testing.assert_array_equal(np.asarray(pooled.converged), np.asarray(alone.converged))
    np.testing.assert_array_equal(np.asarray(pooled.pivots), np.asarray(alone.pivots))


def test_batched_median_equals_the_per_analysis_function():
    """mv_median_batch (what the engine runs) equals jax.vmap(mv_median), analysis by analysis."""
    from mrjax.batch import trait_keys
    from mrjax.mv.data import make_mv_instruments
    from mrjax.mv.median import mv_median, mv_median_batch

    rng = np.random.default_rng(6)
    analyses = []
    for n, k in ((20, 2), (9, 3), (14, 2)):
        bx = rng.normal(size=(n, k)) * 0.1
        sx = rng.uniform(0.01, 0.03, (n, k))
        by = bx @ rng.normal(size=k) + rng.standard_t(3, n) * 0.02
        analyses.append(make_mv_instruments(bx, sx, by, rng.uniform(0.01, 0.04, n)))
    width, nexp = 24, 3

    def pad(t):
        n, k = t.bx.shape
        grow = lambda a, fill, shape: np.pad(np.asarray(a), [(0, s - d) for s, d in zip(shape, np.shape(a))], constant_values=fill)  # noqa: E731
        return make_mv_instruments(grow(t.bx, 0, (width, nexp)), grow(t.sx, 1, (width, nexp)), grow(t.by, 0, (width,)),
                                   grow(t.sy, 1, (width,)), mask=np.arange(width) < n, xmask=np.arange(nexp) < k)

    batch = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *[pad(t) for t in analyses])
    keys = trait_keys(5, np.array([11, 12, 13], dtype=np.uint32))
    alone = jax.vmap(lambda t, k: mv_median(t, k, n_boot=200))(batch, keys)
    pooled = mv_median_batch(batch, keys, n_boot=200)
    for field in ("b", "se", "pval", "reason"):
        np.testing.assert_allclose(np.asarray(getattr(pooled, field)), np.asarray(getattr(alone, field)), rtol=1e-12, err_msg=field)
    assert np.isfinite(np.asarray(pooled.se)[:, :2]).all()
