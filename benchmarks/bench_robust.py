"""Benchmark: the MendelianRandomization / mr.raps methods of issue 14 on the 731-trait scan fixture,
mrjax vs a straightforward per-trait numpy/scipy loop, in one process.

Every distinct ``(method_id, settings)`` of ``mrjax.methods.R_EQUIVALENTS`` (i.e. every R call of
the goldens) is run over all buckets of the fixture (``../shared/tools/make_scan_fixture.py``,
seed 1) through ``mrjax.engine.run_methods``: cold (compilation included, a fresh jit cache entry
per settings) and warm (best of ``--repeats``). Bootstraps use the R defaults (10^4 draws for
mr_median / mr_mbe). The baseline is a plain numpy/scipy transcription of the same R algorithm
per trait (for lmrob: robustbase's fast-S on the elemental subsets (all of them for a slope, at
most 500 pairs for Egger) + IRWLS + avar1; bootstraps vectorised within a trait; ML by Brent on
the profile likelihood), timed on every ``--baseline-stride``-th trait and scaled to all traits.
Methods without a baseline here (the other half of issue 14) show only their own times.

Usage (from the project root)::

    .venv/bin/python benchmarks/bench_robust.py [--repeats 2] [--baseline-stride 10] [--only mrivw]
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
from scipy import optimize  # noqa: E402
from scipy import stats as sps  # noqa: E402

import mrjax  # noqa: E402,F401
from mrjax.batch import from_frame, trait_keys  # noqa: E402
from mrjax.engine import run_methods  # noqa: E402
from mrjax.estimators.common import make_params  # noqa: E402
from mrjax.methods import R_EQUIVALENTS  # noqa: E402
from mrjax.outputs import cpu_model  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_estimators import load_fixture, np_mode, np_weighted_median, timed  # noqa: E402

Z = sps.norm.ppf(0.975)

# ------------------------------------------------------------------------------------------
# Baseline: per-trait numpy/scipy transcriptions of the R functions.
C_CHI, C_PSI, BB = 1.54764, 4.685061, 0.5


def _rho(u):
    t = np.minimum((u / C_CHI) ** 2, 1.0)
    return t * (3 + t * (-3 + t))


def _w(u, c):
    t = (u / c) ** 2
    return np.where(t < 1, (1 - t) ** 2, 0.0)


def _wls(X, y, w):
    """Row-batched weighted LS: X [..., n, p], y [..., n], w [..., n] -> [..., p]."""
    xtw = np.swapaxes(X * w[..., None], -1, -2)
    return np.linalg.solve(xtw @ X, (xtw @ y[..., None]))[..., 0]


def _scale(r, s, dfree, steps):
    for _ in range(steps):
        s = s * np.sqrt(np.sum(_rho(r / s[..., None]), -1) / dfree / BB)
    return s


def np_lmrob(X, y, w, rng):
    """robustbase::lmrob(y ~ X - 1, weights = w) with MendelianRandomization's k.max/maxit.scale."""
    n, p = X.shape
    sw = np.sqrt(w)
    X, y = X * sw[:, None], y * sw
    if p == 1:
        subsets = np.arange(n)[:, None]
    else:
        pairs = np.array(np.triu_indices(n, 1)).T
        subsets = pairs if len(pairs) <= 500 else pairs[rng.choice(len(pairs), 500, replace=False)]
        subsets = subsets[np.abs(np.linalg.det(X[subsets])) > 1e-12 * np.abs(X[subsets]).prod(-1).sum(-1)]
    beta = np.linalg.solve(X[subsets], y[subsets][..., None])[..., 0]  # [C, p]
    r = y - beta @ X.T
    s = 1.4826 * np.median(np.abs(r), -1)
    s = _scale(r, s, n - p, 1)
    beta = _wls(np.broadcast_to(X, (len(beta), n, p)), np.broadcast_to(y, (len(beta), n)), _w(r / s[:, None], C_CHI))
    r = y - beta @ X.T
    s = _scale(r, s, n - p, 40)
    best = np.argsort(s)[:2]
    finals = []
    for k in best:
        b, sc = beta[k], s[k]
        for _ in range(500):
            rr = y - X @ b
            sc = _scale(rr[None], np.array([sc]), n - p, 1)[0]
            new = _wls(X, y, _w(rr / sc, C_CHI))
            done = np.linalg.norm(new - b) <= 1e-10 * max(1e-10, np.linalg.norm(b))
            b = new
            if done:
                break
        finals.append((_scale((y - X @ b)[None], np.array([sc]), n - p, 200)[0], b))
    s, beta0 = min(finals, key=lambda f: f[0])
    b = beta0
    for _ in range(500):
        new = _wls(X, y, _w((y - X @ b) / s, C_PSI))
        done = np.sum(np.abs(new - b)) <= 1e-12 * max(1e-12, np.sum(np.abs(new)))
        b = new
        if done:
            break
    rs, r0s = (y - X @ b) / s, (y - X @ beta0) / s
    t, t0 = (rs / C_PSI) ** 2, (r0s / C_CHI) ** 2
    dpsi = np.where(t < 1, (1 - t) * (1 - 5 * t), 0.0)
    dchi = np.where(t0 < 1, 6 * r0s / C_CHI**2 * (1 - t0) ** 2, 0.0)
    psi = np.where(t < 1, rs * (1 - t) ** 2, 0.0)
    chi = _rho(r0s)
    A = np.linalg.inv(X.T @ (X * dpsi[:, None])) * s
    a = A @ (X.T @ (dpsi * rs)) / np.mean(dchi * r0s)
    xww = X.T @ (psi * chi)
    v = (A @ (X.T @ (X * psi[:, None] ** 2)) @ (n * A) - np.outer(a, xww @ A) - np.outer(A @ xww, a)
         + np.mean(chi**2 - BB**2) * np.outer(a, a)) / n
    return b, np.sqrt(np.diag(v)), s


