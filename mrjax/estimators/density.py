"""R's binned Gaussian kernel density (``stats::density.default``, R 4.2.2) and its mode.

TwoSampleMR's mode-based estimators (``mr_mode``) take the location of the largest value of
``density(r, weights = w, bw = h)``. That density is not an exact kernel estimate: R

1. sets ``from = min(r) - 3h``, ``to = max(r) + 3h`` (``cut = 3``) and ``lo = from - 4h``,
   ``up = to + 4h``;
2. bins the weighted data linearly onto ``N = 512`` points spanning ``[lo, up]``
   (C routine ``BinDist``: spacing ``delta = (up - lo) / (N - 1)``, a point at
   ``lo + (i + f) delta`` gives ``w (1 - f)`` to bin ``i`` and ``w f`` to bin ``i + 1``);
3. samples the kernel at ``kords = seq(0, 2 (up - lo), length.out = 2N)`` mirrored, i.e. at
   offsets ``d * 2 (up - lo) / (2N - 1)`` — a spacing slightly larger than twice the bin
   spacing, which we reproduce;
4. convolves circularly by FFT, so bin ``k`` receives
   ``sum_m y[m] dnorm(|m - k| * 2 (up - lo) / (2N - 1), sd = h)`` (the circular wrap never
   reaches the occupied bins), and clips negatives to 0;
5. interpolates linearly (``approx``) from the bin points ``seq(lo, up, length.out = N)`` to
   the output grid ``seq(from, to, length.out = 512)``.

We follow the same steps with 1024-point real FFTs (the kernel is symmetric, so its
spectrum is real and one ``rfft``/``irfft`` pair per weighting suffices); values agree with
R's to rounding (~1e-16 of the peak). The mode is the output grid point of the first maximum
(R: ``x[y == max(y)][1]``). (A direct sum over the at most ``2n`` occupied bins would need
``2n x 512`` kernel look-ups per density; XLA's CPU gathers make that slower than the FFTs
for all but the smallest instrument sets.)

:func:`kde_modes` is the cheap counterpart for bootstrap draws: the same density's mode
found by direct evaluation of the unbinned kernel sum at a few dozen points (see there).

Every function here works on one sample ``x[width]`` with a boolean ``mask``:
masked entries get zero weight and sit on the sample minimum, so padding never changes a
result. Several weight vectors can share one sample (and therefore one bandwidth, bin
layout and kernel): ``weights`` is ``[..., width]``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax.estimators.draws import UNROLL, slot_sum

N_GRID = 512  # R's n (also the bin count for n <= 512)
CUT = 3.0  # R's cut: output grid extends 3 bandwidths beyond the data
PAD = 4.0  # bins extend a further 4 bandwidths
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def r_seq(start, stop, n: int):
    """``seq.int(start, stop, length.out = n)`` as R computes it: the ends exactly, the
    interior as ``start + i * ((stop - start) / (n - 1))``."""
    i = jnp.arange(n, dtype=jnp.result_type(start, float))
    step = (stop - start) / (n - 1)
    out = start + i * step
    return out.at[0].set(start).at[n - 1].set(stop)


class Layout(NamedTuple):
    """Where a sample's bins and output grid lie; shared by every weight vector of a sample.

    ``start``/``stop`` are R's ``from``/``to``; ``lo``/``up`` the bin range; ``delta`` the bin
    spacing; ``x`` the sample with masked entries moved onto the minimum (finite, inert).
    """

    bw: jax.Array
    start: jax.Array
    stop: jax.Array
    lo: jax.Array
    up: jax.Array
    delta: jax.Array
    x: jax.Array


def layout_of(x, mask, bw) -> Layout:
    """R's ``from = min - 3 bw``, ``to = max + 3 bw``, ``lo = from - 4 bw``, ``up = to + 4 bw``."""
    xmin = jnp.min(jnp.where(mask, x, jnp.inf))
    xmax = jnp.max(jnp.where(mask, x, -jnp.inf))
    start = xmin - CUT * bw
    stop = xmax + CUT * bw
    lo = start - PAD * bw
    up = stop + PAD * bw
    return Layout(bw, start, stop, lo, up, (up - lo) / (N_GRID - 1), jnp.where(mask, x, xmin))


