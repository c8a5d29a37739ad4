"""Instrument strength and validity of an MV analysis (MVMR ``strength_mvmr`` /
``pleiotropy_mvmr``; the minimum of MendelianRandomization's conditional-F objective).

``sigma [S, K, K]`` is the covariance of each SNP's exposure effects: ``diag(sx^2)`` for
MVMR's ``gencov = 0``, or ``pcor o (sx sx')`` for ``gencov = phenocov_mvmr(pcor, sx)``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax.estimators.lmrob import small_solve
from mrjax.mv.data import MVInstruments
from mrjax.mv.fit import least_squares, whiten
from mrjax.stats import chi2_sf

NEWTON_STEPS = 40
SETTLED = 1e-9  # minimum_over_directions stops once an accepted step moves v less than this,
DECREMENT = 1e-14  # or once the Newton decrement g' H^-1 g is below this, relative to max(1, q)


class Strength(NamedTuple):
    """``f [K]``: MVMR conditional F; ``cond_f [K]``: minimum of the conditional-F objective
    (see :func:`cond_f_min`), NaN for padded exposures; ``pcs``: the principal components of
    the PC-GMM conditional F where that replaced it (``mrjax.engine.run_mv_strength``)."""

    f: jax.Array
    cond_f: jax.Array
    pcs: jax.Array | None = None


class Pleiotropy(NamedTuple):
    """MVMR ``pleiotropy_mvmr``: ``q`` on ``df = nsnp - K - 1`` with chi-square ``pval``."""

    q: jax.Array
    df: jax.Array
    pval: jax.Array


def _others_fit(t: MVInstruments, j):
    """Unweighted OLS (no intercept) of ``bx[, j]`` on the other exposures: ``delta [K]``
    (0 at ``j`` and at padding) and the residuals ``[S]``."""
    k = t.bx.shape[-1]
    others = t.xmask & (jnp.arange(k) != j)
    fit = least_squares(t.bx, t.bx[:, j], t.mask, others)
    resid = jnp.where(t.mask, t.bx[:, j] - t.bx @ fit.coef, 0.0)
    return fit.coef, resid


def snp_quadratic(sigma, v):
    """``v' sigma_s v`` for every SNP ``s``."""
    return jnp.einsum("k,skl,l->s", v, sigma, v)


def conditional_f(t: MVInstruments, sigma) -> jax.Array:
    """MVMR ``strength_mvmr``: for exposure ``j``, ``delta`` = OLS of ``bx_j`` on ``bx_-j``,
    ``v = e_j - delta``, ``F_j = sum_s (bx_sj - bx_s,-j delta)^2 / (v' sigma_s v) / nsnp``
    (divided by the number of SNPs, as coded in MVMR 0.4.6)."""
    k = t.bx.shape[-1]

    def one(j):
        delta, resid = _others_fit(t, j)
        v = jnp.zeros(k, t.bx.dtype).at[j].set(1.0) - delta
        den = jnp.where(t.mask, snp_quadratic(sigma, v), 1.0)
        return jnp.sum(jnp.where(t.mask, resid * resid / den, 0.0)) / t.nsnp

    f = jax.vmap(one)(jnp.arange(k))
    return jnp.where(t.xmask & (t.nsnp > t.nexp), f, jnp.nan)