def np_regression(X, y, w, robust, rng):
    if robust:
        return np_lmrob(X, y, w, rng)
    coef = _wls(X, y, w)
    resid = y - X @ coef
    sigma = np.sqrt(np.sum(w * resid**2) / (len(y) - X.shape[1]))
    return coef, sigma * np.sqrt(np.diag(np.linalg.inv((X * w[:, None]).T @ X))), sigma


def _finish(b, se, df, s):
    q = sps.t.ppf(0.975, df) if s.get("distribution") == "t" else Z
    p = 2 * (sps.t.sf(abs(b / se), df) if s.get("distribution") == "t" else sps.norm.sf(abs(b / se)))
    return b, se, b - q * se, b + q * se, p


def np_mr_ivw(bx, sx, by, sy, rng, s):
    w = 1 / sy**2 if s.get("weights", "simple") == "simple" else 1 / (sy**2 + by**2 * sx**2 / bx**2)
    if s.get("penalized"):
        r = by / bx
        w = w * np.minimum(1, 100 * sps.chi2.sf(bx**2 / sy**2 * (r - np.median(r)) ** 2, 1))
    (b,), (se,), sigma = np_regression(bx[:, None], by, w, s.get("robust"), rng)
    fixed = s.get("model") == "fixed" or (s.get("model", "default") == "default" and len(bx) < 4)
    return _finish(b, se / (sigma if fixed else min(1, sigma)), len(bx) - 1, s)


def np_mr_egger(bx, sx, by, sy, rng, s):
    x, y, w = np.abs(bx), by * np.sign(bx), 1 / sy**2
    X = np.column_stack([np.ones_like(x), x])
    if s.get("penalized"):
        coef, _, _ = np_regression(X, y, w, False, rng)
        w = w * np.minimum(1, 100 * sps.chi2.sf(w * (y - X @ coef) ** 2, 1))
    coef, se, sigma = np_regression(X, y, w, s.get("robust"), rng)
    return _finish(coef[1], se[1] / min(1, sigma), len(bx) - 2, s)


def np_mr_median(bx, sx, by, sy, rng, s, iterations=10_000):
    r = by / bx
    weighting = s.get("weighting", "weighted")
    w = np.ones_like(r) if weighting == "simple" else bx**2 / sy**2
    if weighting == "penalized":
        w = w * np.minimum(1, 20 * sps.chi2.sf(w * (r - np_weighted_median(r, w)) ** 2, 1))
    b = np_weighted_median(r, w)
    boot = np_weighted_median(rng.normal(by, sy, (iterations, len(r))) / rng.normal(bx, sx, (iterations, len(r))), w)
    return _finish(b, np.std(boot, ddof=1), len(r) - 1, {})


