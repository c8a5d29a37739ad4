"""Per-trait cost of the median and mode bootstraps (n_boot = 1000), mrjax vs numpy.

For instrument counts typical of a scan (4 to 60) this times, on one bucket of simulated
traits, the jitted + vmapped ``median_panel`` (3 medians, shared draws) and ``mode_panel``
(4 modes, 2 draw sets x 2 weightings) and, as the baseline in the same process, a plain
numpy implementation of the same R algorithms for one trait at a time (vectorised over the
draws: ``np.argsort`` for the medians, batched ``np.fft`` for R's binned density).
The mode bootstrap is the direct mode search (``density.kde_modes``); the point estimates
run R's binned ``density()``.

Both wall time and process CPU time are printed: on a shared machine the CPU time is the
steadier figure. Run: ``.venv/bin/python benchmarks/bench_median_mode.py [--traits 32]``.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import mrjax  # noqa: F401  (float64)
from mrjax.batch import bucket_width, make_instruments, trait_keys
from mrjax.estimators.common import Params
from mrjax.estimators.median import median_panel
from mrjax.estimators.mode import mode_panel

N_BOOT = 1000


def simulate(n_traits, nsnp, width, rng):
    bx = rng.normal(0.05, 0.02, (n_traits, width)) * rng.choice([-1, 1], (n_traits, width))
    sx = rng.uniform(0.003, 0.008, (n_traits, width))
    sy = rng.uniform(0.004, 0.01, (n_traits, width))
    by = 0.3 * bx + rng.normal(0, 1, (n_traits, width)) * sy
    by[:, 0] += 0.05  # one pleiotropic instrument
    mask = np.broadcast_to(np.arange(width) < nsnp, (n_traits, width))
    return make_instruments(bx, sx, by, sy, mask)


# --- numpy baseline: one trait at a time -------------------------------------------------


def np_weighted_median_rows(r, w):
    order = np.argsort(r, axis=-1, kind="stable")
    rs, ws = np.take_along_axis(r, order, -1), w[order]
    p = (np.cumsum(ws, -1) - 0.5 * ws) / ws.sum(-1, keepdims=True)
    k = (p < 0.5).sum(-1) - 1
    rows = np.arange(len(r))
    return rs[rows, k] + (rs[rows, k + 1] - rs[rows, k]) * (0.5 - p[rows, k]) / (p[rows, k + 1] - p[rows, k])


def np_median_panel(bx, sx, by, sy, rng):
    from scipy.stats import chi2

    r = by / bx
    w = 1 / (sy**2 / bx**2 + by**2 * sx**2 / bx**4)
    b_wm = np_weighted_median_rows(r[None], w)[0]
    pen = w * np.minimum(1, 20 * chi2.sf(w * (r - b_wm) ** 2, 1))
    rb = (by + sy * rng.standard_normal((N_BOOT, len(r)))) / (bx + sx * rng.standard_normal((N_BOOT, len(r))))
    return [np_weighted_median_rows(rb, wt).std(ddof=1) for wt in (np.full(len(r), 1 / len(r)), w, pen)]


def np_density_modes(x, w, bw):
    """R's binned density mode for draws ``x[B, n]`` with weights ``w[n]`` and ``bw[B]``."""
    n_grid = 512
    start, stop = x.min(1) - 3 * bw, x.max(1) + 3 * bw
    lo, up = start - 4 * bw, stop + 4 * bw
    delta = (up - lo) / (n_grid - 1)
    pos = (x - lo[:, None]) / delta[:, None]
    ix = np.floor(pos).astype(int)
    fx = pos - ix
    y = np.zeros((len(x), 2 * n_grid))
    rows = np.repeat(np.arange(len(x)), x.shape[1])
    np.add.at(y, (rows, ix.ravel()), (w * (1 - fx)).ravel())
    np.add.at(y, (rows, ix.ravel() + 1), (w * fx).ravel())
    d = np.arange(2 * n_grid)
    d = np.where(d <= n_grid, d, 2 * n_grid - d)
    u = d[None, :] * (2 * (up - lo) / (2 * n_grid - 1))[:, None] / bw[:, None]
    kern = np.exp(-0.5 * u * u) / (np.sqrt(2 * np.pi) * bw[:, None])
    dens = np.maximum(0, np.fft.irfft(np.fft.rfft(y) * np.fft.rfft(kern).real, n=2 * n_grid)[:, :n_grid])
    xords = lo[:, None] + np.arange(n_grid) * delta[:, None]
    xout = start[:, None] + np.arange(512) * ((stop - start) / 511)[:, None]
    yout = np.stack([np.interp(xo, xr, de) for xo, xr, de in zip(xout, xords, dens)])
    return xout[np.arange(len(x)), yout.argmax(1)]


