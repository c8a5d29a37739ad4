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
``Heter.Stat``: ``Q`` at the estimate (``q``), on ``p - K`` df for the non-robust fit.

Where we differ from R, and why: R minimises ``Q`` with ``nlminb`` from the unweighted least
squares start but passes the gradient ``2 G' Om^-1 g``, which leaves out ``d Om / d theta``;
``nlminb`` then stops with "false convergence (8)" short of the minimum (lipids -> CHD golden,
``mvgmm_nlminb_diagnostics``: non-robust ``Q`` 47.509 where the minimum is 47.368, the point
``nlminb`` reaches without the gradient). mrjax takes the minimum itself — guarded Newton steps
with the exact derivatives (:func:`mrjax.mv.ivwme.newton_minimise`) from R's start — and so the robust
``kappa`` at the true first estimate (17.746 there; R 17.369 at its stopped point). ``kappa`` is
the exact root (Newton's iteration on the convex, decreasing ``Q(theta_0; .)`` from 0), where R's
``uniroot`` stops within 1.2e-4 and stops with an error when the root exceeds 20 (its bracket's
upper end then lies below the lower). Where ``Q`` has no finite minimum — it keeps falling as
``|theta|`` grows along a direction the exposure data hardly identify (21 of the MV benchmark's
731 analyses at nx = ny = 50,000; scipy runs off too) — the analysis is NaN (did not converge),
where R's ``nlminb`` reports wherever it stopped. With a correlation matrix (R's ``ld``, the matrices no
longer diagonal) the analysis is NaN (not applicable); ``cor.x`` is the identity.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mrjax.estimators.common import Reason
from mrjax.mv.data import MVInstruments
from mrjax.mv.fit import MVEstimate, assemble, exposure_effects, least_squares, uncorrelated
from mrjax.mv.ivwme import newton_minimise
from mrjax.mv.strength import snp_quadratic, condfstat_sigma

KAPPA_STEPS = 60
KAPPA_TOL = 1e-13  # relative change of kappa / ny at which its Newton iteration stops


def _inverse_sizes(nx, k: int, dtype):
    """``1 / nx`` as ``[k]``: ``nx`` one number for every exposure or one per exposure column."""
    if isinstance(nx, (tuple, list)) and len(nx) != k:
        raise ValueError(f"mv_gmm: nx gives {len(nx)} sample sizes for analyses padded to {k} exposures; "
                         "give one number, or one per exposure column")
    return 1.0 / jnp.broadcast_to(jnp.asarray(nx, dtype), (k,))


def _outcome_variance(t: MVInstruments, ny):
    """``sy~_j^2`` (module docstring): R's ``SigY`` for independent variants, ``[S]``."""
    w = t.sy ** 2 + t.by ** 2 / ny  # 1 / (ny a_j)
    c = jnp.sum(jnp.where(t.mask, t.by ** 2 / w, 0.0)) / ny
    return w * (1.0 - c) / (1.0 - (t.nsnp - 1) / ny)


def _kappa_shift(e2, om, rows, df):
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


def mv_gmm(t: MVInstruments, key, *, nx, ny: float, robust: bool = True) -> MVEstimate:
    """``mr_mvgmm(object, nx = nx, ny = ny, robust = robust)`` (module docstring) for independent
    variants; ``nx`` one sample size for every exposure or one per exposure column; needs
    ``nsnp > K``."""
    del key
    k = t.bx.shape[-1]
    m = t.mask.astype(t.bx.dtype)
    bx, _ = exposure_effects(t)
    cols = t.xmask.astype(t.bx.dtype)
    sig_x = condfstat_sigma(t, _inverse_sizes(nx, k, t.bx.dtype), jnp.eye(k, dtype=t.bx.dtype))
    sig_x = sig_x * jnp.outer(cols, cols)  # padded exposures leave Q alone
    sig_y = jnp.where(t.mask, _outcome_variance(t, ny), 1.0)

    def variance(theta, shift):
        return sig_y + shift + snp_quadratic(sig_x, theta)

    def objective(shift):
        def q(theta):
            e = (t.by - bx @ theta) * m
            return jnp.sum(e * e / variance(theta, shift))

        return q

    pinned = jnp.diag(1.0 - t.xmask.astype(t.bx.dtype))  # padded exposures: coefficient 0
    start = least_squares(bx, t.by, t.mask, t.xmask).coef  # R's nlminb start: unweighted least squares
    zero = jnp.zeros((), t.bx.dtype)
    theta, converged = newton_minimise(objective(zero), pinned, start)
    df = t.nsnp - t.nexp
    shift = zero
    if robust:
        e = (t.by - bx @ theta) * m
        shift, settled = _kappa_shift(e * e, variance(theta, zero), t.mask, df)
        theta, again = newton_minimise(objective(shift), pinned, theta)
        converged = converged & settled & again
    om = variance(theta, shift)
    info = (bx * (m / om)[:, None]).T @ bx + pinned
    se = jnp.sqrt(jnp.diag(jnp.linalg.inv(info)))
    q = objective(shift)(theta)
    independent = uncorrelated(t)
    # R's outcome variance turns negative for ny <= nsnp - 1, as SigX does for small nx (then NaN)
    sized = jnp.all(jnp.isfinite(sig_x)) & (ny > t.nsnp - 1)
    ok = independent & (df > 0) & converged & sized
    reason = jnp.where(independent, jnp.where(df > 0, Reason.NOT_CONVERGED, Reason.TOO_FEW_SNPS), Reason.NOT_APPLICABLE)
    return assemble(t, theta, se, p_df=jnp.inf, ci_df=jnp.inf, ok=ok, reason=reason, q=q,
                    q_df=jnp.nan if robust else df)
