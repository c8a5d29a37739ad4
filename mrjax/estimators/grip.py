"""MR-GRIP (TwoSampleMR ``mr_grip``): the allele-coding-invariant MR-Egger of Dudbridge & Bowden."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mrjax.batch import Instruments
from mrjax.estimators.common import Estimate, Params, Reason, estimate
from mrjax.estimators.regression import wls_intercept
from mrjax.stats import t_pval

MIN_SNPS = 3


def grip(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """TwoSampleMR ``mr_grip`` ("MR GRIP"): ``lm(by*bx ~ bx^2, weights = 1/(bx^2 sy^2))``
    with intercept; reports the slope with its plain lm SE (no max(1, sigma) rule) and a
    two-sided t(n − 2) p. Needs 3 instruments; an instrument with ``bx = 0`` has infinite
    weight in R, so the trait is reported as "zero or degenerate weights"."""
    del key, params
    n = t.nsnp
    x = t.bx * t.bx
    zero = jnp.any(t.mask & (t.bx == 0))
    w = 1.0 / jnp.where(t.mask & (t.bx != 0), x * t.sy * t.sy, 1.0)
    fit = wls_intercept(x, t.by * t.bx, w, t.mask)
    ok = (n >= MIN_SNPS) & ~zero & jnp.isfinite(fit.b)
    reason = jnp.where(n >= MIN_SNPS, Reason.ZERO_WEIGHT, Reason.TOO_FEW_SNPS)
    return estimate(fit.b, fit.se_b, t_pval(fit.b / fit.se_b, n - 2), n, ok=ok, reason=reason)
