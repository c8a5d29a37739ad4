"""Bootstrap draws in the draws-minor layout, and sums over instruments written for it.

Every bootstrap here works on ``[width, n_boot]`` arrays: one row per instrument slot, the
draws along the last (minor) axis. On CPU, XLA turns elementwise work on such rows into
vectorised loops, while reductions over a short instrument axis compile to slow scalar loops;
so sums over instruments are written as a loop of row operations (:func:`slot_sum`), which XLA
vectorises over the draws (~5-20x faster than ``jnp.sum`` over the instrument axis of
``[n_boot, width, width]`` for the pairwise statistics of the median and mode bootstraps).

``slot_normals(key, n_boot, width)`` gives ``[width, n_boot]`` N(0, 1) draws where row ``j``
comes only from ``fold_in(key, j)``: a real instrument in slot ``j`` receives the same draws
whatever the padded width of its trait, so padding never changes a bootstrap result.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# Terms per iteration of the loop in slot_sum.
UNROLL = 4


def uniform_normals(key, n: int):
    """``n`` standard normals in float32 from ``ceil(n / 2)`` 64-bit Threefry words: each
    32-bit half gives a 24-bit uniform ``u`` on ``(-1, 1)`` (midpoints of a 2^24 grid) and
    ``z = sqrt(2) erfinv(u)``.

    Half the hashing of ``jax.random.normal`` and a float32 inverse-erf: about a third of the
    cost of float64 normals, which dominate a bootstrap's run time. Tails stop at
    ``|z| = 5.45`` (probability 5e-8 per variate): immaterial for a bootstrap SE.
    """
    bits = jax.random.bits(key, (-(-n // 2),), jnp.uint64)
    halves = jnp.concatenate([bits >> 32, bits & 0xFFFFFFFF]).astype(jnp.uint32)[:n]
    u = (halves >> 8).astype(jnp.float32) * jnp.float32(2.0**-23) + jnp.float32(2.0**-24 - 1.0)
    return jnp.float32(np.sqrt(2.0)) * jax.lax.erf_inv(u)


def slot_normals(key, n_boot: int, width: int, dtype=jnp.float64):
    """``[width, n_boot]`` standard normals; row ``j`` depends only on ``fold_in(key, j)``."""
    rows = jax.vmap(lambda j: uniform_normals(jax.random.fold_in(key, j), n_boot))(jnp.arange(width))
    return rows.astype(dtype)


def slot_sum(term, width: int):
    """``sum_{j < width} term(j)`` for ``term(j)`` an array of row operations (``j`` traced).

    A ``fori_loop`` partly unrolled (``UNROLL`` terms per iteration): fully unrolled sums run
    ~2x faster but multiply XLA's compile time, which a user pays on every first run.
    """
    return jax.lax.fori_loop(1, width, lambda j, acc: acc + term(j), term(0), unroll=UNROLL)
