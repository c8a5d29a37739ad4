"""A 731-trait bi-directional scan from a GWAS store of 731 traits (issue 17's scan target).

Quiet-machine command (the lead's end-of-session run, ≤ 10 minutes; prints both targets)::

    .venv/bin/python benchmarks/bench_store.py --skip-baselines --files 4 --repeats 3 \\
        && .venv/bin/python benchmarks/bench_store_scan.py

(the first prints "scaling 1 -> 2 workers", target ≥ 1.7×; this one prints the scan's wall
time, target ≤ 60 s on 2 cores).

Inputs, under ``benchmarks/_work/store_scan/`` (made once, deterministic): 731 exposure GWAS
files, one per trait, made from the 50 exposures of ``../shared/data/scan`` (trait ``k`` takes
exposure ``k mod 50``). **Rows per trait are reduced to fit** (``--rows``, default 5,000 of the
~38,700): every row with p ≤ 1e-5 (the instruments), every row at a SNP the outcome selects
(the reverse direction's look-ups), the rest drawn at random. The outcome is the shared scan's
(39,098 rows); clumping and proxies against ``../shared/data/ldref/eur_sim``.

Measured: ingest of the 732 files on a ``LocalCluster`` of ``--workers`` (default 2) workers;
then ``mrjax.scan.run_scan`` from the store — bi-directional, the default method panel (1,000
bootstraps), MR-PRESSO with 10^4 draws, figures and report — in a fresh process, cold (JIT
compilation included, persistent compilation cache as a user has it after one run) and
wall/CPU seconds. That look-ups cost what is looked up, not the table's size, is shown by
``bench_store.py``'s look-up table (same 50 SNPs in a trait of N and N/4 rows).

Usage: ``python benchmarks/bench_store_scan.py [--traits 731] [--rows 5000] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared" / "data"
WORK = HERE / "_work" / "store_scan"

SCAN = """
import json, os, resource, sys, time
from mrjax.scan import ScanConfig, run_scan
store, out, panel, outcome_p = sys.argv[1:5]
config = ScanConfig(exposures=("cell_*",), outcome="outcome", store=store, out=out, ld_ref=panel,
                    bidirectional=True, presso_draws=10_000)
start, cpu = time.perf_counter(), time.process_time()
result = run_scan(config)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "cpu_seconds": time.process_time() - cpu,
                  "results": len(result.tables["results"]),
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_inputs(traits: int, rows: int) -> list[Path]:
    """One parquet GWAS per trait (see the module docstring); made once."""
    folder = WORK / f"inputs_{traits}x{rows}"
    done = folder / "done.json"
    if done.exists():
        return sorted(folder.glob("*.parquet"))
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(17)
    exposures = pq.read_table(SHARED / "scan" / "exposures.parquet")
    exposures = exposures.set_column(0, "exposure", pc.cast(exposures.column("exposure"), pa.string()))
    outcome = pq.read_table(SHARED / "scan" / "outcome.parquet")
    outcome_snps = outcome.filter(pc.less_equal(outcome.column("pval"), 1e-5)).column("SNP")
    names = sorted(set(exposures.column("exposure").to_pylist()))
    base = {name: exposures.filter(pc.equal(exposures.column("exposure"), name)).drop_columns(["exposure"])
            for name in names}
    for k in range(traits):
        table = base[names[k % len(names)]]
        must = pc.or_(pc.less_equal(table.column("pval"), 1e-5), pc.is_in(table.column("SNP"), outcome_snps))
        must = must.to_numpy(zero_copy_only=False)
        rest = np.flatnonzero(~must)
        fill = rng.choice(rest, size=max(0, min(len(rest), rows - int(must.sum()))), replace=False)
        keep = np.sort(np.concatenate([np.flatnonzero(must), fill]))
        pq.write_table(table.take(keep), folder / f"cell_{k + 1:03d}.parquet")
    pq.write_table(outcome, folder / "outcome.parquet")
    done.write_text(json.dumps({"traits": traits, "rows": rows}))
    return sorted(folder.glob("*.parquet"))


def ingest(paths: list[Path], store: Path, workers: int) -> dict:
    import mrjax

    start, cpu = time.perf_counter(), time.process_time()
    summary = mrjax.ingest([str(p) for p in paths], store=store, workers=workers, progress=False)
    assert (summary["status"].isin(["written", "skipped"])).all(), summary[summary["status"] == "failed"]
    return {"seconds": time.perf_counter() - start, "cpu_seconds_main": time.process_time() - cpu,
            "written": int((summary["status"] == "written").sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traits", type=int, default=731)
    parser.add_argument("--rows", type=int, default=5000, help="rows per exposure trait (reduced to fit)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}", flush=True)
    paths = make_inputs(args.traits, args.rows)
    store = WORK / f"store_{args.traits}x{args.rows}"
    import shutil

    shutil.rmtree(store, ignore_errors=True)
    ingested = ingest(paths, store, args.workers)
    print(f"ingest {len(paths)} files ({args.traits} x <= {args.rows:,} rows + outcome) on {args.workers} "
          f"worker(s): {ingested}", flush=True)
    out = WORK / "scan_out"
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "-c", SCAN, str(store), str(out), str(SHARED / "ldref" / "eur_sim"), "1e-5"],
                          capture_output=True, text=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    scan = json.loads(done.stdout.strip().splitlines()[-1])
    scan["process_cpu_seconds"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    print(f"scan from the store ({args.traits} traits, bi-directional, default panel, PRESSO 10^4, report): {scan}")
    print(f"load average after: {os.getloadavg()}")
    print(f"\n| step | wall s | CPU s |\n|---|---|---|\n| ingest ({args.workers} workers) | {ingested['seconds']:.1f} | |\n"
          f"| scan from store (fresh process, incl. import + compile) | {scan['seconds']:.1f} | "
          f"{scan['process_cpu_seconds']:.1f} |")


if __name__ == "__main__":
    main()