def _bin_coordinates(layout: Layout):
    """BinDist's bin index ``ix`` and fraction ``fx`` of every point, with validity of the
    lower (``ix``) and upper (``ix + 1``) contribution as in R's edge rules."""
    pos = (layout.x - layout.lo) / layout.delta
    ix_float = jnp.floor(pos)
    fx = pos - ix_float
    ix = ix_float.astype(jnp.int32)
    lower_ok = (ix >= 0) & (ix <= N_GRID - 1)
    upper_ok = (ix >= -1) & (ix <= N_GRID - 2)
    return ix, fx, lower_ok, upper_ok


def kernel_ordinates(layout: Layout, offsets=None):
    """``dnorm(d * 2 (up - lo) / (2N - 1), sd = bw)`` for bin offsets ``d`` (default
    ``0 .. N - 1``, the first half of R's ``kords``)."""
    d = jnp.arange(N_GRID, dtype=layout.lo.dtype) if offsets is None else offsets
    step = 2.0 * (layout.up - layout.lo) / (2 * N_GRID - 1)
    u = d * step / layout.bw
    return _INV_SQRT_2PI * jnp.exp(-0.5 * u * u) / layout.bw


def binned_counts(layout: Layout, weights):
    """BinDist: ``[..., 2N]`` linearly binned ``weights`` (``[..., width]``), zero beyond ``N``.

    One scatter-add of a row per point (its lower and upper shares for every weighting) at
    bin ``ix``; the upper shares are then moved up one bin. XLA's CPU scatter pays per
    update, so this is ~4x cheaper than scattering each share separately.
    """
    ix, fx, lower_ok, upper_ok = _bin_coordinates(layout)
    lower = jnp.where(lower_ok, 1.0 - fx, 0.0)
    upper = jnp.where(upper_ok, fx, 0.0)
    lead = weights.shape[:-1]
    w2 = weights.reshape((-1, weights.shape[-1]))  # [m, width]
    rows = jnp.concatenate([w2 * lower, w2 * upper]).T  # [width, 2m]: lower shares, upper shares
    # Row N + 1 collects points outside BinDist's range (never hit in practice; R drops them).
    table = jnp.zeros((N_GRID + 2, rows.shape[-1]), dtype=rows.dtype)
    table = table.at[jnp.where((ix >= -1) & (ix <= N_GRID - 1), ix + 1, N_GRID + 1)].add(rows)
    m = w2.shape[0]
    y = table[1 : N_GRID + 1, :m] + table[0:N_GRID, m:]  # bin k: lower shares at k, upper shares from k - 1
    y = y.T.reshape(lead + (N_GRID,))
    return jnp.concatenate([y, jnp.zeros_like(y)], axis=-1)


def circular_kernel(layout: Layout):
    """R's mirrored ``kords`` after ``dnorm``: ``[2N]`` with entry ``i`` the kernel at offset
    ``min(i, 2N - i)`` (index ``N`` keeps offset ``N``, as R's mirroring leaves it)."""
    kv = kernel_ordinates(layout)
    middle = kernel_ordinates(layout, jnp.full((1,), N_GRID, dtype=layout.lo.dtype))
    return jnp.concatenate([kv, middle, kv[1:][::-1]])


def binned_density(layout: Layout, weights, conv_dtype=None):
    """Density at the ``N`` bin points ``seq(lo, up, length.out = N)`` for each weight vector
    in ``weights`` (``[..., width]``): R's
    ``pmax(0, Re(fft(fft(y) * Conj(fft(kords)), inverse = TRUE))[1:N] / (2N))``.

    The kernel is real and symmetric, so its transform is real and the circular
    cross-correlation is ``irfft(rfft(y) * rfft(kords))``. ``conv_dtype`` (e.g. float32)
    runs the transforms in lower precision (~1e-7 relative error; the transforms are ~3x
    faster on CPU, though they are not the only cost of a density).
    """
    y = binned_counts(layout, weights)
    kernel = circular_kernel(layout)
    if conv_dtype is not None:
        y, kernel = y.astype(conv_dtype), kernel.astype(conv_dtype)
    spectrum = jnp.fft.rfft(y) * jnp.fft.rfft(kernel).real
    dens = jnp.fft.irfft(spectrum, n=2 * N_GRID)[..., :N_GRID]
    return jnp.maximum(dens, 0.0).astype(layout.lo.dtype)


def output_grid(layout: Layout):
    """R's output abscissae ``seq(from, to, length.out = 512)``."""
    return r_seq(layout.start, layout.stop, N_GRID)


def _grid_point(start, stop, i):
    """Element ``i`` of ``seq.int(start, stop, length.out = N)``."""
    x = start + i * ((stop - start) / (N_GRID - 1))
    return jnp.where(i == 0, start, jnp.where(i == N_GRID - 1, stop, x))