def np_mr_mbe(bx, sx, by, sy, rng, s, iterations=10_000, chunk=500):
    r = by / bx
    se = np.sqrt(sy**2 / bx**2 + by**2 * sx**2 / bx**4) if s.get("stderror", "delta") == "delta" else sy / np.abs(bx)
    w = se**-2 if s.get("weighting", "weighted") == "weighted" else np.ones_like(r)
    b = np_mode(r, w)
    boot = np.concatenate([np_mode(rng.normal(r, se, (chunk, len(r))), w) for _ in range(iterations // chunk)])
    return _finish(b, 1.4826 * np.median(np.abs(boot - np.median(boot))), len(r) - 1, {})


def np_mr_maxlik(bx, sx, by, sy, rng, s):
    def profile(beta):
        return 0.5 * np.sum((by - beta * bx) ** 2 / (sy**2 + beta**2 * sx**2))

    start = np.sum(bx * by / sy**2) / np.sum(bx**2 / sy**2)
    res = optimize.minimize_scalar(profile, bracket=(start - 0.5 * abs(start) - 1e-3, start), tol=1e-12)
    beta, n = res.x, len(bx)
    g = (bx / sx**2 + beta * by / sy**2) / (1 / sx**2 + beta**2 / sy**2)
    h = np.zeros((n + 1, n + 1))
    h[np.arange(n), np.arange(n)] = 1 / sx**2 + beta**2 / sy**2
    h[n, :n] = h[:n, n] = (2 * beta * g - by) / sy**2
    h[n, n] = np.sum(g**2 / sy**2)
    se = np.sqrt(np.linalg.inv(h)[n, n])
    fixed = s.get("model") == "fixed" or (s.get("model", "default") == "default" and n < 4)
    return _finish(beta, se if fixed else se * max(1.0, np.sqrt(2 * res.fun / (n - 1))), n - 1, s)


BASELINES = {"mrivw": np_mr_ivw, "mregger": np_mr_egger, "mrmedian": np_mr_median, "mrmbe": np_mr_mbe,
             "mrmaxlik": np_mr_maxlik}


def baseline(groups, method_id, settings, stride):
    fn = BASELINES[method_id]
    chosen = groups[::stride]
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for g in chosen:
        fn(*g, rng, settings)
    return (time.perf_counter() - t0) * len(groups) / len(chosen)


# ------------------------------------------------------------------------------------------


def configurations(only=None):
    """Distinct (method_id, settings) of R_EQUIVALENTS, labelled by their first golden label."""
    seen = {}
    for label, (method_id, settings) in R_EQUIVALENTS.items():
        key = (method_id, tuple(sorted(settings.items())))
        if key not in seen and (only is None or method_id in only):
            seen[key] = label.split(".", 1)[1]
    return [(label, mid, dict(items)) for (mid, items), label in seen.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--baseline-stride", type=int, default=10)
    parser.add_argument("--only", nargs="*", help="method ids to run (default: all of R_EQUIVALENTS)")
    args = parser.parse_args()
    frame = load_fixture()
    batch = from_frame(frame)
    buckets = list(batch.buckets())
    keys = [trait_keys(0, b.uids) for b in buckets]
    inst = batch.instruments
    groups = [tuple(g[c].to_numpy() for c in ("beta.exposure", "se.exposure", "beta.outcome", "se.outcome"))
              for _, g in inst.groupby("trait", sort=True)]
    print(f"fixture: {batch.n_traits} traits, {len(inst)} instruments; buckets "
          f"{', '.join(f'{b.instruments.bx.shape[0]}x{b.instruments.bx.shape[1]}' for b in buckets)}")
    print(f"machine: nproc={os.cpu_count()}, {cpu_model()}, jax {jax.__version__} on {jax.devices()[0].platform}")
    print(f"load average at start: {os.getloadavg()}")
    print()
    print(f"{'R call (golden label)':34s} {'method':10s} {'cold s':>8s} {'warm s':>8s} {'numpy s':>9s} {'loop/warm':>9s}")
    for label, mid, settings in configurations(args.only):
        params = make_params(**settings)

        def go():
            return [run_methods(b.instruments, k, (mid,), params) for b, k in zip(buckets, keys)]

        cold, _ = timed(go)
        warm, _ = timed(go, args.repeats)
        if mid in BASELINES:
            base = baseline(groups, mid, settings, args.baseline_stride)
            tail = f"{base:9.2f} {base / warm:9.1f}"
        else:
            tail = f"{'–':>9s} {'–':>9s}"
        print(f"{label:34s} {mid:10s} {cold:8.2f} {warm:8.3f} {tail}", flush=True)
    print()
    print(f"load average at end: {os.getloadavg()}; baseline timed on every {args.baseline_stride}th of "
          f"{len(groups)} traits and scaled")


if __name__ == "__main__":
    main()
