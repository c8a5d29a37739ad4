"""Mode-based estimators (TwoSampleMR ``mr_simple_mode``, ``mr_weighted_mode``,
``mr_simple_mode_nome``, ``mr_weighted_mode_nome``; all computed by ``mr_mode``).

Point estimate for ratio estimates ``r_j = by_j / bx_j`` and weights ``w_j``: bandwidth
``s = 0.9 min(sd(r), mad(r)) / n^(1/5)`` (``mad`` with 1.4826), ``h = max(1e-8, s * phi)``;
weights ``w_j = se_j^-2 / sum(se^-2)``; the estimate is the location of the first maximum of
R's binned ``density(r, weights = w, bw = h)`` (see :mod:`mrjax.estimators.density`).

- simple mode: equal weights (``se_j = 1``);
- weighted mode: second-order (delta) ratio SEs ``se_j = sqrt(sy^2/bx^2 + by^2 sx^2/bx^4)``;
- weighted mode (NOME): first-order SEs ``se_j = sy / |bx|``;
- simple mode (NOME): same point estimate as the simple mode.

Bootstrap (``mr_mode``'s ``boot``): ``n_boot`` draws ``r* ~ N(r, se_delta)`` for the simple
and weighted modes, and separately ``r* ~ N(r, se_NOME)`` for the NOME variants; in each draw
the estimate is recomputed with the ORIGINAL weights and a bandwidth recomputed from the
draw. ``se = mad`` of the bootstrap estimates; ``p = 2 P(T_{n-1} > |b/se|)``. At least 3
instruments are needed.

Point estimates run R's binned ``density()`` exactly (they match R to rounding). Bootstrap
draws use :func:`mrjax.estimators.density.kde_modes` instead: the argmax, on R's output grid,
of the same weighted Gaussian density with the same per-draw bandwidth, found directly (best
data point, a few ascent steps, the nearest grid point) rather than binned and
FFT-convolved. This is the same estimator: R's binning only adds a smoothing error far below
the bandwidth, and the two agree within two output-grid steps (each 1/511 of the span)
except at near-tied peaks (tested against a numpy transcription of R), while a bootstrap SE
is the MAD of the draws' modes, spread over many grid steps; individual draws cannot be
compared with R's anyway (different RNG). The draws of a trait are laid out
``[width, n_boot]`` and every per-draw statistic (bandwidth, median, kernel sums) runs as row
operations over the draws (:mod:`mrjax.estimators.draws`).

Wide traits (where the search's ``width^2`` kernel values per draw would exceed the memory
budget, see :mod:`mrjax.estimators.wide`) take R's own binned density for every draw instead
(:func:`binned_bootstrap_modes`: 512 linear bins, FFT convolution, the first maximum on R's
output grid, i.e. exactly what ``mr_mode`` computes per draw), with each draw's bandwidth
from sorted order statistics, a chunk of draws at a time: ``O(width log width)`` per draw and
memory bounded by the chunk. Its modes are R's to rounding; the direct search's differ from
them by at most two output-grid steps except at near-tied peaks (see above), so the two paths'
SEs agree to Monte-Carlo error. Point estimates are the same on both paths (the bandwidth's
MAD is found by sorting for wide traits: the same value).

A draw set (delta or NOME) fixes the bandwidth of each draw; the weightings of a set share
it, so :func:`mode_panel` returns exactly what the four methods return one by one (same key,
same draws).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax.batch import Instruments
from mrjax.estimators.common import Estimate, Params, estimate, family_members
from mrjax.estimators.density import SEARCH_DTYPE, density_mode, kde_modes
from mrjax.estimators.draws import SORT_NETWORK_MAX_WIDTH, draw_normals, slot_key_words, slot_normals, slot_sum, sort_slots
from mrjax.estimators.median import rank_mad
from mrjax.estimators.wide import draw_chunk, over_draw_chunks, pairwise_fits
from mrjax.stats import MAD_CONSTANT, masked_mad, masked_sd, t_pval

MIN_SNPS = 3
BANDWIDTH_FLOOR = 1e-8


def ratio_se_delta(t: Instruments):
    """Second-order ratio SE ``sqrt(sy^2/bx^2 + by^2 sx^2/bx^4)`` (``mr_mode``'s ``seBetaIV[, 1]``)."""
    return jnp.sqrt(t.sy**2 / t.bx**2 + t.by**2 * t.sx**2 / t.bx**4)


def ratio_se_nome(t: Instruments):
    """First-order (NOME) ratio SE ``sy / |bx|`` (``mr_mode``'s ``seBetaIV[, 2]``)."""
    return t.sy / jnp.abs(t.bx)


def mode_bandwidth(r, mask, phi, budget=None):
    """``max(1e-8, phi * 0.9 min(sd(r), mad(r)) / n^(1/5))`` over the masked entries
    (``budget``: see :func:`~mrjax.estimators.median.rank_mad`; 0 always sorts)."""
    n = jnp.sum(mask)
    s = 0.9 * jnp.minimum(masked_sd(r, mask), rank_mad(r, mask, budget)) / n ** (1.0 / 5.0)
    return jnp.maximum(BANDWIDTH_FLOOR, s * phi)


def normalised_weights(se, mask):
    """``se^-2 / sum(se^-2)`` over the masked entries (0 elsewhere)."""
    inv = jnp.where(mask, 1.0 / jnp.where(mask, se, 1.0) ** 2, 0.0)
    return inv / jnp.sum(inv)


def mode_estimate(r, weights, mask, phi, conv_dtype=None, budget=None):
    """``mr_mode``'s ``beta``: the mode of R's density of ``r`` with bandwidth from ``r``.

    ``weights`` is ``[width]`` or ``[k, width]`` (several weightings of the same sample).
    """
    return density_mode(r, weights, mask, mode_bandwidth(r, mask, phi, budget), conv_dtype)


class ModePanel(NamedTuple):
    """The four mode estimates of one trait, from shared bootstrap draws."""

    simple_mode: Estimate
    weighted_mode: Estimate
    simple_mode_nome: Estimate
    weighted_mode_nome: Estimate


# method -> (draw set, weighting)
_VARIANTS = {
    "simple_mode": ("delta", "simple"),
    "weighted_mode": ("delta", "delta"),
    "simple_mode_nome": ("nome", "simple"),
    "weighted_mode_nome": ("nome", "nome"),
}


def _row_median(x, mask):
    """R's ``median`` of the masked rows of ``x[width, draws]``, per draw: ``[draws]``.

    Ranks by pairwise comparison (ties in slot order; masked rows rank last), as row
    operations, then one pass over the rows that picks the entries ranked ``(n - 1) // 2``
    and ``n // 2``.
    """
    width = x.shape[0]
    n = jnp.sum(mask)
    keyed = jnp.where(mask[:, None], x, jnp.inf)
    slot = jnp.arange(width)[:, None]
    rank = slot_sum(lambda j: jnp.where(jnp.where(slot > j, keyed[j] <= keyed, keyed[j] < keyed), 1.0, 0.0), width)

    def pick(i, total):
        share = jnp.where(rank[i] == (n - 1) // 2, 0.5, 0.0) + jnp.where(rank[i] == n // 2, 0.5, 0.0)
        return total + jnp.where(mask[i], x[i] * share, 0.0)

    return jax.lax.fori_loop(0, width, pick, jnp.zeros(x.shape[1:], x.dtype))


def _sorted_row_mad(x, mask):
    """``median(|x - median(x)|)`` of the masked rows of ``x[width, draws]``, per draw, from
    one sort of the rows (:func:`~mrjax.estimators.draws.sort_slots`; masked rows as +inf, so
    last): the median is the mean of the sorted rows ``(n - 1) // 2`` and ``n // 2``, and the
    ``k``-th smallest deviation ``min_a max(d_a, d_{a+k})`` over windows of the sorted rows
    (as :func:`mrjax.stats.masked_mad`). The same values as :func:`_row_median` twice."""
    width = x.shape[0]
    n = jnp.sum(mask)
    s = sort_slots(jnp.where(mask[:, None], x, jnp.inf))
    row = lambda a, i: jax.lax.dynamic_index_in_dim(a, i, 0, keepdims=False)  # noqa: E731
    lo, hi = (n - 1) // 2, n // 2
    d = jnp.abs(s - (row(s, lo) * 0.5 + row(s, hi) * 0.5))

    def kth_smallest(k):
        def window(a, best):
            widest = jnp.maximum(d[a], row(d, jnp.minimum(a + k, width - 1)))
            return jnp.where(a + k < n, jnp.minimum(best, widest), best)

        return jax.lax.fori_loop(0, width, window, jnp.full(x.shape[1:], jnp.inf, x.dtype), unroll=4)

    return kth_smallest(lo) * 0.5 + kth_smallest(hi) * 0.5


def draw_bandwidths(x, mask, phi):
    """:func:`mode_bandwidth` of every draw (column) of ``x[width, draws]``: ``[draws]``.

    The MAD by a sorting network up to :data:`~mrjax.estimators.draws.SORT_NETWORK_MAX_WIDTH`
    slots, by pairwise ranks beyond (identical values)."""
    width = x.shape[0]
    n = jnp.sum(mask)
    mean = slot_sum(lambda j: jnp.where(mask[j], x[j], 0.0), width) / n
    sd = jnp.sqrt(slot_sum(lambda j: jnp.where(mask[j], (x[j] - mean) ** 2, 0.0), width) / (n - 1))
    if width <= SORT_NETWORK_MAX_WIDTH:
        mad = MAD_CONSTANT * _sorted_row_mad(x, mask)
    else:
        mad = MAD_CONSTANT * _row_median(jnp.abs(x - _row_median(x, mask)), mask)
    s = 0.9 * jnp.minimum(sd, mad) / n ** (1.0 / 5.0)
    return jnp.maximum(BANDWIDTH_FLOOR, s * phi)


def bootstrap_modes(r, se, weights, mask, phi, z):
    """Modes (:func:`~mrjax.estimators.density.kde_modes`) of the bootstrap samples
    ``r* = r + se[s] * z[s]`` for every draw set ``s``, each with the weightings
    ``weights[s]`` (``[k, width]``) and a bandwidth recomputed from the draw: ``[S, k, n_boot]``
    from ``se[S, width]``, ``weights[S, k, width]`` and standard normals
    ``z[S, width, n_boot]`` (draws along the last axis)."""

    def one_set(se_s, weights_s, z_s):
        draws = jnp.where(mask[:, None], r[:, None] + se_s[:, None] * z_s, 0.0)
        # The bandwidth only scales the search, which runs in SEARCH_DTYPE: its order
        # statistics need no more precision (and float32 comparisons are twice as cheap).
        bandwidth = draw_bandwidths(draws.astype(SEARCH_DTYPE), mask, phi).astype(draws.dtype)
        return kde_modes(draws, weights_s, mask, bandwidth)

    return jnp.stack([one_set(se[s], weights[s], z[s]) for s in range(z.shape[0])])


def binned_bootstrap_modes(r, se, weights, mask, phi, set_keys, n_boot: int, budget=None):
    """The wide path of :func:`bootstrap_modes` (same arguments, but the draws come from the
    key of each set, ``set_keys[S]``, as :func:`slot_normals` would give them): for every
    draw, the bandwidth from sorted order statistics (:func:`mode_bandwidth` with ``budget``
    0, in ``SEARCH_DTYPE`` as in the pairwise path) and the mode of R's binned density
    (:func:`~mrjax.estimators.density.density_mode`), a chunk of draws at a time:
    ``[S, k, n_boot]``."""
    width = r.shape[-1]
    words = [slot_key_words(k, width) for k in set_keys]

    def modes(counters):  # [chunk] -> [S, k, chunk]
        out = []
        for s, words_s in enumerate(words):
            draws = jnp.where(mask, r + se[s] * draw_normals(words_s, counters, r.dtype), 0.0)  # [chunk, width]
            bandwidth = jax.vmap(lambda x: mode_bandwidth(x, mask, phi, budget=0))(draws.astype(SEARCH_DTYPE))
            one_draw = lambda x, h: density_mode(x, weights[s], mask, h)  # noqa: E731
            out.append(jax.vmap(one_draw)(draws, bandwidth.astype(r.dtype)).T)
        return jnp.stack(out)

    return over_draw_chunks(modes, n_boot, draw_chunk(width, n_boot, budget))


def _mode_estimates(t: Instruments, key, params: Params, which: tuple[str, ...], budget=None) -> dict[str, Estimate]:
    n = t.nsnp
    ok = n >= MIN_SNPS
    mask = t.mask
    r = jnp.where(mask, t.by / t.bx, 0.0)
    se = {"delta": jnp.where(mask, ratio_se_delta(t), 1.0), "nome": jnp.where(mask, ratio_se_nome(t), 1.0)}
    weights = {
        "simple": normalised_weights(jnp.ones_like(r), mask),
        "delta": normalised_weights(se["delta"], mask),
        "nome": normalised_weights(se["nome"], mask),
    }
    key_of_set = dict(zip(("delta", "nome"), jax.random.split(key)))
    sets = [s for s in ("delta", "nome") if any(_VARIANTS[m][0] == s for m in which)]
    members = {s: [m for m in which if _VARIANTS[m][0] == s] for s in sets}
    k = max(len(v) for v in members.values())
    # Every set carries k weightings (a set with fewer repeats its first) so sets stack.
    set_weights = jnp.stack(
        [jnp.stack([weights[_VARIANTS[m][1]] for m in (members[s] + members[s][:1] * k)[:k]]) for s in sets]
    )
    # Point estimates: R's binned density, exactly; every weighting of every set in one pass.
    point_modes = mode_estimate(r, set_weights, mask, params.phi, budget=budget)  # [S, k]
    point = {m: point_modes[sets.index(_VARIANTS[m][0]), members[_VARIANTS[m][0]].index(m)] for m in which}
    if params.n_boot > 0 and not pairwise_fits(r.shape[-1], params.n_boot, budget):
        set_se = jnp.stack([se[s] for s in sets])
        boot = binned_bootstrap_modes(r, set_se, set_weights, mask, params.phi, [key_of_set[s] for s in sets], params.n_boot, budget)
    elif params.n_boot > 0:
        z = jnp.stack([slot_normals(key_of_set[s], params.n_boot, r.shape[-1], r.dtype, row_by_row=True) for s in sets])
        boot = bootstrap_modes(r, jnp.stack([se[s] for s in sets]), set_weights, mask, params.phi, z)
    else:
        boot = jnp.zeros(point_modes.shape + (0,), dtype=r.dtype)

    # One stacked MAD / t tail for all requested methods keeps the compiled graph small.
    boot_of = jnp.stack([boot[sets.index(_VARIANTS[m][0]), members[_VARIANTS[m][0]].index(m)] for m in which])
    b = jnp.stack([point[m] for m in which])
    if params.n_boot > 0:
        all_draws = jnp.ones(params.n_boot, dtype=bool)
        se_b = jax.vmap(lambda x: masked_mad(x, all_draws))(boot_of)
    else:  # point estimates only (simulation studies): no bootstrap, no SE
        se_b = jnp.full_like(b, jnp.nan)
    pval = t_pval(b / se_b, n - 1)
    return {m: estimate(b[i], se_b[i], pval[i], n, ok=ok) for i, m in enumerate(which)}


def mode_estimates(t: Instruments, key: jax.Array, params: Params, methods, *, budget=None) -> dict[str, Estimate]:
    """Any subset of the mode methods (ids as in :class:`ModePanel`) from one
    shared computation; each value equals the method's own function under the same key.
    The engine should call this once per trait with the requested mode methods rather
    than each method's function (which would repeat the shared draws and densities).
    ``budget`` (bytes; default :data:`mrjax.estimators.wide.PAIRWISE_BUDGET_BYTES`) decides
    between the pairwise and the sorted/binned path and, when given, sizes the latter's chunks
    of draws (default :data:`~mrjax.estimators.wide.CHUNK_BUDGET_BYTES`)."""
    return _mode_estimates(t, key, params, family_members(ModePanel, methods, "mode"), budget)


def mode_panel(t: Instruments, key: jax.Array, params: Params) -> ModePanel:
    """All four mode estimators (what TwoSampleMR's ``mr_mode`` computes in one call),
    sharing draws, bandwidths, bins and kernels; identical, for the same key, to the four
    functions called one by one."""
    return ModePanel(**_mode_estimates(t, key, params, ModePanel._fields))


def simple_mode(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """Simple mode (TwoSampleMR ``mr_simple_mode``): equal weights; bootstrap on delta SEs."""
    return _mode_estimates(t, key, params, ("simple_mode",))["simple_mode"]


def weighted_mode(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """Weighted mode (TwoSampleMR ``mr_weighted_mode``): weights ``se_delta^-2``; bootstrap
    ``r* ~ N(r, se_delta)``."""
    return _mode_estimates(t, key, params, ("weighted_mode",))["weighted_mode"]


def simple_mode_nome(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """Simple mode (NOME) (TwoSampleMR ``mr_simple_mode_nome``): the simple mode's point
    estimate with the bootstrap ``r* ~ N(r, sy/|bx|)``."""
    return _mode_estimates(t, key, params, ("simple_mode_nome",))["simple_mode_nome"]


def weighted_mode_nome(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """Weighted mode (NOME) (TwoSampleMR ``mr_weighted_mode_nome``): weights ``(sy/|bx|)^-2``;
    bootstrap ``r* ~ N(r, sy/|bx|)``."""
    return _mode_estimates(t, key, params, ("weighted_mode_nome",))["weighted_mode_nome"]
