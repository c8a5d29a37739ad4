"""Multivariable GMM (MendelianRandomization ``mr_mvgmm``; the independent-variant case of the PC-GMM
of Patel et al., "Robust use of phenotypic heterogeneity at drug target genes for mechanistic
insights"): a limited-information (continuously updated) GMM estimate, with a plug-in
over-dispersion for pleiotropic heterogeneity when ``robust``.

For independent variants (R's ``ld`` the identity) every matrix of R's code is diagonal in the
SNPs, and with the first-stage weights ``a_j = 1 / (ny sy_j^2 + by_j^2)`` its moments
``g(theta) = by - Bx theta`` have, SNP by SNP, the variance

    ``Om_j(theta) = sy~_j^2 + kappa / ny + theta' SigX_j theta``,
    ``sy~_j^2 = (ny sy_j^2 + by_j^2) (1 - sum_j a_j by_j^2) / (ny - p + 1)``,

``SigX_j`` the exposures' ``K x K`` block of R's ``SigX`` (:func:`mrjax.mv.strength.condfstat_sigma`,
the same as in ``CondFstat``; ``p`` the number of SNPs). The estimate is
``argmin Q(theta) = sum_j g_j^2 / Om_j``: first with ``kappa = 0``; with ``robust`` ``kappa`` is
then the root of ``Q(theta_0; kappa) = p - K`` at that first estimate (0 where ``Q(theta_0; 0)``
is already at or below ``p - K``: R's ``max(0, kappa)``), and ``Q(.; kappa)`` is minimised again
from ``theta_0``. SE from ``(G' Om^-1 G)^-1``, ``G = -Bx``, at the estimate; normal CI and p.
``Heter.Stat``: ``Q`` at the estimate (``q``), on ``p - K`` df for the non-robust fit; R's
``Overdispersion``: ``kappa`` of the robust fit (``overdispersion``).

Where we differ from R, and why: R minimises ``Q`` with ``nlminb`` from the unweighted least
squares start but passes the gradient ``2 G' Om^-1 g``, which leaves out ``d Om / d theta``;
``nlminb`` then stops with "false convergence (8)" short of the minimum (lipids -> CHD golden,
``mvgmm_nlminb_diagnostics``: non-robust ``Q`` 47.509 where the minimum is 47.368, the point
``nlminb`` reaches without the gradient). mrjax takes the minimum itself — guarded Newton steps
with the exact derivatives (:func:`mrjax.mv.ivwme.newton_minimise`'s) from R's start — and so the robust
``kappa`` at the true first estimate (17.746 there; R 17.369 at its stopped point). ``kappa`` is
the exact root (Newton's iteration on the convex, decreasing ``Q(theta_0; .)`` from 0), where R's
``uniroot`` stops within 1.2e-4 and stops with an error when the root exceeds 20 (its bracket's
upper end then lies below the lower). Where ``Q`` has no finite minimum — it keeps falling as
``|theta|`` grows along a direction the exposure data hardly identify (21 of the MV benchmark's
731 analyses at nx = ny = 50,000; scipy runs off too) — the analysis is NaN (did not converge),
where R's ``nlminb`` reports wherever it stopped. With a correlation matrix (R's ``ld``, the matrices no
longer diagonal) the analysis is NaN (not applicable); ``cor.x`` (``cor_x``, the exposures'
phenotypic correlation in ``SigX``) defaults to the identity, as in R.

A batch runs each of its minimisations in one pool (:func:`mrjax.estimators.pool.pooled_while`):
most analyses converge in a few Newton steps, the few without a minimum run to the cap alone
(731 benchmark analyses: 0.30 -> 0.08 s warm, benchmarks/RESULTS.md).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax.estimators.common import Reason
from mrjax.estimators.pool import pooled_while
from mrjax.mv.data import MVInstruments
from mrjax.mv.fit import MVEstimate, assemble, exposure_correlation, exposure_effects, least_squares, uncorrelated
from mrjax.mv.ivwme import newton_going, newton_start, newton_step
from mrjax.mv.strength import condfstat_sigma, snp_quadratic

KAPPA_STEPS = 60
KAPPA_TOL = 1e-13  # relative change of kappa / ny at which its Newton iteration stops
# Analyses minimised at once: this fraction of a batch, at least MIN_SLOTS (see minimise_pooled).
SLOT_FRACTION = 1 / 64
MIN_SLOTS = 8


def inverse_sizes(nx, k: int, dtype):
    """``1 / nx`` as ``[k]``: ``nx`` one number for every exposure or one per exposure column."""
    if isinstance(nx, (tuple, list)) and len(nx) != k:
        raise ValueError(f"nx gives {len(nx)} sample sizes for analyses padded to {k} exposures; "
                         "give one number, or one per exposure column")
    return 1.0 / jnp.broadcast_to(jnp.asarray(nx, dtype), (k,))


def _outcome_variance(t: MVInstruments, ny):
    """``sy~_j^2`` (module docstring): R's ``SigY`` for independent variants, ``[S]``."""
    w = t.sy ** 2 + t.by ** 2 / ny  # 1 / (ny a_j)
    c = jnp.sum(jnp.where(t.mask, t.by ** 2 / w, 0.0)) / ny
    return w * (1.0 - c) / (1.0 - (t.nsnp - 1) / ny)


