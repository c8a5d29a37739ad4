"""Simple, weighted and penalised weighted median estimators (TwoSampleMR ``mr_*median``).

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
same key in the same way, so :func:`median_panel` (one sort of each draw shared by the three
weightings) returns exactly what the three functions return one by one.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import erfc

from mrjax.batch import Instruments
from mrjax.estimators.common import Estimate, Params, estimate
from mrjax.stats import norm_pval

MIN_SNPS = 3


def interpolated_weighted_median(r, w, mask):
    """TwoSampleMR's ``weighted_median(b_iv, weights)`` of the masked entries of ``r[width]``.

    Ties keep their input order (R's ``order`` is stable); NaN when the largest weight
    carries half the total mass or more at the lowest ratio (R errors there).
    """
    w = jnp.where(mask, w, 0.0)
    order = jnp.argsort(jnp.where(mask, r, jnp.inf), stable=True)
    return _sorted_weighted_median(r[order], w[order], mask[order])


def _sorted_weighted_median(r_sorted, w_sorted, mask_sorted):
    width = r_sorted.shape[-1]
    total = jnp.sum(w_sorted)
    p = (jnp.cumsum(w_sorted) - 0.5 * w_sorted) / total
    below = jnp.sum((p < 0.5) & mask_sorted) - 1
    n = jnp.sum(mask_sorted)
    k = jnp.clip(below, 0, width - 2)
    b = r_sorted[k] + (r_sorted[k + 1] - r_sorted[k]) * (0.5 - p[k]) / (p[k + 1] - p[k])
    return jnp.where((below >= 0) & (below + 1 < n), b, jnp.nan)


def second_order_weights(t: Instruments):
    """``1 / VB_j`` with ``VB_j = sy^2/bx^2 + by^2 sx^2/bx^4`` (TwoSampleMR ``mr_weighted_median``)."""
    vb = t.sy**2 / t.bx**2 + t.by**2 * t.sx**2 / t.bx**4
    return 1.0 / vb


def penalised_weights(t: Instruments, b_weighted_median, penk):
    """``w_j * min(1, penk * P(chi2_1 > w_j (r_j - b_WM)^2))`` with second-order ``w_j``
    (TwoSampleMR ``mr_penalised_weighted_median``); the chi-square(1) tail is
    ``erfc(sqrt(q / 2))``."""
    w = second_order_weights(t)
    q = w * (t.by / t.bx - b_weighted_median) ** 2
    penalty = erfc(jnp.sqrt(0.5 * q))
    return w * jnp.minimum(1.0, penk * penalty)


def _simple_weights(t: Instruments):
    n = jnp.sum(t.mask)
    return jnp.where(t.mask, 1.0 / jnp.maximum(n, 1), 0.0)


def bootstrap_ratios(t: Instruments, key, n_boot: int):
    """``[n_boot, width]`` ratios ``by*/bx*`` with ``bx* = bx + sx z``, ``by* = by + sy z'``.

    Each slot draws from ``fold_in(key_bx or key_by, slot)``, so a slot's draws do not depend
    on the width of the padded row.
    """
    key_bx, key_by = jax.random.split(key)
    slots = jnp.arange(t.bx.shape[-1])

    def normals(k):
        return jax.vmap(lambda j: jax.random.normal(jax.random.fold_in(k, j), (n_boot,), dtype=t.bx.dtype))(slots).T

    bx = t.bx + t.sx * normals(key_bx)
    by = t.by + t.sy * normals(key_by)
    return jnp.where(t.mask, by / bx, 0.0)


def _bootstrap_medians(ratios, weight_sets, mask):
    """Weighted medians of every draw for each weight vector: ``[n_weights, n_boot]``.

    One stable sort per draw serves all weight vectors."""

    def one_draw(r):
        order = jnp.argsort(jnp.where(mask, r, jnp.inf), stable=True)
        rs, ms = r[order], mask[order]
        return jax.vmap(lambda w: _sorted_weighted_median(rs, jnp.where(mask, w, 0.0)[order], ms))(weight_sets)

    return jax.vmap(one_draw, out_axes=1)(ratios)


def _sample_sd(x):
    n = x.shape[-1]
    mu = jnp.mean(x, axis=-1, keepdims=True)
    return jnp.sqrt(jnp.sum((x - mu) ** 2, axis=-1) / (n - 1))


class MedianPanel(NamedTuple):
    """The three median estimates of one trait, from one shared set of bootstrap draws."""

    simple_median: Estimate
    weighted_median: Estimate
    penalised_weighted_median: Estimate


def _median_estimates(t: Instruments, key, params: Params, which: tuple[str, ...]) -> dict[str, Estimate]:
    n = t.nsnp
    ok = n >= MIN_SNPS
    r = jnp.where(t.mask, t.by / t.bx, 0.0)
    weights = {"simple_median": _simple_weights(t), "weighted_median": jnp.where(t.mask, second_order_weights(t), 0.0)}
    b_wm = interpolated_weighted_median(r, weights["weighted_median"], t.mask)
    if "penalised_weighted_median" in which:
        weights["penalised_weighted_median"] = jnp.where(t.mask, penalised_weights(t, b_wm, params.penk), 0.0)
    point = {name: interpolated_weighted_median(r, weights[name], t.mask) for name in which}
    ratios = bootstrap_ratios(t, key, params.n_boot)
    boot = _bootstrap_medians(ratios, jnp.stack([weights[name] for name in which]), t.mask)
    out = {}
    for i, name in enumerate(which):
        b = point[name]
        se = _sample_sd(boot[i])
        out[name] = estimate(b, se, norm_pval(b / se), n, ok=ok)
    return out


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
    "median_panel",
    "penalised_weighted_median",
    "second_order_weights",
    "simple_median",
    "weighted_median",
]
