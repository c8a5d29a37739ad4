"""Benchmark: ``mrjax scan`` end to end on the 50-exposure shared scan, time per stage.

Runs the bi-directional scan of ``../shared/data/scan`` (50 exposures × 1 outcome, clumped
against ``../shared/data/ldref/eur_sim`` at r² 0.001 / 10,000 kb, TwoSampleMR's default
methods with 1,000 bootstraps, MR-PRESSO with 10⁴ draws, figures and report) twice in one
process: *cold* (JIT compilation included, as a user's first run) and *warm* (a second scan
into a fresh folder, compiled kernels cached). The baseline measured in the same run is the
bare read of the two input files with pyarrow (the I/O floor every scan pays).

Usage (from the project root)::

    .venv/bin/python benchmarks/bench_scan.py [--draws 10000] [--n-boot 1000] [--traits 50]

Prints one table: seconds per stage, cold and warm, share of the warm total, the time
outside every named stage ("(unstaged)"), and the ratio of the whole scan to the bare read.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pandas as pd  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

import mrjax  # noqa: E402,F401  (turns on float64)
from mrjax.scan import ScanConfig, run_scan  # noqa: E402
from mrjax.outputs import cpu_model

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=10_000)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--traits", type=int, default=50, help="first N exposures of the scan")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_scan_"))
    exposures = SHARED / "scan" / "exposures.parquet"
    if args.traits < 50:
        names = [f"trait_{i:03d}" for i in range(1, args.traits + 1)]
        subset = pd.read_parquet(exposures, filters=[("exposure", "in", names)])
        subset["exposure"] = subset["exposure"].astype(str)
        exposures = work / "exposures.parquet"
        subset.to_parquet(exposures, index=False)

    start = time.perf_counter()
    pq.read_table(exposures)
    pq.read_table(SHARED / "scan" / "outcome.parquet")
    bare_read = time.perf_counter() - start

    def scan(out: Path):
        config = ScanConfig(
            exposures=(str(exposures),), outcome=str(SHARED / "scan" / "outcome.parquet"), out=str(out),
            ld_ref=str(SHARED / "ldref" / "eur_sim"), outcome_name="outcome", bidirectional=True,
            n_boot=args.n_boot, presso_draws=args.draws,
        )
        start = time.perf_counter()
        result = run_scan(config)
        return result, time.perf_counter() - start

    cold, cold_total = scan(work / "cold")
    warm, warm_total = scan(work / "warm")
    stages = list(dict.fromkeys(list(cold.timings) + list(warm.timings)))
    stages = [s for s in stages if s != "total"]

    print(f"mrjax scan, {args.traits} exposures x 1 outcome, bi-directional; n_boot={args.n_boot}, "
          f"MR-PRESSO draws={args.draws}")
    print(f"machine: {os.cpu_count()} CPUs ({cpu_model()}), JAX CPU, float64")
    n_results = len(warm.tables["results"])
    n_traits = warm.tables["results"][["direction", "exposure", "outcome"]].drop_duplicates().shape[0]
    print(f"{n_traits} traits estimated ({n_results} result rows), {len(warm.significant)} significant by IVW\n")
    print(f"{'stage':<14}{'cold s':>9}{'warm s':>9}{'warm share':>12}")
    for stage in stages:
        c, w = cold.timings.get(stage, 0.0), warm.timings.get(stage, 0.0)
        print(f"{stage:<14}{c:>9.2f}{w:>9.2f}{w / warm_total:>11.1%}")
    # time spent outside every named stage (process overhead, bookkeeping): should stay small
    unstaged_cold = cold_total - sum(cold.timings.get(s, 0.0) for s in stages)
    unstaged_warm = warm_total - sum(warm.timings.get(s, 0.0) for s in stages)
    print(f"{'(unstaged)':<14}{unstaged_cold:>9.2f}{unstaged_warm:>9.2f}{unstaged_warm / warm_total:>11.1%}")
    print(f"{'total':<14}{cold_total:>9.2f}{warm_total:>9.2f}{1:>11.1%}")
    print(f"\nbaseline: bare pyarrow read of the inputs {bare_read:.2f} s; "
          f"scan / bare read = {cold_total / bare_read:.0f}x cold, {warm_total / bare_read:.0f}x warm")
    estimation = sum(warm.timings.get(s, 0.0) for s in ("estimate", "presso"))
    print(f"estimation (MR methods + diagnostics + MR-PRESSO) = {estimation:.2f} s warm, "
          f"{estimation / warm_total:.1%} of the scan")
    print(f"outputs in {work}")


if __name__ == "__main__":
    main()