def np_mode_panel(bx, sx, by, sy, rng):
    r = by / bx
    se_delta = np.sqrt(sy**2 / bx**2 + by**2 * sx**2 / bx**4)
    se_nome = sy / np.abs(bx)
    out = []
    for se, wse in ((se_delta, se_delta), (se_nome, se_nome)):
        draws = r + se * rng.standard_normal((N_BOOT, len(r)))
        med = np.median(draws, 1, keepdims=True)
        mad = 1.4826 * np.median(np.abs(draws - med), 1)
        bw = np.maximum(1e-8, 0.9 * np.minimum(draws.std(1, ddof=1), mad) / len(r) ** 0.2)
        for w in (np.full(len(r), 1 / len(r)), wse**-2 / np.sum(wse**-2)):
            modes = np_density_modes(draws, w, bw)
            out.append(1.4826 * np.median(np.abs(modes - np.median(modes))))
    return out


# --- timing ------------------------------------------------------------------------------


def timed(fn, repeats=2):
    """Best of ``repeats``: (wall seconds, process CPU seconds)."""
    best = (np.inf, np.inf)
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn())
        best = min(best, (time.perf_counter() - w0, time.process_time() - c0))
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traits", type=int, default=32)
    parser.add_argument("--sizes", default="4,10,20,40,60")
    parser.add_argument("--numpy-traits", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    params = Params(n_boot=N_BOOT)
    rows = []
    for nsnp in (int(s) for s in args.sizes.split(",")):
        width = bucket_width(nsnp)
        t = simulate(args.traits, nsnp, width, rng)
        keys = trait_keys(0, np.arange(args.traits))
        row = {"nsnp": nsnp, "width": width}
        for label, fn in (("median", median_panel), ("mode", mode_panel)):
            kernel = jax.jit(jax.vmap(lambda tr, k, fn=fn: fn(tr, k, params)))
            c0 = time.perf_counter()
            jax.block_until_ready(kernel(t, keys))
            row[f"{label}_compile"] = time.perf_counter() - c0
            wall, cpu = timed(lambda: kernel(t, keys))
            row[f"{label}_wall"], row[f"{label}_cpu"] = wall / args.traits, cpu / args.traits
        host = jax.device_get(t)
        for label, fn in (("np_median", np_median_panel), ("np_mode", np_mode_panel)):
            def loop(fn=fn):
                for i in range(args.numpy_traits):
                    n = nsnp
                    fn(host.bx[i, :n], host.sx[i, :n], host.by[i, :n], host.sy[i, :n], rng)
                return jnp.zeros(())
            wall, cpu = timed(loop, repeats=1)
            row[f"{label}_wall"], row[f"{label}_cpu"] = wall / args.numpy_traits, cpu / args.numpy_traits
        rows.append(row)
        print_row(row, header=len(rows) == 1)


def print_row(row, header=False):
    if header:
        print(
            f"{'nsnp':>4} {'width':>5} | {'median ms':>9} {'numpy':>8} {'ratio':>6} | "
            f"{'mode':>8} {'numpy':>8} {'ratio':>7} | compile s (med/mode)"
        )
    ms = lambda v: f"{1e3 * v:9.2f}"  # noqa: E731
    print(
        f"{row['nsnp']:>4} {row['width']:>5} | {ms(row['median_cpu'])} {1e3 * row['np_median_cpu']:8.1f} "
        f"{row['np_median_cpu'] / row['median_cpu']:6.1f} | {1e3 * row['mode_cpu']:8.2f} "
        f"{1e3 * row['np_mode_cpu']:8.1f} {row['np_mode_cpu'] / row['mode_cpu']:7.1f} | "
        f"{row['median_compile']:.1f}/{row['mode_compile']:.1f}",
        flush=True,
    )
    print(
        f"{'':>11}   wall per trait (ms): median {1e3 * row['median_wall']:.2f}, mode {1e3 * row['mode_wall']:.2f}, "
        f"numpy median {1e3 * row['np_median_wall']:.1f}, "
        f"numpy mode {1e3 * row['np_mode_wall']:.1f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
