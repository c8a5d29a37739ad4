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

``Om(theta)``'s solve inside the minimisation is a Cholesky written with ``lax.fori_loop``
(:func:`_spd_solve`), not LAPACK: LAPACK calls inside vmapped loops deadlocked XLA:CPU
(:mod:`mrjax.mv.cml`). Components beyond ``r`` are padding: identity in ``Om``, zero in ``g``.
A batch pools its minimisations (:func:`mrjax.mv.gmm.minimise_pooled`). Cost (benchmarks/RESULTS.md,
twentieth session): the lipids analysis 0.06 s warm robust (R: 0.20 s), 64 benchmark analyses
4.4 s (non-robust 3.9 s; 11.3 s vmapped: 3 of them have no finite minimum), first call 12–47 s of
compilation; every Newton step runs the loops of the Cholesky for 40 step lengths and through the
autodiff Hessian.
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


def _spd_solve(a, b):
    """``a^-1 b`` for a symmetric positive definite ``a [n, n]``: Cholesky ``a = L L'`` column by
    column, then the two triangular solves, each a ``fori_loop`` of plain array operations."""
    n = a.shape[-1]
    idx = jnp.arange(n)

    def column(j, low):
        row = low[j]
        d = jnp.sqrt(a[j, j] - jnp.sum(jnp.where(idx < j, row * row, 0.0)))
        below = (a[:, j] - low @ jnp.where(idx < j, row, 0.0)) / d
        return low.at[:, j].set(jnp.where(idx > j, below, jnp.where(idx == j, d, 0.0)))

    low = jax.lax.fori_loop(0, n, column, jnp.zeros_like(a))

    def forward(i, y):
        return y.at[i].set((b[i] - jnp.sum(jnp.where(idx < i, low[i] * y, 0.0))) / low[i, i])

    y = jax.lax.fori_loop(0, n, forward, jnp.zeros_like(b))

    def backward(k, x):
        i = n - 1 - k
        return x.at[i].set((y[i] - jnp.sum(jnp.where(idx > i, low[:, i] * x, 0.0))) / low[i, i])

    return jax.lax.fori_loop(0, n, backward, jnp.zeros_like(b))


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
        return g @ _spd_solve(_covariance(mo, theta, shift), g)

    return q


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
    theta, converged = minimise_pooled(_objective, _pinned, mo, zeros, starts)
    shifts = zeros
    if robust:
        def shift_at(m, theta, df):
            g = m.gam_y - m.gam_x @ theta
            values, vectors = jnp.linalg.eigh(_covariance(m, theta, 0.0))
            inside = jnp.sum(jnp.where(m.comp[:, None], vectors * vectors, 0.0), axis=0) > 0.5  # eigenvectors on the r components
            return kappa_shift((vectors.T @ g) ** 2, values, inside, df)

        shifts, settled = jax.vmap(shift_at)(mo, theta, mo.r - ts.nexp)
        theta, again = minimise_pooled(_objective, _pinned, mo, shifts, theta)
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
    (:func:`mrjax.mv.strength.minimum_over_directions`), which is shared by every exposure
    whose coefficient is not 0 in the minimising direction. NaN without a sample size for every
    exposure, or with fewer than ``K`` components. Cost: 64 gene-region analyses 14 s warm, 5x a
    scipy loop (benchmarks/RESULTS.md, twenty-first session: the Newton steps' Hessian through
    :func:`_spd_solve`)."""
    lam, comp, r = _components(t, thres, r)
    gam_x, sig_x = _exposure_moments(t, lam, comp, r, inv_nx, cor_x)
    pad = jnp.diag(1.0 - comp.astype(t.bx.dtype))

    def qv(v):
        g = gam_x @ v
        return g @ _spd_solve(jnp.einsum("k,klab,l->ab", v, sig_x, v) + pad, g)

    k = t.bx.shape[-1]
    starts = jax.vmap(lambda j: least_squares(gam_x, gam_x[:, j], comp, t.xmask & (jnp.arange(k) != j)).coef)(jnp.arange(k))
    f = minimum_over_directions(qv, starts, t.xmask) / (r - t.nexp + 1)
    sized = jnp.all(jnp.where(t.xmask, inv_nx > 0, True)) & jnp.all(jnp.isfinite(sig_x))
    return jnp.where(t.xmask & sized & (r >= t.nexp), f, jnp.nan), r
