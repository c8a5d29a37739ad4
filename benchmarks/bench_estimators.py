"""Benchmark: the default MR panel on the 731-trait scan fixture, mrjax vs a per-trait numpy loop.

Workload (issue 2): TwoSampleMR's default methods (MR Egger, weighted median, IVW, simple mode,
weighted mode; 1,000 bootstraps) + heterogeneity + pleiotropy + leave-one-out, for 731 traits
with 3–60 instruments each (``../shared/tools/make_scan_fixture.py``, seed 1).

Measured in one process:
- mrjax cold (compilation included) and warm (best of ``--repeats``, default 1) through the public API;
- a breakdown of the warm engine time of the closed-form methods, the weighted median and the
  diagnostics kernel (the mode methods are the remainder of the panel);
- the baseline: a plain per-trait numpy/scipy implementation of the same panel (R's algorithms:
  lm-style fits, leave-one-out refits, bootstrap loops vectorised within a trait, exact Gaussian
  KDE on R's 512-point grid for the mode), timed on every ``--baseline-stride``-th trait and
  scaled to all traits.

Usage (from the project root)::

    .venv/bin/python benchmarks/bench_estimators.py [--n-boot 1000] [--repeats 1] [--baseline-stride 10]
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
from scipy import stats as sps  # noqa: E402

import mrjax  # noqa: E402,F401
from mrjax import api  # noqa: E402
from mrjax.batch import from_frame, trait_keys  # noqa: E402
from mrjax.engine import run_diagnostics, run_methods  # noqa: E402
from mrjax.estimators.common import Params  # noqa: E402
from mrjax.methods import DEFAULT_METHODS  # noqa: E402
from mrjax.outputs import cpu_model

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "benchmarks" / "_work" / "scan_fixture_731.parquet"
MAKER = ROOT.parent / "shared" / "tools" / "make_scan_fixture.py"


def load_fixture() -> pd.DataFrame:
    if not FIXTURE.exists():
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(MAKER), str(FIXTURE)], check=True)
    return pd.read_parquet(FIXTURE)


def mrjax_panel(frame, n_boot, seed=0):
    """The whole panel through the public API (validation, buckets, device calls, DataFrames)."""
    batch = from_frame(frame)
    res = api.mr(batch, n_boot=n_boot, seed=seed)
    het = api.heterogeneity(batch)
    ple = api.pleiotropy(batch)
    loo = api.leave_one_out(batch)
    return res, het, ple, loo


def timed(fn, repeats=1):
    best = np.inf
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        for leaf in jax.tree_util.tree_leaves(out):
            if isinstance(leaf, jax.Array):
                leaf.block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return best, out


def device_breakdown(batch, n_boot):
    """Warm engine time of the cheap method groups over all buckets (one jitted call per
    bucket, compiled by a first call). The mode methods are what remains of the panel."""
    buckets = list(batch.buckets())
    keys = [trait_keys(0, b.uids) for b in buckets]
    groups = {
        "MR Egger + IVW": ("egger_regression", "ivw"),
        "weighted median (1,000 bootstraps)": ("weighted_median",),
    }
    rows = []
    for label, methods in groups.items():
        def go():
            return [run_methods(b.instruments, k, methods, Params(n_boot=n_boot)) for b, k in zip(buckets, keys)]

        cold, _ = timed(go)
        warm, _ = timed(go, 2)
        rows.append((label, cold, warm))

    def diag():
        return [run_diagnostics(b.instruments) for b in buckets]

    cold, _ = timed(diag)
    warm, _ = timed(diag, 2)
    rows.append(("diagnostics (5 Q, intercept, I2GX, LOO, single-SNP)", cold, warm))
    return rows, [(b.instruments.bx.shape) for b in buckets]


# ------------------------------------------------------------------------------------------
# Baseline: plain per-trait numpy/scipy, following the R algorithms.


def np_wls(x, y, w, intercept):
    if intercept:
        X = np.column_stack([np.ones_like(x), x])
    else:
        X = x[:, None]
    sw = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
    resid = y - X @ coef
    df = len(x) - X.shape[1]
    sigma = np.sqrt(np.sum(w * resid**2) / df)
    cov = sigma**2 * np.linalg.inv((X * w[:, None]).T @ X)
    return coef, np.sqrt(np.diag(cov)), sigma


def np_ivw(bx, by, sy):
    (b,), (se,), sigma = np_wls(bx, by, 1 / sy**2, False)
    se = se / min(1, sigma)
    return b, se, 2 * sps.norm.sf(abs(b / se)), sigma**2 * (len(bx) - 1)


def np_egger(bx, by, sy):
    s = np.where(bx < 0, -1.0, 1.0)
    (a, b), (sa, sb), sigma = np_wls(np.abs(bx), by * s, 1 / sy**2, True)
    sa, sb = sa / min(1, sigma), sb / min(1, sigma)
    df = len(bx) - 2
    return b, sb, 2 * sps.t.sf(abs(b / sb), df), a, sa, 2 * sps.t.sf(abs(a / sa), df), sigma**2 * df


def np_weighted_median(r, w):
    """Vectorised over leading axes: r, w [..., n]."""
    order = np.argsort(r, axis=-1)
    rs = np.take_along_axis(r, order, -1)
    ws = np.take_along_axis(np.broadcast_to(w, r.shape), order, -1)
    cum = (np.cumsum(ws, -1) - 0.5 * ws) / ws.sum(-1, keepdims=True)
    below = np.sum(cum < 0.5, axis=-1) - 1
    below = np.clip(below, 0, r.shape[-1] - 2)
    lo = np.take_along_axis(rs, below[..., None], -1)[..., 0]
    hi = np.take_along_axis(rs, below[..., None] + 1, -1)[..., 0]
    clo = np.take_along_axis(cum, below[..., None], -1)[..., 0]
    chi = np.take_along_axis(cum, below[..., None] + 1, -1)[..., 0]
    return lo + (hi - lo) * (0.5 - clo) / (chi - clo)


def np_mode(r, w, phi=1.0):
    """Vectorised over leading axes: exact Gaussian KDE on R's 512-point output grid."""
    n = r.shape[-1]
    sd = np.std(r, axis=-1, ddof=1)
    med = np.median(r, axis=-1, keepdims=True)
    mad = 1.4826 * np.median(np.abs(r - med), axis=-1)
    h = np.maximum(1e-8, phi * 0.9 * np.minimum(sd, mad) / n**0.2)[..., None]
    w = np.broadcast_to(w / w.sum(-1, keepdims=True), r.shape)
    lo = r.min(-1, keepdims=True) - 3 * h
    hi = r.max(-1, keepdims=True) + 3 * h
    grid = lo + (hi - lo) * np.linspace(0, 1, 512)
    z = (grid[..., :, None] - r[..., None, :]) / h[..., None]
    dens = np.sum(w[..., None, :] * np.exp(-0.5 * z * z), axis=-1)
    return np.take_along_axis(grid, np.argmax(dens, -1)[..., None], -1)[..., 0]