def interpolate_to_output(layout: Layout, dens):
    """``approx(seq(lo, up, length.out = N), dens, xout = seq(from, to, 512))$y``: R's
    bisection finds ``i`` with ``xords[i] <= x < xords[i + 1]``; we compute it from the
    spacing and correct it by one step where rounding puts it off."""
    xout = output_grid(layout)
    i = jnp.clip(jnp.floor((xout - layout.lo) / layout.delta).astype(jnp.int32), 0, N_GRID - 2)
    i = jnp.where(_grid_point(layout.lo, layout.up, i) > xout, i - 1, i)
    i = jnp.where(_grid_point(layout.lo, layout.up, i + 1) <= xout, i + 1, i)
    i = jnp.clip(i, 0, N_GRID - 2)
    x0, x1 = _grid_point(layout.lo, layout.up, i), _grid_point(layout.lo, layout.up, i + 1)
    y0, y1 = dens[..., i], dens[..., i + 1]
    y = y0 + (y1 - y0) * ((xout - x0) / (x1 - x0))
    return jnp.where(xout == x1, y1, y)


def r_density(x, weights, mask, bw, conv_dtype=None):
    """R's ``density(x, weights = weights, bw = bw)``: ``(x_grid[512], y[..., 512])``.

    ``weights`` are used as given (R warns but does not normalise when they do not sum to 1).
    """
    layout = layout_of(x, mask, bw)
    weights = jnp.where(mask, weights, 0.0)
    dens = binned_density(layout, weights, conv_dtype)
    return output_grid(layout), interpolate_to_output(layout, dens)


def density_mode(x, weights, mask, bw, conv_dtype=None):
    """Location of the first maximum of R's ``density(x, weights = weights, bw = bw)``
    (TwoSampleMR ``mr_mode``'s inner ``beta``: ``densityIV$x[densityIV$y == max(densityIV$y)]``).

    ``weights`` may be ``[..., width]``; the result is ``[...]``.
    """
    grid, y = r_density(x, weights, mask, bw, conv_dtype)
    return grid[jnp.argmax(y, axis=-1)]


# --- Cheap mode search for bootstrap draws ------------------------------------------------

# R's kernel is sampled at offsets ``m * 2 (up - lo) / (2N - 1)`` for points ``m`` bins
# (``m * (up - lo) / (N - 1)``) apart: in data units its bandwidth is ``bw (2N - 1) / (2N - 2)``.
R_KERNEL_STRETCH = (2 * N_GRID - 1) / (2 * N_GRID - 2)
# Ascent steps from the best data point to the peak of its hill (Newton where the density is
# concave, mean shift elsewhere; each step at most one bandwidth). Three steps put the peak
# within half an output-grid step of R's binned mode as often as evaluating the density at
# the grid points around it did after two (and in fewer near-ties), for less work.
ASCENT_STEPS = 3
# Precision of the search's kernel sums (positions are kept in bandwidth units relative to the
# draw's minimum, so float32 resolves them to ~1e-7 bandwidths, far below R's own binning
# error); float32 exponentials cost several times less than float64 on CPU.
SEARCH_DTYPE = jnp.float32


def _density_at_points(y, weights):
    """``f[m, i, d] = sum_j weights[m, j] exp(-(y[i, d] - y[j, d])^2 / 2)``: the unnormalised
    kernel density of every draw (column of ``y[width, draws]``) at each of its own points,
    for each weighting ``weights[k, width]``.

    Every kernel value serves all weightings, but XLA's CPU loops compute one output array
    per fused loop (and recompute a shared producer for each). So weightings go in pairs as
    the real and imaginary parts of complex weights: one complex sum per pair reads each
    exponential once (halving the search's dominant cost for the simple + weighted mode).
    """
    width = y.shape[0]
    k = weights.shape[0]
    if k % 2:
        weights = jnp.concatenate([weights, jnp.zeros_like(weights[:1])])
    packed = jax.lax.complex(weights[0::2], weights[1::2]).T  # [width, pairs]
    sums = slot_sum(lambda j: packed[j][:, None, None] * jnp.exp(-0.5 * (y - y[j]) ** 2), width)  # [pairs, width, draws]
    return jnp.stack([sums.real, sums.imag], axis=1).reshape((-1,) + y.shape)[:k]


