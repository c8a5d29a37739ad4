"""Benchmark: the methods for correlated variants on principal components — ``mr_mvpcgmm``'s
``CondFstat`` (``mrjax.mvmr_strength(..., correlation=)``) and its estimate (``mv_pcgmm``,
non-robust and robust) — mrjax vs a per-analysis numpy/scipy loop in the same process.

Workload: MendelianRandomization's lipids -> CHD data (28 variants, 3 exposures, nx = 17,723)
as ``--analyses`` analyses, analysis ``i`` with AR(1) LD ``rho_i^|a - b|``, ``rho_i`` spread over
0.05-0.7 (components 15-20 at ``thres`` 0.99). mrjax: first call (compilation included) and warm
(best of ``--repeats``). Baseline: R's ``condF`` objective transcribed in numpy (``prcomp`` by
the SVD, R's ``SigX`` blocks and ``kronecker``), minimised per exposure by Nelder-Mead from R's
OLS start and from 0 (the smaller kept); for ``mv_pcgmm`` (non-robust) R's ``Q`` with ``SigY``,
minimised by Nelder-Mead then BFGS from R's OLS start (the robust fit's ``kappa`` root: no
baseline); on every ``--baseline-stride``-th analysis, scaled to all. "max rel. diff": the two
minima (conditional F) or estimates (``b``) over the analyses both ran.

Usage (from the project root)::

    .venv/bin/python benchmarks/bench_mv_pc_strength.py [--analyses 64] [--repeats 3] [--baseline-stride 8]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import optimize  # noqa: E402

import mrjax  # noqa: E402
from mrjax.mv.data import from_mv_frame  # noqa: E402
from mrjax.outputs import cpu_model  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "MendelianRandomization"
EXPOSURES = ["ldlc", "hdlc", "trig"]
NX = 17723.0


def workload(n_analyses: int):
    lipids = pd.read_csv(SHARED / "lipids_chd.csv")
    p = len(lipids)
    rows, lds = [], {}
    for i, rho in enumerate(np.linspace(0.05, 0.7, n_analyses)):
        name = f"region{i:03d}"
        lds[name] = rho ** np.abs(np.subtract.outer(np.arange(p), np.arange(p)))
        for e in EXPOSURES:
            rows.append(pd.DataFrame({"analysis": name, "SNP": [f"snp{j}" for j in range(p)], "exposure": e,
                                      "beta.exposure": lipids[e], "se.exposure": lipids[e + "se"], "outcome": "chd",
                                      "beta.outcome": lipids["chdlodds"], "se.outcome": lipids["chdloddsse"]}))
    return lipids, pd.concat(rows, ignore_index=True), lds


def r_moments(bx, sx, by, sy, ld, thres=0.99):
    """R's mr_mvpcgmm matrices for one analysis: r, gamX [r, K], SigX [rK, rK], gamY [r], SigY [r, r]."""
    p, k = bx.shape
    u = np.abs(bx).sum(axis=1) / sy
    phi = np.outer(u, u) * ld
    _, sv, vt = np.linalg.svd(phi - phi.mean(axis=0))
    r = int(np.argmax(np.cumsum(sv**2) / np.sum(sv**2) > thres)) + 1
    lam = np.sqrt(p) * vt[:r].T
    w, v = np.linalg.eigh(lam.T @ lam)
    lam = lam @ np.linalg.inv(v @ np.diag(np.sqrt(w)) @ v.T)
    ax = 1 / (NX * sx**2 + bx**2)
    a_x = [lam.T @ (np.outer(np.sqrt(ax[:, j]), np.sqrt(ax[:, j])) * ld) @ lam for j in range(k)]
    b_x = lam.T @ (ax * bx)
    roots = []
    for a in a_x:
        w, v = np.linalg.eigh(a)
        roots.append(v @ np.diag(np.sqrt(w)) @ v.T)
    sig_x = np.zeros((r * k, r * k))
    for j in range(k):
        for m in range(k):
            inv = np.linalg.inv(roots[j] @ roots[m].T)
            sig_x[j * r:(j + 1) * r, m * r:(m + 1) * r] = inv * ((j == m) - b_x[:, j] @ inv @ b_x[:, m]) / (NX - r + 1)
    gam_x = np.column_stack([np.linalg.solve(a_x[j], b_x[:, j]) for j in range(k)])
    ay = 1 / (NX * sy**2 + by**2)
    a_y, b_y = lam.T @ (np.outer(np.sqrt(ay), np.sqrt(ay)) * ld) @ lam, lam.T @ (ay * by)
    sig_y = np.linalg.inv(a_y) * (1 - b_y @ np.linalg.solve(a_y, b_y)) / (NX - r + 1)
    return r, gam_x, sig_x, np.linalg.solve(a_y, b_y), sig_y


