"""Benchmark: cold start of ``mrjax demo`` — a machine's first run and its second run.

Runs ``mrjax demo`` twice in new processes, each into a new folder, with a fresh persistent
compilation cache folder (``XDG_CACHE_HOME`` pointed at a temporary folder): the first run
compiles every kernel and stores it, the second loads them. Baseline measured in the same run:
the same second run with ``--no-cache`` (compiles again).

    python benchmarks/bench_cold_start.py

Prints one table: wall seconds of each run (the issue's targets: first ≤ 25 s, second ≤ 8 s on
2 cores).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mrjax.outputs import cpu_model


def run(out: Path, cache: Path, *extra: str) -> float:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "JAX_PLATFORMS": "cpu"}
    env.pop("MRJAX_NO_CACHE", None)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mrjax", "demo", "--out", str(out), *extra], env=env, check=True,
                   capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench_cold_"))
    cache = work / "cache"
    first = run(work / "first", cache)
    second = run(work / "second", cache)
    uncached = run(work / "uncached", cache, "--no-cache")
    load = os.getloadavg()
    print(f"mrjax demo cold start; machine: {os.cpu_count()} CPUs ({cpu_model()}), JAX CPU; "
          f"load average {load[0]:.1f}")
    print("| run | wall s |\n|---|---|")
    print(f"| first run (empty cache) | {first:.1f} |")
    print(f"| second run (cache filled) | {second:.1f} |")
    print(f"| second run, --no-cache (baseline) | {uncached:.1f} |")
    print(f"cache speed-up of a second run: {uncached / second:.2f}x")


if __name__ == "__main__":
    main()
