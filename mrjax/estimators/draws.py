"""Bootstrap draws in the draws-minor layout, and sums over instruments written for it.

Every bootstrap here works on ``[width, n_boot]`` arrays: one row per instrument slot, the
draws along the last (minor) axis. On CPU, XLA turns elementwise work on such rows into
vectorised loops, while reductions over a short instrument axis compile to slow scalar loops;
so sums over instruments are written as a loop of row operations (:func:`slot_sum`), which XLA
vectorises over the draws (~5-20x faster than ``jnp.sum`` over the instrument axis of
``[n_boot, width, width]`` for the pairwise statistics of the median and mode bootstraps).

Random numbers come from :func:`threefry2x32` (the hash behind JAX's default PRNG, written
elementwise so XLA fuses it with its consumers) and :func:`box_muller`; the bootstraps and
MR-PRESSO share them. ``slot_normals(key, n_boot, width)`` gives ``[width, n_boot]`` N(0, 1)
draws where row ``j`` comes only from ``fold_in(key, j)``: a real instrument in slot ``j``
receives the same draws whatever the padded width of its trait, so padding never changes a
bootstrap result.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

# Terms per iteration of the loop in slot_sum.
UNROLL = 4


_THREEFRY_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def threefry2x32(k0, k1, x0, x1):
    """The Threefry-2x32 hash (20 rounds, Salmon et al. 2011) of counters ``(x0, x1)`` under
    the key ``(k0, k1)``: all ``uint32``, broadcast together; returns two ``uint32`` arrays.

    Bit for bit the function behind JAX's default PRNG (``jax.extend.random.threefry2x32_p``),
    written as plain elementwise integer operations so that XLA fuses it with what consumes
    its output (JAX's own CPU lowering runs the rounds as a loop over whole arrays).
    """
    k2 = k0 ^ k1 ^ jnp.uint32(0x1BD11BDA)
    schedule = (k0, k1, k2)
    x0, x1 = x0 + k0, x1 + k1
    for block in range(5):
        for r in _THREEFRY_ROTATIONS[block % 2]:
            x0 = x0 + x1
            x1 = (x1 << jnp.uint32(r)) | (x1 >> jnp.uint32(32 - r))
            x1 = x0 ^ x1
        x0 = x0 + schedule[(block + 1) % 3]
        x1 = x1 + schedule[(block + 2) % 3] + jnp.uint32(block + 1)
    return x0, x1


def box_muller(word0, word1):
    """Two independent float32 N(0, 1) arrays from two uint32 words (Box and Muller 1958):
    ``r = sqrt(-2 log u)`` with ``u`` the top 24 bits of ``word0`` (midpoints of a 2^24 grid
    on (0, 1)), and the angle ``theta = (pi/2) (q + f)`` from ``word1``: quadrant ``q`` its
    top 2 bits, ``f`` its next 22 bits (midpoints on (0, 1)). Returns ``(r cos theta',
    r sin theta')`` with ``theta' = theta - pi/4`` (a fixed rotation of a uniform angle is
    still uniform): the sine and cosine of ``x = theta' - q pi/2`` in ``[-pi/4, pi/4]`` are
    Taylor polynomials (terms to x^9 and x^8: error below 3e-8, under float32's resolution),
    rotated by ``q`` quarter turns.

    About a third of the cost of two float32 ``erfinv`` calls on this CPU (one log per pair
    instead of two; XLA's own sine and cosine, slower than ``erfinv``, are avoided; quadrant
    signs by ``where`` rather than ``jnp.select``, which XLA compiled twice as slow). Tails
    stop at |z| = sqrt(50 log 2) = 5.89 (probability 4e-9 per variate, below the resolution
    of any feasible ``n_draws``).
    """
    u = (word0 >> 8).astype(jnp.float32) * jnp.float32(2.0**-24) + jnp.float32(2.0**-25)
    r = jnp.sqrt(jnp.float32(-2.0) * jnp.log(u))
    quadrant = word1 >> 30
    f = ((word1 >> 8) & jnp.uint32(0x3FFFFF)).astype(jnp.float32) * jnp.float32(2.0**-22)
    x = (f + jnp.float32(2.0**-23 - 0.5)) * jnp.float32(np.pi / 2)
    x2 = x * x
    sin = x * (1 + x2 * (-1 / 6 + x2 * (1 / 120 + x2 * (-1 / 5040 + x2 * (1 / 362880)))))
    cos = 1 + x2 * (-1 / 2 + x2 * (1 / 24 + x2 * (-1 / 720 + x2 * (1 / 40320))))
    # q quarter turns: (cos, sin) -> (-sin, cos) -> (-cos, -sin) -> (sin, -cos)
    odd = (quadrant & 1) == 1
    first_sign = jnp.where(((quadrant ^ (quadrant >> 1)) & 1) == 1, -r, r)
    second_sign = jnp.where(quadrant >= 2, -r, r)
    return first_sign * jnp.where(odd, sin, cos), second_sign * jnp.where(odd, cos, sin)


def slot_normals(key, n_boot: int, width: int, dtype=jnp.float64, *, row_by_row: bool = False):
    """``[width, n_boot]`` standard normals: entry ``(j, d)`` is the first Box–Muller normal
    of ``threefry2x32(fold_in(key, j), (d, 0))``, so row ``j`` depends only on the key and
    the slot (never on the padded width).

    XLA fuses the hash into each consumer of the result and recomputes it there. That is
    free for a single consumer (the median's ratios); with ``row_by_row`` the array is
    instead written one slot per iteration of a loop, whose carry XLA materialises once
    (the mode search reads its draws in a dozen places: 1.4 -> 0.9 s on the scan fixture).
    The values are the same either way.
    """
    k = slot_key_words(key, width)

    def normals(k0, k1, counters):
        word0, word1 = threefry2x32(k0, k1, counters, jnp.zeros_like(counters))
        return box_muller(word0, word1)[0].astype(dtype)

    if not row_by_row:
        return normals(k[:, 0:1], k[:, 1:2], jnp.broadcast_to(jnp.arange(n_boot, dtype=jnp.uint32), (width, n_boot)))
    counters = jnp.arange(n_boot, dtype=jnp.uint32)
    fill = lambda j, out: out.at[j].set(normals(k[j, 0], k[j, 1], counters))  # noqa: E731
    return jax.lax.fori_loop(0, width, fill, jnp.zeros((width, n_boot), dtype))


def slot_key_words(key, width: int):
    """``[width, 2]`` uint32: the key data of ``fold_in(key, j)`` for every slot ``j``."""
    slot_keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, jnp.arange(width, dtype=jnp.uint32))
    return jax.random.key_data(slot_keys)


def draw_normals(words, counters, dtype=jnp.float64):
    """The draws ``counters[c]`` of :func:`slot_normals` in the draws-major layout:
    ``[c, width]`` with entry ``(i, j)`` equal to ``slot_normals(...)[j, counters[i]]``, from
    the slot key words ``words[width, 2]`` (:func:`slot_key_words`). The wide bootstraps
    generate their draws a chunk of counters at a time with it."""
    c = counters[:, None]
    word0, word1 = threefry2x32(words[None, :, 0], words[None, :, 1], c, jnp.zeros_like(c))
    return box_muller(word0, word1)[0].astype(dtype)


def slot_sum(term, width: int):
    """``sum_{j < width} term(j)`` for ``term(j)`` an array of row operations (``j`` traced).

    A ``fori_loop`` partly unrolled (``UNROLL`` terms per iteration): fully unrolled sums run
    ~2x faster but multiply XLA's compile time, which a user pays on every first run.
    """
    return jax.lax.fori_loop(1, width, lambda j, acc: acc + term(j), term(0), unroll=UNROLL)


# Widest bucket whose draws are sorted by :func:`sort_slots` (a sorting network, unrolled into
# the compiled kernel): at 16 slots it is ~4x faster than pairwise ranks, at 32 ~1.4x for ~2 s
# more compilation, at 64 slower and ~10 s more (benchmarks/RESULTS.md, ninth session).
SORT_NETWORK_MAX_WIDTH = 32


@functools.lru_cache(maxsize=None)
def sorting_layers(width: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Batcher's odd-even merge sort network (Knuth, TAOCP vol. 3, 5.3.4, algorithm M) for
    ``width`` items: layers of disjoint compare-exchange pairs ``(a, b)``, ``a < b``.

    Built for the next power of two; comparators that reach a slot ``>= width`` are left out,
    which is exact when those slots would hold +inf (a compare-exchange with +inf moves nothing).
    """
    size = 1
    while size < width:
        size *= 2
    layers = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            layer = tuple(
                (i + j, i + j + k)
                for j in range(k % p, size - k, 2 * k)
                for i in range(min(k, size - j - k))
                if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < width
            )
            if layer:
                layers.append(layer)
            k //= 2
        p *= 2
    return tuple(layers)


def sort_slots(x):
    """``x[width, ...]`` with each column sorted ascending along the slot axis (the values
    of ``jnp.sort(x, axis=0)``), by :func:`sorting_layers` as row-wise ``minimum``/``maximum``.

    Each layer's rows are materialised (``optimization_barrier``) before the next reads them:
    fused across layers, XLA recomputes every comparator for each output row. No NaN: a
    compare-exchange with NaN gives NaN to both slots.
    """
    rows = list(x)
    for layer in sorting_layers(x.shape[0]):
        for a, b in layer:
            rows[a], rows[b] = jnp.minimum(rows[a], rows[b]), jnp.maximum(rows[a], rows[b])
        rows = list(jax.lax.optimization_barrier(tuple(rows)))
    return jnp.stack(rows)
