"""XLA settings mrjax needs, set in the environment before JAX starts its CPU backend.

XLA:CPU's concurrency-optimised HLO scheduler lets independent LAPACK custom calls of one
kernel run at once, and such kernels deadlocked: every thread idle, the result never ready.
Seen with MV-IVW + MV-Egger (each a Cholesky, triangular solves and a solve per analysis) on 64
or more analyses in one call, jax/jaxlib 0.10.2 on CPU, every time; either method alone, or 16
analyses, finished (tests/test_mvmr_golden.py::test_mv_fits_of_many_analyses_do_not_hang). With
``--xla_cpu_enable_concurrency_optimized_scheduler=false`` XLA schedules them one after another.

XLA reads ``XLA_FLAGS`` when the backend starts (the first array or compilation), so importing
:mod:`mrjax` first is enough; a flag the user set either way is left alone.
"""

from __future__ import annotations

import os

SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"


def apply() -> None:
    """Add ``SCHEDULER_FLAG=false`` to ``XLA_FLAGS`` unless it is already there (idempotent)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if SCHEDULER_FLAG not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {SCHEDULER_FLAG}=false".strip()
