"""Benchmark: one wide trait (thousands of instruments) through mrjax's estimators (issue 13).

Each measurement runs in its own subprocess (a fresh JAX: compilation included in "cold"),
which reports wall and process CPU time of the first call (cold) and of a second identical call
(warm), and its peak resident memory (``VmHWM`` from ``/proc/self/status``; the whole process,
JAX and the data included). Workloads:

- ``panel``: ``mrjax.mr`` with the default methods (Wald ratio, MR Egger, weighted median, IVW,
  simple mode, weighted mode), 1,000 bootstraps;
- ``method:<id>``: one method alone (every method of ``mrjax.methods.METHODS``);
- ``diagnostics``: heterogeneity + pleiotropy + leave-one-out + single-SNP.

The baseline measured in the same run is the panel on a 60-instrument trait (the widths of a
scan, which take the pairwise paths), so ratios survive the machine's load.

Usage (from the project root)::

    .venv/bin/python benchmarks/bench_wide.py [--widths 5000 20000] [--all-methods] [--cache-dir DIR]

With ``--cache-dir`` (an empty folder) every workload runs in two fresh processes sharing that
folder as JAX's persistent compilation cache and mrjax's exported-kernel cache, as the CLI does by
default: the first fills it (a machine's first run), the second reads it (every later run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def simulate_trait(nsnp: int, seed: int = 1):
    """One exposure–outcome pair with ``nsnp`` instruments: causal effect 0.3, 10% pleiotropic."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    bx = rng.normal(0.0, 0.03, nsnp)
    bx = np.where(np.abs(bx) < 0.01, np.sign(bx) * 0.01 + bx, bx)
    sx = rng.uniform(0.003, 0.008, nsnp)
    sy = rng.uniform(0.004, 0.01, nsnp)
    by = 0.3 * bx + rng.normal(0, 1, nsnp) * sy + (rng.random(nsnp) < 0.1) * rng.normal(0, 0.01, nsnp)
    return pd.DataFrame({
        "SNP": [f"rs{i}" for i in range(nsnp)], "exposure": "wide", "outcome": "y",
        "beta.exposure": bx, "se.exposure": sx, "beta.outcome": by, "se.outcome": sy,
    })


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker(workload: str, nsnp: int, n_boot: int, cache_dir: str | None = None) -> dict:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import numpy as np

    if cache_dir:
        import jax

        jax.config.update("jax_compilation_cache_dir", cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

    import mrjax
    from mrjax import api

    data = simulate_trait(nsnp)
    if workload == "panel":
        call = lambda: api.mr(data, n_boot=n_boot)  # noqa: E731
    elif workload == "diagnostics":
        def call():
            api.heterogeneity(data)
            api.pleiotropy(data)
            api.leave_one_out(data)
            return api.single_snp(data)
    elif workload.startswith("method:"):
        call = lambda: api.mr(data, methods=[workload.split(":", 1)[1]], n_boot=n_boot)  # noqa: E731
    else:
        raise SystemExit(f"unknown workload {workload!r}")
    t0, c0 = time.perf_counter(), time.process_time()
    res = call()
    cold, cold_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    call()
    warm, warm_cpu = time.perf_counter() - t0, time.process_time() - c0
    summary = {}
    if "method_id" in res.columns:
        summary = {row.method_id: [float(row.b), float(row.se)] for row in res.itertuples()}
    failed = int(res["b"].isna().sum()) if "b" in res.columns else 0
    del mrjax, np
    return {"workload": workload, "nsnp": nsnp, "n_boot": n_boot, "cold_s": cold, "warm_s": warm, "cold_cpu_s": cold_cpu, "warm_cpu_s": warm_cpu,
            "peak_rss_mib": peak_rss_mib(), "nan_rows": failed, "estimates": summary}


def measure(workload: str, nsnp: int, n_boot: int, timeout: float, cache_dir: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--worker", workload, "--nsnp", str(nsnp), "--n-boot", str(n_boot)]
    cmd += ["--cache-dir", cache_dir] if cache_dir else []
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"workload": workload, "nsnp": nsnp, "error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"workload": workload, "nsnp": nsnp, "error": f"exit {done.returncode}: {last[:160]}",
                "wall_s": time.perf_counter() - t0}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker")
    ap.add_argument("--nsnp", type=int, default=5000)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--widths", type=int, nargs="+", default=[5000, 20000])
    ap.add_argument("--all-methods", action="store_true", help="also time every method alone at each width")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--cache-dir", help="persistent compilation cache folder shared by a first and a second process")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.nsnp, args.n_boot, args.cache_dir)))
        return

    from mrjax.methods import METHODS

    print(f"uptime: {os.popen('uptime').read().strip()}")
    runs = [("panel", 60)] + [("panel", w) for w in args.widths]
    if args.all_methods:
        runs += [(f"method:{m}", w) for w in args.widths for m in METHODS] + [("diagnostics", w) for w in args.widths]
    passes = ["first process", "second process"] if args.cache_dir else [""]
    print("| workload | instruments | process | cold s (CPU s) | warm s (CPU s) | peak RSS MiB | NaN rows |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for workload, nsnp in runs:
        for label in passes:
            r = measure(workload, nsnp, args.n_boot, args.timeout, args.cache_dir)
            if "error" in r:
                print(f"| {workload} | {nsnp} | {label} | {r['error']} | | | |", flush=True)
            else:
                print(f"| {workload} | {nsnp} | {label} | {r['cold_s']:.1f} ({r['cold_cpu_s']:.1f}) "
                      f"| {r['warm_s']:.2f} ({r['warm_cpu_s']:.2f}) | {r['peak_rss_mib']:.0f} | {r['nan_rows']} |", flush=True)
    print(f"uptime: {os.popen('uptime').read().strip()}")


if __name__ == "__main__":
    main()
