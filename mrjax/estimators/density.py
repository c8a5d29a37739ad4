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

:func:`kde_mode` is the cheap counterpart for bootstrap draws: the same density's mode
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
# Second stage: a ladder of points spaced ``bw / SEARCH_STEPS`` over +-bw around the best data point.
SEARCH_STEPS = 8
# Third stage: output grid points within +-WINDOW steps of the parabolic peak of the ladder.
# A grid step is at least 6 bw / 511 (the grid spans the data range plus 6 bw), so the
# window covers +-0.05 bw or more, several times the parabola's error on a peak sampled
# every bw / 8.
WINDOW = 4


def kde_mode(x, weights, mask, bw):
    """Mode of the weighted Gaussian kernel density of ``x`` with R's bandwidth, found on R's
    output grid without R's binning: the bootstrap counterpart of :func:`density_mode`.

    With ``f(c) = sum_j w_j exp(-(c - x_j)^2 / (2 h^2))`` and ``h = bw (2N - 1) / (2N - 2)``
    (R's kernel in data units, see ``R_KERNEL_STRETCH``):

    1. ``f`` at every data point; ``c1`` = the best one (every peak of a Gaussian mixture
       lies within about ``h`` of a data point that scores near the peak's height);
    2. ``f`` on the ladder ``c1 + i bw / 8``, ``i = -8 .. 8``; ``c2`` = the vertex of the
       parabola through the best rung and its two neighbours (moved at most one rung);
    3. ``f`` at the 9 points of R's output grid ``seq(from, to, length.out = 512)``
       nearest ``c2``; the result is the first best of them.

    Dense ``[..., points, width]`` arithmetic (no scatter, no FFT, no large gather): about
    ``(width + 26 k) width`` kernel evaluations per sample for ``k`` weightings. It differs
    from R's binned mode only by R's binning and interpolation (a fraction of a grid step for
    all but near-tied peaks), so it serves bootstrap draws, whose SE is the MAD of the draws'
    modes; point estimates must use :func:`density_mode`. ``weights`` is ``[..., width]``,
    the result ``[...]``.
    """
    layout = layout_of(x, mask, bw)
    xs = layout.x
    dtype = xs.dtype
    w = jnp.where(mask, weights, 0.0)
    inv_h = 1.0 / (bw * R_KERNEL_STRETCH)

    def density_at(points):  # points [..., P] -> [..., P]
        u = (points[..., None] - xs) * inv_h
        return jnp.sum(w[..., None, :] * jnp.exp(-0.5 * u * u), axis=-1)

    def best(points, values):
        i = jnp.argmax(values, axis=-1)
        return jnp.take_along_axis(points, i[..., None], axis=-1)[..., 0]

    u = (xs[:, None] - xs[None, :]) * inv_h
    at_data = jnp.sum(w[..., None, :] * jnp.exp(-0.5 * u * u), axis=-1)  # [..., width]
    at_data = jnp.where(mask, at_data, -jnp.inf)
    c1 = best(jnp.broadcast_to(xs, at_data.shape), at_data)

    rung = bw / SEARCH_STEPS
    ladder = c1[..., None] + jnp.arange(-SEARCH_STEPS, SEARCH_STEPS + 1, dtype=dtype) * rung
    f = density_at(ladder)
    i = jnp.clip(jnp.argmax(f, axis=-1), 1, 2 * SEARCH_STEPS - 1)[..., None]
    f_lo, f_mid, f_hi = (jnp.take_along_axis(f, i + d, axis=-1)[..., 0] for d in (-1, 0, 1))
    curvature = f_lo - 2.0 * f_mid + f_hi
    shift = jnp.where(curvature < 0, 0.5 * (f_lo - f_hi) / jnp.where(curvature < 0, curvature, -1.0), 0.0)
    c2 = jnp.take_along_axis(ladder, i, axis=-1)[..., 0] + jnp.clip(shift, -1.0, 1.0) * rung

    step = (layout.stop - layout.start) / (N_GRID - 1)
    centre = jnp.round((c2 - layout.start) / step).astype(jnp.int32)
    idx = jnp.clip(centre[..., None] + jnp.arange(-WINDOW, WINDOW + 1), 0, N_GRID - 1)
    grid = _grid_point(layout.start, layout.stop, idx).astype(dtype)
    return best(grid, density_at(grid))
