"""Two steps of lmrob's fast-S (``mrjax.estimators.lmrob``) against plain numpy: the
refinement (``_refine``, Newton-accelerated) reaches the same fixed point as robustbase's plain
``refine_fast_s`` iteration run for as long as it takes, on random slopes (p = 1) and Egger
lines (p = 2) and MV fits (p = 3, also with a padded all-zero fourth column) from elemental starts, including starts where the plain iteration needs hundreds
of steps, also when the refinements of many problems are pooled (``_refine_pooled``); and the
candidates' starting scale ``median |r|`` (``_median_abs``, a pruned sorting
network) equals numpy's median for every width and instrument count."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import mrjax  # noqa: F401  (float64)
from mrjax.estimators import lmrob

C_CHI, BB = 1.54764, 0.5
WIDTH = 32


def np_rho(u):
    t = np.minimum((u / C_CHI) ** 2, 1.0)
    return t * (3 + t * (-3 + t))


def np_plain_refine(X, y, beta, s, max_steps=50_000):
    """robustbase refine_fast_s: scale step, bisquare IRWLS step, until beta stops moving; then
    the M-scale of the final beta by fixed-point steps. Returns beta, scale and the steps taken."""
    n, p = X.shape
    for steps in range(1, max_steps + 1):
        r = y - X @ beta
        s = s * np.sqrt(np.sum(np_rho(r / s)) / (n - p) / BB)
        t = (r / s / C_CHI) ** 2
        w = np.where(t < 1, (1 - t) ** 2, 0.0)
        new = np.linalg.solve(X.T @ (X * w[:, None]), X.T @ (w * y))
        done = np.linalg.norm(new - beta) <= 1e-13 * np.linalg.norm(beta)
        beta = new
        if done:
            break
    r = y - X @ beta
    for _ in range(10_000):
        new_s = s * np.sqrt(np.sum(np_rho(r / s)) / (n - p) / BB)
        if abs(new_s - s) <= 1e-15 * s:
            break
        s = new_s
    return beta, new_s, steps


def cases(p, count, seed):
    """Random weighted problems (30% outlying instruments), sqrt(w)-scaled as lmrob fits them,
    each with an elemental start (exact fit to p random rows, scale 1.4826 median |r|)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        n = int(rng.integers(8, 25))
        bx = rng.normal(0.08, 0.03, n)
        sy = rng.uniform(0.01, 0.03, n)
        by = 0.3 * bx + rng.normal(0, 1, n) * sy + np.where(rng.random(n) < 0.3, rng.normal(0, 0.05, n), 0.0)
        root_w = 1 / sy
        if p == 3:  # MV: three correlated exposures
            bxs = bx[:, None] * np.array([1.0, 0.5, -0.3]) + rng.normal(0, 0.02, (n, 3))
            by = bxs @ np.array([0.3, -0.2, 0.1]) + rng.normal(0, 1, n) * sy + np.where(rng.random(n) < 0.3, rng.normal(0, 0.05, n), 0.0)
            X, y = bxs * root_w[:, None], by * root_w
        else:
            X = (np.column_stack([np.ones(n), np.abs(bx)]) if p == 2 else bx[:, None]) * root_w[:, None]
            y = (by * np.sign(bx) if p == 2 else by) * root_w
        rows = rng.choice(n, p, replace=False)
        beta = np.linalg.solve(X[rows], y[rows])
        out.append((X, y, beta, 1.4826 * np.median(np.abs(y - X @ beta))))
    return out


def padded(problems):
    """``beta, s, X, y, mask, n`` of ``problems`` padded to ``WIDTH`` rows."""
    p = problems[0][0].shape[1]
    X = np.zeros((len(problems), WIDTH, p))
    y = np.zeros((len(problems), WIDTH))
    mask = np.zeros((len(problems), WIDTH), dtype=bool)
    for k, (Xk, yk, _, _) in enumerate(problems):
        X[k, : len(yk)], y[k, : len(yk)], mask[k, : len(yk)] = Xk, yk, True
    beta = np.stack([b for *_, b, _ in problems])
    s = np.array([s for *_, s in problems])
    return tuple(jnp.asarray(a) for a in (beta, s, X, y, mask, mask.sum(1)))


def mrjax_refine(problems, refine=jax.vmap(lmrob._refine)):
    return [np.asarray(v) for v in jax.jit(refine)(*padded(problems))]


