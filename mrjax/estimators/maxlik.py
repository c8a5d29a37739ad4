"""MendelianRandomization 0.10.0 ``mr_maxlik`` for uncorrelated instruments (``psi = 0``).

``mr_maxlik`` maximises the same likelihood as TwoSampleMR's ``mr_two_sample_ml`` (the
``n + 1`` parameters ``beta`` and the true ``bx_j``), with the same ``optim`` (Nelder–Mead) call
from the same start, so it stops short of the optimum in the same way; we solve it exactly
(:func:`mrjax.estimators.ml.ml_fit`: profile likelihood, Newton steps, observed-information SE).
``model = "random"`` (the default from 4 instruments on) multiplies the SE by
``max(1, sqrt(Q / (n - 1)))`` with ``Q = 2 min f`` (R's ``Heter.Stat``, ``RSE = sqrt(Q/(n-1))``);
``"fixed"`` reports the Hessian SE. CI and p from the normal (default) or t with n − 1 df.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mrjax.batch import Instruments
from mrjax.estimators.common import Estimate, Params, Reason, estimate
from mrjax.estimators.mendelian_regression import ci_and_p
from mrjax.estimators.ml import ml_fit

MIN_SNPS = 2


def mr_maxlik(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """MendelianRandomization ``mr_maxlik`` (see the module docstring); needs 2 instruments."""
    del key
    n = t.nsnp
    f = ml_fit(t)
    rse = jnp.sqrt(f.q / jnp.maximum(n - 1, 1))
    fixed = params.model == "fixed" or (params.model == "default") & (n < 4)
    se = jnp.where(fixed, f.se, f.se * jnp.maximum(1.0, rse))
    lo, up, p = ci_and_p(f.b, se, n - 1, params, t.bx.shape[-1])
    ok = (n >= MIN_SNPS) & f.converged & jnp.isfinite(se)
    reason = jnp.where(n >= MIN_SNPS, Reason.NOT_CONVERGED, Reason.TOO_FEW_SNPS)
    return estimate(f.b, se, p, n, ok=ok, reason=reason, lo_ci=lo, up_ci=up)
