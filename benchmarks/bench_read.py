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

Second suite (issue 17 item 4): a 2 M-row file in the 22-column GWAS Catalog harmonised layout
(``benchmarks/make_catalog_gwas.py``), rows per CPU-second of the candidate engines side by side
— gunzip with zlib and with python-isal, pyarrow / polars / polars streaming / duckdb reading
the columns ``read_gwas`` needs — against ``read_gwas(p_max=1e-5)`` now and as it was before the
block reader (``--baseline`` commit, run from ``git archive`` under ``benchmarks/_work/``);
target ≥ 1.4 M rows per CPU-second, results identical (checked in the run).

Usage: ``python benchmarks/bench_read.py [--suite all|catalog|finngen] [--copies 257]
[--rows 2000000] [--repeats 2]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
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

CATALOG_NEEDED = ["hm_rsid", "hm_chrom", "hm_pos", "hm_other_allele", "hm_effect_allele", "hm_beta", "hm_odds_ratio",
                  "hm_effect_allele_frequency", "standard_error", "p_value", "hm_code", "variant_id"]
CATALOG_FLOATS = ["hm_beta", "hm_odds_ratio", "hm_effect_allele_frequency", "standard_error", "hm_code"]
CATALOG_CASES = {
    "gunzip zlib": """
with pa.input_stream(PATH, compression="gzip") as s:
    while s.read(1 << 24):
        pass
rows = None
""",
    "gunzip isal": """
import isal.igzip
with isal.igzip.open(PATH, "rb") as s:
    while s.read(1 << 24):
        pass
rows = None
""",
    "pyarrow, needed columns": f"""
rows = 0
types = {{n: pa.string() for n in {CATALOG_NEEDED!r}}}
types.update({{n: pa.float64() for n in {CATALOG_FLOATS!r}}}); types["hm_pos"] = pa.int64()
with pa.input_stream(PATH, compression="gzip") as s:
    for batch in csv.open_csv(s, read_options=csv.ReadOptions(block_size=16 << 20),
                              parse_options=csv.ParseOptions(delimiter="\\t"),
                              convert_options=csv.ConvertOptions(include_columns={CATALOG_NEEDED!r}, column_types=types)):
        rows += batch.num_rows
""",
    "polars read_csv, needed columns": f"""
import polars as pl
frame = pl.read_csv(PATH, separator="\\t", columns={CATALOG_NEEDED!r}, null_values=["NA"],
                    schema_overrides={{"p_value": pl.String, "hm_pos": pl.Int64}})
rows = frame.height
""",
    "polars scan_csv streaming, p filter": f"""
import polars as pl
frame = (pl.scan_csv(PATH, separator="\\t", null_values=["NA"], schema_overrides={{"p_value": pl.Float64}})
         .select({CATALOG_NEEDED!r}).filter(pl.col("p_value") <= 1e-5).collect(engine="streaming"))
rows = None; kept = frame.height
""",
    "duckdb read_csv, p filter": f"""
import duckdb
con = duckdb.connect(); con.execute("SET threads = 1")
kept = con.execute("SELECT count(*) FROM read_csv(?, delim='\\t', header=true, nullstr='NA') WHERE p_value <= 1e-5",
                   [PATH]).fetchone()[0]
rows = None
""",
    "read_gwas p<=1e-5 (before)": """
table = g_before.read_gwas(PATH, p_max=1e-5)
rows = int(counts_of(table)["n_in"].sum()); kept = len(table)
""",
    "read_gwas p<=1e-5": """
table = g.read_gwas(PATH, p_max=1e-5)
rows = int(counts_of(table)["n_in"].sum()); kept = len(table)
""",
    "read_gwas, all rows": """
table = g.read_gwas(PATH)
rows = int(counts_of(table)["n_in"].sum()); kept = len(table)
""",
}
BASELINE = "e23f5e7"  # the last commit before the block reader
IDENTICAL = """
import pickle, sys
sys.path.insert(0, sys.argv[2])
import mrjax.gwas as before
import mrjax.audit as audit_before, mrjax.gwas._audit as gwas_audit_before
sys.path.pop(0)
for name in [m for m in sys.modules if m == "mrjax" or m.startswith("mrjax.")]:
    del sys.modules[name]
import mrjax.gwas as now
from mrjax.audit import audit_of, counts_of
from mrjax.gwas._audit import unlisted_of
import pandas as pd
a, b = before.read_gwas(sys.argv[1], p_max=1e-5), now.read_gwas(sys.argv[1], p_max=1e-5)
assert before.__file__ != now.__file__
pairs = [(lambda t: t, lambda t: t), (audit_before.audit_of, audit_of), (audit_before.counts_of, counts_of),
         (gwas_audit_before.unlisted_of, unlisted_of)]
for old, new in pairs:
    assert len(old(a)) and len(new(b))
    pd.testing.assert_frame_equal(old(a).reset_index(drop=True), new(b).reset_index(drop=True))
print("identical", len(a))
"""

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
if len(sys.argv) > 2:  # the baseline source tree, imported as a second copy of mrjax
    import importlib.util, pathlib
    sys.path.insert(0, sys.argv[2])
    for name in [m for m in sys.modules if m == "mrjax" or m.startswith("mrjax.")]:
        del sys.modules[name]
    import mrjax.gwas as g_before
    sys.path.pop(0)
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


