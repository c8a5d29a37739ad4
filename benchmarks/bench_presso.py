"""MR-PRESSO at scan scale: mrjax.presso on the 731-trait fixture against a straightforward
vectorised numpy global test, measured in the same run.

    python benchmarks/bench_presso.py [--fixture PATH] [--subset 64] [--skip-1e6] [--before REV]

Rows: (1) all three tests, 731 traits x 10^4 draws: first call (compile + run) and warm
calls; (2) the global test alone at 10^4 draws, mrjax vs numpy (the ratio); (3) the global
test at 10^4 / 10^5 / 10^6 draws on a subset of traits, each in a fresh subprocess that
reports its peak resident memory (``ru_maxrss``), to show memory is flat in n_draws.
``--before REV`` also times the MR-PRESSO module as it was at git revision REV, in the same
process, for a before/after under the same load.
Times are wall-clock and process CPU seconds (all threads); the machine is shared, so each
warm figure is the best of 3.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "benchmarks" / "_work" / "scan731.parquet"
MAKE_FIXTURE = ROOT.parent / "shared" / "tools" / "make_scan_fixture.py"


def load_fixture(path: Path) -> pd.DataFrame:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(MAKE_FIXTURE), str(path)], check=True)
    return pd.read_parquet(path)


def numpy_global_test(data: pd.DataFrame, n_draws: int, seed: int = 0, chunk: int = 2000) -> np.ndarray:
    """The MR-PRESSO global test written the plain way in numpy: per trait, draws vectorised
    over ``[chunk, n]`` with the same closed-form leave-one-out slopes (no n refits)."""
    from mrjax.batch import from_frame

    batch = from_frame(data)
    inst = batch.instruments
    rng = np.random.default_rng(seed)
    pvals = np.empty(batch.n_traits)
    for t, rows in inst.groupby("trait", sort=True):
        sign = np.sign(rows["beta.exposure"].to_numpy())
        bx, by = rows["beta.exposure"].to_numpy() * sign, rows["beta.outcome"].to_numpy() * sign
        sx, sy = rows["se.exposure"].to_numpy(), rows["se.outcome"].to_numpy()
        w = 1.0 / sy**2

        def loo_rss(x, y):
            wxy, wxx = w * x * y, w * x * x
            slope = (wxy.sum(-1, keepdims=True) - wxy) / (wxx.sum(-1, keepdims=True) - wxx)
            return slope, (w * (y - slope * x) ** 2).sum(-1)

        slope, rss_obs = loo_rss(bx, by)
        exceed = 0
        for start in range(0, n_draws, chunk):
            m = min(chunk, n_draws - start)
            x = bx + sx * rng.standard_normal((m, len(bx)))
            y = slope * bx + sy * rng.standard_normal((m, len(bx)))
            exceed += int((loo_rss(x, y)[1] > rss_obs).sum())
        pvals[t] = max(exceed, 1) / n_draws
    return pvals


def timed(fn, repeats=1):
    """Best (wall seconds, process CPU seconds over all threads) of ``repeats`` calls."""
    times, out = [], None
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        out = fn()
        times.append((time.perf_counter() - start, time.process_time() - cpu))
    return min(times), out


def module_at(rev: str):
    """The MR-PRESSO module as it was at git revision ``rev`` (``mrjax/mr_presso.py``, called
    ``mrjax/presso.py`` before 2026-11-24), imported as a separate module (it uses the current
    ``mrjax.batch`` and ``mrjax.stats``)."""
    import importlib.util

    for name in ("mr_presso", "presso"):
        shown = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:mrjax/{name}.py"], capture_output=True, text=True)
        if shown.returncode == 0:
            break
    else:
        raise SystemExit(f"--before {rev}: no mrjax/mr_presso.py or mrjax/presso.py at that revision")
    text = shown.stdout
    path = ROOT / "benchmarks" / "_work" / "presso_before.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("presso_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def child(args) -> None:
    """One global-test setting in this fresh process; prints a JSON line with peak RSS."""
    import mrjax

    data = load_fixture(Path(args.fixture))
    if args.subset:
        keep = data["exposure"].drop_duplicates().head(args.subset)
        data = data[data["exposure"].isin(keep)]
    start = time.perf_counter()
    res = mrjax.presso(data, n_draws=args.child, outlier_test=False, distortion_test=False, seed=1)
    elapsed = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"n_draws": args.child, "traits": len(res.traits), "seconds": elapsed, "peak_rss_mib": peak_mib}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixture", default=str(FIXTURE))
    parser.add_argument("--subset", type=int, default=64, help="traits in the 10^4..10^6 memory series")
    parser.add_argument("--skip-1e6", action="store_true", help="stop the memory series at 10^5 draws")
    parser.add_argument("--before", default="", help="also time the MR-PRESSO module at this git revision")
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    import mrjax

    data = load_fixture(Path(args.fixture))
    n_traits = data["exposure"].nunique()
    rows = []

    first, res = timed(lambda: mrjax.presso(data, n_draws=10_000, seed=1))
    warm, res = timed(lambda: mrjax.presso(data, n_draws=10_000, seed=1), repeats=3)
    rows.append(("all three tests, 10^4 draws (first call, incl. compile)", n_traits, first))
    rows.append(("all three tests, 10^4 draws (warm)", n_traits, warm))
    n_distortion = int(res.traits["distortion_pval"].notna().sum())

    global_only = dict(n_draws=10_000, outlier_test=False, distortion_test=False, seed=1)
    mrjax.presso(data, **global_only)
    jax_global, res_g = timed(lambda: mrjax.presso(data, **global_only), repeats=3)
    numpy_global, p_numpy = timed(lambda: numpy_global_test(data, 10_000))
    rows.append(("global test only, 10^4 draws, mrjax (warm)", n_traits, jax_global))
    rows.append(("global test only, 10^4 draws, numpy baseline", n_traits, numpy_global))
    agreement = float(np.nanmax(np.abs(res_g.traits["global_pval"].to_numpy() - p_numpy)))

    if args.before:
        before = module_at(args.before)
        label = f"before ({args.before})"
        first_b, _ = timed(lambda: before.presso(data, n_draws=10_000, seed=1))
        warm_b, _ = timed(lambda: before.presso(data, n_draws=10_000, seed=1), repeats=3)
        before.presso(data, **global_only)
        global_b, _ = timed(lambda: before.presso(data, **global_only), repeats=3)
        rows.append((f"{label}: all three tests, 10^4 draws (first call, incl. compile)", n_traits, first_b))
        rows.append((f"{label}: all three tests, 10^4 draws (warm)", n_traits, warm_b))
        rows.append((f"{label}: global test only, 10^4 draws (warm)", n_traits, global_b))

    series = [10_000, 100_000] + ([] if args.skip_1e6 else [1_000_000])
    memory = []
    for n_draws in series:
        cmd = [sys.executable, __file__, "--fixture", args.fixture, "--subset", str(args.subset), "--child", str(n_draws)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ.copy())
        memory.append(json.loads(out.stdout.strip().splitlines()[-1]))

    from mrjax.outputs import cpu_model  # late: measuring children import their own modules
    print(f"machine: {os.cpu_count()} CPUs ({cpu_model()}), {platform.python_version()}, shared with other jobs during the run")
    print(f"load average at the end: {os.getloadavg()}")
    print()
    print("| setting | traits | wall s | CPU s | numpy global / this (wall) | (CPU) |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, n, (wall, cpu_s) in rows:
        print(f"| {label} | {n} | {wall:.2f} | {cpu_s:.2f} | {numpy_global[0] / wall:.1f}x | {numpy_global[1] / cpu_s:.1f}x |")
    print()
    print(f"traits with a distortion test: {n_distortion}; max |p_mrjax - p_numpy| (global, 10^4 draws, "
          f"independent streams): {agreement:.3f}")
    print()
    print(f"| global test, {args.subset} traits (fresh process) | seconds incl. compile | peak RSS MiB |")
    print(f"|---|---:|---:|")
    for m in memory:
        print(f"| {m['n_draws']:,} draws | {m['seconds']:.2f} | {m['peak_rss_mib']:.0f} |")


if __name__ == "__main__":
    main()