def kde_modes(x, weights, mask, bw):
    """Modes of the weighted Gaussian kernel density of every draw, on R's output grid, without
    R's binning: the bootstrap counterpart of :func:`density_mode`.

    ``x[width, draws]`` (one column per bootstrap draw, rows = instrument slots; masked rows
    are ignored), ``weights[k, width]`` (several weightings of each draw), ``bw[draws]``;
    returns ``[k, draws]``. With ``f(c) = sum_j w_j exp(-u_j^2 / 2)``, ``u_j = (x_j - c) / h``
    and ``h = bw (2N - 1) / (2N - 2)`` (R's kernel in data units, see ``R_KERNEL_STRETCH``):

    1. ``f`` at every data point; ``c`` = the first best one (every peak of a Gaussian
       mixture lies within about ``h`` of a data point that scores near the peak's height);
    2. ``ASCENT_STEPS`` steps up that hill: Newton's ``c -= h S1 / (S2 - S0)`` where the
       density is concave (``S2 < S0``), mean shift ``c += h S1 / S0`` elsewhere, each step
       clipped to ``±h`` (``S_m = sum_j w_j e_j u_j^m``);
    3. the point of R's output grid ``seq(from, to, length.out = 512)`` nearest the peak.

    The work is ``width^2`` kernel values per draw (step 1, shared by the weightings) plus
    ``ASCENT_STEPS k width`` (each step one pass over the instrument rows that accumulates
    ``S_0, S_1, S_2`` from one exponential per row: ~25% faster than three sums over the
    instrument axis, which XLA computed from three exponentials); the arithmetic
    runs as row operations over the draws (see :mod:`mrjax.estimators.draws`). It differs
    from R's binned mode only by R's binning and interpolation (a fraction of a grid step for
    all but near-tied peaks), so it serves bootstrap draws, whose SE is the MAD of the draws'
    modes; point estimates use :func:`density_mode`.
    """
    width, n_draws = x.shape
    k = weights.shape[0]
    rows = mask[:, None]
    xmin = jnp.min(jnp.where(rows, x, jnp.inf), axis=0)
    xmax = jnp.max(jnp.where(rows, x, -jnp.inf), axis=0)
    h = bw * R_KERNEL_STRETCH

    # Positions in bandwidths above the draw's minimum. For the ascent, the k weightings become
    # k copies of the draws along the lane axis, so each instrument is one row of k * draws.
    positions = jnp.where(rows, (x - xmin) / h, 0.0).astype(SEARCH_DTYPE)  # [width, draws]
    weights = jnp.where(mask, weights, 0.0).astype(SEARCH_DTYPE)
    y = jnp.tile(positions, (1, k))  # [width, k * draws]
    w = jnp.repeat(weights.T, n_draws, axis=1)  # [width, k * draws]

    def kernel_sums(c):  # S_0, S_1, S_2 at c [k * draws], one pass over the instrument rows
        def add_row(j, sums):
            u = y[j] - c
            e = w[j] * jnp.exp(-0.5 * u * u)
            return sums[0] + e, sums[1] + e * u, sums[2] + e * u * u

        zero = jnp.zeros_like(c)
        return jax.lax.fori_loop(0, width, add_row, (zero, zero, zero), unroll=UNROLL)

    # 1. density at the data points ([k, width, draws]); the first best point in one pass over rows
    f = _density_at_points(positions, weights)

    def keep_best(i, acc):
        best_f, best_y = acc
        better = mask[i] & (f[:, i] > best_f)
        return jnp.where(better, f[:, i], best_f), jnp.where(better, positions[i], best_y)

    start_f = jnp.full((k, n_draws), -jnp.inf, dtype=SEARCH_DTYPE)
    _, c = jax.lax.fori_loop(0, width, keep_best, (start_f, jnp.zeros_like(start_f)))
    c = c.reshape(k * n_draws)

    # 2. up the hill (in bandwidth units)
    def ascend(_, c):
        s0, s1, s2 = kernel_sums(c)
        curvature = s2 - s0
        step = jnp.where(curvature < 0, -s1 / jnp.where(curvature < 0, curvature, -1.0), s1 / jnp.maximum(s0, 1e-30))
        return c + jnp.clip(step, -1.0, 1.0)

    c = jax.lax.fori_loop(0, ASCENT_STEPS, ascend, c).reshape(k, n_draws)

    # 3. the output-grid point nearest the peak
    start = xmin - CUT * bw
    stop = xmax + CUT * bw
    peak = xmin + c.astype(x.dtype) * h
    nearest = jnp.clip(jnp.round((peak - start) / ((stop - start) / (N_GRID - 1))).astype(jnp.int32), 0, N_GRID - 1)
    return _grid_point(start, stop, nearest)