def kappa_shift(e2, om, rows, df):
    """``s = kappa / ny >= 0`` with ``sum_j e2_j / (om_j + s) = df`` (0 where the sum at ``s = 0``
    is already at or below ``df``) by Newton's method from 0, which on this convex, decreasing
    function climbs to the root monotonically; returns ``s`` and whether it settled. Only
    ``rows`` count."""
    e2 = jnp.where(rows, e2, 0.0)
    om = jnp.where(rows, om, 1.0)
    scale = jnp.max(jnp.where(rows, om, 0.0))

    def f(s):
        return jnp.sum(e2 / (om + s)) - df

    def step(c):
        it, s, _ = c
        new = s - f(s) / -jnp.sum(e2 / (om + s) ** 2)
        new = jnp.maximum(new, s)  # monotone from the left; rounding never steps back
        return it + 1, new, jnp.abs(new - s) <= KAPPA_TOL * jnp.maximum(new, scale)

    zero = jnp.zeros((), om.dtype)
    over = f(zero) > 0
    _, s, settled = jax.lax.while_loop(lambda c: (c[0] < KAPPA_STEPS) & ~c[2], step, (0, zero, ~over))
    return s, settled


class _Data(NamedTuple):
    """One analysis's moments: outcome effects ``by [S]``, exposure effects ``bx [S, K]``
    (padded rows and columns zero), ``sig_x [S, K, K]`` (padded exposures zero), ``sig_y [S]``
    (1 in padded rows), ``mask [S]``, ``xmask [K]``."""

    by: jax.Array
    bx: jax.Array
    sig_x: jax.Array
    sig_y: jax.Array
    mask: jax.Array
    xmask: jax.Array


def _data(t: MVInstruments, nx, ny, cor_x=None) -> _Data:
    k = t.bx.shape[-1]
    cols = t.xmask.astype(t.bx.dtype)
    sig_x = condfstat_sigma(t, inverse_sizes(nx, k, t.bx.dtype), jnp.eye(k, dtype=t.bx.dtype) if cor_x is None else cor_x)
    bx, _ = exposure_effects(t)
    return _Data(t.by, bx, sig_x * jnp.outer(cols, cols), jnp.where(t.mask, _outcome_variance(t, ny), 1.0),
                 t.mask, t.xmask)


def _variance(d: _Data, theta, shift):
    """``Om_j(theta)`` with ``shift = kappa / ny``."""
    return d.sig_y + shift + snp_quadratic(d.sig_x, theta)


def _objective(d: _Data, shift):
    """``Q(theta; kappa) = sum_j g_j^2 / Om_j(theta)`` over the real SNPs."""

    def q(theta):
        e = jnp.where(d.mask, d.by - d.bx @ theta, 0.0)
        return jnp.sum(e * e / _variance(d, theta, shift))

    return q


def _pinned(d: _Data):
    return jnp.diag(1.0 - d.xmask.astype(d.bx.dtype))  # padded exposures: coefficient 0


