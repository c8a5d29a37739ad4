"""Benchmark: cold start of ``mrjax demo`` — a machine's first run and its second run.

Runs ``mrjax demo`` twice in new processes, each into a new folder, with a fresh persistent
compilation cache folder (``XDG_CACHE_HOME`` pointed at a temporary folder): the first run
compiles every kernel and stores it, the second loads them. Baseline measured in the same run:
the same second run with ``--no-cache`` (compiles again). With ``--baseline REV`` the code of
git revision ``REV`` (``git archive``: ``mrjax`` and ``cli``, first on ``PYTHONPATH``) runs the
same three runs too, interleaved with this checkout's, so both see the same machine load.

    python benchmarks/bench_cold_start.py [--baseline main] [--repeat 2]

Prints one table: wall seconds and CPU seconds (user + system of the child process) of each
run, and the load average (the issue's targets: first ≤ 25 s, second ≤ 8 s on 2 cores).
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from mrjax.outputs import cpu_model

ROOT = Path(__file__).resolve().parents[1]
RUNS = (("first run (empty cache)", "first", ()), ("second run (cache filled)", "second", ()),
        ("second run, --no-cache", "uncached", ("--no-cache",)))


def checkout(rev: str, folder: Path) -> Path:
    """``mrjax`` and ``cli`` (as ``mrjax_cli``) of ``rev`` under ``folder``."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "mrjax", "cli"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(folder)
    (folder / "cli").rename(folder / "mrjax_cli")
    return folder


def run(out: Path, cache: Path, *extra: str, code: Path | None = None) -> tuple[float, float]:
    """(wall s, CPU s) of one ``mrjax demo`` in a new process."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "JAX_PLATFORMS": "cpu"}
    env.pop("MRJAX_NO_CACHE", None)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mrjax", "demo", "--out", str(out), *extra], env=env, check=True,
                   capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="git revision to measure beside this checkout (e.g. main)")
    parser.add_argument("--repeat", type=int, default=1, help="measure each side this many times")
    parser.add_argument("--no-uncached", action="store_true", help="skip the --no-cache run (saves time)")
    args = parser.parse_args()
    runs = RUNS[:2] if args.no_uncached else RUNS
    work = Path(tempfile.mkdtemp(prefix="bench_cold_"))
    sides = {"this checkout": None}
    if args.baseline:
        sides[f"baseline {args.baseline}"] = checkout(args.baseline, work / "baseline")
    rows: dict = {}
    loads = []
    for rep in range(args.repeat):
        for side, code in sides.items():
            cache = work / f"cache_{len(rows)}_{rep}"
            for label, name, extra in runs:
                wall, cpu = run(work / f"{name}_{rep}_{len(rows)}", cache, *extra, code=code)
                rows.setdefault((side, label), []).append((wall, cpu))
                loads.append(os.getloadavg()[0])
                print(f"# {side}, {label}: {wall:.1f} s wall, {cpu:.1f} CPU-s, load {loads[-1]:.1f}", flush=True)
    print(f"mrjax demo cold start; machine: {os.cpu_count()} CPUs ({cpu_model()}), JAX CPU; "
          f"load average (1 min) {min(loads):.1f}-{max(loads):.1f} during the runs")
    print("| code | run | wall s | CPU s |\n|---|---|---:|---:|")
    for (side, label), values in rows.items():
        walls = " / ".join(f"{w:.1f}" for w, _ in values)
        cpus = " / ".join(f"{c:.1f}" for _, c in values)
        print(f"| {side} | {label} | {walls} | {cpus} |")


if __name__ == "__main__":
    main()
