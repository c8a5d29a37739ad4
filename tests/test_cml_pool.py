"""cML's work pool (``mrjax.estimators.cml.pooled_fits``): the exact schedules iterate as R's
``cML_estimate`` (checked against the plain per-fit loop ``cml_estimate``), the ranking shortcut
``_still_top`` agrees with a plain ranking, and the profiled schedule used with data
perturbation ends where R's iteration converges, far inside the perturbations' Monte-Carlo error.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mrjax.batch import trait_keys
from mrjax.estimators import cml
from mrjax.estimators.draws import slot_normals

from _robust_golden import robust_golden

LIPIDS = ("ldl_chd", "hdl_chd", "trig_chd")


def _np_top(imp, k):
    """The ``k`` SNPs R's ``order(imp, decreasing = TRUE)`` puts first (ties by position)."""
    order = np.lexsort((np.arange(imp.size), -imp))
    top = np.zeros(imp.size, bool)
    top[order[:k]] = True
    return top


def test_still_top_agrees_with_a_plain_ranking():
    rng = np.random.default_rng(7)
    still_top = jax.jit(cml._still_top)
    for _ in range(400):
        width = int(rng.integers(3, 12))
        mask = np.arange(width) < rng.integers(2, width + 1)
        imp = rng.choice([0.5, 1.0, 2.0, 3.0], width) if rng.random() < 0.5 else rng.exponential(size=width)
        imp = np.where(mask, imp, -np.inf)
        k = int(rng.integers(0, mask.sum()))
        top = _np_top(imp, k) & mask
        # the true top set, and a set of the same size with one SNP swapped
        bad = top.copy()
        if rng.random() < 0.5 and 0 < k < mask.sum():
            bad[rng.choice(np.flatnonzero(bad))] = False
            bad[rng.choice(np.flatnonzero(mask & ~top))] = True
        assert bool(still_top(jnp.asarray(imp), jnp.asarray(bad), jnp.asarray(mask))) == bool((bad == top).all())


@pytest.fixture(scope="module")
def sets(shared_data):
    """ldl_chd and its 200 perturbed data sets, as ``cml_fit`` builds them."""
    data = robust_golden(shared_data)
    bucket = data.batch.bucket(np.array([data.row("ldl_chd")]), width=32)
    t = jax.tree_util.tree_map(lambda a: a[0], bucket.instruments)
    kx, ky = jax.random.split(trait_keys(3, bucket.uids)[0])
    bxp = jnp.concatenate([t.bx[None], t.bx + slot_normals(kx, 200, 32, t.bx.dtype).T * t.sx])
    byp = jnp.concatenate([t.by[None], t.by + slot_normals(ky, 200, 32, t.by.dtype).T * t.sy])
    ks = cml._k_values(32, None)
    return t, bxp, byp, ks, ks <= t.nsnp - 2


@pytest.fixture(scope="module")
def plain(sets):
    """Every (K, data set) fit by the per-fit loop of R's iteration."""
    t, bxp, byp, ks, _ = sets
    per_set = jax.vmap(lambda bx, by, k: cml.cml_estimate(bx, by, t.sx, t.sy, t.mask, k), (0, 0, None))
    return jax.jit(jax.vmap(per_set, (None, None, 0)))(bxp, byp, ks)


@pytest.mark.parametrize("schedule,slots", [("R", 16), ("RCRC", 4), ("RCCC", 64)])
def test_exact_schedules_iterate_as_r(sets, plain, schedule, slots):
    t, bxp, byp, ks, k_ok = sets
    pool = jax.jit(lambda: cml.pooled_fits(bxp, byp, t.sx, t.sy, t.mask, ks, k_ok, slots=slots, schedule=schedule))()
    ok = np.asarray(k_ok)
    for got, want in zip(pool, plain):
        np.testing.assert_allclose(np.asarray(got)[ok], np.asarray(want)[ok], rtol=1e-12, atol=1e-15)
        assert np.isnan(np.asarray(got)[~ok]).all()


