"""Wald ratio (TwoSampleMR ``mr_wald_ratio``): the causal estimate from a single instrument."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax.batch import Instruments
from mrjax.estimators.common import Estimate, Params, Reason, estimate
from mrjax.stats import norm_pval


class Ratios(NamedTuple):
    """Per-instrument Wald ratios ``[width]`` (NaN in padded slots or where ``bx = 0``)."""

    b: jax.Array
    se: jax.Array
    pval: jax.Array


def wald_ratios(t: Instruments) -> Ratios:
    """Wald ratio of every instrument: ``b_j = by_j / bx_j``, ``se_j = sy_j / |bx_j|``
    (first order, no ``sx`` term), two-sided normal p — TwoSampleMR ``mr_wald_ratio`` applied
    to each SNP, as ``mr_singlesnp`` does."""
    ok = t.mask & (t.bx != 0)
    bx = jnp.where(ok, t.bx, 1.0)
    b = jnp.where(ok, t.by / bx, jnp.nan)
    se = jnp.where(ok, t.sy / jnp.abs(bx), jnp.nan)
    return Ratios(b=b, se=se, pval=norm_pval(b / se))


def wald_ratio(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """TwoSampleMR ``mr_wald_ratio``: ``b = by / bx``, ``se = sy / |bx|``, normal p.

    Defined only for a trait with exactly one instrument; any other count gives NaN with
    reason "not applicable" (R returns NA there). ``bx = 0`` gives NaN ("zero weights").
    """
    del key, params
    n = t.nsnp
    r = wald_ratios(t)
    first = jnp.argmax(t.mask)
    one = n == 1
    ok = one & (t.bx[first] != 0)
    reason = jnp.where(one, Reason.ZERO_WEIGHT, jnp.where(n == 0, Reason.TOO_FEW_SNPS, Reason.NOT_APPLICABLE))
    return estimate(r.b[first], r.se[first], r.pval[first], n, ok=ok, reason=reason)
