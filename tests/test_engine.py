"""The jit edge: compilations counted, float64 turned on by the engine, one bucketing policy and
one memory budget, the device setting."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.monitoring
import numpy as np
import pandas as pd
import pytest

import mrjax  # noqa: F401
from mrjax import batch, engine, mr_presso
from mrjax.batch import DRAW_BUCKETS, PANEL_BUCKETS, from_frame, trait_keys
from mrjax.estimators.common import Params

ROOT = Path(__file__).resolve().parents[1]
# An order of methods no other test uses, so that this test's executables are its own.
METHODS = ("egger_regression", "ivw")


def _table(nsnp, seed=0):
    """A harmonised table with one trait per entry of ``nsnp``."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, n in enumerate(nsnp):
        bx = rng.normal(0.1, 0.02, n)
        rows.append(pd.DataFrame({
            "SNP": [f"rs{j}" for j in range(n)], "exposure": f"t{i:03d}", "outcome": "y",
            "beta.exposure": bx, "se.exposure": rng.uniform(0.01, 0.02, n),
            "beta.outcome": 0.3 * bx + rng.normal(0, 0.01, n), "se.outcome": rng.uniform(0.01, 0.02, n),
        }))
    return pd.concat(rows, ignore_index=True)


class _Compilations:
    """Counts XLA backend compilations (jax.monitoring's compile-duration events)."""

    def __init__(self):
        self.count = 0

    def __call__(self, event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            self.count += 1

    def __enter__(self):
        jax.monitoring.register_event_duration_secs_listener(self)
        return self

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self)


def _panel(buckets, params):
    return [
        (jax.device_get(engine.run_methods(b.instruments, trait_keys(1, b.uids), METHODS, params)),
         jax.device_get(engine.run_diagnostics(b.instruments)))
        for b in buckets
    ]


def test_two_buckets_compile_each_kernel_once_and_a_repeat_compiles_nothing():
    data = from_frame(_table([3] * 5 + [11] * 6))
    buckets = list(data.buckets(min_traits=4))
    assert [b.instruments.bx.shape for b in buckets] == [(8, 4), (8, 16)]
    params = Params(n_boot=10)
    before = {fn: engine.compiled_shapes(fn) for fn in (engine.trait_methods, mrjax.diagnostics.trait_diagnostics)}
    first = _panel(buckets, params)
    assert engine.compiled_shapes(engine.trait_methods) - before[engine.trait_methods] == 2
    diagnostics_new = engine.compiled_shapes(mrjax.diagnostics.trait_diagnostics) - before[mrjax.diagnostics.trait_diagnostics]
    assert diagnostics_new in (0, 2)  # other tests may have compiled these two shapes already
    with _Compilations() as compiled:
        again = _panel(buckets, params)
    assert compiled.count == 0
    assert engine.compiled_shapes(engine.trait_methods) - before[engine.trait_methods] == 2
    for (m1, d1), (m2, d2) in zip(first, again):
        for a, b in zip(jax.tree_util.tree_leaves((m1, d1)), jax.tree_util.tree_leaves((m2, d2))):
            np.testing.assert_array_equal(a, b)


def test_the_engine_turns_on_float64_itself():
    """Whatever ``import mrjax`` does, the engine enables x64 before it makes an array."""
    script = textwrap.dedent("""
        import jax
        import mrjax
        from mrjax import engine
        from mrjax.batch import make_instruments, trait_keys
        jax.config.update("jax_enable_x64", False)  # as if nothing had turned it on
        t = make_instruments([0.1, 0.2, 0.3], [0.01] * 3, [0.03, 0.05, 0.1], [0.02] * 3)
        assert jax.config.jax_enable_x64 and t.bx.dtype == "float64", t.bx.dtype
        jax.config.update("jax_enable_x64", False)
        out = engine.run_methods(t, trait_keys(2**40, [7])[0], ("ivw",))
        assert out["ivw"].b.dtype == "float64", out["ivw"].b.dtype
        print("ok")
    """)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]


def test_one_policy_two_settings():
    assert [PANEL_BUCKETS.width(n) for n in (1, 4, 5, 9, 17, 33)] == [16, 16, 16, 16, 32, 64]
    assert [DRAW_BUCKETS.width(n) for n in (1, 8, 9, 17, 25, 33, 49, 65)] == [8, 8, 16, 24, 32, 48, 64, 96]
    assert [PANEL_BUCKETS.rows(n) for n in (1, 3, 64, 65, 130)] == [1, 4, 64, 128, 192]
    assert [DRAW_BUCKETS.rows(n) for n in (1, 3, 8, 9, 17)] == [1, 4, 8, 16, 24]
    # width groups are never merged (a trait's width depends on its own instruments only)
    nsnp = np.array([3] * 10 + [12] * 100)
    assert [w for _, w in PANEL_BUCKETS.plan(nsnp)] == [16]
    assert [w for _, w in PANEL_BUCKETS.plan(np.array([3] * 10 + [20] * 100))] == [16, 32]
    assert [w for _, w in DRAW_BUCKETS.plan(nsnp)] == [8, 16]
    # the memory budget caps the traits of a bucket (row_elements per trait at that width)
    plan = PANEL_BUCKETS.plan(nsnp, row_elements=lambda width: width * 100, budget=64 * 16 * 100)
    assert [len(index) for index, _ in plan] == [64, 64]
    assert sorted(np.concatenate([index[index >= 0] for index, _ in plan]).tolist()) == list(range(110))


def test_memory_budget_is_one_overridable_constant(monkeypatch):
    """MR-PRESSO under a budget so small that each bucket holds 8 traits: more buckets, the
    same counts (a trait's draws depend only on the seed and the trait)."""
    data = from_frame(_table([6] * 20 + [12] * 3, seed=3))
    full = mrjax.presso(data, n_draws=200, seed=4, chunk_size=32)
    assert len(list(mr_presso._buckets(data, 32))) == 2
    monkeypatch.setattr(batch, "MEMORY_BUDGET_ELEMENTS", 8 * 32 * 8)
    assert [b.instruments.bx.shape for b in mr_presso._buckets(data, 32)] == [(8, 8), (8, 8), (4, 8), (4, 16)]
    split = mrjax.presso(data, n_draws=200, seed=4, chunk_size=32)
    exact = ["nsnp", "global_pval", "n_outliers", "outliers", "raw_b", "rss_obs"]
    pd.testing.assert_frame_equal(split.traits[exact], full.traits[exact], check_exact=True)
    pd.testing.assert_frame_equal(split.traits, full.traits, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(split.instruments, full.instruments, check_exact=True)


def test_device_setting_is_checked():
    assert engine.devices() == tuple(jax.local_devices())
    with pytest.raises(ValueError, match="positive integer"):
        engine.set_devices(0)
    with pytest.raises(ValueError, match="JAX sees"):
        engine.set_devices(len(jax.local_devices()) + 1)
    engine.set_devices(1)
    try:
        assert engine.devices() == tuple(jax.local_devices()[:1])
    finally:
        engine.set_devices(None)
