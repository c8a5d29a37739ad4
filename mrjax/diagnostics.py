"""Per-trait diagnostics of TwoSampleMR: heterogeneity, pleiotropy, leave-one-out, single-SNP,
I²_GX (JAX kernels, vmapped in ``mrjax.engine``), and the Steiger directionality test and
instrument strength (host-side numpy/scipy: they need F quantiles and per-row metadata).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.special
import numpy as np
from scipy import special

from mrjax.batch import Instruments
from mrjax.estimators import egger, ivw, ml
from mrjax.estimators.ivw import Heterogeneity
from mrjax.estimators.wald import wald_ratios
from mrjax.stats import norm_pval


class LeaveOneOut(NamedTuple):
    """IVW (``mr_ivw``) leaving out instrument ``j``: ``b, se, pval`` are ``[width]`` (NaN in
    padded slots and for every slot when n <= 2)."""

    b: jax.Array
    se: jax.Array
    pval: jax.Array


class HeterogeneityTest(NamedTuple):
    """Heterogeneity statistic ``q`` on ``df`` degrees of freedom and its chi-square ``pval``."""

    q: jax.Array
    df: jax.Array
    pval: jax.Array


class Diagnostics(NamedTuple):
    """All per-trait diagnostics; every field has a leading trait axis once vmapped.

    ``heterogeneity``: ``{method_id: Heterogeneity}`` for ``two_sample_ml, egger_regression,
    ivw, ivw_radial, uwr``; ``egger``: the full :class:`~mrjax.estimators.egger.EggerFit`
    (intercept = ``b_i, se_i, pval_i``); ``i2gx``: Bowden's I²_GX; ``loo``: leave-one-out;
    ``single``: per-SNP Wald ratios; ``ivw``: the all-SNP ``mr_ivw`` estimate
    (``b, se, pval`` as a :class:`LeaveOneOut`-shaped triple of scalars).
    """

    heterogeneity: dict
    egger: egger.EggerFit
    i2gx: jax.Array
    loo: LeaveOneOut
    single: LeaveOneOut
    ivw: LeaveOneOut


def i_squared(q, df):
    """Higgins' I² from a Q statistic: ``max(0, (Q - df) / Q)`` (used for Rücker's Q′ too)."""
    return jnp.maximum(0.0, (q - df) / q)


def isq(y, s, mask):
    """TwoSampleMR ``Isq(y, s)``: with ``w = 1/s^2`` and ``mu = sum(w y)/sum(w)``,
    ``Q = sum(w (y - mu)^2)`` and ``I^2 = max(0, (Q - (k - 1)) / Q)`` over the masked entries."""
    w = jnp.where(mask, 1.0 / (s * s), 0.0)
    mu = jnp.sum(w * y) / jnp.sum(w)
    d = jnp.where(mask, y - mu, 0.0)
    q = jnp.sum(w * d * d)
    return i_squared(q, jnp.sum(mask) - 1)


def i2gx(t: Instruments):
    """Bowden's weighted I²_GX for MR-Egger: ``Isq(|bx|/sy, sx/sy)`` (TwoSampleMR convention;
    MendelianRandomization's ``mr_egger(...)$I.sq`` is the same number)."""
    return isq(jnp.abs(t.bx) / t.sy, t.sx / t.sy, t.mask)


def heterogeneity(t: Instruments) -> dict[str, HeterogeneityTest]:
    """``mr_heterogeneity`` for one trait: Q, df and p of every method with a Q statistic
    (ML: 2·min objective; Egger: Rücker's Q′; IVW: Cochran's Q; radial: modified second-order
    Q; UWR: unweighted "Q"), ``p = pchisq(Q, df, lower.tail = FALSE)``. Methods need 2
    instruments (Egger 3); below that Q and p are NaN."""
    stats: dict[str, Heterogeneity] = {
        "two_sample_ml": ml.ml_heterogeneity(t),
        "egger_regression": egger.egger_heterogeneity(t),
        "ivw": ivw.ivw_heterogeneity(t),
        "ivw_radial": ivw.radial_heterogeneity(t),
        "uwr": ivw.uwr_heterogeneity(t),
    }
    q = jnp.stack([h.q for h in stats.values()])
    df = jnp.stack([h.df for h in stats.values()])
    finite = jnp.isfinite(q)
    p = jnp.where(finite, chi2_sf_counts(jnp.where(finite, q, 1.0), jnp.maximum(df, 1), t.bx.shape[-1]), jnp.nan)
    return {m: HeterogeneityTest(q=q[i], df=df[i], pval=p[i]) for i, m in enumerate(stats)}