def minimise_pooled(objective, pinned, data, shifts, starts, derivatives=None, one_at_a_time: bool = False):
    """``argmin objective(d, shift)`` of every analysis (``data`` and ``shifts`` with a leading
    analysis axis; ``pinned(d)`` the K x K matrix that holds padded exposures at 0) from its
    start, by :func:`newton_minimise`'s steps in :func:`pooled_while` slots: most analyses
    converge in a few steps, and those whose ``Q`` has no finite minimum run to the step cap
    without holding the others. ``derivatives(d, shift)``: ``theta -> (Q, gradient, Hessian)``
    (default: automatic differentiation of ``Q``); ``one_at_a_time``: :func:`newton_step`'s.
    ``(theta, converged)``; also mv_pcgmm's."""
    closed_form = (lambda d, shift: None) if derivatives is None else derivatives

    def load(a):
        d, shift = jax.tree_util.tree_map(lambda x: x[a], (data, shifts))
        return d, shift, newton_start(objective(d, shift), pinned(d), starts[a], derivatives=closed_form(d, shift))

    def step(c):
        d, shift, state = c
        return d, shift, newton_step(objective(d, shift), pinned(d), state, derivatives=closed_form(d, shift),
                                     one_at_a_time=one_at_a_time)

    n = starts.shape[0]
    return pooled_while(load, lambda c: newton_going(c[2]), step, n, max(MIN_SLOTS, int(n * SLOT_FRACTION)),
                        keep=lambda c: (c[2].theta, c[2].done))


def mv_gmm_batch(ts: MVInstruments, keys, *, nx, ny: float, robust: bool = True, cor_x=None) -> MVEstimate:
    """:func:`mv_gmm` of every analysis of a batch (``[A, ...]``), equal to it analysis by
    analysis: each minimisation of the batch in one pool (:func:`minimise_pooled`)."""
    del keys
    cor_x = exposure_correlation(cor_x, ts.bx.shape[-1], ts.bx.dtype, "mv_gmm", "cor_x")
    data = jax.vmap(lambda t: _data(t, nx, ny, cor_x))(ts)
    starts = jax.vmap(lambda t, d: least_squares(d.bx, t.by, t.mask, t.xmask).coef)(ts, data)  # R's start: OLS
    zeros = jnp.zeros(ts.by.shape[0], ts.by.dtype)
    theta, converged = minimise_pooled(_objective, _pinned, data, zeros, starts)
    shifts = zeros
    df = ts.nsnp - ts.nexp
    if robust:
        def shift_at(d, theta, df):
            e = jnp.where(d.mask, d.by - d.bx @ theta, 0.0)
            return kappa_shift(e * e, _variance(d, theta, 0.0), d.mask, df)

        shifts, settled = jax.vmap(shift_at)(data, theta, df)
        theta, again = minimise_pooled(_objective, _pinned, data, shifts, theta)
        converged = converged & settled & again
    return jax.vmap(lambda t, d, theta, shift, ok: _finish(t, d, theta, shift, ok, ny, robust))(
        ts, data, theta, shifts, converged)


def _finish(t: MVInstruments, d: _Data, theta, shift, converged, ny, robust) -> MVEstimate:
    """SE ``sqrt(diag((Bx' Om^-1 Bx)^-1))`` at the estimate, ``Q`` there, and the checks."""
    om = _variance(d, theta, shift)
    info = (d.bx * (d.mask / om)[:, None]).T @ d.bx + _pinned(d)
    se = jnp.sqrt(jnp.diag(jnp.linalg.inv(info)))
    df = t.nsnp - t.nexp
    independent = uncorrelated(t)
    # R's outcome variance turns negative for ny <= nsnp - 1, as SigX does for small nx (then NaN)
    sized = jnp.all(jnp.isfinite(d.sig_x)) & (ny > t.nsnp - 1)
    ok = independent & (df > 0) & converged & sized
    reason = jnp.where(independent, jnp.where(df > 0, Reason.NOT_CONVERGED, Reason.TOO_FEW_SNPS), Reason.NOT_APPLICABLE)
    return assemble(t, theta, se, p_df=jnp.inf, ci_df=jnp.inf, ok=ok, reason=reason,
                    q=_objective(d, shift)(theta), q_df=jnp.nan if robust else df,
                    overdispersion=shift * ny if robust else jnp.nan)


def mv_gmm(t: MVInstruments, key, *, nx, ny: float, robust: bool = True, cor_x=None) -> MVEstimate:
    """``mr_mvgmm(object, nx = nx, ny = ny, robust = robust, cor.x = cor_x)`` (module docstring)
    for independent variants; ``nx`` one sample size for every exposure or one per exposure
    column; ``cor_x`` the exposures' phenotypic correlation (``K x K``, default the identity:
    R's when ``cor.x`` is missing); needs ``nsnp > K``."""
    one = jax.tree_util.tree_map(lambda a: a[None], (t, key))
    return jax.tree_util.tree_map(lambda a: a[0], mv_gmm_batch(*one, nx=nx, ny=ny, robust=robust, cor_x=cor_x))
