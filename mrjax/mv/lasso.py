"""MV-lasso (MendelianRandomization ``mr_mvlasso``): MR-Lasso with several exposures.

The univariable MR-Lasso (:mod:`mrjax.estimators.lasso`) with the exposure direction replaced by
the exposures' span: rows are orientated by ``sign(bx[, orientate])``; with ``Xw = bx / sy`` and
``u = by / sy``, ``P = Xw (Xw' Xw)^-1 Xw'`` is projected out — ``x = (I - P) diag(1/sy)``,
``y = (I - P) u`` — and glmnet's lasso path of ``y`` on ``x`` gives the per-variant pleiotropy;
lambda by the same heterogeneity rule, with the residual SE of the MV-IVW fit on the valid
variants (``#valid - K`` df). Reported: the post-lasso MV-IVW on the valid variants (SE = lm SE /
min(1, sigma), normal CI and p), ``nsnp`` = all variants given (R's ``SNPs``). The rule's floor
of valid variants is ``> K`` (univariable: ``> 1``), our generalisation: R's code was not
available to us, and on the lipids golden every floor up to ``K + 1`` gives R's lambda, valid set
and estimates (b and SE to 1e-15, ``RegEstimate`` to 1e-9: glmnet's precision).
:func:`mv_lasso_fit` also returns the valid set, lambda, ``RegEstimate`` (the MV-IVW of ``by -
a``) and ``RegIntercept`` (``a``). R's ``lambda =`` (a fixed lambda) and ``t-dist`` options
are not offered, nor a correlation matrix (the analysis is then NaN, not applicable).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax.estimators.common import Reason
from mrjax.estimators.lasso import MIN_SNPS, heterogeneity_lasso
from mrjax.mv.data import MVInstruments
from mrjax.mv.fit import MVEstimate, assemble, least_squares, uncorrelated


class MVLassoFit(NamedTuple):
    """Post-lasso ``b``, ``se [K]``; ``valid [S]`` variants; ``lam``; ``reg_estimate [K]``;
    ``reg_intercept [S]`` (orientated units); ``ok``."""

    b: jax.Array
    se: jax.Array
    valid: jax.Array
    lam: jax.Array
    reg_estimate: jax.Array
    reg_intercept: jax.Array
    ok: jax.Array


def mv_lasso_fit(t: MVInstruments, *, orientate: int = 1) -> MVLassoFit:
    """``mr_mvlasso(object, orientate)`` with its defaults (module docstring)."""
    m = t.mask
    sign = jnp.sign(t.bx[:, orientate - 1])  # R's sign(): 0 gives 0
    inv = jnp.where(m, 1.0 / t.sy, 0.0)
    cols = t.xmask.astype(t.bx.dtype)
    xw = t.bx * sign[:, None] * inv[:, None] * cols[None, :]
    u = t.by * sign * inv
    gram = xw.T @ xw + jnp.diag(1.0 - cols)
    proj = xw @ jnp.linalg.solve(gram, xw.T)
    eye = jnp.where(m[:, None] & m[None, :], jnp.eye(m.shape[0], dtype=xw.dtype), 0.0)
    x = (eye - proj) * inv[None, :]
    y = u - proj @ u

    def ivw(rows):
        return least_squares(xw, u, rows, t.xmask)

    choice = heterogeneity_lasso(x, y, m, t.nsnp, lambda keep: ivw(keep).sigma, min_valid=t.nexp)
    post = ivw(choice.valid)
    se = jnp.sqrt(jnp.diag(post.cov)) * jnp.maximum(post.sigma, 1.0)
    reg = jnp.linalg.solve(gram, xw.T @ (u - choice.a * inv))
    ok = uncorrelated(t) & (t.nsnp >= MIN_SNPS) & choice.ok & (jnp.sum(choice.valid) > t.nexp)
    return MVLassoFit(b=post.coef, se=se, valid=choice.valid, lam=choice.lam, reg_estimate=reg,
                      reg_intercept=choice.a, ok=ok)


def mv_lasso(t: MVInstruments, key, *, orientate: int = 1) -> MVEstimate:
    """Method ``mv_lasso``: :func:`mv_lasso_fit`'s post-lasso estimates, normal CI and p."""
    del key
    fit = mv_lasso_fit(t, orientate=orientate)
    reason = jnp.where(uncorrelated(t), jnp.where(t.nsnp >= MIN_SNPS, Reason.NOT_CONVERGED, Reason.TOO_FEW_SNPS),
                       Reason.NOT_APPLICABLE)
    return assemble(t, fit.b, fit.se, p_df=jnp.inf, ci_df=jnp.inf, ok=fit.ok, reason=reason)
