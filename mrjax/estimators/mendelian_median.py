"""MendelianRandomization 0.10.0 ``mr_median`` and ``mr_mbe``: the median and mode of the ratio
estimates ``r_j = by_j / bx_j`` with MendelianRandomization's weights, bootstrap SEs, and
normal CIs and p-values.

``mr_median(weighting = ...)`` (TwoSampleMR's interpolated weighted median,
:func:`mrjax.estimators.median.interpolated_weighted_median`): ``"simple"`` weights ``1/n``;
``"weighted"`` the FIRST-order weights ``bx^2 / sy^2`` (TwoSampleMR's weighted median uses
second-order ones, so the two packages differ); ``"penalized"`` ``w_j min(1, 20 P_j)`` with
``P_j`` the chi-square(1) tail of ``w_j (r_j - b_WM)^2`` around the first-order weighted median.
SE: the sd of the weighted medians of ``iterations`` (10,000) draws ``bx* ~ N(bx, sx)``,
``by* ~ N(by, sy)`` with the weights held fixed (R's ``weighted.median.boot.se``).

``mr_mbe(weighting, stderror)`` (Hartwig's mode-based estimate, the same density mode as
TwoSampleMR's ``mr_mode``, :func:`mrjax.estimators.mode.mode_estimate`; R has no 1e-8 floor on
the bandwidth, which only matters for identical ratios): ratio SEs ``stderror = "delta"``
``sqrt(sy^2/bx^2 + by^2 sx^2/bx^4 - 2 psi by sx sy / bx^3)`` or ``"simple"`` (NOME)
``sy/|bx|``; ``weighting = "weighted"`` weights ``se^-2``, ``"unweighted"`` equal weights. SE:
the MAD of the modes of ``iterations`` draws ``r* ~ N(r, se)`` with the original weights
(:func:`mrjax.estimators.mode.bootstrap_modes`).

R draws from its own seed (314159265); we draw from the trait's key, so bootstrap SEs agree
with R's within Monte-Carlo error only. Both need at least 3 instruments.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mrjax.batch import Instruments
from mrjax.estimators.common import Estimate, Params, estimate
from mrjax.estimators.draws import slot_normals
from mrjax.estimators.median import BOOTSTRAP_DTYPE, bootstrap_ratios, interpolated_weighted_median
from mrjax.estimators.median import _bootstrap_medians as bootstrap_medians
from mrjax.estimators.median import _sample_sd as sample_sd
from mrjax.estimators.mode import bootstrap_modes, mode_estimate, normalised_weights
from mrjax.stats import chi2_1_tail, masked_mad, norm_pval

MIN_SNPS = 3
PENALTY = 20.0
MEDIAN_WEIGHTINGS = ("simple", "weighted", "penalized")
MBE_WEIGHTINGS = ("weighted", "unweighted")


def median_weights(t: Instruments, weighting: str):
    """``mr_median``'s weights of the ratios (see the module docstring), 0 in padded slots."""
    if weighting not in MEDIAN_WEIGHTINGS:
        raise ValueError(f"mr_median weighting must be one of {MEDIAN_WEIGHTINGS}, not {weighting!r}")
    n = t.nsnp
    if weighting == "simple":
        return jnp.where(t.mask, 1.0 / jnp.maximum(n, 1), 0.0)
    w = jnp.where(t.mask, t.bx**2 / t.sy**2, 0.0)
    if weighting == "penalized":
        r = jnp.where(t.mask, t.by / t.bx, 0.0)
        b_wm = interpolated_weighted_median(r, w, t.mask)
        w = jnp.where(t.mask, w * jnp.minimum(1.0, PENALTY * chi2_1_tail(w * (r - b_wm) ** 2)), 0.0)
    return w


def mr_median(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """MendelianRandomization ``mr_median`` (see the module docstring)."""
    n = t.nsnp
    w = median_weights(t, params.weighting)
    r = jnp.where(t.mask, t.by / t.bx, 0.0)
    b = interpolated_weighted_median(r, w, t.mask)
    ratios = bootstrap_ratios(t, key, params.iterations)
    boot = bootstrap_medians(ratios.astype(BOOTSTRAP_DTYPE), w[None].astype(BOOTSTRAP_DTYPE), t.mask)
    se = sample_sd(boot.astype(r.dtype))[0]
    return estimate(b, se, norm_pval(b / se), n, ok=n >= MIN_SNPS)


def ratio_se(t: Instruments, stderror: str, psi: float):
    """``mr_mbe``'s ratio SEs: second-order (``"delta"``, with ``psi``) or first-order (``"simple"``)."""
    if stderror == "simple":
        return t.sy / jnp.abs(t.bx)
    return jnp.sqrt(t.sy**2 / t.bx**2 + t.by**2 * t.sx**2 / t.bx**4 - 2.0 * psi * t.by * t.sx * t.sy / t.bx**3)


def mr_mbe(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """MendelianRandomization ``mr_mbe`` (see the module docstring)."""
    if params.weighting not in MBE_WEIGHTINGS:
        raise ValueError(f"mr_mbe weighting must be one of {MBE_WEIGHTINGS}, not {params.weighting!r}")
    n = t.nsnp
    mask = t.mask
    r = jnp.where(mask, t.by / t.bx, 0.0)
    se = jnp.where(mask, ratio_se(t, params.stderror, params.psi), 1.0)
    weights = normalised_weights(se if params.weighting == "weighted" else jnp.ones_like(se), mask)
    b = mode_estimate(r, weights, mask, params.phi)
    z = slot_normals(key, params.iterations, r.shape[-1], r.dtype, row_by_row=True)
    boot = bootstrap_modes(r, se[None], weights[None, None], mask, params.phi, z[None])[0, 0]
    se_b = masked_mad(boot, jnp.ones(boot.shape, dtype=bool))
    return estimate(b, se_b, norm_pval(b / se_b), n, ok=n >= MIN_SNPS)
