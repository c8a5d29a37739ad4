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
import time
start, cpu = time.perf_counter(), time.process_time()
import json, os, resource, sys
from mrjax_cli._common import configure_jax
from mrjax.scan import ScanConfig, run_scan
store, out, panel, cache = sys.argv[1:5]
configure_jax(64, cache if cache != "-" else None, no_cache=cache == "-")
imported = time.perf_counter() - start
config = ScanConfig(exposures=("cell_*",), outcome="outcome", store=store, out=out, ld_ref=panel,
                    bidirectional=True, presso_draws=10_000)
result = run_scan(config)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "import_seconds": imported, "cpu_seconds": time.process_time() - cpu,
                  "timings_s": result.manifest["timings_s"],
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


def scan_once(store: Path, out: Path, cache: str) -> dict:
    """One ``run_scan`` from the store in a fresh process (``cache``: compilation cache folder, "-" = off)."""
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("MRJAX_NO_CACHE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", SCAN, str(store), str(out), str(SHARED / "ldref" / "eur_sim"), cache],
                          capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    scan = json.loads(done.stdout.strip().splitlines()[-1])
    scan["process_wall_seconds"] = wall
    scan["process_cpu_seconds"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    scan["load_after"] = os.getloadavg()[0]
    return scan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traits", type=int, default=731)
    parser.add_argument("--rows", type=int, default=5000, help="rows per exposure trait (reduced to fit)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep-store", action="store_true", help="reuse the store of an earlier run (skip ingest)")
    parser.add_argument("--scans", type=int, default=2,
                        help="scans in a row, fresh processes sharing one new compilation cache (1st cold, then warm)")
    parser.add_argument("--cache-dir", help="compilation cache folder to use (default: a new temporary one)")
    args = parser.parse_args()
    import shutil
    import tempfile

    print(f"load average before: {os.getloadavg()}", flush=True)
    paths = make_inputs(args.traits, args.rows)
    store = WORK / f"store_{args.traits}x{args.rows}"
    if not (args.keep_store and (store / "store.json").exists()):
        shutil.rmtree(store, ignore_errors=True)
        ingested = ingest(paths, store, args.workers)
        print(f"ingest {len(paths)} files ({args.traits} x <= {args.rows:,} rows + outcome) on {args.workers} "
              f"worker(s): {ingested}", flush=True)
    cache = args.cache_dir or tempfile.mkdtemp(prefix="bench_store_scan_cache_")
    scans = []
    for k in range(args.scans):
        scans.append(scan_once(store, WORK / "scan_out", cache))
        print(f"scan {k + 1} ({'cold' if k == 0 and not args.cache_dir else 'warm'} cache): {json.dumps(scans[-1])}",
              flush=True)
    print(f"load average after: {os.getloadavg()}")
    print(f"\nscan from the store ({args.traits} traits, bi-directional, default panel, PRESSO 10^4, report), "
          f"fresh processes sharing the compilation cache {cache}")
    def row(label: str, values) -> None:
        print(f"| {label} | " + " | ".join(values) + " |")

    print("| | " + " | ".join(f"scan {k + 1}" for k in range(len(scans))) + " |\n|---|" + "---:|" * len(scans))
    row("process wall s (import included)", [f"{s['process_wall_seconds']:.1f}" for s in scans])
    row("process CPU s", [f"{s['process_cpu_seconds']:.1f}" for s in scans])
    row("import + configure s", [f"{s['import_seconds']:.1f}" for s in scans])
    for name in sorted(scans[0]["timings_s"], key=lambda name: -scans[0]["timings_s"][name]):
        row(name, [f"{s['timings_s'].get(name, float('nan')):.2f}" for s in scans])
    row("load average after", [f"{s['load_after']:.1f}" for s in scans])


if __name__ == "__main__":
    main()
