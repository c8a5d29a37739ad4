"""Benchmark: simulation throughput of ``mrjax.simulate`` against a per-replicate numpy loop.

Every configuration simulates the ``valid_ivs`` preset with k = 20 instruments (mean F 50,
two samples of 100,000) and summarises bias, SD, SE, coverage and rejection per method.

* mrjax: ``simulate(scenario, R, methods, chunk_size=C)``, timed after a warm-up call that
  compiles the same chunk shape (compile time is reported separately).
* numpy loop (baseline, same run): the same generative model drawn with numpy, one replicate
  at a time, the same estimators written in plain numpy (IVW and MR-Egger closed forms; the
  weighted median with Bowden's interpolation and its parametric bootstrap vectorised over the
  draws; the weighted mode as the argmax of an exact weighted Gaussian KDE on 512 points,
  bootstrap vectorised over draws) — a fair, vectorised-within-replicate Python baseline.
* peak memory: ``simulate`` of 10⁵ and 10⁶ replicates (IVW + Egger + weighted median point
  estimates) in fresh subprocesses; max RSS of each child (``getrusage(RUSAGE_CHILDREN)``).

Usage: ``.venv/bin/python benchmarks/bench_simulate.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

K = 20
SCENARIO = dict(n_instruments=K, theta=0.1, mean_f=50.0, n_exposure=100_000, n_outcome=100_000)
TARGET_METHODS = ("ivw", "egger_regression", "weighted_median")
PANEL_METHODS = ("ivw", "egger_regression", "weighted_median", "weighted_mode")


# --- numpy baseline ---------------------------------------------------------------------------


def numpy_replicate(rng: np.random.Generator, s: dict):
    eaf = rng.uniform(0.05, 0.5, K)
    v = 2 * eaf * (1 - eaf)
    sx = 1 / np.sqrt(s["n_exposure"] * v)
    sy = 1 / np.sqrt(s["n_outcome"] * v)
    gamma = np.sqrt((s["mean_f"] - 1) * rng.exponential(1.0, K)) * sx
    bx = gamma + sx * rng.standard_normal(K)
    by = s["theta"] * gamma + sy * rng.standard_normal(K)
    return bx, sx, by, sy


def np_ivw(bx, sx, by, sy):
    w = 1 / sy**2
    sxx = np.sum(w * bx * bx)
    b = np.sum(w * bx * by) / sxx
    sigma = np.sqrt(np.sum(w * (by - b * bx) ** 2) / (K - 1))
    return b, np.sqrt(1 / sxx) * max(1.0, sigma)


def np_egger(bx, sx, by, sy):
    sign = np.where(bx < 0, -1.0, 1.0)
    x, y, w = bx * sign, by * sign, 1 / sy**2
    xm, ym = np.average(x, weights=w), np.average(y, weights=w)
    sxx = np.sum(w * (x - xm) ** 2)
    b = np.sum(w * (x - xm) * (y - ym)) / sxx
    a = ym - b * xm
    sigma = np.sqrt(np.sum(w * (y - a - b * x) ** 2) / (K - 2))
    return b, sigma / np.sqrt(sxx) / min(1.0, sigma)


def np_weighted_median_rows(r, w):
    """Bowden's interpolated weighted median of each row of ``r`` with weights ``w``."""
    order = np.argsort(r, axis=-1)
    rs = np.take_along_axis(r, order, -1)
    ws = np.broadcast_to(w, r.shape)
    ws = np.take_along_axis(ws, order, -1)
    ws = ws / ws.sum(-1, keepdims=True)
    p = np.cumsum(ws, -1) - 0.5 * ws
    k = np.clip((p < 0.5).sum(-1) - 1, 0, r.shape[-1] - 2)[..., None]
    r0, r1 = np.take_along_axis(rs, k, -1), np.take_along_axis(rs, k + 1, -1)
    p0, p1 = np.take_along_axis(p, k, -1), np.take_along_axis(p, k + 1, -1)
    return (r0 + (r1 - r0) * (0.5 - p0) / (p1 - p0))[..., 0]