def condfstat_sigma(t: MVInstruments, inv_nx, cor_x) -> jax.Array:
    """The per-SNP covariance ``[S, K, K]`` that MendelianRandomization's internal
    ``condFstat(bx, sx, nx, ld = I, cor.x)`` (called by ``mr_mvivw(..., nx)``) puts in its
    objective. With ``a_sk = 1 / (nx_k sx_sk^2 + bx_sk^2)`` and the J x J blocks of its
    ``SigX`` diagonal (independent SNPs), ``SigX(k, l)`` at SNP ``s`` is

        (cor.x_kl - c_kl) / sqrt(a_sk a_sl (nx_k - J + 1) (nx_l - J + 1)),
        c_kl = sum_s sqrt(a_sk a_sl) bx_sk bx_sl          (J = nsnp),

    the first-stage estimates ``solve(Ax) (a bx)`` being ``bx`` again. Written with
    ``u = 1 / nx`` (``inv_nx [K]``) so that ``u = 0`` (no sample size) is the ``nx -> inf``
    limit ``cor.x o (sx sx')``. ``nx <= J - 1`` or a ``cor.x - c`` that is not positive
    definite (R's objective then goes negative: ``mr_mvivw`` reports NA) gives NaN."""
    x = t.xmask
    w = jnp.where(x, t.sx * t.sx + inv_nx * t.bx * t.bx, 1.0)
    z = jnp.where(t.mask[:, None] & x, t.bx / jnp.sqrt(w), 0.0)
    c = jnp.sqrt(jnp.outer(inv_nx, inv_nx)) * (z.T @ z)
    shrink = 1.0 - (t.nsnp - 1) * inv_nx
    d = w / jnp.where(x, shrink, 1.0)
    middle = jnp.where(jnp.outer(x, x), cor_x - c, jnp.eye(x.shape[0], dtype=w.dtype))
    # Not positive definite (or nx too small): Q has no finite minimum; R reports NA.
    ok = jnp.all(jnp.where(x, shrink, 1.0) > 0) & (jnp.linalg.eigvalsh(middle)[0] > 0)
    return jnp.where(ok, middle[None] * jnp.sqrt(d[:, :, None] * d[:, None, :]), jnp.nan)


def cond_f_min(t: MVInstruments, sigma) -> jax.Array:
    """MendelianRandomization's ``CondFstat`` at the TRUE minimum of its objective: for
    exposure ``j``, ``min_theta Q_j(theta) / (nsnp - K + 1)`` with
    ``Q_j(theta) = sum_s (bx_sj - bx_s,-j theta)^2 / (v' sigma_s v)``, ``v = e_j - theta``
    (Sanderson, Spiller & Bowden 2021; ``sigma`` from :func:`condfstat_sigma` gives exactly
    R's ``Q.nr``, which is ``g' Om(theta)^-1 g`` with ``Om`` diagonal for independent SNPs).

    Where we differ from R: ``condFstat`` minimises ``Q.nr`` with ``nlminb`` from the OLS start
    but passes the gradient ``2 G' Om^-1 g``, which ignores ``d Om / d theta``; ``nlminb`` then
    stops with "false convergence (8)" at or near the start (lipids -> CHD golden,
    ``mvivw_condF_diagnostics``: R reports 20.26, 12.95, 13.35 where the minimum is 12.1866 for
    all three). We report the minimum, which every exposure shares — damped Newton steps with
    the exact derivatives from each exposure's OLS start (:func:`minimum_over_directions`).
    SNP correlation (R's ``ld``) is not used here: for correlated variants see
    :func:`mrjax.mv.pcgmm.pc_cond_f`.
    """
    def qv(v):
        r = t.bx @ v
        den = jnp.where(t.mask, snp_quadratic(sigma, v), 1.0)
        return jnp.sum(jnp.where(t.mask, r * r / den, 0.0))

    starts = jax.vmap(lambda j: _others_fit(t, j)[0])(jnp.arange(t.bx.shape[-1]))
    f = minimum_over_directions(autodiff(qv), starts, t.xmask) / (t.nsnp - t.nexp + 1)
    return jnp.where(t.xmask & (t.nsnp > t.nexp), f, jnp.nan)


def autodiff(qv):
    """``v -> (qv(v), dqv/dv, d2qv/dv2)`` by automatic differentiation, for
    :func:`minimum_over_directions`."""
    return lambda v: (qv(v), jax.grad(qv)(v), jax.hessian(qv)(v))


