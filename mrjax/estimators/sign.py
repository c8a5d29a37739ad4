"""Sign concordance test (TwoSampleMR ``mr_sign``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mrjax.batch import Instruments
from mrjax.estimators.common import Estimate, Params, Reason, estimate
from mrjax.stats import binom_test_pval

MIN_SNPS = 6


def sign(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """TwoSampleMR ``mr_sign`` ("Sign concordance test").

    Instruments with ``bx = 0`` or ``by = 0`` are left out; with ``n`` usable ones (at least 6)
    and ``x`` of them with ``sign(bx) == sign(by)``: ``b = 2 (x/n - 1/2)``, ``se`` = NaN,
    ``pval = binom.test(x, n, 0.5)$p.value``; ``nsnp`` reports ``n``.
    """
    del key, params
    usable = t.mask & (t.bx != 0) & (t.by != 0)
    n = jnp.sum(usable)
    x = jnp.sum(usable & (jnp.sign(t.bx) == jnp.sign(t.by)))
    nf = jnp.where(n > 0, n, 1).astype(t.bx.dtype)
    b = 2.0 * (x / nf - 0.5)
    pval = binom_test_pval(x, nf).astype(t.bx.dtype)
    est = estimate(b, jnp.nan * b, pval, n, ok=n >= MIN_SNPS, reason=Reason.TOO_FEW_SNPS)
    return est
