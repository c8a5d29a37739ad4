"""The accelerator benchmark (run it through ``benchmarks/run_accelerator.sh``): the default
panel, MR-PRESSO, a simulation study and exposure–outcome pairs per second, in float64 and
float32, on whatever devices JAX sees; one table, the device named, and per method the largest
float32-vs-float64 relative difference in the same run.

    benchmarks/run_accelerator.sh [--scale small|full] [--devices N] [--minutes 8]

``--scale`` defaults to ``full`` on an accelerator and ``small`` on a CPU. Data are synthetic
(seeded numpy), so the script needs nothing beside the repository. Each timing is a first call
(compile + run, "cold") and a second identical call ("warm"); sections that would start after
``--minutes`` are skipped and say so. Relative differences are ``max_traits |x32 − x64| / |x64|``
over the traits (replicate summaries for the simulation) where both are finite.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import numpy as np
import pandas as pd

import mrjax
from mrjax import engine
from mrjax.batch import from_frame, trait_keys
from mrjax.estimators.common import Params
from mrjax.simulation import SIMULATION_METHODS

PANEL = ("egger_regression", "weighted_median", "ivw", "simple_mode", "weighted_mode")  # TwoSampleMR's default
SIZES = {
    "full": dict(panel_traits=731, presso_draws=10_000, replicates=100_000, pairs=100_000, block=4096),
    "small": dict(panel_traits=200, presso_draws=2_000, replicates=4_096, pairs=2_048, block=512),
}


def synthetic(n_traits: int, seed: int, nsnp=(3, 30)) -> pd.DataFrame:
    """A harmonised table of ``n_traits`` exposure–outcome pairs with ``nsnp`` instruments each
    (uniform in the range), causal effect 0.2 in a third of them."""
    rng = np.random.default_rng(seed)
    n = rng.integers(nsnp[0], nsnp[1], n_traits, endpoint=True)
    trait = np.repeat(np.arange(n_traits), n)
    slot = np.concatenate([np.arange(k) for k in n])
    sx = rng.uniform(0.005, 0.02, len(trait))
    sy = rng.uniform(0.005, 0.02, len(trait))
    bx = rng.normal(0.05, 0.02, len(trait)) + sx * rng.standard_normal(len(trait))
    theta = np.where(trait % 3 == 0, 0.2, 0.0)
    by = theta * bx + sy * rng.standard_normal(len(trait))
    return pd.DataFrame({
        "SNP": [f"rs{s}" for s in slot], "exposure": [f"exp{t:06d}" for t in trait], "outcome": "outcome",
        "beta.exposure": bx, "se.exposure": sx, "beta.outcome": by, "se.outcome": sy,
    })


def panel_and_diagnostics(batch, dtype, n_boot: int, max_traits=None):
    """The panel and every diagnostic on every bucket (dispatched first, read back after):
    ``{method: (b, se)}`` per trait."""
    params = Params(n_boot=n_boot)
    calls = []
    for i, b in enumerate(batch.buckets(dtype=dtype, max_traits=max_traits)):
        calls.append((b, engine.run_methods(b.instruments, trait_keys(1, b.uids), PANEL, params, slot=i),
                      engine.run_diagnostics(b.instruments, slot=i)))
    out = {m: (np.full(batch.n_traits, np.nan), np.full(batch.n_traits, np.nan)) for m in PANEL + ("ivw_q",)}
    for b, est, diag in calls:
        est, diag = jax.device_get((est, diag))
        real = b.real
        for m in PANEL:
            out[m][0][b.trait_index[real]] = np.asarray(est[m].b)[real]
            out[m][1][b.trait_index[real]] = np.asarray(est[m].se)[real]
        out["ivw_q"][0][b.trait_index[real]] = np.asarray(diag.heterogeneity["ivw"].q)[real]
    return out


def timed(fn):
    start = time.perf_counter()
    fn()
    cold = time.perf_counter() - start
    start = time.perf_counter()
    out = fn()
    return cold, time.perf_counter() - start, out


def max_rel(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b) & (b != 0)
    return float(np.max(np.abs(a[ok] - b[ok]) / np.abs(b[ok]))) if ok.any() else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SIZES), default=None)
    parser.add_argument("--devices", type=int, default=None, help="use at most N devices (default: all)")
    parser.add_argument("--minutes", type=float, default=8.0, help="skip sections that would start after this")
    args = parser.parse_args()
    engine.set_devices(args.devices)
    devices = engine.devices()
    accelerator = devices[0].platform != "cpu"
    scale = args.scale or ("full" if accelerator else "small")
    size = SIZES[scale]
    t0 = time.perf_counter()
    rows = []

    def section(name, run):
        if time.perf_counter() - t0 > 60 * args.minutes:
            rows.append({"benchmark": name, "method": f"skipped: past {args.minutes:g} minutes"})
            return
        run()

    def panel_rows(name, batch, max_traits, rate_of=None):
        timings = {}
        for dtype in ("float64", "float32"):
            timings[dtype] = timed(lambda: panel_and_diagnostics(batch, np.dtype(dtype), 1000, max_traits))
        (c64, w64, o64), (c32, w32, o32) = timings["float64"], timings["float32"]
        for i, m in enumerate(PANEL + ("ivw_q",)):
            row = {"benchmark": name, "method": m if m != "ivw_q" else "heterogeneity Q (ivw)",
                   "rel diff b": max_rel(o32[m][0], o64[m][0]),
                   "rel diff se": max_rel(o32[m][1], o64[m][1]) if m != "ivw_q" else np.nan}
            if i == 0:
                row |= {"size": batch.n_traits, "f64 cold s": c64, "f64 warm s": w64, "f32 cold s": c32, "f32 warm s": w32}
                if rate_of:
                    row |= {"f64 pairs/s": batch.n_traits / w64, "f32 pairs/s": batch.n_traits / w32}
            rows.append(row)

    panel_batch = from_frame(synthetic(size["panel_traits"], seed=1))
    section("panel + diagnostics (1,000 bootstraps)", lambda: panel_rows("panel + diagnostics (1,000 bootstraps)",
                                                                         panel_batch, None))

    def presso():
        cold, warm, res = timed(lambda: mrjax.presso(panel_batch, n_draws=size["presso_draws"], seed=2))
        rows.append({"benchmark": f"MR-PRESSO ({size['presso_draws']:,} draws, all three tests)", "method": "presso",
                     "size": panel_batch.n_traits, "f64 cold s": cold, "f64 warm s": warm,
                     "rel diff b": np.nan, "note": "float64 only: its normals are computed in float64"})

    section("MR-PRESSO", presso)

    def simulation():
        out = {}
        for dtype in ("float64", "float32"):
            out[dtype] = timed(lambda: mrjax.simulate("valid_ivs", size["replicates"], SIMULATION_METHODS, seed=3,
                                                      dtype=dtype))
        (c64, w64, s64), (c32, w32, s32) = out["float64"], out["float32"]
        for i, m in enumerate(SIMULATION_METHODS):
            a, b = s32[s32.method_id == m].iloc[0], s64[s64.method_id == m].iloc[0]
            row = {"benchmark": "simulation (valid_ivs, K = 25)", "method": m,
                   "rel diff b": max_rel([a.mean_b, a.emp_sd], [b.mean_b, b.emp_sd]),
                   "rel diff se": max_rel([a.mean_se], [b.mean_se])}
            if i == 0:
                row |= {"size": size["replicates"], "f64 cold s": c64, "f64 warm s": w64, "f32 cold s": c32,
                        "f32 warm s": w32, "f64 pairs/s": size["replicates"] / w64, "f32 pairs/s": size["replicates"] / w32,
                        "note": "rate = replicates/s; rel diff b = mean_b, emp_sd"}
            rows.append(row)

    section("simulation", simulation)

    pairs = from_frame(synthetic(size["pairs"], seed=4, nsnp=(9, 16)))  # one width: blocks of one shape
    section("pairs per second", lambda: panel_rows(f"pairs/s: panel + diagnostics, blocks of {size['block']}",
                                                   pairs, size["block"], rate_of=True))

    table = pd.DataFrame(rows)
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    kind = {d.device_kind for d in devices}
    print(f"\nmrjax accelerator benchmark — scale {scale}; {len(devices)} device(s): {', '.join(sorted(kind))} "
          f"({devices[0].platform}); host {platform.node()} {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, load average {', '.join(f'{x:.1f}' for x in load)}; jax {jax.__version__}")
    print(f"relative difference = max over traits of |float32 - float64| / |float64|; total {time.perf_counter() - t0:.0f} s\n")
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_colwidth", 60):
        print(table.to_string(index=False, na_rep="", float_format=lambda x: f"{x:.3g}"))


if __name__ == "__main__":
    main()
