"""Simple, weighted and penalised weighted median estimators (TwoSampleMR ``mr_*median``),
and the sort-free order statistics (stable ranks, median, mad) they and the modes use.

Ratio estimates ``r_j = by_j / bx_j`` are combined by TwoSampleMR's interpolated weighted
median (``weighted_median``): sort ``r``; ``p_j = (cumsum(w)_j - w_j / 2) / sum(w)``; with
``k`` the last index where ``p_k < 0.5``,
``b = r_k + (r_{k+1} - r_k) (0.5 - p_k) / (p_{k+1} - p_k)``.

Standard errors come from TwoSampleMR's parametric bootstrap (``weighted_median_bootstrap``):
``n_boot`` draws ``bx* ~ N(bx, sx)``, ``by* ~ N(by, sy)``, the weighted median of
``by*/bx*`` with the weights held at their original values (attached to the instruments), and
``se = sd`` of the bootstrap medians (denominator ``n_boot - 1``); ``p = 2 Phi(-|b/se|)``.
All three need at least 3 instruments (TwoSampleMR returns NA otherwise).

The bootstrap draws of a trait depend only on its key and the instrument's slot (one
``fold_in`` per slot), so padding width never changes them; the three methods draw from the
same key in the same way, so :func:`median_panel` (one set of draws and pairwise comparisons
shared by the three weightings) returns exactly what the three functions return one by one.
Bootstrap medians are found without sorting (see :func:`_bootstrap_medians`) for narrow
traits; wide traits (where the pairwise work would exceed the memory budget, see
:mod:`mrjax.estimators.wide`) sort every draw instead, a chunk of draws at a time
(:func:`_sorted_bootstrap_medians`), and their point estimates sort once (identical values).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax.batch import Instruments
from mrjax.estimators.common import Estimate, Params, estimate, family_members
from mrjax.estimators.draws import draw_normals, slot_key_words, slot_normals, slot_sum
from mrjax.estimators.wide import POINT_COPIES, draw_chunk, over_draw_chunks, pairwise_fits
from mrjax.stats import MAD_CONSTANT, argsort_float32_last_axis, chi2_1_tail, masked_mad, masked_median, norm_pval

MIN_SNPS = 3
# Precision of the bootstrap draws' medians (pairwise comparisons and prefix weights): the draws
# come from float32 normals and their SE from 1,000 of them (Monte-Carlo error ~2%), so float32's
# 1e-7 is immaterial, and its comparisons are twice as cheap. Point estimates stay float64.
BOOTSTRAP_DTYPE = jnp.float32


def stable_ranks(x, mask):
    """0-based rank of each masked entry of ``x[width]`` among the masked entries, ties in
    slot order (R's ``order`` is stable); unmasked slots get ``width``.

    Pairwise comparisons (``width^2``) instead of a sort: for the widths of MR instrument
    sets this is an order of magnitude faster than XLA's sort on CPU and vectorises under vmap.
    """
    width = x.shape[-1]
    slot = jnp.arange(width)
    xi, xj = x[:, None], x[None, :]
    before = mask[:, None] & ((xi < xj) | ((xi == xj) & (slot[:, None] < slot[None, :])))
    return jnp.where(mask, jnp.sum(before, axis=0), width)


def permute_by_rank(values, ranks):
    """``values[..., width]`` rearranged so that position ``k`` holds the entry of rank ``k``
    (0 where no masked entry has rank ``k``)."""
    width = ranks.shape[-1]
    onehot = ranks[:, None] == jnp.arange(width)[None, :]
    return jnp.sum(jnp.where(onehot, values[..., :, None], 0.0), axis=-2)


def rank_median(x, mask, budget=None):
    """R's ``median`` of the masked entries (mean of the two middle values for even counts).

    Wide ``x`` (see :func:`mrjax.estimators.wide.pairwise_fits`) is sorted instead (the same value)."""
    if not pairwise_fits(x.shape[-1], POINT_COPIES, budget):
        return masked_median(x, mask)
    n = jnp.sum(mask)
    ranks = stable_ranks(x, mask)
    lo = jnp.sum(jnp.where(ranks == (n - 1) // 2, x, 0.0))
    hi = jnp.sum(jnp.where(ranks == n // 2, x, 0.0))
    return jnp.where(n > 0, 0.5 * (lo + hi), jnp.nan)


def rank_mad(x, mask, budget=None):
    """R's ``mad``: ``1.4826 * median(|x - median(x)|)`` over the masked entries (by sorting,
    :func:`mrjax.stats.masked_mad`, for wide ``x``: the same value)."""
    if not pairwise_fits(x.shape[-1], POINT_COPIES, budget):
        return masked_mad(x, mask)
    centre = rank_median(x, mask)
    return MAD_CONSTANT * rank_median(jnp.abs(x - centre), mask)


def interpolated_weighted_median(r, w, mask, budget=None):
    """TwoSampleMR's ``weighted_median(b_iv, weights)`` of the masked entries of ``r[width]``
    (``w`` may be ``[..., width]``: several weightings of the same ratios).

    Ties keep their input order (R's ``order`` is stable); NaN when the lowest ratio carries
    half the total weight or more (R errors there). Ranks by pairwise comparison, or for wide
    ``r`` (:func:`mrjax.estimators.wide.pairwise_fits`) by a stable sort: the same order, so
    the same value (XLA may sum the total weight in another order: the last bit can differ).
    """
    n = jnp.sum(mask)
    w = jnp.where(mask, w, 0.0)
    if pairwise_fits(r.shape[-1], POINT_COPIES, budget):
        ranks = stable_ranks(r, mask)
        return _sorted_weighted_median(permute_by_rank(r, ranks), permute_by_rank(w, ranks), n)
    # Padded slots sort last (key 1), ties in slot order; beyond n entries are 0, as permute_by_rank leaves them.
    width = r.shape[-1]
    padded = jnp.where(mask, 0, 1).astype(jnp.int32)
    _, _, order = jax.lax.sort((padded, r, jnp.arange(width)), is_stable=True, num_keys=2)
    real = jnp.arange(width) < n
    return _sorted_weighted_median(jnp.where(real, r[order], 0.0), jnp.where(real, w[..., order], 0.0), n)


def _sorted_weighted_median(r_sorted, w_sorted, n):
    """The interpolation step on ratios already in ascending order (``[width]``, real entries
    first); ``w_sorted`` may carry leading weighting axes."""
    if w_sorted.ndim > 1:
        return jax.vmap(lambda w: _sorted_weighted_median(r_sorted, w, n))(w_sorted)
    width = r_sorted.shape[-1]
    # The total is the cumulative sum's last entry, not a separate sum: XLA merges a sum of the
    # permuted weights into the permutation's own reduction, in an order that depends on the
    # number of traits in the call (so a trait's median changed with --chunk-size).
    cumulative = jnp.cumsum(w_sorted)
    p = (cumulative - 0.5 * w_sorted) / cumulative[-1]
    below = jnp.sum((p < 0.5) & (jnp.arange(width) < n)) - 1
    k = jnp.clip(below, 0, width - 2)
    b = r_sorted[k] + (r_sorted[k + 1] - r_sorted[k]) * (0.5 - p[k]) / (p[k + 1] - p[k])
    return jnp.where((below >= 0) & (below + 1 < n), b, jnp.nan)


def second_order_weights(t: Instruments):
    """``1 / VB_j`` with ``VB_j = sy^2/bx^2 + by^2 sx^2/bx^4`` (TwoSampleMR ``mr_weighted_median``)."""
    vb = t.sy**2 / t.bx**2 + t.by**2 * t.sx**2 / t.bx**4
    return 1.0 / vb


def penalised_weights(t: Instruments, b_weighted_median, penk):
    """``w_j * min(1, penk * P(chi2_1 > w_j (r_j - b_WM)^2))`` with second-order ``w_j``
    (TwoSampleMR ``mr_penalised_weighted_median``), the tail by :func:`mrjax.stats.chi2_1_tail`."""
    w = second_order_weights(t)
    q = w * (t.by / t.bx - b_weighted_median) ** 2
    return w * jnp.minimum(1.0, penk * chi2_1_tail(q))


def _simple_weights(t: Instruments):
    n = jnp.sum(t.mask)
    return jnp.where(t.mask, 1.0 / jnp.maximum(n, 1), 0.0)


def bootstrap_ratios(t: Instruments, key, n_boot: int):
    """``[width, n_boot]`` ratios ``by*/bx*`` with ``bx* = bx + sx z``, ``by* = by + sy z'``
    (R: ``rnorm(n, mean = b, sd = se)``); ``z`` from ``split(key)[0]``, ``z'`` from
    ``split(key)[1]``, each slot from its own ``fold_in`` (see :mod:`mrjax.estimators.draws`).
    Padded slots hold +inf."""
    width = t.bx.shape[-1]
    z_bx, z_by = jax.vmap(lambda k: slot_normals(k, n_boot, width, t.bx.dtype))(jax.random.split(key))
    bx = t.bx[:, None] + t.sx[:, None] * z_bx
    by = t.by[:, None] + t.sy[:, None] * z_by
    return jnp.where(t.mask[:, None], by / bx, jnp.inf)


def _bootstrap_medians(ratios, weight_sets, mask):
    """Weighted medians of every draw (``ratios[width, n_boot]``, padded slots +inf) for each
    weight vector of ``weight_sets[k, width]``: ``[k, n_boot]``.

    Sort-free, by pairwise comparison: with ``C_i`` the weight of the entries that sort
    before ``i`` (stable order), ``p_i = (C_i + w_i / 2) / sum(w)`` is TwoSampleMR's
    ``weights.sum`` at ``i``'s rank. The ranks with ``p < 0.5`` form a prefix of the sorted
    order, so the interpolation's ``(r_k, p_k)`` are the largest ``r`` and ``p`` with
    ``p < 0.5`` and ``(r_{k+1}, p_{k+1})`` the smallest with ``p >= 0.5``. The ``width^2``
    comparisons per draw run as row operations over the draws (see
    :mod:`mrjax.estimators.draws`), several times cheaper on CPU than sorting every draw.
    """
    width = ratios.shape[0]
    w = jnp.where(mask, weight_sets, 0.0).T  # [width, k]
    slot = jnp.arange(width)[:, None]

    def weight_before(j):  # w_j wherever slot j sorts before slot i (ties: lower slot first): [i, k, n_boot]
        before = jnp.where(slot > j, ratios[j] <= ratios, ratios[j] < ratios)
        return jnp.where(before[:, None, :], w[j][None, :, None], 0.0)

    p = (slot_sum(weight_before, width) + 0.5 * w[:, :, None]) / jnp.sum(w, axis=0)[:, None]  # [width, k, n_boot]

    # One pass over the rows that reads p once (XLA would recompute the pairwise sums for
    # every separate consumer of p).
    def bracket(i, acc):
        r_lo, p_lo, r_hi, p_hi = acc
        low, high = mask[i] & (p[i] < 0.5), mask[i] & (p[i] >= 0.5)
        return (jnp.maximum(r_lo, jnp.where(low, ratios[i], -jnp.inf)), jnp.maximum(p_lo, jnp.where(low, p[i], -jnp.inf)),
                jnp.minimum(r_hi, jnp.where(high, ratios[i], jnp.inf)), jnp.minimum(p_hi, jnp.where(high, p[i], jnp.inf)))

    inf = jnp.full(p.shape[1:], jnp.inf, dtype=p.dtype)
    r_lo, p_lo, r_hi, p_hi = jax.lax.fori_loop(0, width, bracket, (-inf, -inf, inf, inf))
    found = jnp.isfinite(p_lo) & jnp.isfinite(p_hi)
    safe = functools.partial(jnp.where, found)
    b = safe(r_lo, 0.0) + (safe(r_hi, 0.0) - safe(r_lo, 0.0)) * (0.5 - safe(p_lo, 0.0)) / safe(p_hi - p_lo, 1.0)
    return jnp.where(found, b, jnp.nan)


def _sorted_bootstrap_medians(t: Instruments, key, n_boot: int, weight_sets, budget=None):
    """The wide path of :func:`bootstrap_ratios` + :func:`_bootstrap_medians`: the same draws
    (``[k, n_boot]`` weighted medians), each draw's ratios sorted (``O(width log width)``) and
    interpolated as :func:`_sorted_weighted_median` does, a chunk of draws at a time
    (:func:`mrjax.estimators.wide.over_draw_chunks`), so memory is bounded by the chunk.

    Ratios are compared in :data:`BOOTSTRAP_DTYPE` (float32) and weights held in it, as in the
    pairwise path; the cumulative weights are summed in the instruments' dtype.
    """
    width = t.bx.shape[-1]
    words_bx, words_by = (slot_key_words(k, width) for k in jax.random.split(key))
    n = t.nsnp
    w = jnp.where(t.mask, weight_sets, 0.0).astype(BOOTSTRAP_DTYPE)  # [k, width]

    def medians(counters):  # [chunk] -> [k, chunk]
        bx = t.bx + t.sx * draw_normals(words_bx, counters, t.bx.dtype)
        by = t.by + t.sy * draw_normals(words_by, counters, t.bx.dtype)
        ratios = jnp.where(t.mask, by / bx, jnp.inf).astype(BOOTSTRAP_DTYPE)  # [chunk, width]
        r_sorted, slots = argsort_float32_last_axis(ratios)
        w_sorted = jnp.moveaxis(w[:, slots], 0, 1).astype(t.bx.dtype)  # [chunk, k, width]
        one_draw = lambda r, ws: _sorted_weighted_median(r.astype(t.bx.dtype), ws, n)  # noqa: E731
        return jax.vmap(one_draw)(r_sorted, w_sorted).T

    return over_draw_chunks(medians, n_boot, draw_chunk(width, n_boot, budget))


def _sample_sd(x):
    """R's ``sd`` over the last axis; NaN for fewer than two draws (no bootstrap, no SE)."""
    n = x.shape[-1]
    if n < 2:
        return jnp.full(x.shape[:-1], jnp.nan, dtype=x.dtype)
    mu = jnp.mean(x, axis=-1, keepdims=True)
    return jnp.sqrt(jnp.sum((x - mu) ** 2, axis=-1) / (n - 1))


class MedianPanel(NamedTuple):
    """The three median estimates of one trait, from one shared set of bootstrap draws."""

    simple_median: Estimate
    weighted_median: Estimate
    penalised_weighted_median: Estimate


def _median_estimates(t: Instruments, key, params: Params, which: tuple[str, ...], budget=None) -> dict[str, Estimate]:
    n = t.nsnp
    ok = n >= MIN_SNPS
    r = jnp.where(t.mask, t.by / t.bx, 0.0)
    weights = {"simple_median": _simple_weights(t), "weighted_median": jnp.where(t.mask, second_order_weights(t), 0.0)}
    unpenalised = interpolated_weighted_median(
        r, jnp.stack([weights["simple_median"], weights["weighted_median"]]), t.mask, budget
    )
    point = {"simple_median": unpenalised[0], "weighted_median": unpenalised[1]}
    if "penalised_weighted_median" in which:
        pen = jnp.where(t.mask, penalised_weights(t, point["weighted_median"], params.penk), 0.0)
        weights["penalised_weighted_median"] = pen
        point["penalised_weighted_median"] = interpolated_weighted_median(r, pen, t.mask, budget)
    weight_sets = jnp.stack([weights[name] for name in which])
    if params.n_boot == 0:
        boot = jnp.zeros((len(which), 0), dtype=r.dtype)
    elif pairwise_fits(r.shape[-1], params.n_boot, budget):
        ratios = bootstrap_ratios(t, key, params.n_boot)
        boot = _bootstrap_medians(ratios.astype(BOOTSTRAP_DTYPE), weight_sets.astype(BOOTSTRAP_DTYPE), t.mask)
        boot = boot.astype(ratios.dtype)
    else:
        boot = _sorted_bootstrap_medians(t, key, params.n_boot, weight_sets, budget)
    b = jnp.stack([point[name] for name in which])
    se = jax.vmap(_sample_sd)(boot)
    pval = norm_pval(b / se)
    return {name: estimate(b[i], se[i], pval[i], n, ok=ok) for i, name in enumerate(which)}


def median_estimates(t: Instruments, key: jax.Array, params: Params, methods, *, budget=None) -> dict[str, Estimate]:
    """Any subset of the median methods (ids as in :class:`MedianPanel`) from one
    shared computation; each value equals the method's own function under the same key.
    The engine should call this once per trait with the requested median methods rather
    than each method's function (which would repeat the shared draws and densities).
    ``budget`` (bytes; default :data:`mrjax.estimators.wide.PAIRWISE_BUDGET_BYTES`) decides
    between the pairwise and the sorted path and, when given, sizes the sorted path's chunks
    of draws (default :data:`~mrjax.estimators.wide.CHUNK_BUDGET_BYTES`)."""
    return _median_estimates(t, key, params, family_members(MedianPanel, methods, "median"), budget)


def median_panel(t: Instruments, key: jax.Array, params: Params) -> MedianPanel:
    """All three median estimators from one set of draws (one sort per draw).

    Identical, for the same key, to calling :func:`simple_median`, :func:`weighted_median`
    and :func:`penalised_weighted_median` separately.
    """
    names = MedianPanel._fields
    return MedianPanel(**_median_estimates(t, key, params, names))


def simple_median(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """Simple median (TwoSampleMR ``mr_simple_median``): weights ``1/n``; bootstrap SE."""
    return _median_estimates(t, key, params, ("simple_median",))["simple_median"]


def weighted_median(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """Weighted median (TwoSampleMR ``mr_weighted_median``): second-order weights
    ``1/(sy^2/bx^2 + by^2 sx^2/bx^4)``; bootstrap SE with the weights held fixed."""
    return _median_estimates(t, key, params, ("weighted_median",))["weighted_median"]


def penalised_weighted_median(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """Penalised weighted median (TwoSampleMR ``mr_penalised_weighted_median``): weights
    ``w_j min(1, penk * P(chi2_1 > w_j (r_j - b_WM)^2))`` around the weighted median
    ``b_WM``; bootstrap SE with the penalised weights held fixed."""
    return _median_estimates(t, key, params, ("penalised_weighted_median",))["penalised_weighted_median"]


__all__ = [
    "MedianPanel",
    "interpolated_weighted_median",
    "rank_mad",
    "rank_median",
    "stable_ranks",
    "median_estimates",
    "median_panel",
    "penalised_weighted_median",
    "second_order_weights",
    "simple_median",
    "weighted_median",
]
