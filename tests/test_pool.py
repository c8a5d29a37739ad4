"""``mrjax.estimators.pool.pooled_while``: every item ends where its own loop ends (checked against
a plain Python loop), whatever the number of slots, with items that need no step, items held by
a step cap, and a traced ``total`` that leaves the last items unrun."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mrjax.estimators.pool import pooled_while

CAP = 40


def _collatz_reference(start):
    """Steps of the Collatz map from ``start`` until 1 (at most CAP), and where it stopped."""
    x, it = int(start), 0
    while x != 1 and it < CAP:
        x = x // 2 if x % 2 == 0 else 3 * x + 1
        it += 1
    return x, it


@pytest.mark.parametrize("slots", [1, 3, 16, 500])
def test_each_item_ends_where_its_own_loop_ends(slots):
    starts = np.array([1, 2, 3, 7, 27, 97, 1, 6, 871, 5, 11, 1, 64, 9, 31, 8], np.int64)  # 27, 97, 871: cap
    data = jnp.asarray(starts)

    def load(i):
        return {"x": data[i], "it": jnp.zeros((), jnp.int32), "item": i}

    going = lambda s: (s["x"] != 1) & (s["it"] < CAP)  # noqa: E731

    def step(s):
        x = s["x"]
        return dict(s, x=jnp.where(x % 2 == 0, x // 2, 3 * x + 1), it=s["it"] + 1)

    out = jax.jit(lambda: pooled_while(load, going, step, len(starts), slots))()
    want = np.array([_collatz_reference(s) for s in starts])
    np.testing.assert_array_equal(np.asarray(out["x"]), want[:, 0])
    np.testing.assert_array_equal(np.asarray(out["it"]), want[:, 1])
    np.testing.assert_array_equal(np.asarray(out["item"]), np.arange(len(starts)))  # each written to its own row


def test_items_past_a_traced_total_are_not_run_and_keep_selects_fields():
    starts = jnp.asarray([3, 7, 6, 9, 12], jnp.int64)

    def run(total):
        return pooled_while(lambda i: (starts[i], jnp.zeros((), jnp.int32)), lambda s: (s[0] != 1) & (s[1] < CAP),
                            lambda s: (jnp.where(s[0] % 2 == 0, s[0] // 2, 3 * s[0] + 1), s[1] + 1), 5, 2,
                            total=total, keep=lambda s: s[1])

    steps = np.asarray(jax.jit(run)(3))
    np.testing.assert_array_equal(steps, [_collatz_reference(s)[1] for s in (3, 7, 6)] + [0, 0])
    assert np.asarray(jax.jit(run)(0)).tolist() == [0] * 5


def test_equals_a_vmapped_while_loop_on_floats():
    """Newton's iteration for square roots, to a per-item tolerance: the pool's result is bit for
    bit that of ``vmap(while_loop)``."""
    a = jnp.asarray(np.random.default_rng(1).uniform(0.01, 1e6, 200))
    tol = jnp.where(jnp.arange(200) % 3 == 0, 1e-3, 1e-15)

    def step(s):
        x, it, i = s
        return 0.5 * (x + a[i] / x), it + 1, i

    going = lambda s: (jnp.abs(s[0] * s[0] - a[s[2]]) > tol[s[2]] * a[s[2]]) & (s[1] < 100)  # noqa: E731
    start = lambda i: (a[i], jnp.zeros((), jnp.int32), i)  # noqa: E731
    pooled = jax.jit(lambda: pooled_while(start, going, step, 200, 7))()
    plain = jax.jit(lambda: jax.vmap(lambda i: jax.lax.while_loop(going, step, start(i)))(jnp.arange(200)))()
    np.testing.assert_array_equal(np.asarray(pooled[0]), np.asarray(plain[0]))
    np.testing.assert_array_equal(np.asarray(pooled[1]), np.asarray(plain[1]))
    np.testing.assert_allclose(np.asarray(pooled[0]), np.sqrt(np.asarray(a)), rtol=1e-3)
