"""The GWAS store at (scaled-down) real size: ingest throughput, store size, look-up latency.

Input: files in the GWAS Catalog harmonised layout from ``make_catalog_gwas.py`` (22 M rows at
real size; ``--rows`` scales down), under ``benchmarks/_work/``. In one run:

* baselines, each in a fresh subprocess: gunzip alone (zlib via pyarrow, python-isal), pyarrow's
  CSV reader and polars' on the columns ``read_gwas`` needs, ``read_gwas`` itself (no p
  filter), and ingest's text path alone (``stream_gwas`` into a sink that drops the blocks);
* ``mrjax.ingest`` of one file in a fresh process (``workers=0``): rows per CPU-second and
  wall-second, peak memory (VmHWM of that process; RSS after imports beside it);
* peak memory of that ingest against the file's size (``--rss-rows``: it streams, so it
  should stay flat);
* ``mrjax.ingest`` of ``--files`` files on a ``distributed.LocalCluster`` of 1 and of 2 workers
  (cluster started and workers warmed before the clock; CPU summed over the worker processes);
* store size against the gzip file;
* look-up latency (fresh ``GWASStore`` each time, footer reads included, OS cache warm) for 50
  and 5,000 SNPs drawn among the top hits' neighbourhoods (clustered, as instruments are) and
  uniformly (scattered), and for positions; row groups read against the total; the same
  50-SNP look-up in a trait a quarter the size (cost follows the rows looked up, not the table).

Usage: ``python benchmarks/bench_store.py [--rows 2000000] [--files 2] [--repeats 5]
[--rss-rows 500000,2000000,22000000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
sys.path.insert(0, str(HERE))

from make_catalog_gwas import generate  # noqa: E402

NEEDED = ["hm_rsid", "hm_chrom", "hm_pos", "hm_other_allele", "hm_effect_allele", "hm_beta", "hm_odds_ratio",
          "hm_effect_allele_frequency", "standard_error", "p_value", "hm_code", "variant_id"]
FLOATS = ["hm_beta", "hm_odds_ratio", "hm_effect_allele_frequency", "standard_error", "hm_code"]

CASES = {
    "gunzip (zlib, pyarrow stream)": """
with pa.input_stream(PATH, compression="gzip") as s:
    while s.read(1 << 24):
        pass
""",
    "gunzip (python-isal)": """
from isal import igzip
with igzip.open(PATH, "rb") as s:
    while s.read(1 << 24):
        pass
""",
    "pyarrow CSV, needed columns": f"""
types = {{n: pa.float64() for n in {FLOATS!r}}}
types.update({{"hm_pos": pa.int64(), "p_value": pa.string()}})
with pa.input_stream(PATH, compression="gzip") as s:
    for batch in csv.open_csv(s, read_options=csv.ReadOptions(block_size=16 << 20),
                              parse_options=csv.ParseOptions(delimiter="\\t"),
                              convert_options=csv.ConvertOptions(include_columns={NEEDED!r}, column_types=types,
                                                                 null_values=["NA"], strings_can_be_null=True)):
        pass
""",
    "polars CSV, needed columns": f"""
import polars as pl
frame = pl.read_csv(PATH, separator="\\t", columns={NEEDED!r}, null_values=["NA"],
                    schema_overrides={{"p_value": pl.Utf8, "hm_chrom": pl.Utf8}})
""",
    "read_gwas (no p filter)": """
import mrjax
table = mrjax.read_gwas(PATH)
""",
    "ingest's text path (stream_gwas, blocks dropped)": """
import pandas as pd
from mrjax.gwas import readers
class Drop:
    rows = 0
    def add(self, block):
        Drop.rows += block.num_rows
    def finish(self):
        return pd.Series({readers.default_trait_name(__import__("pathlib").Path(PATH)): Drop.rows}), None
readers.stream_gwas(PATH, Drop())
""",
    "ingest, in process (workers=0)": """
import mrjax, shutil
shutil.rmtree(STORE, ignore_errors=True)
summary = mrjax.ingest([PATH], store=STORE, workers=0, progress=False)
assert (summary["status"] == "written").all(), summary
""",
}

# Peak memory is the process's VmHWM (/proc/self/status), not ru_maxrss: Linux carries the
# parent's RSS at fork over exec into the child's ru_maxrss, which made every case of earlier
# runs report the benchmark process's own ~570 MB.
RUNNER = """
import json, resource, sys, time
import pyarrow as pa, pyarrow.csv as csv
import mrjax.store  # imports before the clock (mrjax.store imports no JAX)
PATH, STORE = sys.argv[1], sys.argv[2]
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
def status_mb(field):
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith(field)) / 1024
imported_mb = status_mb("VmRSS:")
start, start_cpu = time.perf_counter(), cpu()
{body}
print(json.dumps({{"seconds": time.perf_counter() - start, "cpu_seconds": cpu() - start_cpu,
                  "max_rss_mb": status_mb("VmHWM:"), "imported_rss_mb": imported_mb}}))
