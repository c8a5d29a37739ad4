"""Benchmark: 731 MV analyses (each scan-fixture exposure adjusted for one shared simulated
exposure) through MV-IVW, MV-Egger, MV-median (1,000 bootstraps) and the conditional F, mrjax vs
a per-analysis numpy/scipy loop in the same process.

Workload (issue 15): ``../shared/tools/make_scan_fixture.py`` (731 traits, 3-60 instruments,
seed 1); for every trait a second exposure ``Z`` is simulated at its SNPs
(``bz = 0.3 bx + N(0, sx)``, ``sz = sx``), so each analysis is ``trait + Z -> outcome``.

Measured: mrjax cold (first call, compilation included) and warm (best of ``--repeats``) —
the engine on one padded batch (``run_mv`` + ``run_mv_strength``) and the public API
(``mrjax.mvmr`` + ``mrjax.mvmr_strength``, on the prebuilt ``MVBatch`` and from the long
DataFrame, as a user calls them; it pads the analyses into its own width buckets, which its
first call compiles); the baseline is a plain
per-analysis numpy/scipy implementation of the same statistics (weighted ``lstsq`` for IVW and
Egger, ``scipy.optimize.linprog`` (HiGHS) for the L1 median and each bootstrap fit,
``scipy.optimize.minimize`` for the conditional-F minimum), timed on every
``--baseline-stride``-th analysis and scaled to all 731.

Usage (from the project root)::

    .venv/bin/python benchmarks/bench_mvmr.py [--n-boot 1000] [--repeats 2] [--baseline-stride 25]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import optimize  # noqa: E402

import mrjax  # noqa: E402
from mrjax import engine  # noqa: E402
from mrjax.batch import trait_keys  # noqa: E402
from mrjax.mv.api import _sigma  # noqa: E402
from mrjax.mv.data import from_mv_frame  # noqa: E402
from mrjax.mv.registry import resolve_specs, spec_name  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "benchmarks" / "_work" / "scan_fixture_731.parquet"
MAKER = ROOT.parent / "shared" / "tools" / "make_scan_fixture.py"


def mv_fixture(seed: int = 2) -> pd.DataFrame:
    if not FIXTURE.exists():
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(MAKER), str(FIXTURE)], check=True)
    fx = pd.read_parquet(FIXTURE).rename(columns=lambda c: c.replace("_exposure", ".exposure").replace("_outcome", ".outcome"))
    rng = np.random.default_rng(seed)
    z = fx.copy()
    z["beta.exposure"] = 0.3 * fx["beta.exposure"] + rng.normal(0.0, fx["se.exposure"])
    z["pval.exposure"] = np.nan
    z["analysis"] = fx["exposure"]
    z["exposure"] = "Z"
    fx = fx.assign(analysis=fx["exposure"], outcome="outcome")
    z["outcome"] = "outcome"
    cols = ["analysis", "SNP", "exposure", "beta.exposure", "se.exposure", "pval.exposure", "samplesize.exposure",
            "outcome", "beta.outcome", "se.outcome"]
    return pd.concat([fx[cols], z[cols]], ignore_index=True)


# Timed alone beside the workload (no per-analysis baseline).
OTHER_METHODS = ("mv_ivw_lm", "mv_basic", "mv_ivwme", "mv_lasso", ("mv_cml", {"n": 10000, "dp": False}),
                 ("mv_ivw", {"robust": True}), "mv_qhet")
# MVMR-cML with data perturbation fits the BIC model on each of R's 200 perturbed data sets
# (~2.5 M fits on the 731 analyses); timed on the first DP_ANALYSES analyses (all of them).
DP_ANALYSES = 731


def block(out):
    for leaf in jax.tree_util.tree_leaves(out):
        if isinstance(leaf, jax.Array):
            leaf.block_until_ready()
    return out


def timed(fn, repeats=1):
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = block(fn())
        best = min(best, time.perf_counter() - t0)
    return best, out


# ---- baseline: one analysis at a time, numpy/scipy ----


def _wls(x, y, w):
    sw = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(x * sw[:, None], y * sw, rcond=None)
    resid = (y - x @ coef) * sw
    n, p = x.shape
    sigma = np.sqrt(resid @ resid / (n - p))
    cov = np.linalg.inv((x * w[:, None]).T @ x)
    return coef, np.sqrt(np.diag(cov)), sigma


def _l1(x, y, w):
    n, k = x.shape
    c = np.concatenate([np.zeros(k), w, w])
    res = optimize.linprog(c, A_eq=np.hstack([x, np.eye(n), -np.eye(n)]), b_eq=y,
                           bounds=[(None, None)] * k + [(0, None)] * (2 * n), method="highs")
    return res.x[:k]


def _cond_f(bx, sx, nx):
    """MendelianRandomization condFstat's objective (ld = I, cor.x = I: its SigX blocks are
    diagonal) minimised from the OLS start."""
    n, k = bx.shape
    a = 1.0 / (nx * sx**2 + bx**2)
    c = (np.sqrt(a) * bx).T @ (np.sqrt(a) * bx)
    sig = (np.eye(k) - c)[None] / np.sqrt(a[:, :, None] * a[:, None, :]) / (nx - n + 1)
    out = []
    for j in range(k):
        o = [i for i in range(k) if i != j]

        def q(th):
            v = np.zeros(k)
            v[j] = 1.0
            v[o] = -th
            return np.sum((bx @ v) ** 2 / np.einsum("k,skl,l->s", v, sig, v)) / (n - k + 1)

        start = np.linalg.lstsq(bx[:, o], bx[:, j], rcond=None)[0]
        out.append(optimize.minimize(q, start, method="BFGS").fun)
    return out


def baseline_one(arr, n_boot, rng):
    bx, sx, by, sy = arr["bx"], arr["sx"], arr["by"], arr["sy"]
    w = 1.0 / sy**2
    b, se, sigma = _wls(bx, by, w)
    ivw = (b, se * max(1.0, sigma))
    sign = np.sign(bx[:, 0])
    xe = np.column_stack([np.ones(len(by)), bx * sign[:, None]])
    be, see, sigmae = _wls(xe, by * sign, w)
    egger = (be, see * max(1.0, sigmae))
    med = _l1(bx, by, w)
    boots = np.array([_l1(bx + sx * rng.standard_normal(bx.shape), by + sy * rng.standard_normal(by.shape), w) for _ in range(n_boot)])
    median = (med, boots.std(axis=0, ddof=1))
    return ivw, egger, median, _cond_f(bx, sx, arr["nx"][0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--baseline-stride", type=int, default=25)
    args = ap.parse_args()

    long = mv_fixture()
    batch = from_mv_frame(long)
    methods = ["mv_ivw", "mv_egger", ("mv_median", {"n_boot": args.n_boot})]
    specs = resolve_specs(methods)
    inst, uids = batch.padded()
    keys = trait_keys(0, uids)
    rows, width, nexp = inst.bx.shape
    sigma = _sigma(batch, 0, width, nexp, rows)
    inv_nx = np.zeros((rows, nexp))
    inv_nx[: batch.n_analyses] = 1.0 / np.array([a["nx"] for a in batch.arrays])
    print(f"{batch.n_analyses} MV analyses, padded to [{rows}, {width}, {nexp}]; nsnp {batch.analyses['nsnp'].min()}-{batch.analyses['nsnp'].max()}")

    def engine_all():
        # Block before the second call: two executables in flight at once on XLA:CPU deadlocked
        # here (every thread idle in block_until_ready; RESULTS.md, sixth session).
        est = block(engine.run_mv(inst, keys, specs))
        return est, engine.run_mv_strength(inst, sigma, inv_nx)

    print("compiling + first run ...", flush=True)
    cold, _ = timed(engine_all)
    print(f"cold {cold:.2f} s", flush=True)
    warm, out = timed(engine_all, args.repeats)

    def api_all():
        return mrjax.mvmr(batch, methods=methods), mrjax.mvmr_strength(batch)

    api_cold, _ = timed(api_all)  # the API's own bucket shapes compile here (the engine rows used one padded batch)
    api_warm, (res, st) = timed(api_all, args.repeats)

    def api_from_frame():  # what a user's call does: split the long table, then the same
        return mrjax.mvmr(long, methods=methods), mrjax.mvmr_strength(long)

    frame_warm, _ = timed(api_from_frame, args.repeats)

    others = {}
    for method in OTHER_METHODS:  # each alone, on the MVBatch: first call (its compile) and warm
        first, _ = timed(lambda: mrjax.mvmr(batch, methods=[method]))
        others[spec_name(resolve_specs([method])[0])] = (first, timed(lambda: mrjax.mvmr(batch, methods=[method]), args.repeats)[0])

    dp_long = long[long["analysis"].isin(long["analysis"].unique()[:DP_ANALYSES])]
    dp_method = [("mv_cml", {"n": 10000, "num_pert": 200})]
    dp_first, _ = timed(lambda: mrjax.mvmr(dp_long, methods=dp_method))
    dp_warm, _ = timed(lambda: mrjax.mvmr(dp_long, methods=dp_method), args.repeats)

    rng = np.random.default_rng(0)
    picks = list(range(0, batch.n_analyses, args.baseline_stride))
    t0 = time.perf_counter()
    agree = []
    for i in picks:
        ivw, egger, median, cf = baseline_one(batch.arrays[i], args.n_boot, rng)
        agree.append(max(np.max(np.abs(np.asarray(out[0]["mv_ivw"].b)[i, :2] - ivw[0]) / np.abs(ivw[0])),
                         np.max(np.abs(np.asarray(out[0][f"mv_median[n_boot={args.n_boot}]"].b)[i, :2] - median[0]) / np.abs(median[0])),
                         np.max(np.abs(np.asarray(out[1][0].cond_f)[i, :2] - cf) / np.abs(cf))))
    per = (time.perf_counter() - t0) / len(picks)
    loop = per * batch.n_analyses
    load = os.getloadavg()
    print(f"uptime load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2-core machine)")
    print("| what | seconds |\n|---|---|")
    print(f"| mrjax engine, cold (compile + run) | {cold:.2f} |")
    print(f"| mrjax engine, warm (best of {args.repeats}) | {warm:.2f} |")
    print(f"| mrjax API (mvmr + mvmr_strength on the MVBatch, DataFrames out), first call (its buckets compile) | {api_cold:.2f} |")
    print(f"| mrjax API (mvmr + mvmr_strength on the MVBatch, DataFrames out), warm | {api_warm:.2f} |")
    print(f"| mrjax API from the long DataFrame (from_mv_frame included, twice), warm | {frame_warm:.2f} |")
    print(f"| numpy/scipy loop ({len(picks)} analyses timed, scaled to {batch.n_analyses}) | {loop:.1f} |")
    for method, (first, best) in others.items():
        print(f"| mrjax API, {method} alone: first call / warm | {first:.2f} / {best:.3f} |")
    print(f"| mrjax API, {spec_name(resolve_specs(dp_method)[0])} on the first {DP_ANALYSES} analyses: first call / warm | "
          f"{dp_first:.2f} / {dp_warm:.3f} |")
    print(f"ratio loop / engine warm: {loop / warm:.0f}x; loop / API warm: {loop / api_warm:.0f}x")
    print(f"max relative difference mrjax vs loop (IVW b, median b, cond F): {max(agree):.1e}")


if __name__ == "__main__":
    main()
