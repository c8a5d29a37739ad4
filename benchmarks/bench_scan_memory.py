"""Peak memory and time of a scan of single-trait GWAS files that reads them whole
(bi-directional, or forward with LD proxies): ``--traits`` exposure files of ``--rows`` rows.

Inputs, under ``benchmarks/_work/scan_memory/`` (made once, deterministic): the exposures of
``../shared/data/scan`` (trait ``k`` takes exposure ``k mod 50``, ~38,700 rows with rsIDs of
the panel ``../shared/data/ldref/eur_sim``), each padded to ``--rows`` rows with filler variants
(ids ``fill_N``, p uniform on (0.001, 1), so never an instrument nor a look-up), one parquet file
per trait; the outcome is the shared scan's (39,098 rows), padded the same way to
``--outcome-rows`` when that is larger. The scan (default panel, 100 bootstraps, no
MR-PRESSO, no figures or report; ``--chunk-size`` exposures per chunk, default all in one;
``--forward``: forward only; ``--read-threads``; ``--text``: the exposures as gzip'd
TSV) runs in a fresh process without a compilation cache; printed:
wall and CPU seconds, the read / proxies / harmonise stages, peak RSS, and the bytes of the
exposure tables one chunk would hold whole (pandas' deep size of one read file × traits).

Usage: ``python benchmarks/bench_scan_memory.py [--traits 64] [--rows 300000] [--outcome-rows 0]
[--chunk-size N] [--forward] [--read-threads N] [--text]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
WORK = HERE / "_work" / "scan_memory"

SCAN = """
import json, resource, sys, time
start, cpu = time.perf_counter(), time.process_time()
from mrjax_cli._common import configure_jax
configure_jax(64, None, no_cache=True)
from mrjax.scan import ScanConfig, run_scan
folder, outcome, panel, out, chunk, bidirectional, threads = sys.argv[1:8]
config = ScanConfig(exposures=(folder + "/trait_*[a-z]",), outcome=outcome, out=out, ld_ref=panel,
                    bidirectional=bidirectional == "True", n_boot=100, presso_draws=0, figures=False, report=False,
                    chunk_size=int(chunk))
result = run_scan(config, **({"read_threads": int(threads)} if int(threads) else {}))
print(json.dumps({"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "results": len(result.tables["results"]), "read_s": result.manifest["timings_s"]["read"],
                  "proxies_s": result.manifest["timings_s"].get("proxies", 0.0),
                  "harmonise_s": result.manifest["timings_s"].get("harmonise", 0.0)}))
"""


def _padded(base: pa.Table, rows: int, prefix: str, rng) -> pa.Table:
    """``base`` and filler rows up to ``rows``: base rows drawn at random, ids ``{prefix}_N``, p uniform on (0.001, 1)."""
    n = max(0, rows - base.num_rows)
    filler = base.take(rng.integers(0, base.num_rows, n))
    filler = filler.set_column(filler.schema.get_field_index("SNP"), "SNP",
                               pa.array([f"{prefix}_{i}" for i in range(n)], pa.string()))
    filler = filler.set_column(filler.schema.get_field_index("pval"), "pval", pa.array(rng.uniform(1e-3, 1.0, n)))
    return pa.concat_tables([base, filler.cast(base.schema)])


def make_outcome(rows: int) -> Path:
    path = WORK / f"outcome_{rows}.parquet"
    if not path.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        pq.write_table(_padded(pq.read_table(SHARED / "scan" / "outcome.parquet"), rows, "outfill", np.random.default_rng(6)),
                       path)
    return path


def make_inputs(traits: int, rows: int, text: bool = False) -> Path:
    folder = WORK / f"inputs_{traits}x{rows}{'_tsv' if text else ''}"
    if (folder / "done.json").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    exposures = pq.read_table(SHARED / "scan" / "exposures.parquet")
    names = sorted(set(exposures.column("exposure").to_pylist()))
    for k in range(traits):
        base = exposures.filter(pc.equal(exposures.column("exposure"), names[k % len(names)])).drop_columns(["exposure"])
        table = _padded(base, rows, f"fill_{k}", rng)
        if text:  # gzip'd TSV, as GWAS files come
            import pyarrow.csv as csv

            with pa.CompressedOutputStream(folder / f"trait_{k + 1:03d}.tsv.gz", "gzip") as sink:
                csv.write_csv(table, sink, csv.WriteOptions(delimiter="\t", quoting_style="none"))
        else:
            pq.write_table(table, folder / f"trait_{k + 1:03d}.parquet")
    (folder / "done.json").write_text(json.dumps({"traits": traits, "rows": rows}))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traits", type=int, default=64)
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--outcome-rows", type=int, default=0, help="pad the outcome to this many rows")
    parser.add_argument("--forward", action="store_true", help="forward only (LD proxies on), not bi-directional")
    parser.add_argument("--chunk-size", type=int, help="exposures per chunk (default: all in one)")
    parser.add_argument("--read-threads", type=int, default=0, help="run_scan's read_threads (default: its own)")
    parser.add_argument("--text", action="store_true", help="exposure files as gzip'd TSV instead of parquet")
    args = parser.parse_args()
    folder = make_inputs(args.traits, args.rows, args.text)
    outcome = make_outcome(args.outcome_rows) if args.outcome_rows > 39_098 else SHARED / "scan" / "outcome.parquet"
    sys.path.insert(0, str(HERE.parent))
    from mrjax.gwas import read_gwas

    one = read_gwas(next(folder.glob("trait_001.*")))
    whole_mb = one.memory_usage(deep=True).sum() / 2**20 * args.traits
    out = WORK / "scan_out"
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", SCAN, str(folder), str(outcome),
                           str(SHARED / "ldref" / "eur_sim"), str(out), str(args.chunk_size or args.traits), str(not args.forward),
                           str(args.read_threads)],
                          capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    scan = json.loads(done.stdout.strip().splitlines()[-1])
    print("| traits × rows | outcome rows | direction | exposure tables held whole, MB | process wall s | CPU s | read s "
          "| proxies s | harmonise s | peak RSS MB | results |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {args.traits} × {args.rows:,} | {max(args.outcome_rows, 39_098):,} | {'forward' if args.forward else 'both'} "
          f"| {whole_mb:,.0f} | {time.perf_counter() - start:.1f} | {scan['cpu_seconds']:.1f} | {scan['read_s']:.1f} "
          f"| {scan['proxies_s']:.2f} | {scan['harmonise_s']:.2f} | {scan['max_rss_mb']:,.0f} | {scan['results']} |")


if __name__ == "__main__":
    main()