"""


def measure(case: str, path: Path, store: Path) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", RUNNER.format(body=CASES[case]), str(path), str(store)],
                          capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"{case}: {done.stderr[-2000:]}")
    return json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])


def cluster_ingest(paths: list[Path], workers: int, store: Path) -> dict:
    """Ingest on a LocalCluster started (and warmed) before the clock; CPU over the workers."""
    import psutil
    from distributed import Client, LocalCluster

    import mrjax

    shutil.rmtree(store, ignore_errors=True)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.run(lambda: __import__("mrjax.store"))
        pids = list(client.run(os.getpid).values())

        def cpu():
            return sum(sum(psutil.Process(p).cpu_times()[:2]) for p in pids)

        start, start_cpu = time.perf_counter(), cpu()
        summary = mrjax.ingest([str(p) for p in paths], store=store, scheduler=cluster.scheduler_address, progress=False)
        seconds, used = time.perf_counter() - start, cpu() - start_cpu
        peak = max(_peak_rss_mb(p) for p in pids)
    assert (summary["status"] == "written").all(), summary
    return {"seconds": seconds, "cpu_seconds": used, "max_rss_mb": peak}


def _peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory (VmHWM) in MB."""
    with open(f"/proc/{pid}/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:")) / 1024


def lookup_latency(store_path: Path, trait: str, repeats: int, rng) -> list[dict]:
    import mrjax

    store = mrjax.GWASStore(store_path)
    full = store.table(trait)
    hits = store.top_hits(trait, p=1e-5)
    rows = []
    order = full.sort_values(["chr", "pos"]).reset_index(drop=True)
    near = np.flatnonzero(order["SNP"].isin(hits["SNP"]).to_numpy())
    for count in (50, 5000):
        around = np.unique(np.clip(near[:, None] + np.arange(-60, 61)[None, :], 0, len(order) - 1))
        clustered = list(order["SNP"].to_numpy()[rng.choice(around, min(count, len(around)), replace=False)])
        scattered = list(rng.choice(full["SNP"].to_numpy(), count, replace=False))
        positions = list(zip(order["chr"].to_numpy()[near[:count]], order["pos"].to_numpy()[near[:count]].astype(int)))
        for kind, query in (("SNPs, clustered", dict(snps=clustered)), ("SNPs, scattered", dict(snps=scattered)),
                            ("positions of top hits", dict(positions=positions))):
            times, cpu, cost = [], [], None
            for _ in range(repeats):
                fresh = mrjax.GWASStore(store_path)
                start, start_cpu = time.perf_counter(), time.process_time()
                got = fresh.lookup(trait, **query)
                times.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
                cost = got.attrs["store_read"]
            rows.append({"query": f"{count} {kind}", "asked": len(next(iter(query.values()))),
                         "ms": 1e3 * statistics.median(times), "cpu_ms": 1e3 * statistics.median(cpu), **cost})
    start = time.perf_counter()
    top = mrjax.GWASStore(store_path).top_hits(trait, p=5e-8)
    rows.append({"query": "top_hits(p=5e-8)", "asked": None, "ms": 1e3 * (time.perf_counter() - start), "cpu_ms": float("nan"),
                 "rows_returned": len(top), "row_groups_read": 0, "rows_read": top.attrs["store_read"]["rows_read"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows per file (22 M at real size)")
    parser.add_argument("--files", type=int, default=2, help="files ingested on the LocalCluster")
    parser.add_argument("--repeats", type=int, default=5, help="look-up repeats (median reported)")
    parser.add_argument("--skip-baselines", action="store_true")
    parser.add_argument("--rss-rows", default="",
                        help="comma-separated row counts: in-process ingest's peak memory per file size "
                             "(default: rows/4 and rows)")
    parser.add_argument("--lookups-only", action="store_true", help="only the look-ups (stores of an earlier run)")
    parser.add_argument("--memory-only", action="store_true", help="only the peak memory against file size")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    source = generate(args.rows, WORK / f"catalog_{args.rows}_s1.h.tsv.gz", seed=1)
    small = generate(args.rows // 4, WORK / f"catalog_{args.rows // 4}_s2.h.tsv.gz", seed=2)
    gz_mb = source.stat().st_size / 1e6
    print(f"file: {source.name}: {args.rows:,} rows, {gz_mb:.0f} MB gzip")
    print(f"load average before: {os.getloadavg()}")
    results = {}
    store = WORK / "store_bench"
    if args.lookups_only:
        return lookups(args, source, small, store, rng)
    if args.memory_only:
        return memory_by_size(args, store)
    for case in CASES:
        if args.skip_baselines and case != "ingest, in process (workers=0)":
            continue
        results[case] = measure(case, source, store)
        print(f"  {case}: {results[case]}", flush=True)
    copies = []
    for k in range(args.files):
        copy = WORK / f"copy{k}_{source.name}"
        if not copy.exists():
            os.link(source, copy)
        copies.append(copy)
    for workers in (1, 2):
        results[f"ingest, LocalCluster {workers} worker(s), {args.files} files"] = cluster_ingest(
            copies, workers, WORK / f"store_w{workers}")
        print(f"  workers={workers}: {results[f'ingest, LocalCluster {workers} worker(s), {args.files} files']}", flush=True)
    print(f"load average after ingest: {os.getloadavg()}")

    print(f"\n| case ({args.rows:,}-row Catalog file) | wall s | M rows/s (wall) | CPU s | M rows/CPU-s | peak RSS MB |"
          " RSS after imports MB |")
    print("|---|---|---|---|---|---|---|")
    for case, r in results.items():
        rows = args.rows * (args.files if "LocalCluster" in case else 1)
        rss = f"{r['max_rss_mb']:.0f}" + (" (largest worker)" if "LocalCluster" in case else "")
        imported = f"{r['imported_rss_mb']:.0f}" if "imported_rss_mb" in r else ""
        print(f"| {case} | {r['seconds']:.2f} | {rows / r['seconds'] / 1e6:.2f} | {r['cpu_seconds']:.2f} | "
              f"{rows / r['cpu_seconds'] / 1e6:.2f} | {rss} | {imported} |")
    memory_by_size(args, store)
    one = results[f"ingest, LocalCluster 1 worker(s), {args.files} files"]["seconds"]
    two = results[f"ingest, LocalCluster 2 worker(s), {args.files} files"]["seconds"]
    print(f"\nscaling 1 -> 2 workers (rows per wall-second): {one / two:.2f}x")

    lookups(args, source, small, store, rng)


def memory_by_size(args, store: Path) -> None:
    """In-process ingest of files of several sizes, each in a fresh process: peak memory
    should not grow with the file (the ingest streams)."""
    sizes = [int(float(x)) for x in args.rss_rows.split(",") if x] or [args.rows // 4, args.rows]
    print(f"\n| rows | gzip MB | peak RSS MB | RSS after imports MB | CPU s | M rows/CPU-s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for rows in sizes:
        seed = 2 if rows == args.rows // 4 else 1
        path = generate(rows, WORK / f"catalog_{rows}_s{seed}.h.tsv.gz", seed=seed)
        r = measure("ingest, in process (workers=0)", path, WORK / "store_memory")  # store_bench stays for look-ups
        print(f"| {rows:,} | {path.stat().st_size / 1e6:.0f} | {r['max_rss_mb']:.0f} | {r['imported_rss_mb']:.0f} | "
              f"{r['cpu_seconds']:.2f} | {rows / r['cpu_seconds'] / 1e6:.2f} |", flush=True)
    print(f"load average after the memory runs: {os.getloadavg()}")


def lookups(args, source: Path, small: Path, store: Path, rng) -> None:
    import mrjax

    gz_mb = source.stat().st_size / 1e6
    trait = source.name.split(".")[0]
    built = mrjax.GWASStore(store)
    folder = built.folders[trait]
    sizes = {p.name: p.stat().st_size / 1e6 for p in folder.iterdir()}
    print(f"\nstore size of {trait}: {sum(sizes.values()):.1f} MB vs {gz_mb:.1f} MB gzip "
          f"({sum(sizes.values()) / gz_mb:.2f}x); " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(sizes.items())))
    print(f"row groups: {built.metadata(trait)['files']['variants.parquet']['row_groups']}")

    small_store = WORK / "store_small"
    shutil.rmtree(small_store, ignore_errors=True)
    mrjax.ingest([str(small)], store=small_store, workers=0, progress=False)
    print(f"\nlook-ups in the {args.rows:,}-row trait (median of {args.repeats}, ms):")
    print("| query | asked | rows returned | row groups read / total | rows read / total | wall ms | CPU ms |")
    print("|---|---|---|---|---|---|---|")
    for row in lookup_latency(store, trait, args.repeats, rng):
        groups = f"{row['row_groups_read']} / {row.get('row_groups_total', '')}"
        read = f"{row['rows_read']:,} / {row.get('rows_total', 0):,}"
        print(f"| {row['query']} | {row['asked'] or ''} | {row['rows_returned']:,} | {groups} | {read} | {row['ms']:.1f} | "
              f"{row['cpu_ms']:.1f} |")
    small_trait = small.name.split(".")[0]
    print(f"\nthe same kinds of look-up in a {args.rows // 4:,}-row trait:")
    for row in lookup_latency(small_store, small_trait, args.repeats, rng)[:1]:
        print(f"| {row['query']} | {row['rows_returned']:,} rows | {row['row_groups_read']} / {row['row_groups_total']} groups | "
              f"{row['ms']:.1f} ms wall | {row['cpu_ms']:.1f} ms CPU |")
    print(f"\nload average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