def minimum_over_directions(derivatives, starts, xmask) -> jax.Array:
    """The minimum over directions ``v`` (over the real exposures) of a conditional-F objective
    ``qv`` (``derivatives(v)``: ``qv(v)``, its gradient and Hessian in ``v``), which is each
    exposure's ``min_theta qv(e_j - theta)``: ``qv`` is invariant to rescaling ``v`` and
    continuous, so the infimum over ``v_j = 1`` is the minimum over all directions, for every
    ``j`` (where the minimising direction has ``v_j = 0``, R's ``theta`` would run off to infinity).

    From each exposure's ``e_j - starts[j]``, damped Newton steps with the exact derivatives in
    the chart ``v = e_c - theta`` of the largest ``|v_c|`` (switched as ``v`` turns, so ``theta``
    stays bounded), until the Newton decrement is below ``DECREMENT`` relative to ``max(1, q)``
    or an accepted step moves ``v`` by <= ``SETTLED`` (at most ``NEWTON_STEPS``); the smallest
    of these minima (``qv`` is not convex), the same for every exposure."""
    k = starts.shape[-1]
    dtype = starts.dtype
    eye = jnp.eye(k, dtype=dtype)
    real = xmask.astype(dtype)

    def chart(v):  # the real exposure of largest |v_c|, and v scaled to v_c = 1
        c = jnp.argmax(jnp.where(xmask, jnp.abs(v), -1.0))
        return c, v / v[c]

    def at(v, c):  # qv and its derivatives in the free coordinates theta of chart c
        free = real * (jnp.arange(k) != c)
        q, g, h = derivatives(v)
        return q, -free * g, h * jnp.outer(free, free) + jnp.diag(1.0 - free)

    def step(carry):
        it, v, c, damp, _, now = carry
        q, g, h = now
        move = small_solve(h + damp * jnp.diag(jnp.diag(h)), g)  # 0 at c and at padding
        c_trial, trial = chart(v + move)  # theta - move in chart c
        then = at(trial, c_trial)
        better = then[0] <= q
        decrement = g @ small_solve(h, g)  # ~2 (q - min q) where h is positive definite
        # done at the minimum (to rounding: q can no longer tell the steps apart), once an
        # accepted step no longer moves v, or when the step is not finite
        done = (~jnp.all(jnp.isfinite(move)) | (jnp.abs(decrement) <= DECREMENT * jnp.maximum(1.0, q))
                | (better & (jnp.max(jnp.abs(move)) <= SETTLED * (1.0 + jnp.max(jnp.abs(v))))))
        kept = jax.tree_util.tree_map(lambda a, b: jnp.where(better, a, b), then, now)
        return (it + 1, jnp.where(better, trial, v), jnp.where(better, c_trial, c),
                jnp.where(better, damp * 0.1, damp * 10.0), done, kept)

    def minimise(j, theta0):
        c, v = chart(eye[j] - real * (jnp.arange(k) != j) * theta0)
        start = (0, v, c, jnp.asarray(1e-3, dtype), False, at(v, c))
        return jax.lax.while_loop(lambda s: (s[0] < NEWTON_STEPS) & ~s[4], step, start)[5][0]

    minima = jax.vmap(minimise)(jnp.arange(k), starts)
    return jnp.full(k, jnp.min(jnp.where(xmask, minima, jnp.inf)))


def strength(t: MVInstruments, sigma, inv_nx, cor_x) -> Strength:
    """Both strength statistics of one analysis: MVMR's with ``sigma``, R's ``CondFstat`` with
    ``inv_nx [K]`` (``1 / nx``, 0 when unknown) and ``cor_x [K, K]``."""
    return Strength(f=conditional_f(t, sigma), cond_f=cond_f_min(t, condfstat_sigma(t, inv_nx, cor_x)))


def pleiotropy(t: MVInstruments, sigma) -> Pleiotropy:
    """MVMR ``pleiotropy_mvmr``: ``theta`` = MV-IVW (``lm(by ~ -1 + bx, weights = 1/sy^2)``),
    ``Q = sum((by - bx theta)^2 / (sy^2 + theta' sigma_s theta))`` on ``nsnp - K - 1`` df —
    the package's df as coded (one less than the ``nsnp - K`` of an MV-IVW fit)."""
    xw, yw = whiten(t, t.bx, t.by)
    theta = least_squares(xw, yw, t.mask, t.xmask).coef
    r = t.by - t.bx @ theta
    den = jnp.where(t.mask, t.sy * t.sy + snp_quadratic(sigma, theta), 1.0)
    q = jnp.sum(jnp.where(t.mask, r * r / den, 0.0))
    df = t.nsnp - t.nexp - 1
    ok = df > 0
    return Pleiotropy(q=jnp.where(ok, q, jnp.nan), df=df, pval=jnp.where(ok, chi2_sf(q, df), jnp.nan))
