"""Maximum likelihood with correlated instruments (MendelianRandomization ``mr_maxlik`` with a
``correlation`` matrix), for single-exposure analyses.

R minimises ``f(mu, b) = 1/2 (bx - mu)' Sx^-1 (bx - mu) + 1/2 (by - b mu)' Sy^-1 (by - b mu)``
with ``Sx = (sx sx') o rho``, ``Sy = (sy sy') o rho`` over the ``n + 1`` parameters (Nelder–Mead,
then ``optim``'s numerical Hessian). For fixed ``b`` the optimal ``mu`` is closed form, which
leaves the profile ``f(b) = 1/2 r' (Sy + b^2 Sx)^-1 r`` with ``r = by - b bx``; we minimise it
with Newton steps from the IVW start and take the SE from the exact Hessian of the full
objective (Schur complement). Random effects (``model="default"`` with >= 4 SNPs, or
``"random"``): SE * max(1, sqrt(Q / (n - 1))) with ``Q = 2 min f`` (R's ``Heter.Stat``).
Because Nelder–Mead stops early, R's numbers agree with the exact optimum only to its tolerance.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mrjax.estimators.common import Reason
from mrjax.mv.data import MVInstruments
from mrjax.mv.fit import MVEstimate, assemble, se_multiplier

NEWTON_STEPS = 30


def maxlik(t: MVInstruments, key, *, model: str = "default") -> MVEstimate:
    """ML for the first exposure of a single-exposure analysis (other analyses: NaN, "not
    applicable"); uses ``t.rho`` (identity = independent instruments)."""
    del key
    m = t.mask
    both = m[:, None] & m[None, :]
    x = jnp.where(m, t.bx[:, 0], 0.0)
    y = jnp.where(m, t.by, 0.0)
    sx = jnp.where(m, t.sx[:, 0], 1.0)
    sig_x = jnp.where(both, t.rho * jnp.outer(sx, sx), jnp.eye(m.shape[0]))
    sig_y = jnp.where(both, t.rho * jnp.outer(t.sy, t.sy), jnp.eye(m.shape[0]))

    def profile(b):
        r = y - b * x
        return 0.5 * r @ jnp.linalg.solve(sig_y + b * b * sig_x, r)

    grad = jax.grad(profile)
    hess = jax.grad(grad)
    w = 1.0 / (t.sy * t.sy)
    start = jnp.sum(w * x * y) / jnp.sum(w * x * x)

    def step(_, b):
        h = hess(b)
        trial = b - grad(b) / jnp.where(h > 0, h, jnp.nan)
        return jnp.where(jnp.isfinite(trial) & (profile(trial) <= profile(b) + 1e-300), trial, b)

    b = jax.lax.fori_loop(0, NEWTON_STEPS, step, start)
    a_inv = jnp.linalg.inv(sig_x)
    b_inv = jnp.linalg.inv(sig_y)
    h_mm = a_inv + b * b * b_inv
    mu = jnp.linalg.solve(h_mm, a_inv @ x + b * (b_inv @ y))
    h_mb = b_inv @ (2.0 * b * mu - y)
    h_bb = mu @ b_inv @ mu
    se = jnp.sqrt(1.0 / (h_bb - h_mb @ jnp.linalg.solve(h_mm, h_mb)))
    n = t.nsnp
    q = 2.0 * profile(b)
    rse = jnp.sqrt(q / (n - 1))
    floor = se_multiplier(model, rse, n)
    single = t.nexp == 1
    ok = single & (n >= 2) & (jnp.abs(grad(b)) <= 1e-8 * jnp.maximum(1.0, jnp.abs(hess(b) * b)))
    reason = jnp.where(single, jnp.where(n >= 2, Reason.NOT_CONVERGED, Reason.TOO_FEW_SNPS), Reason.NOT_APPLICABLE)
    kk = t.bx.shape[-1]
    bb = jnp.zeros(kk, t.bx.dtype).at[0].set(b)
    ss = jnp.full(kk, jnp.nan, t.bx.dtype).at[0].set(se * floor)
    return assemble(t, bb, ss, p_df=jnp.inf, ci_df=jnp.inf, ok=ok, reason=reason, q=q, q_df=n - 1)
