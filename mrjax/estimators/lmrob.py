"""Robust MM regression of one trait: ``robustbase::lmrob`` with MendelianRandomization's settings.

All-zero columns of the design are padding (an MV analysis with fewer exposures than its
batch): their coefficients stay 0 and ``p`` in ``n - p`` counts the other columns.

MendelianRandomization's ``robust = TRUE`` calls ``lmrob(y ~ x (- 1), weights = w, k.max = 500,
maxit.scale = 500)`` with robustbase's defaults otherwise (``lmrob.control()``: MM estimator,
bisquare ψ, S-estimate tuning ``c = 1.54764`` with ``b = 1/2`` (50% breakdown), M-step tuning
``c = 4.685061`` (95% efficiency), covariance ``.vcov.avar1``). With weights, lmrob fits the
unweighted problem on ``sqrt(w) x``, ``sqrt(w) y``; so does :func:`lmrob`.

1. **S-estimate** (robustbase's fast-S, Salibian-Barrera & Yohai 2006). The M-scale
   ``s(beta)`` solves ``sum rho(r_i / s) / (n - p) = b`` with the normalised bisquare
   ``rho(u) = 1 - (1 - (u/c)^2)^3`` (1 beyond ``c``). Candidates are the exact fits to
   elemental subsets of ``p`` observations; each gets one refinement step (from the scale
   ``1.4826 median|r|``: one scale step ``s <- s sqrt(mean_rho / b)``, then weighted LS with
   weights ``rho'(u)/u``), and its M-scale; the two candidates with the smallest scale are
   refined to convergence (the same steps, at most ``k.max`` = 500; past the first 15 of them
   Newton steps on the iteration's fixed point where they are safe, :func:`_refine`) and the
   one with the smaller final M-scale is the S-estimate.

   R draws ``nResample = 500`` random subsets (so its result depends on the RNG). Here EVERY
   elemental subset is a candidate — the ``n`` single observations for a slope through the
   origin (IVW: p = 1), the ``n (n - 1) / 2`` pairs for the Egger line (p = 2) — so the
   result is deterministic and never worse than R's sample: for p = 1 and ``n <= 60`` R's
   500 draws contain every observation with probability > 0.9999, and on every golden set
   (28–79 instruments, p = 1 and 2) both reach the same S-estimate (R's values are matched
   to 1e-6; they differ from the fixed point by R's stopping rule ``refine.tol = 1e-7``).
   With ``p >= 3`` columns (MV-IVW robust) every subset is too many (``C(n, p)``), so, as R,
   :data:`N_SUBSETS` random ones, drawn from the analysis key (:func:`_random_subsets`); on the
   lipids MV golden (28 variants, 3 exposures) every seed tried reaches R's S-estimate.
   The candidates' M-scales come from :data:`CANDIDATE_SCALE_STEPS` safeguarded Newton
   steps (enough to rank them); the two finalists' from robustbase's fixed-point iteration
   to ``1e-10`` (``find_scale``, at most ``maxit.scale`` = 500).
2. **M-step** (``lmrob..M..fit``): iteratively reweighted least squares with the bisquare
   weights ``(1 - (r / (4.685061 s))^2)^2`` at the fixed S-scale ``s``, from the S-estimate,
   until the coefficients change by less than 1e-12 relatively (R stops at 1e-7 or after
   ``max.it`` = 50 iterations; we allow :data:`MAX_STEPS`).
3. **Covariance** ``.vcov.avar1`` (Croux, Dhaene & Hoorelbeke 2003), with ``r0`` the S and
   ``r`` the MM residuals scaled by ``s``: ``A = s (X' diag(psi'(r)) X)^-1``,
   ``a = A X' psi'(r) r / mean(chi'(r0) r0)``, then
   ``V = (A X' diag(psi(r)^2) X n A - a (X' psi chi)' A - A (X' psi chi) a' +
   mean(chi(r0)^2 - b^2) a a') / n``; a negative eigenvalue is set to 0 and the diagonal
   restored (robustbase's ``posdefify``), which for p = 1 means NaN.

``summary(lmrob)``'s ``sigma`` is the S-scale.

:func:`lmrob` fits one trait; :func:`lmrob_batch` every trait of a batch with the same numbers,
its finalists' refinements pooled so that the batch does not wait for its slowest trait.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mrjax.estimators.draws import SORT_NETWORK_MAX_WIDTH, slot_normals, sort_slots
from mrjax.estimators.pool import pooled_while
from mrjax.stats import MAD_CONSTANT, sort_last_axis

C_CHI = 1.54764  # lmrob.control()$tuning.chi (bisquare, 50% breakdown)
C_PSI = 4.685061  # lmrob.control()$tuning.psi (bisquare, 95% efficiency)
BB = 0.5  # lmrob.control()$bb
MAX_STEPS = 500  # k.max and maxit.scale as MendelianRandomization sets them
CANDIDATE_SCALE_STEPS = 8
SCALE_TOL = 1e-10  # robustbase's EPS_SCALE
REFINE_TOL = 1e-12
PLAIN_REFINE_STEPS = 15  # refine_fast_s steps before Newton's (see _refine)
NEWTON_REACH = 3.0  # a Newton step at most 3x the linear extrapolation's length (see _refine)
N_FINALISTS = 2  # lmrob.control()$best.r.s
POOLED_REFINE_STEPS = 25  # steps every problem of a pooled refinement takes together (see _refine_pooled)
STRAGGLER_SLOTS = 8  # slots in which the unfinished problems go on after those steps
N_SUBSETS = 500  # lmrob.control()$nResample: random elemental subsets for p >= 3 columns


class RobustFit(NamedTuple):
    """``coef`` and ``se`` (``[p]``), the S-scale ``scale`` and ``converged`` (every loop
    stopped by its tolerance, not its cap, and the fit is defined)."""

    coef: jax.Array
    se: jax.Array
    scale: jax.Array
    converged: jax.Array


def _rho(u):
    """Normalised bisquare rho with ``c = C_CHI``: ``1 - (1 - (u/c)^2)^3``, 1 beyond c."""
    t = jnp.minimum((u / C_CHI) ** 2, 1.0)
    return t * (3.0 + t * (-3.0 + t))


def _bisquare_weight(u, c):
    """``psi(u) / u = (1 - (u/c)^2)^2`` inside ``c``, 0 outside."""
    t = (u / c) ** 2
    return jnp.where(t < 1.0, (1.0 - t) ** 2, 0.0)


def _mean_rho(r, s, mask, n, p):
    return jnp.sum(jnp.where(mask, _rho(r / s), 0.0)) / (n - p)


def _scale_step(r, s, mask, n, p):
    return s * jnp.sqrt(_mean_rho(r, s, mask, n, p) / BB)


def _free(X):
    """The number of coefficients fitted: columns of ``X`` that are not all zero (``p`` in
    lmrob's ``n - p``; an MV analysis's padded exposures are zero columns)."""
    return jnp.sum(jnp.any(X != 0, axis=0))


def _pinned(X):
    """``diag(1)`` on the all-zero columns of ``X`` (an MV analysis's padded exposures), so that
    their coefficients are pinned at 0 instead of making the normal equations singular."""
    return jnp.diag(jnp.all(X == 0, axis=0).astype(X.dtype))


def _wls(X, y, v):
    """Weighted least squares ``(X' V X)^-1 X' V y`` (closed form for ``p`` = 1 or 2; all-zero
    columns pinned at 0 for ``p >= 3``), and whether the system is non-singular."""
    p = X.shape[-1]
    if p >= 3:
        xv = X * v[:, None]
        a = xv.T @ X + _pinned(X)
        coef = small_solve(a, xv.T @ y)
        return coef, jnp.all(jnp.isfinite(coef)) & (jnp.abs(_det(a)) > 1e-14 * jnp.prod(jnp.diag(a)))
    if p == 1:
        sxx = jnp.sum(v * X[:, 0] ** 2)
        ok = sxx > 0
        return (jnp.sum(v * X[:, 0] * y) / jnp.where(ok, sxx, 1.0))[None], ok
    a, b, d = jnp.sum(v * X[:, 0] ** 2), jnp.sum(v * X[:, 0] * X[:, 1]), jnp.sum(v * X[:, 1] ** 2)
    e, f = jnp.sum(v * X[:, 0] * y), jnp.sum(v * X[:, 1] * y)
    det = a * d - b * b
    ok = det > 1e-14 * a * d
    det = jnp.where(ok, det, 1.0)
    return jnp.stack([(d * e - b * f) / det, (a * f - b * e) / det]), ok


def _elemental_candidates(X, y, mask, key=None):
    """Exact fits to elemental subsets: ``[C, p]`` coefficients and their validity. Every
    subset for ``p`` = 1 or 2; :data:`N_SUBSETS` random ones from ``key`` for ``p >= 3``
    (:func:`_random_subsets`)."""
    width, p = X.shape
    if p >= 3:
        return _random_subsets(X, y, mask, key)
    if p == 1:
        ok = mask & (X[:, 0] != 0)
        return (y / jnp.where(ok, X[:, 0], 1.0))[:, None], ok
    i, j = np.triu_indices(width, k=1)
    a, b, c, d = X[i, 0], X[i, 1], X[j, 0], X[j, 1]
    det = a * d - b * c
    ok = mask[i] & mask[j] & (jnp.abs(det) > 1e-12 * (jnp.abs(a * d) + jnp.abs(b * c)))
    det = jnp.where(ok, det, 1.0)
    coef = jnp.stack([(d * y[i] - b * y[j]) / det, (a * y[j] - c * y[i]) / det], axis=-1)
    return coef, ok


def _random_subsets(X, y, mask, key):
    """:data:`N_SUBSETS` elemental fits on random subsets of the real rows (robustbase's
    ``nResample = 500`` subsamples; R draws its own). Subset ``i`` takes the rows with the ``k``
    smallest of its scores ``slot_normals(key)[:, i]`` (``+inf`` on padded rows): a uniformly
    random ``k``-subset whose rows depend on the key and the slots only, never on the padding.
    ``k`` is the number of real (not all-zero) columns of ``X``, a prefix; the padded columns get
    unit rows, so their coefficients are 0. A subset whose system is singular is invalid (R
    draws another; with continuous data that has probability 0)."""
    width, p = X.shape
    k = _free(X)
    scores = jnp.where(mask[:, None], slot_normals(key, N_SUBSETS, width, X.dtype), jnp.inf).T  # [N_SUBSETS, width]
    rows = jnp.argsort(scores, axis=-1)[:, :p]
    use = jnp.arange(p) < k
    unit = jnp.eye(p, dtype=X.dtype)
    systems = jnp.where(use[None, :, None], X[rows], unit[None])
    rhs = jnp.where(use[None, :], y[rows], 0.0)
    coef = jax.vmap(small_solve)(systems, rhs)
    scale = jnp.prod(jnp.linalg.norm(systems, axis=-1), axis=-1)
    ok = jnp.all(mask[rows] | ~use[None, :], axis=-1) & (jnp.abs(jax.vmap(_det)(systems)) > 1e-12 * scale)
    return jnp.where(ok[:, None], coef, 0.0), ok & jnp.all(jnp.isfinite(coef), axis=-1)


def _median_abs(r, mask, n):
    """``median(|r|)`` over the ``n`` masked entries (a prefix; R: the mean of the two middle
    values for an even count).

    Up to :data:`~mrjax.estimators.draws.SORT_NETWORK_MAX_WIDTH` entries, by a sorting network
    with the padding split evenly into ``-inf`` below and ``+inf`` above the real entries:
    then the median sits at the same positions of the sorted row (``width // 2`` and the one or
    two before) whatever ``n``, so only the comparators that feed those positions are computed
    (XLA drops the rest). On the fixture's 192 x 32 bucket a sort of every Egger candidate's
    row took ~40 ms; this costs about what their mean would.
    """
    width = r.shape[0]
    lo, hi = (n - 1) // 2, n // 2
    if width > SORT_NETWORK_MAX_WIDTH:
        srt = sort_last_axis(jnp.where(mask, jnp.abs(r), jnp.inf))
        return 0.5 * (srt[jnp.clip(lo, 0, width - 1)] + srt[jnp.clip(hi, 0, width - 1)])
    below = (width - n) // 2  # padding entries set to -inf
    slot = jnp.arange(width)
    padded = jnp.where(mask, jnp.abs(r), jnp.where(slot < n + below, -jnp.inf, jnp.inf))
    srt = sort_slots(padded)
    middle = sorted({k for k in ((width - 1) // 2 - 1, (width - 1) // 2, width // 2) if k >= 0})
    pick = lambda position: sum(jnp.where(position + below == k, srt[k], 0.0) for k in middle)  # noqa: E731
    return 0.5 * (pick(lo) + pick(hi))


def _fitted(X, beta):
    """``X @ beta`` for p = 1 or 2 columns, written out: vmapped over candidates a matrix
    product becomes thousands of tiny batched dot products."""
    return sum(X[:, k] * beta[k] for k in range(X.shape[-1]))


def _candidate_scale(beta, X, y, mask, n):
    """One fast-S refinement step from ``beta`` and the M-scale after it (ranking accuracy)."""
    p = _free(X)
    r = y - _fitted(X, beta)
    s = MAD_CONSTANT * _median_abs(r, mask, n)
    s = _scale_step(r, s, mask, n, p)
    beta, ok = _wls(X, y, jnp.where(mask, _bisquare_weight(r / s, C_CHI), 0.0))
    u2 = jnp.where(mask, ((y - _fitted(X, beta)) / C_CHI) ** 2, 0.0)
    for _ in range(CANDIDATE_SCALE_STEPS):
        s = _newton_scale_step(u2, s, n, p)
    return beta, jnp.where(ok & (s > 0) & jnp.isfinite(s), s, jnp.inf)


def _smallest(values, k: int):
    """Indices of the ``k`` smallest ``values``, the lower index first among equals (as
    ``lax.top_k(-values, k)``): ``k`` argmins, each ~10x cheaper than ``top_k`` on XLA:CPU."""
    picked = []
    for _ in range(k):
        taken = jnp.isin(jnp.arange(values.shape[0]), jnp.asarray(picked, jnp.int32)) if picked else False
        picked.append(jnp.argmin(jnp.where(taken, jnp.inf, values)).astype(jnp.int32))
    return jnp.stack(picked)


def _newton_scale_step(u2, s, n, p):
    """A Newton step in ``log s`` on ``mean rho(r/s) = b`` (``d mean_rho / d log s =
    -sum(rho'(u) u) / (n - p)``, ``rho'(u) u = 6 t (1 - t)^2`` with ``t = (u/c)^2``), clipped to
    a factor e; the fixed-point step where the slope vanishes. Ranks the candidates in a
    handful of steps where the fixed-point iteration needs dozens. ``u2 = (r / c)^2`` (0 where
    masked: rho(0) = 0), so a step costs no division per residual."""
    t = u2 * (1.0 / (s * s))
    inside = t < 1.0
    mean_rho = jnp.sum(jnp.where(inside, t * (3.0 + t * (-3.0 + t)), 1.0)) / (n - p)
    slope = jnp.sum(jnp.where(inside, 6.0 * t * (1.0 - t) ** 2, 0.0)) / (n - p)
    newton = jnp.clip((mean_rho - BB) / jnp.where(slope > 0, slope, 1.0), -1.0, 1.0)
    fixed_point = 0.5 * jnp.log(jnp.maximum(mean_rho, 1e-300) / BB)
    return s * jnp.exp(jnp.where(slope > 1e-3 * BB, newton, fixed_point))


def _find_scale(r, s, mask, n, p):
    """robustbase ``find_scale``: fixed-point steps until the relative change is ``<= 1e-10``."""

    def cond(c):
        it, s, s_old = c
        return (it < MAX_STEPS) & (jnp.abs(s - s_old) > SCALE_TOL * s_old)

    def body(c):
        it, s, _ = c
        return it + 1, _scale_step(r, s, mask, n, p), s

    it, s, _ = jax.lax.while_loop(cond, body, (1, _scale_step(r, s, mask, n, p), s))
    return s, it < MAX_STEPS


def _det(a):
    """``det(a)`` of a small matrix, written out (2 x 2, 3 x 3) or by :func:`_eliminate`."""
    if a.shape[-1] == 2:
        return a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
    if a.shape[-1] == 3:
        return jnp.dot(a[:, 0], jnp.cross(a[:, 1], a[:, 2]))
    return _eliminate(a, jnp.zeros(a.shape[-1], a.dtype))[1]


def _eliminate(a, b):
    """Gauss–Jordan elimination with partial pivoting, unrolled over the static size: the
    solution of ``a x = b`` and ``det(a)``. No LAPACK custom call (batched LAPACK calls inside
    vmapped loops deadlocked XLA:CPU, see :mod:`mrjax.mv.cml`, and cost more than the
    arithmetic at this size)."""
    p = a.shape[-1]
    m = jnp.concatenate([a, b[:, None]], axis=1)
    det = jnp.ones((), a.dtype)
    rows = jnp.arange(p)
    for j in range(p):
        pivot = jnp.argmax(jnp.where(rows >= j, jnp.abs(m[:, j]), -1.0))
        m = jnp.where((rows == j)[:, None], m[pivot][None, :], jnp.where((rows == pivot)[:, None], m[j][None, :], m))
        det = det * jnp.where(pivot == j, 1.0, -1.0) * m[j, j]
        lead = m[j] / m[j, j]
        m = m - jnp.where(rows == j, 0.0, m[:, j])[:, None] * lead[None, :]
        m = jnp.where((rows == j)[:, None], lead[None, :], m)
    return m[:, p], det


def small_solve(a, b):
    """``solve(a, b)`` for a small system: Cramer's rule up to 3 x 3, else :func:`_eliminate`
    (batched LAPACK calls on matrices this small cost more than the arithmetic, and inside
    vmapped loops deadlocked XLA:CPU)."""
    if a.shape[-1] > 3:
        return _eliminate(a, b)[0]
    if a.shape[-1] == 1:
        return b / a[0]
    if a.shape[-1] == 2:
        det = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
        return jnp.stack([a[1, 1] * b[0] - a[0, 1] * b[1], a[0, 0] * b[1] - a[1, 0] * b[0]]) / det
    cols = [a[:, k] for k in range(3)]
    det = jnp.dot(cols[0], jnp.cross(cols[1], cols[2]))
    return jnp.stack([jnp.dot(b, jnp.cross(cols[1], cols[2])), jnp.dot(cols[0], jnp.cross(b, cols[2])),
                      jnp.dot(cols[0], jnp.cross(cols[1], b))]) / det


def _fast_s_step(theta, X, y, mask, n):
    """One fast-S refinement step on ``theta = (beta, s)``: a scale step from the current
    residuals, then weighted LS with the bisquare(``C_CHI``) weights at the new scale."""
    p = X.shape[-1]
    beta, s = theta[:p], theta[p]
    r = y - X @ beta
    s = _scale_step(r, s, mask, n, _free(X))
    new, _ = _wls(X, y, jnp.where(mask, _bisquare_weight(r / s, C_CHI), 0.0))
    return jnp.concatenate([new, s[None]])


def _refine(beta, s, X, y, mask, n):
    """fast-S refinement to convergence: the fixed point ``theta = F(theta)`` of
    :func:`_fast_s_step`, robustbase's ``refine_fast_s`` iteration.

    That iteration converges linearly, and on some traits slowly (hundreds of steps at a
    contraction near 1), which in a batch makes every trait wait for the slowest. So after
    :data:`PLAIN_REFINE_STEPS` plain steps each step tries a Newton step on ``G(theta) =
    F(theta) - theta`` (the Jacobian of ``F`` by forward-mode differentiation, ``p + 1``
    columns), and keeps it only where the iteration behaves as a contraction there: the plain
    step shrank (``ratio = |G(theta)| / |G(previous)| < 1``), the Newton step is no longer than
    :data:`NEWTON_REACH` times the linear extrapolation ``|G| / (1 - ratio)`` to the limit, and
    it lowers ``|G|``; otherwise the plain step. Newton's steps may land on any fixed point,
    repelling ones too, so where the plain steps do not contract (a trait crossing a flat
    stretch of the scale) they alone move it. Stops when ``beta`` moves by ``<= REFINE_TOL``
    relatively (R: ``refine.tol = 1e-7``) or after ``MAX_STEPS`` steps, then the M-scale of
    the final ``beta`` by :func:`_find_scale`. On the 731-trait fixture the slowest trait
    takes 164 steps (500, the cap, before: one IVW trait stopped there unconverged) and the
    fits differ from the plain iteration stopped at ``REFINE_TOL`` by <= 1e-7, where that stop
    is early on a slow contraction (tests/test_lmrob_steps.py: 1e-9 against a plain
    transcription run to 1e-13)."""
    state = _refine_newton(_refine_plain(beta, s, X, y, mask, n), X, y, mask, n, until=MAX_STEPS)
    return _refine_finish(state, X, y, mask, n)


class _RefineState(NamedTuple):
    steps: jax.Array
    theta: jax.Array  # (beta, s)
    theta_old: jax.Array
    last_residual: jax.Array  # |F(theta_old) - theta_old|


def _refining(c: _RefineState, p: int):
    """Whether :func:`_refine` goes on from ``c`` (beta moved by more than ``REFINE_TOL``)."""
    moved = jnp.linalg.norm(c.theta[:p] - c.theta_old[:p]) > REFINE_TOL * jnp.maximum(
        REFINE_TOL, jnp.linalg.norm(c.theta_old[:p]))
    return (c.steps == 0) | ((c.steps < MAX_STEPS) & moved)


def _refine_plain(beta, s, X, y, mask, n) -> _RefineState:
    """:func:`_refine`'s first ``PLAIN_REFINE_STEPS`` plain steps."""
    p = X.shape[-1]

    def plain(c):
        image = _fast_s_step(c.theta, X, y, mask, n)
        return _RefineState(c.steps + 1, image, c.theta, jnp.linalg.norm(image - c.theta))

    theta = jnp.concatenate([beta, s[None]])
    start = _RefineState(jnp.zeros((), jnp.int32), theta, theta, jnp.asarray(jnp.inf, theta.dtype))
    return jax.lax.while_loop(lambda c: _refining(c, p) & (c.steps < PLAIN_REFINE_STEPS), plain, start)


def _refine_newton_step(c: _RefineState, X, y, mask, n) -> _RefineState:
    """One of :func:`_refine`'s guarded Newton steps (its docstring): the Newton step on
    ``F(theta) - theta`` where the iteration contracts there, else the plain step."""
    p = X.shape[-1]
    step = functools.partial(_fast_s_step, X=X, y=y, mask=mask, n=n)
    jac, image = jax.jacfwd(lambda th: (step(th), step(th)), has_aux=True)(c.theta)
    residual = jnp.linalg.norm(image - c.theta)
    candidate = c.theta - small_solve(jac - jnp.eye(p + 1), image - c.theta)
    ratio = residual / c.last_residual
    keep = ((ratio < 1.0)
            & (jnp.linalg.norm(candidate - c.theta) * (1.0 - ratio) <= NEWTON_REACH * residual)
            & (jnp.linalg.norm(step(candidate) - candidate) < residual)
            & jnp.all(jnp.isfinite(candidate)) & (candidate[p] > 0))
    return _RefineState(c.steps + 1, jnp.where(keep, candidate, image), c.theta, residual)


def _refine_newton(c: _RefineState, X, y, mask, n, until) -> _RefineState:
    """:func:`_refine`'s guarded Newton steps from ``c`` while it goes on, up to step ``until``."""
    p = X.shape[-1]
    return jax.lax.while_loop(lambda c: _refining(c, p) & (c.steps < until),
                              lambda c: _refine_newton_step(c, X, y, mask, n), c)


def _refine_finish(c: _RefineState, X, y, mask, n):
    """The M-scale of the refined ``beta`` (:func:`_find_scale`) and whether both converged."""
    p = X.shape[-1]
    beta, s = c.theta[:p], c.theta[p]
    s, scale_ok = _find_scale(y - X @ beta, s, mask, n, _free(X))
    return beta, s, (c.steps < MAX_STEPS) & scale_ok


def _refine_pooled(beta, s, X, y, mask, n):
    """:func:`_refine` of ``F`` problems (leading axis), equal to it problem by problem, but
    without every problem waiting for the slowest: all take their first
    :data:`POOLED_REFINE_STEPS` steps together, then the unfinished ones (on the fixture a
    handful of 1,462, one needing 164 steps) go on in :data:`STRAGGLER_SLOTS` slots of
    :func:`~mrjax.estimators.pool.pooled_while` (the finished ones pass through it at once)."""
    f, p = beta.shape
    state = jax.vmap(_refine_plain)(beta, s, X, y, mask, n)
    state = jax.vmap(functools.partial(_refine_newton, until=POOLED_REFINE_STEPS))(state, X, y, mask, n)
    problem = lambda i: (jax.tree_util.tree_map(lambda a: a[i], state), X[i], y[i], mask[i], n[i])  # noqa: E731
    state = pooled_while(problem, lambda c: _refining(c[0], p), lambda c: (_refine_newton_step(*c),) + c[1:],
                         f, STRAGGLER_SLOTS, keep=lambda c: c[0])
    return jax.vmap(_refine_finish)(state, X, y, mask, n)


def _m_step(beta, s, X, y, mask):
    """IRWLS with bisquare(``C_PSI``) weights at the fixed scale ``s``."""

    def cond(c):
        it, beta, beta_old = c
        moved = jnp.sum(jnp.abs(beta - beta_old)) > REFINE_TOL * jnp.maximum(REFINE_TOL, jnp.sum(jnp.abs(beta)))
        return (it == 0) | ((it < MAX_STEPS) & moved)

    def body(c):
        it, beta, _ = c
        new, _ = _wls(X, y, jnp.where(mask, _bisquare_weight((y - X @ beta) / s, C_PSI), 0.0))
        return it + 1, new, beta

    it, beta, _ = jax.lax.while_loop(cond, body, (0, beta, beta))
    return beta, it < MAX_STEPS


def _avar1(X, r, r0, s, mask, n):
    """robustbase ``.vcov.avar1`` (see the module docstring), ``[p, p]``."""
    rs, r0s = r / s, r0 / s
    t, t0 = (rs / C_PSI) ** 2, (r0s / C_CHI) ** 2
    inside, inside0 = mask & (t < 1.0), mask & (t0 < 1.0)
    dpsi = jnp.where(inside, (1.0 - t) * (1.0 - 5.0 * t), 0.0)
    dchi = jnp.where(inside0, 6.0 * r0s / C_CHI**2 * (1.0 - t0) ** 2, 0.0)
    psi = jnp.where(inside, rs * (1.0 - t) ** 2, 0.0)
    chi = jnp.where(mask, _rho(r0s), 0.0)
    A = jnp.linalg.inv(X.T @ (X * dpsi[:, None]) + _pinned(X)) * s
    a = A @ (X.T @ (dpsi * rs)) / (jnp.sum(dchi * r0s) / n)
    xww = X.T @ (psi * chi)
    u1 = A @ (X.T @ (X * (psi**2)[:, None])) @ (n * A)
    u2 = jnp.outer(a, xww @ A)
    u3 = jnp.outer(A @ xww, a)
    u4 = (jnp.sum(jnp.where(mask, chi**2 - BB**2, 0.0)) / n) * jnp.outer(a, a)
    v = (u1 - u2 - u3 + u4) / n
    lam, q = jnp.linalg.eigh(v)
    fixed = (q * jnp.maximum(lam, 0.0)) @ q.T
    d = jnp.sqrt(jnp.maximum(jnp.diag(v), 0.0) / jnp.diag(fixed))
    return jnp.where(jnp.any(lam < 0), d[:, None] * fixed * d[None, :], v)


def lmrob(X, y, w, mask, key=None) -> RobustFit:
    """``summary(lmrob(y ~ X - 1, weights = w, k.max = 500, maxit.scale = 500))`` over the
    masked rows of ``X[width, p]`` (put a column of ones in ``X`` for an intercept; all-zero
    columns are padding, their coefficients 0), ``y[width]``, weights ``w[width]``:
    coefficients, their SEs and the scale. ``key`` draws the elemental subsets for ``p >= 3``."""
    X, y, n = _weighted(X, y, w, mask)
    coef, scale = _finalists(X, y, mask, n, key)
    refined = jax.vmap(_refine, in_axes=(0, 0, None, None, None, None))(coef, scale, X, y, mask, n)
    return _mm_fit(X, y, mask, n, scale, *refined)


def lmrob_batch(X, y, w, mask, keys=None) -> RobustFit:
    """:func:`lmrob` of every trait of a batch (a leading trait axis on every argument), equal to
    it trait by trait; the finalists' refinements of all traits run as one pool
    (:func:`_refine_pooled`), so the batch no longer waits for its slowest trait (robust Egger on
    the 731-trait fixture: benchmarks/RESULTS.md)."""
    X, y, n = jax.vmap(_weighted)(X, y, w, mask)
    coef, scale = jax.vmap(_finalists, in_axes=(0, 0, 0, 0, None if keys is None else 0))(X, y, mask, n, keys)
    t, k, p = coef.shape
    per_finalist = lambda a: jnp.repeat(a, k, axis=0)  # noqa: E731
    refined = _refine_pooled(coef.reshape(t * k, p), scale.reshape(t * k), per_finalist(X), per_finalist(y),
                             per_finalist(mask), per_finalist(n))
    betas, scales, oks = (a.reshape(t, k, *a.shape[1:]) for a in refined)
    return jax.vmap(_mm_fit)(X, y, mask, n, scale, betas, scales, oks)


def _weighted(X, y, w, mask):
    """The unweighted problem lmrob fits for weights ``w``: ``sqrt(w) X``, ``sqrt(w) y`` (zero
    in padded rows), and the row count."""
    root_w = jnp.sqrt(jnp.where(mask, w, 0.0))
    return jnp.where(mask[:, None], X * root_w[:, None], 0.0), jnp.where(mask, y * root_w, 0.0), jnp.sum(mask)


def _finalists(X, y, mask, n, key=None):
    """The ``N_FINALISTS`` elemental candidates with the smallest M-scale after one refinement
    step: their refined coefficients ``[N_FINALISTS, p]`` and M-scales."""
    elemental, valid = _elemental_candidates(X, y, mask, key)
    candidate_scale = jax.vmap(_candidate_scale, in_axes=(0, None, None, None, None))
    _, scale = candidate_scale(elemental, X, y, mask, n)
    scale = jnp.where(valid, scale, jnp.inf)
    best = _smallest(scale, N_FINALISTS)
    coef, _ = candidate_scale(elemental[best], X, y, mask, n)
    return coef, scale[best]


def _mm_fit(X, y, mask, n, start_scale, betas, scales, oks) -> RobustFit:
    """From the refined finalists: the S-estimate (the smaller final M-scale), the M-step, the
    covariance, and the fit's validity."""
    scales = jnp.where(oks & jnp.isfinite(start_scale), scales, jnp.inf)
    k = jnp.argmin(scales)
    beta_s, s = betas[k], scales[k]
    defined = jnp.isfinite(s) & (n > _free(X))
    s = jnp.where(defined, s, 1.0)
    beta, m_ok = _m_step(beta_s, s, X, y, mask)
    cov = _avar1(X, jnp.where(mask, y - X @ beta, 0.0), jnp.where(mask, y - X @ beta_s, 0.0), s, mask, n)
    se = jnp.sqrt(jnp.diag(cov))
    ok = defined & m_ok & jnp.all(jnp.isfinite(se) | jnp.all(X == 0, axis=0))  # padded columns' SEs do not count
    nan = jnp.nan
    return RobustFit(coef=jnp.where(ok, beta, nan), se=jnp.where(ok, se, nan), scale=jnp.where(ok, s, nan), converged=ok)
