"""Multivariable GMM on principal components of correlated variants (MendelianRandomization
``mr_mvpcgmm``; Patel et al., "Robust use of phenotypic heterogeneity at drug target genes for
mechanistic insights"): :mod:`mrjax.mv.gmm`'s estimator after projecting the SNPs of one gene
region, correlated through the LD matrix ``rho``, onto a few principal components.

Components as R: ``Phi = (u u') o rho`` with ``u_j = sum_k |bx_jk| / sy_j``; ``prcomp(Phi)``
(columns centred, not scaled) and ``r`` the first count whose share of the variance exceeds
``thres`` (or R's ``r`` when given); ``lambda [S, r]`` the first ``r`` principal axes (R's
``sqrt(p) rotation`` orthonormalised, which is the rotation itself). With the first-stage
weights ``a = 1 / (n se^2 + b^2)``, ``A = (sqrt(a) sqrt(a)') o rho`` and ``B = a b`` of the
outcome and of each exposure, projected (``A_f = lambda' A lambda``, ``B_f = lambda' B``):
``gam = A_f^-1 B_f``, ``SigY = A_fy^-1 (1 - B_fy' A_fy^-1 B_fy) / (ny - r + 1)`` and
``SigX(k, l) = (S_k S_l)^-1 (cor.x_kl - B_fk' (S_k S_l)^-1 B_fl) / sqrt((nx_k - r + 1)(nx_l - r + 1))``
(``cor.x``: ``cor_x``, default the identity),
``S_k`` the symmetric square root of ``A_fk``. The moments ``g(theta) = gamY - gamX theta`` have
covariance ``Om(theta) = SigY + kappa / ny I + sum_kl theta_k theta_l SigX(k, l)`` and the estimate
is ``argmin Q = g' Om^-1 g``, then for ``robust`` ``kappa`` the root of ``Q(theta_0; kappa) = r - K``
and ``Q(.; kappa)`` minimised again (both as in :mod:`mrjax.mv.gmm`, whose docstring says where and
why mrjax differs from R: R's ``nlminb`` gradient leaves out ``d Om / d theta`` and stops short;
mrjax reaches the minimum). SE ``sqrt(diag((gamX' Om^-1 gamX)^-1))``; normal CI and p;
``Heter.Stat`` ``Q`` on ``r - K`` df (non-robust); needs ``r > K`` (R: "More principal components
needed").

``Om(theta)`` is inverted inside the minimisation by Gauss-Jordan steps in a ``lax.fori_loop``
(:func:`_spd_inverse`), not LAPACK: LAPACK calls inside vmapped loops deadlocked XLA:CPU
(benchmarks/RESULTS.md, eighteenth session: the mv_cml hang). The Newton steps take ``Q``'s
gradient and Hessian in closed form from that one inverse (:func:`_ratio_derivatives`) and try
the step lengths one at a time; automatic differentiation through the loop and all 40 step
lengths at once made the minimisation 8-10x slower (RESULTS.md, twenty-second session).
Components beyond ``r`` are padding: identity in ``Om``, zero in ``g``. A batch pools its
minimisations (:func:`mrjax.mv.gmm.minimise_pooled`).
Cost (twenty-second session): 64 gene-region analyses (28 variants, 3 exposures, AR(1) LD)
0.14 s warm non-robust, 0.20 s robust; first call 5-6 s of compilation.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax.estimators.common import Reason
from mrjax.mv.data import MVInstruments
from mrjax.mv.fit import MVEstimate, assemble, exposure_correlation, least_squares
from mrjax.mv.gmm import inverse_sizes, kappa_shift, minimise_pooled
from mrjax.mv.strength import minimum_over_directions

THRES = 0.99  # MendelianRandomization 0.10's default thres (the golden's; its vignette text says 0.999)


def _spd_inverse(a):
    """``a^-1`` of a symmetric positive definite ``a [n, n]`` by Gauss-Jordan elimination on the
    diagonal (positive pivots: no pivoting needed), one ``fori_loop`` step per column of plain
    array operations."""
    idx = jnp.arange(a.shape[-1])

    def pivot(j, m):
        p = m[j, j]
        col = m[:, j]
        row = jnp.where(idx == j, 1.0, m[j]) / p
        m = jnp.where(idx[None, :] == j, -col[:, None] / p, m - jnp.outer(col, row))
        return jnp.where(idx[:, None] == j, row[None, :], m)

    inv = jax.lax.fori_loop(0, a.shape[-1], pivot, a)
    return 0.5 * (inv + inv.T)


def _ratio_derivatives(gam, sig, fixed):
    """``v -> (q, dq/dv, d2q/dv2)`` of ``q(v) = g' Om^-1 g`` with ``g = gam v`` (``gam [S, K]``) and
    ``Om = fixed + sum_kl v_k v_l sig(k, l)`` (``sig [K, K, S, S]``, ``sig(l, k) = sig(k, l)'``):
    with ``x = Om^-1 g``, ``M_kl = x' sig(k, l) x`` and ``u_i = gam_i - dOm/dv_i x``,

        dq/dv_i = 2 gam_i' x - 2 (M v)_i,      d2q/dv_i dv_m = 2 u_i' Om^-1 u_m - 2 M_im,

    from one inverse of ``Om`` (:func:`_spd_inverse`) instead of automatic differentiation
    through its loop."""

    def derivatives(v):
        inv = _spd_inverse(fixed + jnp.einsum("k,klab,l->ab", v, sig, v))
        g = gam @ v
        x = inv @ g
        m = jnp.einsum("a,klab,b->kl", x, sig, x)
        u = gam - jnp.einsum("l,ilab,b->ai", v, sig, x) - jnp.einsum("l,liab,b->ai", v, sig, x)
        return g @ x, 2.0 * (gam.T @ x - m @ v), 2.0 * (u.T @ inv @ u - m)

    return derivatives


def _components(t: MVInstruments, thres: float, r):
    """``lambda [S, S]`` (the first ``r`` principal axes of the centred ``Phi`` as columns, the
    others zero), the component mask ``[S]`` and ``r``."""
    width = t.bx.shape[0]
    u = jnp.where(t.mask, jnp.sum(jnp.abs(t.bx) * t.xmask, axis=-1) / t.sy, 0.0)
    phi = jnp.outer(u, u) * t.rho
    centred = jnp.where(t.mask[:, None], phi - jnp.sum(phi, axis=0) / t.nsnp, 0.0)
    values, vectors = jnp.linalg.eigh(centred.T @ centred)
    values, vectors = jnp.maximum(values[::-1], 0.0), vectors[:, ::-1]
    if r is None:
        r = jnp.sum(jnp.cumsum(values) / jnp.sum(values) <= thres) + 1
    comp = jnp.arange(width) < r
    return vectors * comp[None, :], comp, r


class _Moments(NamedTuple):
    gam_y: jax.Array  # [S] (components beyond r zero)
    gam_x: jax.Array  # [S, K]
    sig_y: jax.Array  # [S, S] (identity beyond r)
    sig_x: jax.Array  # [K, K, S, S] (zero beyond r and for padded exposures)
    comp: jax.Array
    r: jax.Array
    xmask: jax.Array


def _sqrtm(a):
    values, vectors = jnp.linalg.eigh(a)
    return (vectors * jnp.sqrt(jnp.maximum(values, 0.0))) @ vectors.T


def _project(t: MVInstruments, lam, se, b, inv_n):
    """``lambda' A lambda`` and ``lambda' B`` of one trait's effects ``b`` (sample size ``1 / inv_n``)."""
    a = jnp.where(t.mask, 1.0 / (se ** 2 / inv_n + b ** 2), 0.0)
    root = jnp.sqrt(a)
    return lam.T @ (jnp.outer(root, root) * t.rho) @ lam, lam.T @ (a * b)


def _exposure_moments(t: MVInstruments, lam, comp, r, inv_nx, cor_x=None):
    """The exposures' first-stage estimates ``gamX [S, K]`` and their covariance blocks
    ``SigX [K, K, S, S]`` on the first ``r`` components (module docstring); zero beyond ``r``
    and for padded exposures; ``cor_x``: R's ``cor.x`` (None: the identity)."""
    k = t.bx.shape[-1]
    cor_x = jnp.eye(k, dtype=t.bx.dtype) if cor_x is None else cor_x
    eye = jnp.eye(comp.shape[0], dtype=t.bx.dtype)
    pad = jnp.diag(1.0 - comp.astype(t.bx.dtype))
    both = comp[:, None] & comp[None, :]
    real = t.xmask
    a_x, b_x = [], []
    for j in range(k):
        a, b = _project(t, lam, t.sx[:, j], jnp.where(real[j], t.bx[:, j], 0.0), inv_nx[j])
        a_x.append(jnp.where(real[j], a + pad, eye))
        b_x.append(b)
    a_x, b_x = jnp.stack(a_x), jnp.stack(b_x, axis=-1)
    gam_x = jnp.stack([jnp.linalg.solve(a_x[j], b_x[:, j]) for j in range(k)], axis=-1) * real
    roots = jax.vmap(_sqrtm)(a_x)
    dof = 1.0 / inv_nx - r + 1
    blocks = []
    for j in range(k):
        row = []
        for m in range(k):
            inv = jnp.linalg.inv(roots[j] @ roots[m])
            scale = (cor_x[j, m] - b_x[:, j] @ inv @ b_x[:, m]) / jnp.sqrt(dof[j] * dof[m])
            row.append(jnp.where(both & real[j] & real[m], inv * scale, 0.0))
        blocks.append(jnp.stack(row))
    return gam_x, jnp.stack(blocks)


def _moments(t: MVInstruments, nx, ny, thres, r, cor_x=None) -> _Moments:
    lam, comp, r = _components(t, thres, r)
    eye = jnp.eye(comp.shape[0], dtype=t.bx.dtype)
    pad = jnp.diag(1.0 - comp.astype(t.bx.dtype))
    both = comp[:, None] & comp[None, :]
    a_y, b_y = _project(t, lam, t.sy, t.by, 1.0 / ny)
    a_y = a_y + pad
    gam_y = jnp.linalg.solve(a_y, b_y)
    sig_y = jnp.where(both, jnp.linalg.inv(a_y) * (1.0 - b_y @ gam_y) / (ny - r + 1), eye)
    gam_x, sig_x = _exposure_moments(t, lam, comp, r, inverse_sizes(nx, t.bx.shape[-1], t.bx.dtype), cor_x)
    return _Moments(gam_y, gam_x, sig_y, sig_x, comp, jnp.asarray(r), t.xmask)


def _covariance(mo: _Moments, theta, shift):
    return mo.sig_y + shift * jnp.diag(mo.comp.astype(theta.dtype)) + jnp.einsum("k,klab,l->ab", theta, mo.sig_x, theta)


def _objective(mo: _Moments, shift):
    def q(theta):
        g = mo.gam_y - mo.gam_x @ theta
        return g @ _spd_inverse(_covariance(mo, theta, shift)) @ g

    return q


def _derivatives(mo: _Moments, shift):
    """``theta -> (Q, dQ/dtheta, d2Q/dtheta2)``: :func:`_ratio_derivatives` at ``v = (1, -theta)``
    of ``gam = [gamY, gamX]`` and ``SigX`` bordered by zeros, ``SigY + kappa / ny I`` fixed."""
    sig = jnp.pad(mo.sig_x, ((1, 0), (1, 0), (0, 0), (0, 0)))
    fixed = mo.sig_y + shift * jnp.diag(mo.comp.astype(mo.sig_y.dtype))
    derivatives = _ratio_derivatives(jnp.concatenate([mo.gam_y[:, None], mo.gam_x], axis=1), sig, fixed)

    def at(theta):
        q, g, h = derivatives(jnp.concatenate([jnp.ones(1, theta.dtype), -theta]))
        return q, -g[1:], h[1:, 1:]

    return at


def _pinned(mo: _Moments):
    return jnp.diag(1.0 - mo.xmask.astype(mo.gam_x.dtype))  # padded exposures: coefficient 0


def mv_pcgmm_batch(ts: MVInstruments, keys, *, nx, ny: float, robust: bool = True, thres: float = THRES,
                   r: int | None = None, cor_x=None) -> MVEstimate:
    """:func:`mv_pcgmm` of every analysis of a batch (``[A, ...]``), equal to it analysis by
    analysis: each minimisation in one pool (:func:`mrjax.mv.gmm.minimise_pooled`)."""
    del keys
    cor_x = exposure_correlation(cor_x, ts.bx.shape[-1], ts.bx.dtype, "mv_pcgmm", "cor_x")
    mo = jax.vmap(lambda t: _moments(t, nx, ny, thres, r, cor_x))(ts)
    starts = jax.vmap(lambda m: least_squares(m.gam_x, m.gam_y, m.comp, m.xmask).coef)(mo)  # R's start: OLS
    zeros = jnp.zeros(ts.by.shape[0], ts.by.dtype)
    theta, converged = minimise_pooled(_objective, _pinned, mo, zeros, starts, _derivatives, one_at_a_time=True)
    shifts = zeros
    if robust:
        def shift_at(m, theta, df):
            g = m.gam_y - m.gam_x @ theta
            values, vectors = jnp.linalg.eigh(_covariance(m, theta, 0.0))
            inside = jnp.sum(jnp.where(m.comp[:, None], vectors * vectors, 0.0), axis=0) > 0.5  # eigenvectors on the r components
            return kappa_shift((vectors.T @ g) ** 2, values, inside, df)

        shifts, settled = jax.vmap(shift_at)(mo, theta, mo.r - ts.nexp)
        theta, again = minimise_pooled(_objective, _pinned, mo, shifts, theta, _derivatives, one_at_a_time=True)
        converged = converged & settled & again
    return jax.vmap(lambda t, m, theta, shift, ok: _finish(t, m, theta, shift, ok, ny, robust))(ts, mo, theta, shifts, converged)


def _finish(t: MVInstruments, mo: _Moments, theta, shift, converged, ny, robust) -> MVEstimate:
    """SE ``sqrt(diag((gamX' Om^-1 gamX)^-1))`` at the estimate, ``Q`` there, and the checks."""
    om = _covariance(mo, theta, shift)
    info = mo.gam_x.T @ jnp.linalg.solve(om, mo.gam_x) + _pinned(mo)
    se = jnp.sqrt(jnp.diag(jnp.linalg.inv(info)))
    df = mo.r - t.nexp
    sized = jnp.all(jnp.isfinite(mo.sig_x)) & jnp.all(jnp.isfinite(mo.sig_y)) & (ny > mo.r - 1)
    ok = (df > 0) & converged & sized
    return assemble(t, theta, se, p_df=jnp.inf, ci_df=jnp.inf, ok=ok,
                    reason=jnp.where(df > 0, Reason.NOT_CONVERGED, Reason.TOO_FEW_SNPS),
                    q=_objective(mo, shift)(theta), q_df=jnp.nan if robust else df,
                    overdispersion=shift * ny if robust else jnp.nan)


def mv_pcgmm(t: MVInstruments, key, *, nx, ny: float, robust: bool = True, thres: float = THRES,
             r: int | None = None, cor_x=None) -> MVEstimate:
    """``mr_mvpcgmm(object, nx = nx, ny = ny, robust = robust, thres = thres, r = r, cor.x = cor_x)``
    (module docstring); ``nx`` one sample size for every exposure or one per exposure column;
    ``cor_x`` the exposures' phenotypic correlation (``K x K``; default the identity, as R)."""
    one = jax.tree_util.tree_map(lambda a: a[None], (t, key))
    return jax.tree_util.tree_map(lambda a: a[0], mv_pcgmm_batch(*one, nx=nx, ny=ny, robust=robust, thres=thres, r=r,
                                                                 cor_x=cor_x))


def pc_cond_f(t: MVInstruments, inv_nx, *, thres: float = THRES, r: int | None = None, cor_x=None):
    """``mr_mvpcgmm``'s ``CondFstat`` of each exposure at the TRUE minimum of its objective, and
    the number of components: for exposure ``j``,
    ``min_theta g' Om_j(theta)^-1 g / (r - K + 1)`` with ``g = gamX_j - gamX_-j theta`` and
    ``Om_j = sum_kl v_k v_l SigX(k, l)``, ``v = e_j - theta`` (R's ``Q.nr`` of its ``condF``,
    on the components chosen as for the estimate; ``inv_nx [K]``: ``1 / nx``; ``cor_x``: R's
    ``cor.x``, default the identity).

    Where we differ from R: as for the independent-variant ``CondFstat``
    (:func:`mrjax.mv.strength.cond_f_min`) R's ``nlminb`` from the OLS start gets a gradient
    that leaves out ``d Om / d theta`` and stops short; mrjax reports the minimum
    (:func:`mrjax.mv.strength.minimum_over_directions`), which every exposure shares. NaN
    without a sample size for every exposure, or with fewer than ``K`` components. Cost: 64
    gene-region analyses 0.22 s warm (benchmarks/RESULTS.md, twenty-second session)."""
    lam, comp, r = _components(t, thres, r)
    gam_x, sig_x = _exposure_moments(t, lam, comp, r, inv_nx, cor_x)
    pad = jnp.diag(1.0 - comp.astype(t.bx.dtype))

    k = t.bx.shape[-1]
    starts = jax.vmap(lambda j: least_squares(gam_x, gam_x[:, j], comp, t.xmask & (jnp.arange(k) != j)).coef)(jnp.arange(k))
    f = minimum_over_directions(_ratio_derivatives(gam_x, sig_x, pad), starts, t.xmask) / (r - t.nexp + 1)
    sized = jnp.all(jnp.where(t.xmask, inv_nx > 0, True)) & jnp.all(jnp.isfinite(sig_x))
    return jnp.where(t.xmask & sized & (r >= t.nexp), f, jnp.nan), r