def test_profiled_schedule_ends_where_r_converges(sets, plain, monkeypatch):
    """R stops once a sweep moves theta by <= 1e-7. With many invalid SNPs its sweeps are so
    damped that this is far short of the fixed point (ldl_chd, K >= 20: most fits 1e-5..1e-2
    off), and run on to 1e-14 they reach the profiled fits. ~1% of fits land at another local
    optimum either way."""
    t, bxp, byp, ks, k_ok = sets
    pool = jax.jit(lambda: cml.pooled_fits(bxp, byp, t.sx, t.sy, t.mask, ks, k_ok, **cml.DP_POOL))()
    ok = np.broadcast_to(np.asarray(k_ok)[:, None], pool.theta.shape)
    diff = np.abs(np.asarray(pool.theta) - np.asarray(plain.theta))
    assert np.median(diff[ok]) < 1e-6
    few = ok & (np.asarray(ks)[:, None] <= int(t.nsnp) // 2)
    assert np.mean(diff[few] < 1e-5) > 0.97
    assert np.mean((np.asarray(pool.negl) - np.asarray(plain.negl))[ok] > 1e-6) < 0.01

    monkeypatch.setattr(cml, "TOL", 1e-14)
    monkeypatch.setattr(cml, "MAXIT", 20_000)
    per_set = jax.vmap(lambda bx, by, k: cml.cml_estimate(bx, by, t.sx, t.sy, t.mask, k), (0, 0, None))
    longer = jax.jit(jax.vmap(per_set, (None, None, 0)))(bxp, byp, ks)
    assert np.mean(np.abs(np.asarray(pool.theta) - np.asarray(longer.theta))[ok] < 1e-6) > 0.95
    assert np.mean((np.asarray(pool.negl) - np.asarray(longer.negl))[ok] > 1e-9) < 0.01


def test_profiled_dp_estimate_equals_r_iteration_well_inside_monte_carlo_error(shared_data):
    data = robust_golden(shared_data)
    bucket = data.batch.bucket(np.array([data.row(n) for n in LIPIDS]), width=32)
    keys = trait_keys(20240101, bucket.uids)
    fits = [jax.jit(jax.vmap(lambda s, k, p=p: cml.cml_fit(s, 17723.0, k, dp=True, profiled=p)))(bucket.instruments, keys)
            for p in (True, False)]
    profiled, exact = (jax.tree_util.tree_map(np.asarray, f) for f in fits)
    # the estimate's Monte-Carlo sd is ~1% of b and ~5% of the SE (test_cml_golden); the
    # profiled fits move b by <= 2% of se / sqrt(200) and the SE by <= 0.2%
    mc_error = exact.se / np.sqrt(cml.NUM_PERT)
    assert (np.abs(profiled.b - exact.b) <= 0.05 * mc_error).all()
    np.testing.assert_allclose(profiled.se, exact.se, rtol=5e-3)
    np.testing.assert_allclose(profiled.gof1, exact.gof1, rtol=1e-2)



def test_batched_cml_equals_the_per_trait_function_and_the_engine_runs_it(shared_data):
    """mr_cml_batch (one DP pool across traits, what the engine runs) gives each trait the
    numbers of mr_cml alone (to rounding), for traits of different sizes (some with too few SNPs) and with
    and without DP; the engine's result is the batched one."""
    from mrjax.engine import method_salt, run_methods
    from mrjax.estimators.common import make_params

    data = robust_golden(shared_data)
    rows = np.array([data.row(n) for n in LIPIDS])
    bucket = data.batch.bucket(rows, width=32)
    t = bucket.instruments
    short = dataclasses.replace(t, mask=t.mask & (jnp.arange(32) < 2)[None])
    t = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b[:1]]), t, short)  # a fourth trait with 2 SNPs
    keys = trait_keys(7, np.arange(4, dtype=np.uint32))
    for dp in (True, False):
        params = make_params(dp=dp, n=17723.0)
        salted = jax.vmap(jax.random.fold_in, (0, None))(keys, method_salt("cml"))
        alone = jax.jit(jax.vmap(lambda s, k: cml.mr_cml(s, k, params)))(t, salted)
        pooled = jax.jit(lambda s, k: cml.mr_cml_batch(s, k, params))(t, salted)
        engine = run_methods(t, keys, ("cml",), params)["cml"]
        for field in ("b", "se", "pval", "reason"):
            a = np.asarray(getattr(alone, field))
            # the same fits; XLA may sum a slot's row in another order (1 ulp seen)
            np.testing.assert_allclose(np.asarray(getattr(pooled, field)), a, rtol=1e-12, err_msg=f"dp={dp} {field}")
            np.testing.assert_allclose(np.asarray(getattr(engine, field)), a, rtol=1e-12, err_msg=f"engine dp={dp} {field}")
        assert np.isfinite(np.asarray(alone.b)[:3]).all() and np.isnan(np.asarray(alone.b)[3])