def baseline_cond_f(bx, sx, by, sy, ld):
    """R's condF of mr_mvpcgmm for one analysis: [K] minima / (r - K + 1)."""
    k = bx.shape[1]
    r, gam_x, sig_x, _, _ = r_moments(bx, sx, by, sy, ld)
    out = []
    for j in range(k):
        order = [j] + [m for m in range(k) if m != j]
        blocks = np.concatenate([np.arange(m * r, (m + 1) * r) for m in order])
        sig_xx = sig_x[np.ix_(blocks, blocks)]

        def q(tet):
            g = gam_x[:, j] - gam_x[:, order[1:]] @ tet
            big = np.hstack([np.eye(r), np.kron(-tet[None, :], np.eye(r))])
            return g @ np.linalg.solve(big @ sig_xx @ big.T, g)

        ols = np.linalg.lstsq(gam_x[:, order[1:]], gam_x[:, j], rcond=None)[0]
        out.append(min(optimize.minimize(q, x0, method="Nelder-Mead").fun for x0 in (ols, np.zeros(k - 1))) / (r - k + 1))
    return np.array(out)


def baseline_pcgmm(bx, sx, by, sy, ld):
    """mr_mvpcgmm(robust = FALSE)'s estimate for one analysis: argmin of R's Q from its OLS start."""
    r, gam_x, sig_x, gam_y, sig_y = r_moments(bx, sx, by, sy, ld)

    def q(theta):
        kr = np.kron(theta[None, :], np.eye(r))
        g = gam_y - gam_x @ theta
        return g @ np.linalg.solve(sig_y + kr @ sig_x @ kr.T, g)

    nm = optimize.minimize(q, np.linalg.lstsq(gam_x, gam_y, rcond=None)[0], method="Nelder-Mead",
                           options=dict(xatol=1e-10, fatol=1e-12, maxiter=20000, maxfev=40000))
    return optimize.minimize(q, nm.x, method="BFGS", options={"gtol": 1e-10}).x


def timed(fn, repeats):
    """(first call s, best warm s, last result)."""
    start = time.perf_counter()
    out = fn()
    first = time.perf_counter() - start
    warm = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        warm.append(time.perf_counter() - start)
    return first, min(warm), out


def looped(fn, lds, stride, n_analyses, arrays):
    """(seconds scaled to all analyses, {analysis: result}) of the baseline on every stride-th analysis."""
    names = list(lds)[::stride]
    start = time.perf_counter()
    want = {name: fn(*arrays, lds[name]) for name in names}
    return (time.perf_counter() - start) * n_analyses / len(names), want


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--analyses", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline-stride", type=int, default=8)
    args = ap.parse_args()
    lipids, table, lds = workload(args.analyses)
    batch = from_mv_frame(table)
    arrays = (lipids[EXPOSURES].to_numpy(), lipids[[e + "se" for e in EXPOSURES]].to_numpy(),
              lipids["chdlodds"].to_numpy(), lipids["chdloddsse"].to_numpy())

    def rel_diff(ours, want):
        return max(np.max(np.abs(ours.loc[name].loc[EXPOSURES].to_numpy() - w) / np.abs(w)) for name, w in want.items())

    rows = []
    first, warm, got = timed(lambda: mrjax.mvmr_strength(batch, nx=NX, correlation=lds), args.repeats)
    loop, want = looped(baseline_cond_f, lds, args.baseline_stride, args.analyses, arrays)
    rows.append(("mvmr_strength(correlation=)", first, warm, loop, rel_diff(got.set_index(["analysis", "exposure"])["cond_f"], want)))
    for robust in (False, True):
        method = [("mv_pcgmm", {"nx": NX, "ny": NX, "robust": robust})]
        first, warm, got = timed(lambda: mrjax.mvmr(batch, methods=method, correlation=lds), args.repeats)
        if robust:
            rows.append(("mv_pcgmm (robust)", first, warm, None, None))
            continue
        loop, want = looped(baseline_pcgmm, lds, args.baseline_stride, args.analyses, arrays)
        rows.append(("mv_pcgmm (robust = FALSE)", first, warm, loop, rel_diff(got.set_index(["analysis", "exposure"])["b"], want)))

    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs; {args.analyses} analyses of 28 correlated variants x 3 exposures")
    print("| what | first call s | warm s | numpy/scipy loop s | ratio | max rel. diff |")
    print("|---|---:|---:|---:|---:|---:|")
    for what, first, warm, loop, diff in rows:
        tail = "– | – | –" if loop is None else f"{loop:.2f} | {loop / warm:.1f} | {diff:.1e}"
        print(f"| {what} | {first:.2f} | {warm:.3f} | {tail} |")

if __name__ == "__main__":
    main()