def np_weighted_median(bx, sx, by, sy, rng, n_boot):
    r = by / bx
    w = 1 / (sy**2 / bx**2 + by**2 * sx**2 / bx**4)
    b = np_weighted_median_rows(r[None], w)[0]
    if n_boot == 0:
        return b, np.nan
    bxs = bx + sx * rng.standard_normal((n_boot, K))
    bys = by + sy * rng.standard_normal((n_boot, K))
    return b, np.std(np_weighted_median_rows(bys / bxs, w), ddof=1)


def np_mode_rows(r, w):
    """argmax of the weighted Gaussian KDE of each row of ``r`` (bandwidth: Hartwig's rule)."""
    n = r.shape[-1]
    mad = 1.4826 * np.median(np.abs(r - np.median(r, -1, keepdims=True)), -1)
    h = np.maximum(1e-8, 0.9 * np.minimum(np.std(r, -1, ddof=1), mad) / n**0.2)
    lo, hi = r.min(-1) - 3 * h, r.max(-1) + 3 * h
    grid = lo[..., None] + (hi - lo)[..., None] * np.linspace(0, 1, 512)
    dens = np.sum(w[..., None, :] * np.exp(-0.5 * ((grid[..., :, None] - r[..., None, :]) / h[..., None, None]) ** 2), -1)
    return np.take_along_axis(grid, np.argmax(dens, -1)[..., None], -1)[..., 0]


def np_weighted_mode(bx, sx, by, sy, rng, n_boot):
    r = by / bx
    se = np.sqrt(sy**2 / bx**2 + by**2 * sx**2 / bx**4)
    w = se**-2 / np.sum(se**-2)
    b = np_mode_rows(r[None], w[None])[0]
    rs = r + se * rng.standard_normal((n_boot, K))
    boots = np_mode_rows(rs, np.broadcast_to(w, rs.shape))
    return b, 1.4826 * np.median(np.abs(boots - np.median(boots)))


def numpy_loop(n_replicates: int, methods, n_boot: int, seed: int = 0) -> float:
    """Seconds for ``n_replicates`` replicates of the numpy baseline (estimates summarised)."""
    rng = np.random.default_rng(seed)
    out = {m: np.empty((n_replicates, 2)) for m in methods}
    start = time.perf_counter()
    for i in range(n_replicates):
        bx, sx, by, sy = numpy_replicate(rng, SCENARIO)
        for m in methods:
            if m == "ivw":
                out[m][i] = np_ivw(bx, sx, by, sy)
            elif m == "egger_regression":
                out[m][i] = np_egger(bx, sx, by, sy)
            elif m == "weighted_median":
                out[m][i] = np_weighted_median(bx, sx, by, sy, rng, n_boot)
            elif m == "weighted_mode":
                out[m][i] = np_weighted_mode(bx, sx, by, sy, rng, n_boot)
    for m in methods:  # the same summaries mrjax reports
        b, se = out[m][:, 0], out[m][:, 1]
        finite = np.isfinite(se)
        _ = (b.mean(), b.std(ddof=1), se[finite].sum() / max(finite.sum(), 1), np.mean(np.abs(b - 0.1) <= 1.96 * se))
    return time.perf_counter() - start


# --- mrjax ------------------------------------------------------------------------------------


def mrjax_rate(n_replicates: int, methods, n_boot: int) -> tuple[float, float, float, int]:
    """(compile + first chunk seconds, steady wall seconds and CPU seconds for
    ``n_replicates``, chunk size) with the default chunk size of ``simulate``."""
    import mrjax  # noqa: F401
    from mrjax.batch import bucket_width
    from mrjax.estimators.common import Params
    from mrjax.simulation import Scenario, default_chunk_size, simulate

    scenario = Scenario(**SCENARIO)
    params = Params(n_boot=n_boot)
    chunk = min(default_chunk_size(bucket_width(K), methods, params), bucket_width(n_replicates, floor=8))
    start = time.perf_counter()
    simulate(scenario, chunk, methods, seed=1, chunk_size=chunk, params=params)
    warm = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    simulate(scenario, n_replicates, methods, seed=0, chunk_size=chunk, params=params)
    return warm, time.perf_counter() - start, time.process_time() - cpu, chunk


