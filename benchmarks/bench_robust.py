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
``warm cpu`` is the process CPU-seconds per warm run (all threads). Each new baseline is first
checked against its R golden (``BASELINE_CHECKS``). MR-Lasso's baseline runs glmnet's coordinate
descent in plain Python loops; mr.raps.mle's uses scipy's bounded Brent (R's ``optimize``).
Without a baseline (their own times only): ``mr.raps()`` (multiroot from 20 starts) and the
over-dispersed huber/tukey ``mr.raps.mle``, whose R numbers mrjax does not reproduce (see
``mrjax/estimators/raps.py``), so no transcription could be checked against them.

Usage (from the project root)::

    .venv/bin/python benchmarks/bench_robust.py [--repeats 2] [--baseline-stride 10] [--only mrivw]
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
from scipy import integrate, optimize  # noqa: E402
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


def np_mr_divw(bx, sx, by, sy, rng, s):
    """MendelianRandomization mr_divw: b = sum(by bx/sy^2) / sum((bx^2 - sx^2)/sy^2), tau2 untruncated."""
    b = np.sum(by * bx / sy**2) / np.sum((bx**2 - sx**2) / sy**2)
    tau2 = np.sum(((by - b * bx) ** 2 - sy**2 - b**2 * sx**2) / sy**2) / np.sum(sy**-2.0) if s.get(
        "over_dispersion", True) else 0.0
    k2, mu2 = (sx / sy) ** 2, (bx / sx) ** 2
    se = np.sqrt(np.sum(k2 * mu2 + b**2 * k2**2 * (mu2 + 1) + tau2 * k2 / sy**2 * mu2)) / np.sum(k2 * (mu2 - 1))
    return _finish(b, se, None, {})


def _np_pivw_moments(bx, by, sx, sy, lam):
    """Sums over axis 0 ([n] or [n, draws])."""
    mu1, mu2 = np.sum(bx * by / sy**2, 0), np.sum((bx**2 - sx**2) / sy**2, 0)
    v2 = np.sum((4 * bx**2 * sx**2 - 2 * sx**4) / sy**4, 0)
    v12 = np.sum(2 * bx * by * sx**2 / sy**4, 0)
    mu2p = mu2 / 2 + np.sign(mu2) * np.sqrt(mu2**2 / 4 + lam * v2)
    return mu1 + v12 / v2 * (mu2p - mu2), mu2p, mu2, v2, v12


def np_mr_pivw(bx, sx, by, sy, rng, s, n_boot=1000, lam=1.0):
    """MendelianRandomization mr_pivw (lambda = 1, over.dispersion = TRUE, bootstrap Fieller, 1000 draws)."""
    mu1p, mu2p, mu2, v2, v12 = _np_pivw_moments(bx, by, sx, sy, lam)
    b = mu1p / mu2p
    tau2 = max(0.0, np.sum(((by - b * bx) ** 2 - sy**2 - b**2 * sx**2) / sy**2) / np.sum(sy**-2.0))
    se = np.sqrt(np.sum(bx**2 / sy**2 * (1 + tau2 / sy**2) + b**2 * sx**2 / sy**4 * (bx**2 + sx**2))) / abs(mu2p)

    def v1p(bx_, by_, sx_, sy_):
        return np.sum((by_**2 * bx_**2 - (by_**2 - sy_**2 - tau2) * (bx_**2 - sx_**2)) / sy_**4, 0)

    def fieller(m1p, m2p, m2, vv2, vv12, vv1p, beta):
        w = m2p / (2 * m2p - m2)
        return (m1p - beta * m2p) ** 2 / (vv1p - 2 * beta * w * vv12 + beta**2 * w**2 * vv2)

    sx_, sy_ = sx[:, None], sy[:, None]
    bx_b = bx[:, None] + sx_ * rng.standard_normal((len(bx), n_boot))
    by_b = bx[:, None] * b + np.sqrt(tau2) * rng.standard_normal((len(bx), n_boot)) + sy_ * rng.standard_normal(
        (len(bx), n_boot))
    stat = fieller(*_np_pivw_moments(bx_b, by_b, sx_, sy_, lam), v1p(bx_b, by_b, sx_, sy_), b)
    stat = np.sort(stat[stat >= 0])
    q = stat[int(round(len(stat) * 0.95)) - 1]
    v1 = v1p(bx, by, sx, sy)
    w = mu2p / (2 * mu2p - mu2)
    a, bq, c = mu2p**2 - q * w**2 * v2, 2 * (q * w * v12 - mu1p * mu2p), mu1p**2 - q * v1
    root = np.sqrt(max(bq**2 - 4 * a * c, 0.0))
    lo, up = ((-bq - root) / (2 * a), (-bq + root) / (2 * a)) if a > 0 else (-np.inf, np.inf)
    return b, se, lo, up, np.mean(stat > mu1p**2 / v1)


def np_mr_conmix(bx, sx, by, sy, rng, s):
    """MendelianRandomization mr_conmix: profile likelihood on its 0.01 grid, LR CI (hull)."""
    ratio, rse = by / bx, np.abs(sy / bx)
    lo, hi = np.min((by - 2 * sy) / bx), np.max((by + 2 * sy) / bx)
    psi = 1.5 * np.std(ratio, ddof=1)
    theta = np.minimum(lo + np.arange(int(np.floor((hi - lo) / 0.01 + 1e-10)) + 1) * 0.01, hi)
    inc = -((theta[:, None] - ratio) ** 2) / 2 / rse**2 - np.log(np.sqrt(2 * np.pi * rse**2))
    exc = -(ratio**2) / 2 / (psi**2 + rse**2) - np.log(np.sqrt(2 * np.pi * (psi**2 + rse**2)))
    loglik = np.where(inc > exc, inc, exc).sum(axis=1)
    best = int(np.argmax(loglik))
    valid = inc[best] > exc
    w = rse[valid] ** -2
    mean = np.sum(ratio[valid] * w) / np.sum(w)
    phi = 1.0 if valid.sum() < 1.5 else max(np.sqrt(np.sum((ratio[valid] - mean) ** 2 * w) / (valid.sum() - 1)), 1.0)
    inside = np.nonzero(2 * loglik > 2 * loglik.max() - sps.chi2.isf(0.05, 1) * phi**2)[0]
    l0 = np.sum(np.maximum(-(ratio**2) / 2 / rse**2 - np.log(np.sqrt(2 * np.pi * rse**2)), exc))
    p = sps.chi2.sf(2 * (loglik.max() - l0) * phi**2, 1)
    return lo + 0.01 * best, np.nan, lo + 0.01 * inside.min(), lo + 0.01 * inside.max(), p


def _np_cml_k(bx, by, sx, sy, k, maxit=100, tol=1e-7):
    """R's cML_estimate (as written in MendelianRandomization) + cML_SdTheta for k invalid SNPs."""
    p = len(bx)
    theta, theta_old, mu, it = 0.0, -1.0, np.zeros(p), 0
    invalid = np.array([], dtype=int)
    while abs(theta_old - theta) > tol and it < maxit:
        theta_old, it = theta, it + 1
        r = np.zeros(p)
        if k > 0:
            invalid = np.sort(np.argsort(-((by - theta * mu) ** 2 / sy**2), kind="stable")[:k])
            r[invalid] = (by - theta * mu)[invalid]
        mu = (bx / sx**2 + theta * (by - r) / sy**2) / (1 / sx**2 + theta**2 / sy**2)
        theta = np.sum((by - r) * mu / sy**2) / np.sum(mu**2 / sy**2)
    if k > 0:
        mu[invalid] = bx[invalid]
        r[invalid] = by[invalid] - theta * mu[invalid]
    negl = np.sum((bx - mu) ** 2 / (2 * sx**2)) + np.sum((by - theta * mu - r) ** 2 / (2 * sy**2))
    v = np.ones(p, bool)
    v[invalid] = False
    info = np.sum(mu[v] ** 2 / sy[v] ** 2 - (2 * theta * mu[v] - by[v]) ** 2 / sy[v] ** 4 / (
        1 / sx[v] ** 2 + theta**2 / sy[v] ** 2))
    return theta, (np.sqrt(1 / info) if info > 0 else np.nan), negl


def _np_cml_all(bx, by, sx, sy):
    return np.array([_np_cml_k(bx, by, sx, sy, k) for k in range(len(bx) - 1)])


def _np_bic_average(theta, se, negl, n):
    bic = np.log(n) * np.arange(len(theta)) + 2 * negl
    w = np.exp(-0.5 * (bic - bic.min()))
    w /= w.sum()
    b = np.sum(w * theta)
    return b, np.nansum(w * np.sqrt(se**2 + (theta - b) ** 2))


def np_mr_cml(bx, sx, by, sy, rng, s, n=17723.0, num_pert=200):
    """MendelianRandomization mr_cML(n = n, MA = TRUE, DP = s['dp']): BIC averaging over K = 0..n-2."""
    if not s.get("dp", True):
        f = _np_cml_all(bx, by, sx, sy)
        b, se = _np_bic_average(f[:, 0], f[:, 1], f[:, 2], n)
    else:
        pert = np.array([_np_cml_all(bx + sx * rng.standard_normal(len(bx)), by + sy * rng.standard_normal(len(bx)),
                                     sx, sy) for _ in range(num_pert)])
        b, se = _np_bic_average(pert[:, :, 0].mean(0), pert[:, :, 0].std(0, ddof=1), pert[:, :, 2].mean(0), n)
    return _finish(b, se, None, {})


def np_mr_lasso(bx, sx, by, sy, rng, s):
    """MendelianRandomization mr_lasso: glmnet(X, y, intercept = FALSE) (standardize, 100 lambdas
    to 1e-4 lambda_max, covariance coordinate descent with warm starts to thresh = 1e-7, path cut
    by devmax 0.999 / fdev 1e-5 from the 5th lambda), lambda by the heterogeneity rule, post-lasso IVW."""
    n = len(bx)
    by, bx = by * np.sign(bx), np.abs(bx)
    inv = 1 / sy
    b, u = bx * inv, by * inv
    x = (np.eye(n) - np.outer(b, b) / (b @ b)) * inv[None, :]
    y = u - b * (b @ u) / (b @ b)
    xs = np.sqrt(np.mean(x * x, 0) - np.mean(x, 0) ** 2)
    xt = x / xs
    gram, c, null_dev = xt.T @ xt / n, xt.T @ y / n, y @ y
    lams = np.max(np.abs(c)) * 1e-4 ** (np.arange(100) / 99)
    z, rsq_prev, path = np.zeros(n), 0.0, []
    for k, lam in enumerate(lams):
        grad = c - gram @ z
        while True:
            biggest = 0.0
            for j in range(n):
                g = grad[j] + gram[j, j] * z[j]
                new = np.sign(g) * max(abs(g) - lam, 0.0) / gram[j, j]
                d = new - z[j]
                if d != 0:
                    z[j] = new
                    grad -= gram[:, j] * d
                    biggest = max(biggest, gram[j, j] * d * d)
            if biggest <= 1e-7 * null_dev / n:
                break
        path.append(z.copy())
        resid = y - xt @ z
        rsq = 1 - resid @ resid / null_dev
        if k + 1 >= 5 and np.any(z != 0) and (rsq - rsq_prev < 1e-5 * rsq or rsq > 0.999):
            break
        rsq_prev = rsq

    def rse(keep):
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = np.sum(b[keep] * u[keep]) / np.sum(b[keep] ** 2)
        return np.sqrt(np.sum((u[keep] - slope * b[keep]) ** 2) / (keep.sum() - 1)) if keep.sum() > 1 else np.nan

    zeros = [zz == 0 for zz in path[::-1]]  # ascending lambda
    rses, nvalid = [rse(zz) for zz in zeros], [zz.sum() for zz in zeros]
    pos = len(zeros)
    for j in range(len(zeros) - 1):
        if rses[j + 1] > 1 and rses[j + 1] - rses[j] > sps.chi2.ppf(0.95, 1) / nvalid[j + 1]:
            pos = j + 1
            break
    pos = max(pos, 1 + next(j for j, v in enumerate(nvalid) if v > 1))
    keep = zeros[pos - 1]
    with np.errstate(invalid="ignore", divide="ignore"):  # NaN without a valid SNP, as R
        slope = np.sum(b[keep] * u[keep]) / np.sum(b[keep] ** 2)
        sigma = rse(keep)
        se = sigma / np.sqrt(np.sum(b[keep] ** 2)) / min(sigma, 1.0)
    return _finish(slope, se, None, {})


def _raps_bounded_max(objective, bound):
    """mr.raps's optimize on [-B, B], B doubled while the optimum is within 5% of it."""
    while True:
        beta = optimize.minimize_scalar(lambda b: -objective(b), bounds=(-bound, bound), method="bounded",
                                        options={"xatol": 1e-10}).x
        if abs(beta) < 0.95 * bound:
            return beta
        bound *= 2


RAPS_K = {"huber": 1.345, "tukey": 4.685}


def _raps_rho(loss, r):
    k = RAPS_K[loss]
    if loss == "huber":
        return np.where(np.abs(r) <= k, r * r / 2, k * (np.abs(r) - k / 2))
    return 1 - (1 - np.minimum((r / k) ** 2, 1)) ** 3


def _raps_psi(loss, r):
    k = RAPS_K[loss]
    return np.clip(r, -k, k) if loss == "huber" else np.where(np.abs(r) <= k, r * (1 - (r / k) ** 2) ** 2, 0.0)


def _raps_dpsi(loss, r):
    k = RAPS_K[loss]
    u = (r / k) ** 2
    return (np.abs(r) <= k).astype(float) if loss == "huber" else np.where(u <= 1, (1 - u) * (1 - 5 * u), 0.0)


@functools.cache
def _raps_constants(loss):
    """delta = E[Z psi], c1 = E[psi^2] by R's integrate (dqagi, tolerances eps^0.25)."""
    tol = np.finfo(float).eps ** 0.25
    quad = lambda f: integrate.quad(lambda z: f(z) * sps.norm.pdf(z), -np.inf, np.inf, epsabs=tol,  # noqa: E731
                                    epsrel=tol, limit=100)[0]
    return quad(lambda z: z * _raps_psi(loss, z)), quad(lambda z: _raps_psi(loss, z) ** 2)


def np_raps_mle(bx, sx, by, sy, rng, s):
    """mr.raps.mle(over.dispersion = FALSE, loss): l2 (mr.raps.simple): optimize of the profile
    likelihood on [-B, B], B = 2 q95(|by/bx|), sandwich SE; huber/tukey (mr.raps.simple.robust):
    the same optimize of -sum(rho(t)), SE sqrt(c1 S) / |delta A|."""
    loss = s.get("loss", "l2")
    bound = 2 * np.quantile(np.abs(by / bx), 0.95)

    def t_of(beta):
        return (by - beta * bx) / np.sqrt(sy**2 + beta**2 * sx**2)

    if loss == "l2":
        beta, delta, c1 = _raps_bounded_max(lambda b_: -0.5 * np.sum(t_of(b_) ** 2), bound), 1.0, 1.0
    else:
        beta = _raps_bounded_max(lambda b_: -np.sum(_raps_rho(loss, t_of(b_))), bound)
        delta, c1 = _raps_constants(loss)
    v = sy**2 + beta**2 * sx**2
    a = np.sum(((bx**2 - sx**2) * sy**2 + (by**2 - sy**2) * sx**2) / v**2)
    se = np.sqrt(c1 * (a + np.sum(sx**2 * sy**2 / v**2))) / abs(delta * a)
    return _finish(beta, se, None, {})


def np_raps_mle_od_l2(bx, sx, by, sy, rng, s):
    """mr.raps.overdispersed (l2): prune sx > 10 median(sx); from the simple fit, alternate (20 times)
    tau2 = optimize of the sx^2-weighted profile on [0, 100 q95(sy^2)] and beta = optimize of the
    profile at tau2 on +-10 q95(|by/bx|); sandwich SE of beta."""
    keep = sx <= 10 * np.median(sx)
    bx, sx, by, sy = bx[keep], sx[keep], by[keep], sy[keep]
    beta = np_raps_mle(bx, sx, by, sy, rng, {})[0]
    tau2 = 0.0
    r_bound = 10 * np.quantile(np.abs(by / bx), 0.95)
    t_bound = 100 * np.quantile(sy**2, 0.95)
    for _ in range(20):
        tau2 = optimize.minimize_scalar(
            lambda t2: 0.5 * np.sum(sx**2 * (np.log(t2 + sy**2 + beta**2 * sx**2)
                                             + (by - beta * bx) ** 2 / (t2 + sy**2 + beta**2 * sx**2))),
            bounds=(0, t_bound), method="bounded", options={"xatol": 1e-12}).x
        beta = optimize.minimize_scalar(lambda b_: 0.5 * np.sum((by - b_ * bx) ** 2 / (tau2 + sy**2 + b_**2 * sx**2)),
                                        bounds=(-r_bound, r_bound), method="bounded", options={"xatol": 1e-12}).x
    v, s2 = tau2 + sy**2 + beta**2 * sx**2, tau2 + sy**2
    a = np.sum(((bx**2 - sx**2) * s2 + (by**2 - s2) * sx**2) / v**2)
    s11 = a + np.sum(sx**2 * s2 / v**2)
    s22 = np.sum(2 * sx**4 / v**2)
    i12, i22 = -np.sum(sx**2 * beta / v**2), -np.sum(sx**2 / v**2)
    return _finish(beta, np.sqrt(s11 / a**2 + i12**2 * s22 / (a**2 * i22**2)), None, {})


def np_raps(bx, sx, by, sy, rng, s):
    if s.get("over_dispersion"):
        return np_raps_mle_od_l2(bx, sx, by, sy, rng, s)
    return np_raps_mle(bx, sx, by, sy, rng, s)


BASELINES = {"mrivw": np_mr_ivw, "mregger": np_mr_egger, "mregger_intercept": None, "mrmedian": np_mr_median,
             "mrmbe": np_mr_mbe, "mrmaxlik": np_mr_maxlik, "divw": np_mr_divw, "pivw": np_mr_pivw,
             "conmix": np_mr_conmix, "cml": np_mr_cml, "lasso": np_mr_lasso, "raps_mle": np_raps}
BASELINES = {k: v for k, v in BASELINES.items() if v is not None}
#: Settings a baseline covers (others: no baseline, shown as "–").
COVERS = {"raps_mle": lambda s: not s.get("over_dispersion") or s.get("loss") == "l2"}


def has_baseline(method_id, settings):
    return method_id in BASELINES and COVERS.get(method_id, lambda s: True)(settings)


def baseline(groups, method_id, settings, stride):
    fn = BASELINES[method_id]
    if method_id == "cml" and settings.get("dp", True):
        stride = max(stride, len(groups) // 12)  # 200 perturbations x every K in a Python loop
    chosen = groups[::stride]
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for *g, n in chosen:
        if method_id == "cml":
            fn(*g, rng, settings, n=n)
        else:
            fn(*g, rng, settings)
    return (time.perf_counter() - t0) * len(groups) / len(chosen)


# Golden checks of the baselines: (method_id, settings, golden label, dataset, tolerance; None:
# Monte-Carlo, checked to a quarter of R's SE).
BASELINE_CHECKS = [
    ("divw", {}, "divw_default", "ldl_chd", 1e-8),
    ("divw", {"over_dispersion": False}, "divw_no_overdispersion", "hdl_chd", 1e-8),
    ("pivw", {}, "pivw_default", "ldl_chd", 1e-8),
    ("conmix", {}, "conmix_default", "trig_chd", 1e-10),
    ("cml", {"dp": False}, "cML_noDP", "ldl_chd", 1e-8),
    ("cml", {}, "cML_default", "ldl_chd", None),
    ("raps_mle", {"loss": "l2", "over_dispersion": False}, "mle_l2_odFALSE", "bmi_chd", 1e-6),
    ("raps_mle", {"loss": "huber", "over_dispersion": False}, "mle_huber_odFALSE", "bmi_chd", 1e-6),
    ("raps_mle", {"loss": "tukey", "over_dispersion": False}, "mle_tukey_odFALSE", "ldl_chd", 1e-6),
    ("raps_mle", {"loss": "l2", "over_dispersion": True}, "mle_l2_odTRUE", "bmi_chd", 1e-5),  # R stops short
    ("lasso", {}, "lasso_default", "hdl_chd", 1e-8),
]


def check_baselines(shared_data: Path) -> None:
    """Each new baseline on a golden dataset against R's Estimate (and SE where deterministic)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from _golden_data import load_golden

    for mid, settings, label, name, tol in BASELINE_CHECKS:
        golden, frame = load_golden(shared_data, name)
        section = "mr_raps" if mid.startswith("raps") else "mendelianrandomization"
        want = golden[section][label]
        args = [frame[c].to_numpy(float) for c in ("beta.exposure", "se.exposure", "beta.outcome", "se.outcome")]
        extra = {"n": float(golden["dataset"]["n_for_cML"])} if mid == "cml" else {}
        b, se, *_ = BASELINES[mid](*args, np.random.default_rng(1), settings, **extra)
        r_b = want.get("Estimate", want.get("beta.hat"))
        r_se = want.get("StdError", want.get("beta.se"))
        if tol is None:
            ok = abs(b - r_b) <= 0.25 * r_se and abs(se - r_se) <= 0.25 * r_se
        else:
            ok = abs(b - r_b) <= tol * abs(r_b) and (np.isnan(se) or abs(se - r_se) <= tol * abs(r_se))
        print(f"baseline check {mid:8s} {label:24s} on {name}: b {b:.8g} (R {r_b:.8g}), se {se:.6g} "
              f"(R {r_se}) {'ok' if ok else 'MISMATCH'}")
        if not ok:
            raise SystemExit(f"numpy baseline {mid} does not reproduce R's {label} on {name}")


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
    check_baselines(Path(__file__).resolve().parents[1].parent / "shared" / "data")
    frame = load_fixture()
    batch = from_frame(frame)
    buckets = list(batch.buckets())
    keys = [trait_keys(0, b.uids) for b in buckets]
    inst = batch.instruments
    samplesize = batch.trait_samplesize(np.arange(batch.n_traits))
    groups = [tuple(g[c].to_numpy() for c in ("beta.exposure", "se.exposure", "beta.outcome", "se.outcome"))
              + (samplesize[trait],) for trait, g in inst.groupby("trait", sort=True)]
    print(f"fixture: {batch.n_traits} traits, {len(inst)} instruments; buckets "
          f"{', '.join(f'{b.instruments.bx.shape[0]}x{b.instruments.bx.shape[1]}' for b in buckets)}")
    print(f"machine: nproc={os.cpu_count()}, {cpu_model()}, jax {jax.__version__} on {jax.devices()[0].platform}")
    print(f"load average at start: {os.getloadavg()}")
    print()
    print(f"{'R call (golden label)':34s} {'method':10s} {'cold s':>8s} {'warm s':>8s} {'warm cpu':>8s} {'numpy s':>9s} {'loop/warm':>9s}")
    for label, mid, settings in configurations(args.only):
        params = make_params(**settings)

        def go():
            return [run_methods(b.instruments, k, (mid,), params) for b, k in zip(buckets, keys)]

        cold, _ = timed(go)
        cpu0 = time.process_time()
        warm, _ = timed(go, args.repeats)
        warm_cpu = (time.process_time() - cpu0) / args.repeats
        if has_baseline(mid, settings):
            base = baseline(groups, mid, settings, args.baseline_stride)
            tail = f"{base:9.2f} {base / warm:9.1f}"
        else:
            tail = f"{'–':>9s} {'–':>9s}"
        print(f"{label:34s} {mid:10s} {cold:8.2f} {warm:8.3f} {warm_cpu:8.2f} {tail}", flush=True)
    print()
    print(f"load average at end: {os.getloadavg()}; baseline timed on every {args.baseline_stride}th of "
          f"{len(groups)} traits and scaled")


if __name__ == "__main__":
    main()
