"""XLA settings mrjax needs, set in the environment before JAX starts its CPU backend.

* ``--xla_cpu_enable_concurrency_optimized_scheduler=false`` (correctness). XLA:CPU's
  concurrency-optimised HLO scheduler lets independent LAPACK custom calls of one kernel run at
  once, and such kernels deadlocked: every thread idle, the result never ready. Seen with MV-IVW
  + MV-Egger (each a Cholesky, triangular solves and a solve per analysis) on 64 or more
  analyses in one call, jax/jaxlib 0.10.2 on CPU, every time; either method alone, or 16
  analyses, finished (tests/test_mvmr_golden.py::test_mv_fits_of_many_analyses_do_not_hang).
  With the flag XLA schedules them one after another.
* ``--xla_cpu_prefer_vector_width=512`` (speed). XLA:CPU emits 256-bit vector code by default
  even where the CPU has AVX-512. The bootstraps and MR-PRESSO are elementwise streams over
  their draws (the Threefry hash, Box–Muller normals, pairwise ranks), which run 12–25% faster
  in 512-bit registers: on a 2-core AVX-512 Xeon, 731 traits, the TwoSampleMR panel 0.85 ->
  0.66 s warm, MendelianRandomization's ``mr_median`` (10^4 draws) 2.2 -> 1.7 s, MR-PRESSO 0.73
  -> 0.61 s, the MV benchmark unchanged (benchmarks/RESULTS.md, twenty-third session). A CPU
  without 512-bit registers compiles as before.

XLA reads ``XLA_FLAGS`` when the backend starts (the first array or compilation), so importing
:mod:`mrjax` first is enough; a flag the user set, to any value, is left alone.
"""

from __future__ import annotations

import os

SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
VECTOR_WIDTH_FLAG = "--xla_cpu_prefer_vector_width"

DEFAULTS = ((SCHEDULER_FLAG, "false"), (VECTOR_WIDTH_FLAG, "512"))


def apply() -> None:
    """Add each flag of :data:`DEFAULTS` to ``XLA_FLAGS`` unless it is already there (idempotent)."""
    flags = os.environ.get("XLA_FLAGS", "")
    for flag, value in DEFAULTS:
        if flag not in flags:
            flags = f"{flags} {flag}={value}".strip()
    os.environ["XLA_FLAGS"] = flags
