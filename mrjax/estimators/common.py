"""Types shared by every estimator: the per-trait result, failure reasons and parameters.

Convention: an estimator is a pure function of ONE trait,
``fn(t: Instruments, key: PRNGKey, params: Params) -> Estimate``, whose ``t`` fields are
``[width]`` with a prefix ``mask``. It never raises on data: a trait it cannot estimate gets
NaN with a non-zero ``reason`` code. ``mrjax.engine`` vmaps and jits these functions once.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Reason:
    """Integer codes for why an estimate is NaN (0 = estimated)."""

    OK = 0
    TOO_FEW_SNPS = 1
    ZERO_WEIGHT = 2
    NOT_CONVERGED = 3
    NON_FINITE = 4
    NOT_APPLICABLE = 5

    TEXT = {
        0: "",
        1: "too few instruments",
        2: "zero or degenerate weights",
        3: "did not converge",
        4: "non-finite result",
        5: "not applicable",
    }


class Params(NamedTuple):
    """Method settings (TwoSampleMR ``default_parameters()``).

    ``n_boot`` sets array shapes, so it is a static (hashable) argument of the engine;
    ``phi`` (mode bandwidth factor) and ``penk`` (penalty constant) are plain numbers.
    """

    n_boot: int = 1000
    phi: float = 1.0
    penk: float = 20.0


class Estimate(NamedTuple):
    """One method's result for one trait (scalars; ``[traits]`` once vmapped)."""

    b: jax.Array
    se: jax.Array
    pval: jax.Array
    nsnp: jax.Array
    reason: jax.Array


def estimate(b, se, pval, nsnp, ok=True, reason=Reason.TOO_FEW_SNPS) -> Estimate:
    """Assemble an :class:`Estimate`, replacing values by NaN where ``ok`` is False.

    Where ``ok`` holds but b is not finite, the reason becomes ``NON_FINITE``.
    """
    ok = jnp.asarray(ok)
    b = jnp.where(ok, b, jnp.nan)
    se = jnp.where(ok, se, jnp.nan)
    pval = jnp.where(ok, pval, jnp.nan)
    code = jnp.where(ok, jnp.where(jnp.isfinite(b), Reason.OK, Reason.NON_FINITE), reason)
    return Estimate(b=b, se=se, pval=pval, nsnp=jnp.asarray(nsnp, dtype=jnp.int32), reason=code.astype(jnp.int32))


def family_members(panel, methods, family: str) -> tuple[str, ...]:
    """The requested ``methods`` of a family of estimators computed together (``panel`` is
    its NamedTuple of results, e.g. ``MedianPanel``), in the panel's field order; a
    ``ValueError`` names any method that is not a member."""
    unknown = [m for m in methods if m not in panel._fields]
    if unknown:
        raise ValueError(f"unknown {family} method(s) {unknown}; expected some of {list(panel._fields)}")
    return tuple(m for m in panel._fields if m in methods)