# The incomplete gamma function's iterative kernel (``mrjax.stats.chi2_sf``) took about a third
# of this module's XLA compile time, for every bucket shape; Q statistics have whole-number
# degrees of freedom, for which the chi-square tail is a short sum of elementwise terms.


def chi2_sf_counts(q, df, max_df: int):
    """``pchisq(q, df, lower.tail = FALSE)`` for whole-number ``df`` in ``1..max_df``, as the
    finite sums of positive terms (Abramowitz & Stegun 26.4.4, 26.4.5), with ``h = q / 2``:

    * even ``df``: ``exp(-h) * sum_{i < df/2} h^i / i!``;
    * odd ``df``: ``erfc(sqrt(h)) + sqrt(2/pi) exp(-h) * sum_{1 <= i <= (df-1)/2} q^(i-1/2) / (2i-1)!!``.

    Each term is formed in log space, so neither tail loses relative precision (within
    4e-13 of R's ``pchisq``/scipy's ``chdtrc`` over df 1..255). ``max_df`` (static) bounds
    the number of terms; a Q statistic on ``n`` instruments has ``df < n <= width``.
    """
    q = jnp.asarray(q)
    df = jnp.asarray(df, dtype=q.dtype)
    i = np.arange(max_df // 2 + 1, dtype=np.float64)
    log_fact = special.gammaln(i + 1)  # log i!
    log_odd_fact = special.gammaln(2 * i + 1) - log_fact - i * np.log(2.0)  # log (2i-1)!!
    i, log_fact, log_odd_fact = (jnp.asarray(c, dtype=q.dtype) for c in (i, log_fact, log_odd_fact))
    h = 0.5 * q[..., None]
    log_q = jnp.log(q)[..., None]
    half = 0.5 * df[..., None]
    even_terms = jnp.where(i < half, jnp.exp(-h + jnp.where(i == 0, 0.0, i * (log_q - np.log(2.0))) - log_fact), 0.0)
    odd_terms = jnp.where((i >= 1) & (i <= half - 0.5),
                          jnp.exp(-h + (i - 0.5) * log_q - log_odd_fact + 0.5 * np.log(2.0 / np.pi)), 0.0)
    odd = jax.scipy.special.erfc(jnp.sqrt(0.5 * q)) + odd_terms.sum(-1)
    return jnp.where(jnp.mod(df, 2) == 0, even_terms.sum(-1), odd)


def leave_one_out(t: Instruments) -> LeaveOneOut:
    """TwoSampleMR ``mr_leaveoneout`` (``mr_ivw`` dropping each instrument), closed form.

    With ``w = 1/sy^2``, the full sums minus the j-th term give ``b_(-j) = (Sxy - w_j bx_j
    by_j) / (Sxx - w_j bx_j^2)``; the residual sum of squares is updated around the full fit
    (residuals ``e``, ``sum(w e bx) = 0``): ``RSS_(-j) = RSS - w_j e_j^2 + 2 d w_j e_j bx_j +
    d^2 Sxx_(-j)`` with ``d = b_(-j) - b``, which avoids cancellation. ``se = sqrt(1/Sxx_(-j))
    * max(1, sigma_(-j))``, ``sigma^2 = RSS_(-j)/(n - 2)``, normal p. Only for n > 2.
    """
    n = t.nsnp
    w = jnp.where(t.mask, 1.0 / (t.sy * t.sy), 0.0)
    fit = ivw.ivw_fit(t)
    sxx_j = fit.sxx - w * t.bx * t.bx
    sxy_j = jnp.sum(w * t.bx * t.by) - w * t.bx * t.by
    ok = t.mask & (n > 2) & (sxx_j > 0)
    safe_sxx = jnp.where(ok, sxx_j, 1.0)
    b_j = sxy_j / safe_sxx
    e = jnp.where(t.mask, t.by - fit.b * t.bx, 0.0)
    d = b_j - fit.b
    rss_j = fit.rss - w * e * e + 2.0 * d * w * e * t.bx + d * d * safe_sxx
    sigma_j = jnp.sqrt(jnp.maximum(rss_j, 0.0) / jnp.maximum(n - 2, 1))
    se_j = jnp.sqrt(1.0 / safe_sxx) * jnp.maximum(1.0, sigma_j)
    nan = jnp.nan
    b_j = jnp.where(ok, b_j, nan)
    se_j = jnp.where(ok, se_j, nan)
    return LeaveOneOut(b=b_j, se=se_j, pval=jnp.where(ok, norm_pval(b_j / se_j), nan))


def trait_diagnostics(t: Instruments) -> Diagnostics:
    """Every per-trait diagnostic of one trait (vmapped and jitted in ``mrjax.engine``)."""
    e = ivw.ivw(t, None, None)
    r = wald_ratios(t)
    return Diagnostics(
        heterogeneity=heterogeneity(t),
        egger=egger.egger_fit(t),
        i2gx=i2gx(t),
        loo=leave_one_out(t),
        single=LeaveOneOut(b=r.b, se=r.se, pval=r.pval),
        ivw=LeaveOneOut(b=e.b, se=e.se, pval=e.pval),
    )


# ---------------------------------------------------------------------------------------------
# Host-side (numpy/scipy): Steiger directionality and instrument strength.


def r_from_pn(p, n) -> np.ndarray:
    """TwoSampleMR ``get_r_from_pn``: ``F = qf(p, 1, n-1, upper)``, ``R^2 = F / (n - 2 + F)``,
    returns ``sqrt(R^2)``. Where the F quantile overflows (tiny p) R falls back to a numerical
    search; here ``F = t_{n-1}(p/2)^2`` (the same quantity, computed from the t tail) is used,
    then the normal quantile. ``p = 0`` gives NaN (R warns and gives NA).

    The quantiles are ``scipy.special``'s (what ``scipy.stats.f/t/norm.isf`` call, without
    importing ``scipy.stats``, which costs every scan process ~0.5 s of start-up)."""
    p = np.asarray(p, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(all="ignore"):
        valid = (p >= 0) & (p <= 1) & (n > 1)
        f = np.where(valid, special.fdtri(1.0, n - 1, 1.0 - p), np.nan)  # F upper quantile
        bad = ~np.isfinite(f)
        if bad.any():
            f = np.where(bad, special.stdtrit(n - 1, p / 2) ** 2, f)  # t_{n-1} quantile squared
        bad = ~np.isfinite(f)
        if bad.any():
            f = np.where(bad, special.ndtri(p / 2) ** 2, f)  # normal quantile squared
        r2 = f / (n - 2 + f)
    r2 = np.where(p > 0, r2, np.nan)
    return np.sqrt(r2)


class Steiger(NamedTuple):
    """``snp_r2.exposure``, ``snp_r2.outcome`` (summed r²), ``correct_causal_direction``
    (r_exp > r_out) and ``steiger_pval`` of one trait."""

    r2_exposure: float
    r2_outcome: float
    correct_causal_direction: bool
    steiger_pval: float


def steiger(p_exp, p_out, n_exp, n_out, r_exp=None, r_out=None) -> Steiger:
    """TwoSampleMR ``mr_steiger`` as ``directionality_test`` calls it, for one trait.

    Per-SNP correlations from ``r_from_pn(p, n)`` unless given; ``r = sqrt(sum r_j^2)`` per
    trait (SNPs with a missing r on either side are left out of the exposure sum only when the
    outcome r is present, as in R); ``psych::r.test(n = mean(n_exp), n2 = mean(n_out), r12 =
    r_exp, r34 = r_out)``: ``z = (atanh r_exp - atanh r_out) / sqrt(1/(n1-3) + 1/(n2-3))``,
    ``p = 2 Phi(-|z|)``.
    """
    n_exp = np.asarray(n_exp, dtype=float)
    n_out = np.asarray(n_out, dtype=float)
    re = np.abs(np.asarray(r_exp, dtype=float)) if r_exp is not None else r_from_pn(p_exp, n_exp)
    ro = np.abs(np.asarray(r_out, dtype=float)) if r_out is not None else r_from_pn(p_out, n_out)
    keep = ~np.isnan(re) | np.isnan(ro)
    r_e = np.sqrt(np.nansum(re[keep] ** 2)) if not np.isnan(re[keep]).any() else np.nan
    r_o = np.sqrt(np.nansum(ro[keep] ** 2)) if not np.isnan(ro[keep]).any() else np.nan
    n1 = np.mean(n_exp)
    n2 = np.mean(n_out)
    z = (np.arctanh(r_e) - np.arctanh(r_o)) / np.sqrt(1.0 / (n1 - 3) + 1.0 / (n2 - 3))
    pval = 2.0 * special.ndtr(-abs(z))  # 2 Phi(-|z|)
    return Steiger(float(r_e**2), float(r_o**2), bool(r_e > r_o), float(pval))