def np_panel(bx, sx, by, sy, rng, n_boot):
    n = len(bx)
    out = {}
    out["egger"] = np_egger(bx, by, sy)
    out["ivw"] = np_ivw(bx, by, sy)
    r = by / bx
    vb = sy**2 / bx**2 + by**2 * sx**2 / bx**4
    out["wm_b"] = np_weighted_median(r, 1 / vb)
    bxs = rng.normal(bx, sx, (n_boot, n))
    bys = rng.normal(by, sy, (n_boot, n))
    out["wm_se"] = np.std(np_weighted_median(bys / bxs, 1 / vb), ddof=1)
    se_d = np.sqrt(vb)
    for name, w in (("simple_mode", np.ones(n)), ("weighted_mode", se_d**-2)):
        b = np_mode(r, w)
        draws = rng.normal(r, se_d, (n_boot, n))
        boot = np_mode(draws, w)
        mad = 1.4826 * np.median(np.abs(boot - np.median(boot)))
        out[name] = (b, mad, 2 * sps.t.sf(abs(b / mad), n - 1))
    out["het"] = (out["ivw"][3], sps.chi2.sf(out["ivw"][3], n - 1), out["egger"][6], sps.chi2.sf(out["egger"][6], n - 2))
    if n > 2:
        out["loo"] = [np_ivw(np.delete(bx, j), np.delete(by, j), np.delete(sy, j))[:3] for j in range(n)]
    return out


def baseline(frame, n_boot, stride):
    batch = from_frame(frame)
    inst = batch.instruments
    groups = [g for _, g in inst.groupby("trait", sort=True)]
    chosen = groups[::stride]
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for g in chosen:
        np_panel(*(g[c].to_numpy() for c in ("beta.exposure", "se.exposure", "beta.outcome", "se.outcome")), rng, n_boot)
    elapsed = time.perf_counter() - t0
    return elapsed * len(groups) / len(chosen), len(chosen), len(groups)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--baseline-stride", type=int, default=10)
    args = parser.parse_args()

    frame = load_fixture()
    batch = from_frame(frame)
    nsnp = batch.traits["nsnp"].to_numpy()
    print(f"fixture: {batch.n_traits} traits, {len(batch.instruments)} instruments ({nsnp.min()}-{nsnp.max()} per trait)")
    print(f"machine: nproc={os.cpu_count()}, {cpu_model()}, jax {jax.__version__} on {jax.devices()[0].platform}")

    base, n_timed, n_all = baseline(frame, args.n_boot, args.baseline_stride)
    print(f"baseline done: {base:.1f} s (scaled)", flush=True)
    rows, shapes = device_breakdown(batch, args.n_boot)
    print("breakdown done", flush=True)
    cold, _ = timed(lambda: mrjax_panel(frame, args.n_boot))
    print(f"cold panel: {cold:.1f} s", flush=True)
    warm, _ = timed(lambda: mrjax_panel(frame, args.n_boot), args.repeats)

    print(f"buckets: {', '.join(f'{s[0]}x{s[1]}' for s in shapes)}")
    print()
    print(f"{'what':52s} {'cold s':>9s} {'warm s':>9s} {'loop/warm':>10s}")
    print(f"{'numpy/scipy per-trait loop (baseline)':52s} {'':>9s} {base:9.2f} {1.0:10.1f}")
    print(f"{'mrjax public API, whole panel':52s} {cold:9.2f} {warm:9.3f} {base / warm:10.1f}")
    for label, c, w in rows:
        print(f"{'  engine: ' + label:52s} {c:9.2f} {w:9.3f} {base / w:10.1f}")
    rest = warm - sum(w for _, _, w in rows)
    print(f"{'  remainder: simple + weighted mode, pandas edges':52s} {'':>9s} {rest:9.3f}")
    print()
    print(f"baseline timed on {n_timed} of {n_all} traits (every {args.baseline_stride}th) and scaled to {n_all}")


if __name__ == "__main__":
    main()