def child_memory_run(n_replicates: int) -> dict:
    """Run in a subprocess: simulate ``n_replicates`` (target methods, point estimates)."""
    warm, seconds, cpu, chunk = mrjax_rate(n_replicates, TARGET_METHODS, 0)
    return {"n": n_replicates, "warm_s": warm, "seconds": seconds, "cpu_s": cpu, "chunk": chunk}


def peak_memory(n_replicates: int) -> dict:
    code = f"import json, sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); import bench_simulate as b; print(json.dumps(b.child_memory_run({n_replicates})))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"memory run of {n_replicates} replicates failed (exit {proc.returncode})")
    info = json.loads(output.strip().splitlines()[-1])
    info["max_rss_mib"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return info


def machine() -> str:
    from mrjax.outputs import cpu_model  # late: measuring children import their own modules
    model = cpu_model()
    import jax

    return f"{os.cpu_count()} CPUs ({model}), {platform.system()}, Python {platform.python_version()}, jax {jax.__version__}, backend {jax.default_backend()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer replicates (smoke run)")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0

    rows = []
    configs = [
        # label, methods, n_boot, mrjax replicates, numpy replicates
        ("IVW + Egger", ("ivw", "egger_regression"), 0, int(1_000_000 * scale), int(2000 * scale)),
        ("IVW + Egger + WM (point)", TARGET_METHODS, 0, int(1_000_000 * scale), int(2000 * scale)),
        ("panel: IVW, Egger, WM, WMode (n_boot 1000)", PANEL_METHODS, 1000, int(1024 * scale) or 64, int(40 * scale) or 4),
    ]
    for label, methods, n_boot, n_jax, n_np in configs:
        np_start = time.process_time()
        np_seconds = numpy_loop(n_np, methods, n_boot)
        np_cpu = time.process_time() - np_start
        warm, seconds, cpu, chunk = mrjax_rate(n_jax, methods, n_boot)
        rows.append((label, n_jax, chunk, seconds, cpu, warm, n_np, np_seconds, np_cpu))
        print(f"{label}: mrjax {n_jax / seconds:,.0f}/s wall, {n_jax / cpu:,.0f}/CPU-s (chunk {chunk}, compile+first chunk "
              f"{warm:.1f}s); numpy {n_np / np_seconds:,.1f}/s wall, {n_np / np_cpu:,.1f}/CPU-s", flush=True)

    print()
    print(f"machine: {machine()}")
    print("| configuration (k = 20) | mrjax replicates (chunk) | mrjax replicates/s (wall) | mrjax replicates/CPU-s "
          "| compile + first chunk s | numpy loop replicates/s (wall) | numpy loop replicates/CPU-s | speed-up (wall) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, n, chunk, s, cpu, warm, n_np, np_s, np_cpu in rows:
        print(f"| {label} | {n:,} ({chunk:,}) | {n / s:,.0f} | {n / cpu:,.0f} | {warm:.1f} | {n_np / np_s:,.1f} "
              f"| {n_np / np_cpu:,.1f} | {(n / s) / (n_np / np_s):,.0f}× |")
    label, n, chunk, s, cpu = rows[1][:5]
    print(f"\nIVW + Egger + WM point estimates: {60 * n / s:,.0f} replicates per wall minute, "
          f"{60 * n / cpu * min(2, os.cpu_count()) :,.0f} per minute of 2 fully available cores (target ≥ 1,000,000)")

    if not args.skip_memory:
        print("\n| simulate (IVW + Egger + WM point), fresh process | chunk | wall s | CPU s | max RSS MiB |")
        print("|---|---:|---:|---:|---:|")
        for n in (10_000, 100_000, 1_000_000):
            info = peak_memory(n)
            print(f"| {info['n']:,} replicates | {info['chunk']:,} | {info['seconds']:.1f} | {info['cpu_s']:.1f} "
                  f"| {info['max_rss_mib']:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
