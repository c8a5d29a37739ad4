"""Read + filter throughput of ``mrjax.read_gwas`` on a ≥ 10-million-row GWAS file.

The file is made by replicating ``../shared/data/gwas/outcome_finngen.gz`` (FinnGen layout,
bgzip-style multi-member gzip) with rsIDs made unique per copy, under ``benchmarks/_work/``.
Each measurement runs in a fresh subprocess (so its peak memory is its own):

* ``gunzip only``      — decompress the file with pyarrow and discard the bytes (floor);
* ``pyarrow raw read`` — ``pyarrow.csv.open_csv`` over the gzip stream, every block parsed
                          with default options, nothing kept: the ceiling for any reader;
* ``pyarrow, same columns`` — the same, reading only the columns mrjax reads, typed as it does;
* ``read_gwas p≤1e-5`` / ``p≤5e-8`` — mrjax: detect, parse, normalise, filter on p while
                          reading, audit, return the pandas table.

Ratio = raw-read time / mrjax time (throughput as a fraction of the ceiling; target ≥ 50%).
Usage: ``python benchmarks/bench_read.py [--copies 257] [--repeats 2]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "gwas" / "outcome_finngen.gz"
WORK = ROOT / "benchmarks" / "_work"

CASES = {
    "gunzip only": """
with pa.input_stream(PATH, compression="gzip") as s:
    while s.read(1 << 24):
        pass
rows = None
""",
    "pyarrow raw read": """
rows = 0
with pa.input_stream(PATH, compression="gzip") as s:
    for batch in csv.open_csv(s, read_options=csv.ReadOptions(block_size=16 << 20),
                              parse_options=csv.ParseOptions(delimiter="\\t")):
        rows += batch.num_rows
""",
    "pyarrow, same columns": """
rows = 0
names = ["#chrom", "pos", "ref", "alt", "rsids", "pval", "mlogp", "beta", "sebeta", "af_alt"]
types = {n: pa.float64() for n in ["mlogp", "beta", "sebeta", "af_alt"]}
types.update({"pos": pa.int64(), "pval": pa.string()})
with pa.input_stream(PATH, compression="gzip") as s:
    for batch in csv.open_csv(s, read_options=csv.ReadOptions(block_size=16 << 20),
                              parse_options=csv.ParseOptions(delimiter="\t"),
                              convert_options=csv.ConvertOptions(include_columns=names, column_types=types)):
        rows += batch.num_rows
""",
    "read_gwas p<=1e-5": """
table = g.read_gwas(PATH, p_max=1e-5)
rows = int(counts_of(table)["n_in"].sum()); kept = len(table)
""",
    "read_gwas p<=5e-8": """
table = g.read_gwas(PATH, p_max=5e-8)
rows = int(counts_of(table)["n_in"].sum()); kept = len(table)
""",
}

# imports happen before the clock starts (importing mrjax loads jax: a one-off cost)
PARQUET = ROOT.parent / "shared" / "data" / "scan" / "exposures.parquet"
PARQUET_CASES = {
    "pyarrow read_table": """
table = pa.parquet.read_table(PATH); rows = table.num_rows
""",
    "read_gwas p<=1e-5": """
table = g.read_gwas(PATH, p_max=1e-5)
rows = int(counts_of(table)["n_in"].sum()); kept = len(table)
""",
}

RUNNER = """
import json, resource, sys, time
import pyarrow as pa, pyarrow.csv as csv, pyarrow.parquet
import mrjax.gwas as g
from mrjax.audit import counts_of
PATH = sys.argv[1]
kept = None
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
start, start_cpu = time.perf_counter(), cpu()
{body}
elapsed, used = time.perf_counter() - start, cpu() - start_cpu
print(json.dumps({{"seconds": elapsed, "cpu_seconds": used, "rows": rows, "kept": kept,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def make_file(copies: int) -> Path:
    """``copies`` replicas of the FinnGen file in one gzip file (one member per copy)."""
    target = WORK / f"finngen_x{copies}.gz"
    if target.exists():
        return target
    WORK.mkdir(parents=True, exist_ok=True)
    text = gzip.decompress(SOURCE.read_bytes())
    header, body = text.split(b"\n", 1)
    tmp = target.with_suffix(".part")
    with open(tmp, "wb") as out:
        out.write(gzip.compress(header + b"\n", compresslevel=1))
        for k in range(copies):
            # unique rsIDs per copy: rs123 -> rs<k>x123 (the first ID of each rsids cell)
            out.write(gzip.compress(body.replace(b"\trs", b"\trs%dx" % k), compresslevel=1))
    tmp.rename(target)
    return target


def measure(case: str, path: Path, cases=CASES) -> dict:
    script = RUNNER.format(body=cases[case])
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> str:
    from mrjax.outputs import cpu_model  # late: measuring children import their own modules
    return f"{os.cpu_count()} cores (nproc), {cpu_model()}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=257, help="replicas of the 39,394-row file (257 → 10.1 M rows)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per case; the fastest is reported")
    args = parser.parse_args()
    path = make_file(args.copies)
    size = path.stat().st_size / 1e6
    print(f"file: {path.relative_to(ROOT)} ({size:.0f} MB gzip)")
    print(f"machine: {machine()}")
    results = {}
    for case in CASES:
        runs = [measure(case, path) for _ in range(args.repeats)]
        results[case] = min(runs, key=lambda r: r["seconds"])
    table(results, "pyarrow raw read", size)
    print(f"\nlong multi-trait parquet: {PARQUET.name} (50 traits, {PARQUET.stat().st_size / 1e6:.0f} MB)")
    results = {case: min((measure(case, PARQUET, PARQUET_CASES) for _ in range(args.repeats)), key=lambda r: r["seconds"])
               for case in PARQUET_CASES}
    table(results, "pyarrow read_table", None)


def table(results: dict, baseline: str, size) -> None:
    raw = results[baseline]
    rows = raw["rows"]
    print(f"rows: {rows:,}")
    print(
        f"{'case':<20} {'wall s':>7} {'Mrows/s':>8} {'vs raw (wall)':>14} {'CPU s':>7} {'vs raw (CPU)':>13} "
        f"{'peak RSS MB':>12} {'kept':>7}"
    )
    for case, r in results.items():
        kept = "" if r["kept"] is None else f"{r['kept']:,}"
        print(
            f"{case:<20} {r['seconds']:7.2f} {rows / r['seconds'] / 1e6:8.2f} {raw['seconds'] / r['seconds']:14.0%} "
            f"{r['cpu_seconds']:7.2f} {raw['cpu_seconds'] / r['cpu_seconds']:13.0%} {r['max_rss_mb']:12.0f} {kept:>7}"
        )


if __name__ == "__main__":
    main()