def test_refine_reaches_the_plain_iterations_fixed_point():
    for p, seed in ((1, 3), (2, 4), (3, 6)):
        problems = cases(p, 120, seed)
        beta, scale, ok = mrjax_refine(problems)
        reference = [np_plain_refine(*prob) for prob in problems]
        steps = np.array([r[2] for r in reference])
        assert (steps > 150).sum() >= (3 if p < 3 else 0), "the check needs slowly contracting starts"
        assert ok.all()
        want_beta = np.stack([r[0] for r in reference])
        want_scale = np.array([r[1] for r in reference])
        np.testing.assert_allclose(beta, want_beta, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(scale, want_scale, rtol=1e-10)


def test_pooled_refine_equals_the_plain_iteration_with_stragglers_over_several_turns(monkeypatch):
    """lmrob_batch's pooled refinement: every problem takes POOLED_REFINE_STEPS steps, then the
    unfinished ones run STRAGGLER_SLOTS at a time (2 here, so that they take several turns)."""
    monkeypatch.setattr(lmrob, "STRAGGLER_SLOTS", 2)
    problems = cases(2, 120, 4)
    full = jax.jit(jax.vmap(lambda b, s, X, y, m, n: lmrob._refine_newton(
        lmrob._refine_plain(b, s, X, y, m, n), X, y, m, n, until=lmrob.MAX_STEPS).steps))(*padded(problems))
    assert (np.asarray(full) > lmrob.POOLED_REFINE_STEPS).sum() > lmrob.STRAGGLER_SLOTS
    beta, scale, ok = mrjax_refine(problems, lmrob._refine_pooled)
    reference = [np_plain_refine(*prob) for prob in problems]
    assert ok.all()
    np.testing.assert_allclose(beta, np.stack([r[0] for r in reference]), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(scale, np.array([r[1] for r in reference]), rtol=1e-10)
    alone = mrjax_refine(problems)
    for pooled, each in zip((beta, scale, ok), alone):
        np.testing.assert_allclose(pooled, each, rtol=1e-12)


def test_median_abs_equals_numpys_median_for_every_width_and_count():
    rng = np.random.default_rng(5)
    for width in (1, 2, 3, 5, 8, 16, 24, 31, 32, 40):
        fn = jax.jit(jax.vmap(lambda r, n: lmrob._median_abs(r, jnp.arange(width) < n, n), in_axes=(0, None)))
        for n in range(1, width + 1):
            r = rng.normal(size=(20, width))
            r[:, min(3, width - 1)] = -r[:, 0]  # a tie in |r|
            np.testing.assert_array_equal(np.asarray(fn(jnp.asarray(r), n)), np.median(np.abs(r[:, :n]), axis=1),
                                          err_msg=f"width {width}, n {n}")


def test_a_padded_zero_column_changes_nothing():
    """An MV analysis padded to more exposures has all-zero columns: their coefficients stay 0
    and lmrob's ``n - p`` counts the real columns only (the 3-column problems, refined with a
    fourth zero column, equal the plain 3-column iteration)."""
    problems = cases(3, 40, 7)
    wide = [(np.column_stack([X, np.zeros(len(y))]), y, np.append(beta, 0.0), s) for X, y, beta, s in problems]
    beta, scale, ok = mrjax_refine(wide)
    reference = [np_plain_refine(*prob) for prob in problems]
    assert ok.all()
    np.testing.assert_array_equal(beta[:, 3], 0.0)
    np.testing.assert_allclose(beta[:, :3], np.stack([r[0] for r in reference]), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(scale, np.array([r[1] for r in reference]), rtol=1e-10)


def test_elimination_solves_and_gives_the_determinant_as_numpy():
    """The unrolled Gauss–Jordan solve (sizes above 3; pivoting needed where a[0, 0] = 0)."""
    rng = np.random.default_rng(8)
    for p in (4, 5, 7):
        a = rng.normal(size=(30, p, p))
        a[:10, 0, 0] = 0.0
        b = rng.normal(size=(30, p))
        x, det = jax.jit(jax.vmap(lmrob._eliminate))(jnp.asarray(a), jnp.asarray(b))
        np.testing.assert_allclose(np.asarray(x), np.linalg.solve(a, b[..., None])[..., 0], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(np.asarray(det), np.linalg.det(a), rtol=1e-9)
        np.testing.assert_allclose(np.asarray(jax.vmap(lmrob._det)(jnp.asarray(a))), np.linalg.det(a), rtol=1e-9)
