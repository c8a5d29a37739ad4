"""MV-median's weighted L1 fit: exact against scipy's HiGHS LP, and its convergence flag."""

from __future__ import annotations

import jax
import numpy as np
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


def test_first_min_is_numpys_argmin_with_ties_infinities_and_nan():
    from mrjax.mv.l1 import first_min, smallest_rows

    rng = np.random.default_rng(3)
    cases = [rng.normal(size=17), np.array([2.0, 1.0, 1.0, 3.0]), np.full(5, np.inf), np.array([1.0, np.nan, 0.0, np.nan]),
             rng.integers(0, 3, size=12).astype(float)]
    for values in cases:
        assert int(first_min(values)) == int(np.argmin(values))
    values = rng.normal(size=20)
    np.testing.assert_array_equal(np.asarray(smallest_rows(values, 3)), np.argsort(values, kind="stable")[:3])
