"""Distribution tails and masked reductions shared by every estimator (JAX, jit/vmap-safe).

All functions work elementwise or over the last axis with a boolean ``mask``; masked-out
entries never contribute, so padded slots cannot change a result.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erfc
from jax.scipy.stats import norm
from scipy import special as scipy_special

MAD_CONSTANT = 1.4826  # R's stats::mad default (consistency for the normal)


def _each_element(impl):
    """JAX's own algorithm ``impl`` (``jax._src.lax.special``) applied to each element alone.

    ``jax.scipy.special.betainc``/``gammaincc`` run their continued fractions on the whole
    array until *every* element has converged, so an element's last bits depend on the other
    elements of the call — a trait's p-value changed with the number of traits in its bucket
    (and so with ``--chunk-size``). Vectorised over scalars, the same loop stops for each
    element at its own convergence (a batched ``while_loop`` freezes finished elements): the
    value a call with that element alone gives, whatever the batch.
    """
    def scalar(*args):
        dtype = jnp.result_type(*args, float)
        return impl(*(jnp.asarray(a, dtype) for a in args), dtype=dtype)

    return jnp.vectorize(scalar)


try:
    from jax._src.lax.special import igammac_impl, regularized_incomplete_beta_impl
except ImportError:  # a JAX without these internals: the public functions (batch-dependent last bit)
    from jax.scipy.special import betainc, gammaincc
else:
    betainc = _each_element(regularized_incomplete_beta_impl)
    gammaincc = _each_element(igammac_impl)


def norm_pval(z):
    """Two-sided normal p-value, ``2 * Phi(-|z|)`` (R: ``2 * pnorm(-abs(z))``)."""
    return 2.0 * norm.sf(jnp.abs(z))


def t_pval(t, df):
    """Two-sided Student-t p-value, ``2 * pt(-|t|, df)``.

    Uses ``P(|T| > t) = I_{df/(df+t^2)}(df/2, 1/2)`` (regularised incomplete beta), which
    keeps relative precision far into the tail. NaN where ``df <= 0``.
    """
    df = jnp.asarray(df, dtype=jnp.result_type(t, float))
    safe_df = jnp.where(df > 0, df, 1.0)
    x = safe_df / (safe_df + t * t)
    p = betainc(0.5 * safe_df, 0.5, x)
    return jnp.where(df > 0, p, jnp.nan)


def chi2_sf(q, df):
    """Upper tail of the chi-square distribution (R: ``pchisq(q, df, lower.tail = FALSE)``)."""
    df = jnp.asarray(df, dtype=jnp.result_type(q, float))
    safe_df = jnp.where(df > 0, df, 1.0)
    # jax.scipy.stats.chi2.sf(q, df) is gammaincc(df / 2, clamp(0, q / 2, inf))
    return jnp.where(df > 0, gammaincc(safe_df / 2.0, jnp.clip(q / 2.0, 0.0, jnp.inf)), jnp.nan)


def chi2_1_tail(q):
    """``pchisq(q, 1, lower.tail = FALSE) = erfc(sqrt(q / 2))`` (closed form: no
    incomplete-gamma iteration, unlike :func:`chi2_sf`)."""
    return erfc(jnp.sqrt(0.5 * jnp.maximum(q, 0.0)))


def binom_test_pval(x, n):
    """Two-sided exact binomial test of ``x`` successes in ``n`` trials against p = 1/2
    (R: ``binom.test(x, n, 0.5)$p.value``). By symmetry it is
    ``min(1, 2 * P(X <= min(x, n - x)))``, with the CDF from the incomplete beta
    ``P(X <= k) = I_{1/2}(n - k, k + 1)``.
    """
    x = jnp.asarray(x, dtype=float)
    n = jnp.asarray(n, dtype=float)
    k = jnp.minimum(x, n - x)
    cdf = jnp.where(k >= n, 1.0, betainc(jnp.maximum(n - k, 1e-300), k + 1.0, 0.5))
    return jnp.minimum(1.0, 2.0 * cdf)


def masked_sum(x, mask, axis=-1):
    """Sum over ``axis`` of the entries where ``mask`` is True."""
    return jnp.sum(jnp.where(mask, x, 0.0), axis=axis)


def masked_mean(x, mask, axis=-1):
    """Mean of the masked entries (NaN when there are none)."""
    n = jnp.sum(mask, axis=axis)
    return masked_sum(x, mask, axis) / jnp.where(n > 0, n, jnp.nan)


def masked_sd(x, mask, axis=-1):
    """Sample standard deviation with denominator n − 1 (R: ``sd``)."""
    n = jnp.sum(mask, axis=axis)
    mu = masked_mean(x, mask, axis)
    dev = jnp.where(mask, x - jnp.expand_dims(mu, axis), 0.0)
    return jnp.sqrt(jnp.sum(dev * dev, axis=axis) / jnp.where(n > 1, n - 1, jnp.nan))


def _order_keys(x):
    """Signed integers whose order is the float order of ``x`` (NaN last): flipping every bit
    but the sign of negative floats makes signed-integer order equal float order."""
    int_dtype = jnp.int64 if x.dtype == jnp.float64 else jnp.int32
    flip = jnp.iinfo(int_dtype).max
    bits = jax.lax.bitcast_convert_type(x, int_dtype)
    return jnp.where(jnp.isnan(x), flip, jnp.where(bits < 0, bits ^ flip, bits)), flip


def _from_order_keys(keys, flip, dtype):
    return jax.lax.bitcast_convert_type(jnp.where(keys < 0, keys ^ flip, keys), dtype)


def sort_last_axis(x):
    """``jnp.sort(x, axis=-1)`` (NaN last) for float arrays, by sorting order-preserving
    integer keys (:func:`_order_keys`). XLA's CPU sort of int64 is ~4x faster than of float64
    (whose comparator handles NaN and signed zeros)."""
    keys, flip = _order_keys(x)
    keys = jax.lax.sort(keys, dimension=keys.ndim - 1, is_stable=False)
    return _from_order_keys(keys, flip, x.dtype)


def argsort_float32_last_axis(x):
    """``(sorted x, slots)`` along the last axis of a float32 array ``x`` (NaN last; equal
    values in slot order, like R's ``order``), from ONE sort of int64 keys: the order key of
    each value (:func:`_order_keys`) in the high 32 bits, its slot in the low 32. On this CPU
    a key-only sort is ~4x faster than XLA's sort of a key with a payload operand (generic
    comparator). Needs ``jax_enable_x64`` (mrjax turns it on)."""
    keys, flip = _order_keys(x.astype(jnp.float32))
    slots = jnp.broadcast_to(jnp.arange(x.shape[-1], dtype=jnp.int64), x.shape)
    packed = jax.lax.sort((keys.astype(jnp.int64) << 32) | slots, dimension=x.ndim - 1, is_stable=False)
    return _from_order_keys((packed >> 32).astype(jnp.int32), flip, jnp.float32), (packed & 0xFFFFFFFF).astype(jnp.int32)


def _sorted_with_median(x, mask):
    """The masked entries of ``x`` sorted (masked ones last, as +inf), their count ``n`` and
    the sort positions ``lo = (n - 1) // 2``, ``hi = n // 2`` of R's median."""
    n = jnp.sum(mask)
    s = sort_last_axis(jnp.where(mask, x, jnp.inf))
    return s, n, jnp.clip((n - 1) // 2, 0, x.shape[-1] - 1), jnp.clip(n // 2, 0, x.shape[-1] - 1)


def masked_median(x, mask):
    """Median of the masked entries of a 1-D array (R: ``median``, mean of the two middle
    values for even counts). Masked entries are sorted to the end as +inf."""
    s, n, lo, hi = _sorted_with_median(x, mask)
    return jnp.where(n > 0, 0.5 * (s[lo] + s[hi]), jnp.nan)


def masked_mad(x, mask):
    """Median absolute deviation scaled by 1.4826 (R: ``mad`` with its defaults), 1-D.

    One sort: with ``s`` the sorted entries and ``m`` their median, ``d_i = |s_i - m|`` falls
    then rises (rounding is monotone, so also in floating point), and the ``k + 1`` smallest
    ``d`` lie in a window of consecutive ranks, whose largest value is at an end. So the
    ``k``-th smallest ``d`` (0-based) is ``min_a max(d_a, d_{a+k})`` over the windows inside
    the ``n`` entries: the median of ``d`` without sorting ``d`` (identical values).
    """
    s, n, lo, hi = _sorted_with_median(x, mask)
    size = x.shape[-1]
    d = jnp.abs(s - 0.5 * (s[lo] + s[hi]))
    start = jnp.arange(size)

    def kth_smallest(k):
        window_max = jnp.maximum(d, d[jnp.clip(start + k, 0, size - 1)])
        return jnp.min(jnp.where(start + k < n, window_max, jnp.inf))

    return jnp.where(n > 0, MAD_CONSTANT * 0.5 * (kth_smallest(lo) + kth_smallest(hi)), jnp.nan)


def t_quantile_whole_df(p: float, df, max_df: int):
    """Quantile of Student's t (R: ``qt(p, df)``) at a whole-number ``df`` in ``1..max_df`` (a
    count of instruments less the fitted parameters), ``p`` a Python float: a lookup into
    ``scipy.special.stdtrit(1..max_df, p)`` (``scipy.stats.t.ppf``), evaluated once when the
    function is traced, so as exact as R's ``qt`` and free per trait. NaN where ``df`` is not
    such a count."""
    table = jnp.asarray(scipy_special.stdtrit(np.arange(1, max_df + 1), p))
    df = jnp.asarray(df)
    whole = jnp.round(df)
    valid = (whole >= 1) & (whole <= max_df) & (df == whole)
    return jnp.where(valid, table[jnp.clip(whole.astype(jnp.int32) - 1, 0, max_df - 1)], jnp.nan)