def measure(case: str, path: Path, cases=CASES, extra=()) -> dict:
    script = RUNNER.format(body=cases[case])
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", script, str(path), *map(str, extra)], capture_output=True, text=True,
                          env=env)
    if done.returncode:
        raise RuntimeError(f"case {case!r} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def baseline_tree(commit: str) -> Path:
    """``mrjax/`` as of ``commit``, exported under ``benchmarks/_work/`` (imported by path)."""
    target = WORK / f"baseline_{commit}"
    if not (target / "mrjax").exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "mrjax"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def catalog_suite(rows: int, repeats: int) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from make_catalog_gwas import make

    path = make(rows, WORK / f"catalog_{rows // 1000}k.h.tsv.gz")
    before = baseline_tree(BASELINE)
    print(f"\nGWAS Catalog harmonised layout (22 columns): {path.relative_to(ROOT)} "
          f"({path.stat().st_size / 1e6:.0f} MB gzip, {rows:,} rows)")
    check = subprocess.run([sys.executable, "-c", IDENTICAL, str(path), str(before)], capture_output=True, text=True,
                           env=dict(os.environ, JAX_PLATFORMS="cpu"))
    print("read_gwas(p_max=1e-5) now vs before:", check.stdout.strip() or check.stderr[-2000:])
    results = {}
    for case in CATALOG_CASES:
        runs = [measure(case, path, CATALOG_CASES, [before]) for _ in range(repeats)]
        results[case] = min(runs, key=lambda r: r["cpu_seconds"])
    print(f"rows: {rows:,}; load average (1, 5, 15 min): {os.getloadavg()}")
    print(f"{'case':<38} {'wall s':>7} {'CPU s':>7} {'M rows/CPU-s':>13} {'vs before (CPU)':>16} {'peak RSS MB':>12} {'kept':>7}")
    base = results["read_gwas p<=1e-5 (before)"]["cpu_seconds"]
    for case, r in results.items():
        kept = "" if r["kept"] is None else f"{r['kept']:,}"
        print(f"{case:<38} {r['seconds']:7.2f} {r['cpu_seconds']:7.2f} {rows / r['cpu_seconds'] / 1e6:13.2f} "
              f"{base / r['cpu_seconds']:16.2f} {r['max_rss_mb']:12.0f} {kept:>7}")


def machine() -> str:
    from mrjax.outputs import cpu_model  # late: measuring children import their own modules
    return f"{os.cpu_count()} cores (nproc), {cpu_model()}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=257, help="replicas of the 39,394-row file (257 → 10.1 M rows)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per case; the fastest is reported")
    parser.add_argument("--suite", choices=["all", "catalog", "finngen"], default="all")
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of the GWAS Catalog file")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    if args.suite in ("all", "catalog"):
        catalog_suite(args.rows, args.repeats)
    if args.suite == "catalog":
        return
    path = make_file(args.copies)
    size = path.stat().st_size / 1e6
    print(f"\nfile: {path.relative_to(ROOT)} ({size:.0f} MB gzip)")
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
