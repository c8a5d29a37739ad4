"""Which algorithm a bucket width takes, and the chunked bootstrap draws of wide traits.

The median and mode estimators have two implementations of their order statistics and
densities (see :mod:`mrjax.estimators.median`, :mod:`mrjax.estimators.mode`):

- *pairwise* (narrow traits, the widths of a scan): ranks and kernel sums from all
  ``width^2`` pairs of instruments, as row operations over the draws. Several times faster
  than sorting for tens of instruments, but its work and memory grow with ``width^2``.
- *sorted* (wide traits): ``O(width log width)`` sorts for ranks and medians, R's own binned
  density (512 bins, FFT) for the bootstrap modes, and the draws generated and reduced in
  chunks of draws (:func:`over_draw_chunks`), so memory is bounded whatever the width.

The choice is static (from the bucket's width, ``n_boot`` and :data:`PAIRWISE_BUDGET_BYTES`),
made when the engine traces a bucket: one compiled kernel per bucket shape, as before. Point
estimates are the same on both paths (the same order statistics, found by sorting instead of
counting; the weighted medians' total weight may be summed in another order, changing the
last bit). Bootstrap SEs agree to Monte-Carlo error: the same draws (up to XLA's float32
rounding in differently shaped loops), the medians' interpolation identical, and the mode's
bootstrap modes from R's binned density instead of the direct mode search
(:func:`mrjax.estimators.density.kde_modes`), per draw within two output-grid steps. The
MR-Egger bootstrap chunks its replicates the same way (:func:`draw_chunk`).
Tested in ``tests/test_wide.py``; timings in ``benchmarks/RESULTS.md`` (``bench_wide.py``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# The choice of path, in bytes: the pairwise path is used while its width^2 x copies array of
# 4-byte pairwise terms fits (materialised, for point estimates, or streamed through the
# bootstrap's row loops, whose run time grows the same way). 128 MiB puts buckets up to 128
# instruments on the pairwise path and 256 and wider on the sorted one: with 1,000 draws the
# two run equally fast at 128 and the sorted one twice as fast at 256 (benchmarks/RESULTS.md).
PAIRWISE_BUDGET_BYTES = 128 * 2**20
# Memory of one chunk of a wide bootstrap, per trait, in bytes (a bucket holds traits x this).
CHUNK_BUDGET_BYTES = 32 * 2**20
# Bytes a wide path holds per (draw, instrument slot) of a chunk: normals, draws, sort keys,
# the density's binning rows (float64), with room for XLA's temporaries.
BYTES_PER_DRAW_SLOT = 256
# Point estimates materialise a width^2 rank or permutation table per weighting (float64).
POINT_COPIES = 8


def pairwise_fits(width: int, copies: int, budget: int | None = None) -> bool:
    """Whether the pairwise path's ``width^2 x copies`` 4-byte terms fit in ``budget``
    (default :data:`PAIRWISE_BUDGET_BYTES`). ``copies`` is ``n_boot`` for a bootstrap and
    :data:`POINT_COPIES` for point estimates. Static: plain Python ints."""
    budget = PAIRWISE_BUDGET_BYTES if budget is None else int(budget)
    return int(width) ** 2 * max(int(copies), 1) * 4 <= budget


def draw_chunk(width: int, n_boot: int, budget: int | None = None) -> int:
    """Draws per chunk of a wide bootstrap: as many as fit in ``budget`` (default
    :data:`CHUNK_BUDGET_BYTES`) at :data:`BYTES_PER_DRAW_SLOT` per draw and slot (at least 1,
    at most ``n_boot``)."""
    budget = CHUNK_BUDGET_BYTES if budget is None else int(budget)
    return max(1, min(int(n_boot), budget // (BYTES_PER_DRAW_SLOT * max(int(width), 1))))


def over_draw_chunks(draws_fn, n_boot: int, chunk: int):
    """``draws_fn(counters)`` for consecutive chunks of the draw counters ``0 .. n_boot - 1``,
    one chunk at a time (``lax.map``), results joined along their last axis.

    ``draws_fn`` maps ``uint32`` counters ``[chunk]`` to a pytree of arrays whose last axis is
    the chunk's draws; the last chunk is completed with counters past ``n_boot``, whose results
    are dropped. Draw ``d`` depends only on its counter, so the result does not depend on
    ``chunk``.
    """
    n_chunks = -(-n_boot // chunk)
    counters = jnp.arange(n_chunks * chunk, dtype=jnp.uint32).reshape(n_chunks, chunk)
    if n_chunks == 1:
        return jax.tree_util.tree_map(lambda a: a[..., :n_boot], draws_fn(counters[0]))
    out = jax.lax.map(draws_fn, counters)

    def join(a):  # [n_chunks, ..., chunk] -> [..., n_boot]
        a = jnp.moveaxis(a, 0, -2)
        return a.reshape(a.shape[:-2] + (n_chunks * chunk,))[..., :n_boot]

    return jax.tree_util.tree_map(join, out)
