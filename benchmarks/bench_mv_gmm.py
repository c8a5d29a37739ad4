"""Benchmark: MV-GMM (``mr_mvgmm``, robust and not) on the 731 MV benchmark analyses, mrjax vs a
per-analysis numpy/scipy loop in the same process.

Workload: ``bench_mvmr.mv_fixture`` (each scan-fixture trait + a simulated second exposure ``Z``),
with the fixture's sample sizes (``nx`` 3,757 for both exposures, ``ny`` 177,860). mrjax: first
call (compilation included) and warm (best of ``--repeats``) through ``mrjax.mvmr`` on the
``MVBatch``. Baseline: the same objective per analysis in numpy (R's ``SigY`` and ``SigX``
blocks for independent variants), ``scipy.optimize.minimize`` (BFGS, numerical gradient) from the
unweighted least-squares start, for the robust fit ``brentq`` for kappa and BFGS again; timed on
every ``--baseline-stride``-th analysis and scaled to all 731. "max rel. diff" compares the two on
the analyses both estimate (relative to ``max(|b|, 1e-3)``); it is BFGS's: at its default ``gtol``
it stops short along flat valleys, where mrjax's ``Q`` is lower. "NaN analyses": those whose ``Q``
has no finite minimum (``mrjax.mv.gmm``).

Usage (from the project root)::

    .venv/bin/python benchmarks/bench_mv_gmm.py [--repeats 3] [--baseline-stride 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
from scipy import optimize  # noqa: E402

import mrjax  # noqa: E402
from mrjax.mv.data import from_mv_frame  # noqa: E402
from mrjax.outputs import cpu_model  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mvmr import mv_fixture, timed  # noqa: E402

NX, NY = 3757.0, 177860.0


def baseline_one(bx, sx, by, sy, robust):
    """mr_mvgmm for independent variants, one analysis: numpy objective, scipy optimisers."""
    p, k = bx.shape
    ax = 1.0 / (NX * sx**2 + bx**2)
    c = (np.sqrt(ax) * bx).T @ (np.sqrt(ax) * bx)
    sig_x = (np.eye(k) - c)[None] / np.sqrt(ax[:, :, None] * ax[:, None, :]) / (NX - p + 1)
    ay = 1.0 / (NY * sy**2 + by**2)
    sig_y = (1.0 - np.sum(ay * by**2)) / ay / (NY - p + 1)

    def q(theta, shift=0.0):
        return np.sum((by - bx @ theta) ** 2 / (sig_y + shift + np.einsum("k,skl,l->s", theta, sig_x, theta)))

    theta = optimize.minimize(q, np.linalg.lstsq(bx, by, rcond=None)[0], method="BFGS").x
    if robust:
        f = lambda s: q(theta, s) - (p - k)  # noqa: E731
        if f(0.0) > 0:
            hi = 1e-6
            while f(hi) > 0:
                hi *= 4
            shift = optimize.brentq(f, 0.0, hi)
            theta = optimize.minimize(q, theta, args=(shift,), method="BFGS").x
    return theta


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline-stride", type=int, default=5)
    args = ap.parse_args()
    batch = from_mv_frame(mv_fixture())
    print(f"{batch.n_analyses} MV analyses; nx {NX:g}, ny {NY:g}; machine: nproc={os.cpu_count()}, {cpu_model()}; "
          f"load at start {os.getloadavg()[0]:.2f}")
    print("| fit | mrjax first call s | mrjax warm s | numpy/scipy loop s | ratio | NaN analyses | max rel. diff |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    picks = range(0, batch.n_analyses, args.baseline_stride)
    for robust in (False, True):
        method = [("mv_gmm", {"nx": NX, "ny": NY, "robust": robust})]
        first, _ = timed(lambda: mrjax.mvmr(batch, methods=method))
        warm, res = timed(lambda: mrjax.mvmr(batch, methods=method), args.repeats)
        b = res["b"].to_numpy().reshape(batch.n_analyses, 2)  # rows: each analysis's two exposures in order
        t0 = time.perf_counter()
        want = [baseline_one(a["bx"], a["sx"], a["by"], a["sy"], robust) for a in (batch.arrays[i] for i in picks)]
        loop = (time.perf_counter() - t0) / len(picks) * batch.n_analyses
        got = b[list(picks)]
        both = np.all(np.isfinite(got), axis=1)
        # relative to max(|b|, 1e-3): BFGS stops at its default gtol
        diff = np.max(np.abs(got[both] - np.array(want)[both]) / np.maximum(np.abs(np.array(want)[both]), 1e-3))
        print(f"| {'robust' if robust else 'non-robust'} | {first:.2f} | {warm:.3f} | {loop:.1f} | {loop / warm:.0f}x | "
              f"{int(np.sum(~np.all(np.isfinite(b), axis=1)))} | {diff:.1e} |", flush=True)
    print(f"load at end {os.getloadavg()[0]:.2f}; baseline timed on {len(picks)} analyses and scaled")


if __name__ == "__main__":
    main()
