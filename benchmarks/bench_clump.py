"""Benchmark: clump all 50 scan exposures with mrjax vs plink 1.9 run once per trait.

Both sides clump the same SNP/p tables (``shared/data/scan/exposures.parquet``) against the
same panel (``shared/data/ldref/eur_sim``) with ``--clump-p1 1e-5 --clump-p2 1 --clump-r2 0.001
--clump-kb 10000``, and both results are checked against the oracle in ``scan/truth.json``
(``plink_instruments_r2_0.001_kb_10000``).

* plink: one ``plink1.9 --bfile … --clump trait.assoc`` process per trait (as TwoSampleMR
  ``clump_data()`` / ieugwasr ``ld_clump_local()`` do), timed end to end per process. The
  per-trait input files are written beforehand and not timed.
* mrjax: ``LDPanel.load`` once + one ``clump()`` call on the long table (all traits), timed
  together (panel load included), with the audit trail built.

Two inputs: the full tables (all ~38.7k variants per trait, 1.9 M rows) and the pre-selected
rows with p ≤ 1e-5 (what TwoSampleMR passes after ``extract_instruments``); the index SNPs
are the same either way.

Usage: ``.venv/bin/python benchmarks/bench_clump.py [--repeats 3]``. Installs Debian's
``plink1.9`` with apt-get when it is missing (needs root, network).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PANEL = SHARED / "ldref" / "eur_sim"
WORK = ROOT / "benchmarks" / "_work" / "clump"
R2, KB, P1, P2 = 0.001, 10_000, 1e-5, 1.0


def ensure_plink() -> str:
    exe = shutil.which("plink1.9")
    if exe:
        return exe
    print("installing Debian plink1.9 (apt-get)…", flush=True)
    prefix = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(prefix + ["apt-get", "update", "-qq"], check=True)
    subprocess.run(prefix + ["apt-get", "install", "-y", "-qq", "plink1.9"], check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    exe = shutil.which("plink1.9")
    if not exe:
        sys.exit("plink1.9 not found after apt-get install")
    return exe


def write_inputs(gwas: pd.DataFrame, tag: str) -> dict[str, Path]:
    folder = WORK / tag
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for trait, rows in gwas.groupby("exposure", sort=True, observed=True):
        path = folder / f"{trait}.assoc"
        with path.open("w") as fh:
            fh.write("SNP P\n")
            fh.writelines(f"{s} {float(p)!r}\n" for s, p in zip(rows["SNP"].to_numpy(dtype=object), rows["pval"].to_numpy()))
        paths[str(trait)] = path
    return paths


def run_plink(exe: str, paths: dict[str, Path]) -> tuple[float, dict[str, list[str]]]:
    result = {}
    start = time.perf_counter()
    for trait, path in paths.items():
        out = path.with_suffix("")
        subprocess.run(
            [exe, "--bfile", str(PANEL), "--clump", str(path), "--clump-p1", str(P1), "--clump-p2", str(P2),
             "--clump-r2", str(R2), "--clump-kb", str(KB), "--out", str(out)],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        clumped = out.with_suffix(".clumped")
        result[trait] = [line.split()[2] for line in clumped.read_text().splitlines()[1:] if line.strip()] if clumped.exists() else []
    return time.perf_counter() - start, result


def run_mrjax(gwas: pd.DataFrame) -> tuple[float, float, dict[str, list[str]]]:
    from mrjax.ld.clump import clump
    from mrjax.ld.panel import LDPanel

    start = time.perf_counter()
    panel = LDPanel.load(PANEL)
    loaded = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = clump(gwas, panel, r2=R2, kb=KB, p1=P1, p2=P2)
    end = time.perf_counter()
    result = {str(t): rows["SNP"].tolist() for t, rows in out.groupby("exposure", sort=False, observed=True)}
    return end - start, loaded - start, result


def window_costs(sizes=(256, 1300, 4096)) -> list[tuple[int, float, float, float]]:
    """r² of one index against windows of ``sizes`` variants: numpy (what clump uses) vs the
    same haplotype code traced by ``jax.jit`` (each new window length compiles once).

    The jit version is ``mrjax.ld.haplotype`` executed with ``jax.numpy`` in place of numpy
    (benchmark-only shim), and is checked against the numpy result.
    """
    import contextlib
    import inspect
    import types

    import jax
    import jax.numpy as jnp

    from mrjax.ld import haplotype
    from mrjax.ld.panel import LDPanel, tables_from_planes

    jax.config.update("jax_enable_x64", True)
    shim = types.SimpleNamespace(**{k: getattr(jnp, k) for k in dir(jnp) if not k.startswith("_")})
    shim.errstate = lambda **kw: contextlib.nullcontext()
    namespace = {"np": shim, "__name__": "haplotype_jax"}
    exec(compile(inspect.getsource(haplotype).replace("import numpy as np\n", ""), "haplotype_jax", "exec"), namespace)
    jit_r2 = jax.jit(lambda tables: namespace["ld_from_counts"](tables).r2)

    panel = LDPanel.load(PANEL)
    out = []
    for size in sizes:
        tables = tables_from_planes(panel.planes_of(0), panel.planes_of(np.arange(1, size + 1)))
        start = time.perf_counter()
        first = np.asarray(jit_r2(tables))
        compile_s = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(20):
            np.asarray(jit_r2(tables))
        jit_s = (time.perf_counter() - start) / 20
        start = time.perf_counter()
        for _ in range(20):
            reference = haplotype.ld_from_counts(tables).r2
        numpy_s = (time.perf_counter() - start) / 20
        assert np.allclose(first, reference, atol=1e-10, equal_nan=True)
        out.append((size, numpy_s, jit_s, compile_s))
    return out


def check(name: str, result: dict[str, list[str]], truth: dict[str, list[str]]) -> int:
    wrong = [t for t in truth if result.get(t, []) != truth[t]]
    print(f"  {name}: {len(truth) - len(wrong)}/{len(truth)} traits equal scan/truth.json" + (f" (differ: {wrong[:5]})" if wrong else ""))
    return len(wrong)


def machine() -> str:
    from mrjax.outputs import cpu_model  # late: measuring children import their own modules
    return f"nproc {os.cpu_count()}, {cpu_model()}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    exe = ensure_plink()
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    truth_json = json.loads((SHARED / "scan" / "truth.json").read_text())["exposures"]
    truth = {t: e["plink_instruments_r2_0.001_kb_10000"] for t, e in truth_json.items()}

    full = pd.read_parquet(SHARED / "scan" / "exposures.parquet", columns=["exposure", "SNP", "pval"])
    selected = full[full["pval"] <= P1].reset_index(drop=True)
    print(f"machine: {machine()}; plink: {version}")
    print(f"inputs: full {len(full):,} rows, selected (p <= 1e-5) {len(selected):,} rows, {full['exposure'].nunique()} traits")

    rows = []
    failures = 0
    for tag, gwas in (("full", full), ("selected", selected)):
        paths = write_inputs(gwas, tag)
        plink_times, mrjax_times, load_times = [], [], []
        for _ in range(args.repeats):
            t, plink_result = run_plink(exe, paths)
            plink_times.append(t)
            t, load, mrjax_result = run_mrjax(gwas)
            mrjax_times.append(t)
            load_times.append(load)
        print(f"[{tag}]")
        failures += check("plink1.9", plink_result, truth) + check("mrjax", mrjax_result, truth)
        p, m = float(np.median(plink_times)), float(np.median(mrjax_times))
        rows.append((tag, len(gwas), p, m, float(np.median(load_times)), p / m))

    print()
    print(f"| input | rows | plink1.9 x50 (s) | mrjax (s) | of which panel load (s) | speed-up |")
    print(f"|---|---:|---:|---:|---:|---:|")
    for tag, n, p, m, load, ratio in rows:
        print(f"| {tag} | {n:,} | {p:.2f} | {m:.2f} | {load:.2f} | {ratio:.1f}x |")
    print(f"\nmedian of {args.repeats} runs each (panel load included in mrjax).")
    print("\nr² of one index against its window (tables + EM):")
    print("| window | numpy (ms) | jax.jit run (ms) | jax.jit first call incl. compile (s) |")
    print("|---:|---:|---:|---:|")
    for size, numpy_s, jit_s, compile_s in window_costs():
        print(f"| {size:,} | {numpy_s * 1e3:.2f} | {jit_s * 1e3:.2f} | {compile_s:.2f} |")
    if failures:
        sys.exit(f"{failures} trait lists differ from the oracle")


if __name__ == "__main__":
    main()
