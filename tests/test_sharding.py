"""Several devices give the results of one, bit for bit: four forced CPU devices in a
subprocess (XLA's device count is fixed when JAX starts), the panel, diagnostics, MR-PRESSO,
simulation and permutations run with ``engine.set_devices(1)`` and ``set_devices(4)``
(small shapes and closed-form methods beside one bootstrap method: each shape compiles once
per device it lands on)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import jax
    import numpy as np
    import pandas as pd
    import mrjax
    from mrjax import engine
    from mrjax.batch import from_frame, trait_keys
    from mrjax.estimators.common import Params

    assert len(jax.local_devices()) == 4, jax.local_devices()
    rng = np.random.default_rng(0)
    frames = []
    for i, n in enumerate([5] * 6 + [12] * 6):
        bx = rng.normal(0.1, 0.02, n)
        by = 0.2 * bx + rng.normal(0, 0.01, n)
        by[0] += 0.2 * (i % 3 == 0)  # an outlier in some traits: MR-PRESSO runs every test
        frames.append(pd.DataFrame({
            "SNP": [f"rs{j}" for j in range(n)], "exposure": f"t{i:02d}", "outcome": "y",
            "beta.exposure": bx, "se.exposure": rng.uniform(0.005, 0.01, n),
            "beta.outcome": by, "se.outcome": rng.uniform(0.005, 0.01, n),
        }))
    table = pd.concat(frames, ignore_index=True)
    batch = from_frame(table)
    methods = ("ivw", "egger_regression", "weighted_median")  # a bootstrap method among them
    params = Params(n_boot=50)

    def everything():
        out = {}
        for i, b in enumerate(batch.buckets(min_traits=4)):
            out[f"panel{i}"] = jax.device_get(engine.run_methods(b.instruments, trait_keys(3, b.uids), methods, params, slot=i))
            out[f"diagnostics{i}"] = jax.device_get(engine.run_diagnostics(b.instruments, slot=i))
        res = mrjax.presso(table, n_draws=400, seed=5, chunk_size=32)
        out["presso"] = (res.traits, res.instruments)
        out["simulate"] = mrjax.simulate("outliers", 32, ("ivw", "egger_regression"), seed=2, chunk_size=16,
                                         params=params)
        out["permutation"] = mrjax.permutation_test(table, ("ivw", "egger_regression"), n_perm=15, seed=4, chunk_size=8)
        return out

    engine.set_devices(1)
    one = everything()
    engine.set_devices(4)
    four = everything()
    n_buckets = sum(k.startswith("panel") for k in one)
    assert n_buckets == 2, n_buckets
    for key in one:
        for a, b in zip(jax.tree_util.tree_leaves(one[key]), jax.tree_util.tree_leaves(four[key])):
            if isinstance(a, pd.DataFrame):
                pd.testing.assert_frame_equal(a, b, check_exact=True, obj=key)
            else:
                np.testing.assert_array_equal(a, b, err_msg=key)
    assert len(four["presso"][0]) == 12 and four["presso"][0]["distortion_pval"].notna().any()
    # the calls did go to different devices
    placed = {engine.map_traits(mrjax.diagnostics.trait_diagnostics, (b.instruments,), slot=i).i2gx.devices().pop()
              for i, b in enumerate(batch.buckets(min_traits=4))}
    assert placed == set(jax.local_devices()[:2]), placed
    print("identical")
""")


def test_four_devices_give_the_results_of_one_bit_for_bit():
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=4")
    run = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0 and run.stdout.strip().endswith("identical"), run.stdout[-1000:] + run.stderr[-3000:]
