"""MR-PRESSO for many traits at once: global test, outlier test, outlier-corrected IVW and
distortion test (Verbanck et al., Nat Genet 2018), reproducing ``MRPRESSO::mr_presso`` 1.0
(rondolab/MR-PRESSO@3e3c92d) for one exposure.

The R package refits n leave-one-out regressions inside every simulated data set. Here a
leave-one-out IVW slope through the origin is a difference of two sums,

    slope_(-i) = (sum_j w_j bx_j by_j - w_i bx_i by_i) / (sum_j w_j bx_j^2 - w_i bx_i^2),

so one simulated data set costs O(n). Draws run in fixed-size chunks inside a
``lax.fori_loop`` whose trip count is traced (memory does not grow with ``n_draws``, and one
compiled kernel serves every ``n_draws``); the functions here are per trait (``mrjax.engine``
vmaps and jits them over the traits of a padded bucket), and inside a trait the arrays are
``[width, chunk]`` with the draws on the minor axis.

Randomness: instrument j of trait t has the key ``key_tj = fold_in(fold_in(key_t, phase), j)``
with ``key_t = fold_in(key(seed), trait_uid)`` (:func:`mrjax.batch.trait_keys`), and its
draw d uses the two words of the Threefry hash of the counter ``(d, 0)`` under ``key_tj``
(:func:`threefry2x32`, :func:`box_muller`). A trait's results therefore depend only on the
seed and the trait: not on the other traits, the bucket width, the chunk size or the device
(barring a simulated statistic that ties the observed one to the last bit, where summation
order could matter). They are Monte-Carlo equivalent to R's, not equal draw for draw (R uses
its Mersenne-Twister stream).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from mrjax import engine
from mrjax.batch import DRAW_BUCKETS, Instruments, TraitBatch, from_frame, trait_keys
from mrjax.estimators.draws import box_muller, threefry2x32
from mrjax.stats import t_pval

MIN_INSTRUMENTS = 4  # R: stop("Not enough intrumental variables") when n <= #exposures + 2
DEFAULT_CHUNK = 64  # draws per loop step (32..256 run equally fast on the 2-core CPU)

_PHASE_NULL = 0  # simulated data sets of the global and outlier tests
_PHASE_DISTORTION = 1  # random subsets of the distortion test

TRAIT_COLUMNS = [
    "nsnp",
    "raw_b",
    "raw_se",
    "raw_t",
    "raw_pval",
    "corrected_b",
    "corrected_se",
    "corrected_t",
    "corrected_pval",
    "rss_obs",
    "global_pval",
    "global_pval_bound",
    "n_outliers",
    "outliers",
    "distortion_coef",
    "distortion_pval",
    "distortion_pval_bound",
    "reason",
]
INSTRUMENT_COLUMNS = ["SNP", "rss_obs", "pval", "pval_bound", "outlier"]


# --------------------------------------------------------------------------------------------
# Deterministic part: orientation, IVW fits, observed residual sums of squares


class Observed(NamedTuple):
    """The oriented data of one trait and its deterministic MR-PRESSO statistics."""

    bx: jax.Array  # [width] exposure effects times sign(bx)
    by: jax.Array  # [width] outcome effects times sign(bx)
    w: jax.Array  # [width] 1/sy^2 (0 in padding)
    slope_loo: jax.Array  # [width] IVW slope without instrument i
    resid2: jax.Array  # [width] (by_i - slope_(-i) bx_i)^2, unweighted (outlier-test RSSobs)
    rss_obs: jax.Array  # global-test RSSobs: sum_i w_i (by_i - slope_(-i) bx_i)^2
    nsnp: jax.Array


class Fit(NamedTuple):
    """An IVW fit as R's ``summary(lm(by ~ -1 + bx, weights = w))`` reports it."""

    b: jax.Array
    se: jax.Array
    t: jax.Array
    pval: jax.Array


def _loo_slopes(bx, by, w):
    """Leave-one-out weighted slopes through the origin, all n at once (sums minus term i)."""
    wxy = w * bx * by
    wxx = w * bx * bx
    return (jnp.sum(wxy, -1, keepdims=True) - wxy) / (jnp.sum(wxx, -1, keepdims=True) - wxx)


def observed(t: Instruments) -> Observed:
    """Orientation and observed statistics of one trait (fields ``[width]``).

    As ``mr_presso``: ``bx, by <- bx * sign(bx), by * sign(bx)``; ``w = 1/sy^2``;
    ``RSSobs = sum_i w_i (by_i - slope_(-i) bx_i)^2`` (``getRSS_LOO``) and the outlier test's
    per-instrument ``RSSobs_i = (by_i - slope_(-i) bx_i)^2`` (unweighted, as in R).
    """
    sign = jnp.sign(t.bx)
    bx = t.bx * sign
    by = t.by * sign
    w = jnp.where(t.mask, 1.0 / (t.sy * t.sy), 0.0)
    slope = _loo_slopes(bx, by, w)
    resid = by - slope * bx
    resid2 = jnp.where(t.mask, resid * resid, 0.0)
    rss = jnp.sum(w * resid2, -1)
    return Observed(bx=bx, by=by, w=w, slope_loo=slope, resid2=resid2, rss_obs=rss, nsnp=t.nsnp)


def ivw_lm(bx, by, w, keep) -> Fit:
    """Weighted least squares through the origin over the instruments in ``keep``:
    ``b = sum w bx by / sum w bx^2``, ``se = sqrt(sum w (by - b bx)^2 / (m - 1) / sum w bx^2)``,
    ``t = b / se``, two-sided p from t with ``m - 1`` df (m = #kept), exactly
    ``summary(lm(by ~ -1 + bx, weights = w))$coefficients`` as MRPRESSO reports its "Raw" and
    "Outlier-corrected" rows (no max(1, sigma) rule)."""
    w = jnp.where(keep, w, 0.0)
    sxx = jnp.sum(w * bx * bx, -1)
    b = jnp.sum(w * bx * by, -1) / sxx
    resid = by - b[..., None] * bx
    df = jnp.sum(keep, -1) - 1
    sigma2 = jnp.sum(w * resid * resid, -1) / jnp.where(df > 0, df, jnp.nan)
    se = jnp.sqrt(sigma2 / sxx)
    t = b / se
    return Fit(b=b, se=se, t=t, pval=t_pval(t, df))


# --------------------------------------------------------------------------------------------
# Monte-Carlo part

def instrument_keys(key, phase, width):
    """``[width, 2]`` uint32 Threefry keys ``fold_in(fold_in(key, phase), j)``, j < width:
    instrument j's random stream for one trait and phase (the same j gives the same key at
    any padded width)."""
    phase_key = jax.random.fold_in(key, phase)
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(phase_key, jnp.arange(width, dtype=jnp.uint32))
    return jax.random.key_data(keys)


def counter_words(inst_keys, draws):
    """``threefry2x32(key_j, (d, 0))`` for instrument j and draw d: two ``uint32``
    ``[width, len(draws)]`` arrays (the hash's two output words)."""
    shape = (inst_keys.shape[0], draws.shape[0])
    counters = jnp.broadcast_to(draws, shape)
    return threefry2x32(inst_keys[:, 0:1], inst_keys[:, 1:2], counters, jnp.zeros(shape, jnp.uint32))


def _packed_normals(inst_keys, draws):
    """Instrument j's normal pair of draw d, ``box_muller(threefry2x32(key_j, (d, 0)))``, as
    one ``uint64 [width, len(draws)]`` array holding both float32 bit patterns (one array,
    so that XLA hashes and takes the log once per pair instead of once per normal)."""
    z0, z1 = box_muller(*counter_words(inst_keys, draws))
    bits = lambda z: jax.lax.bitcast_convert_type(z, jnp.uint32).astype(jnp.uint64)  # noqa: E731
    return (bits(z0) << 32) | bits(z1)


def _unpack_normals(packed):
    """The two float64 ``[width, chunk]`` normals of :func:`_packed_normals`."""
    def as_float(word):
        return jax.lax.bitcast_convert_type(word.astype(jnp.uint32), jnp.float32).astype(jnp.float64)

    return as_float(packed >> 32), as_float(packed)


def _draw_loop(n_draws, chunk, body, init):
    """Fold ``body(carry, draws, valid)`` over ``ceil(n_draws / chunk)`` chunks of draw
    indices (``uint32 [chunk]``); ``valid`` masks the draws past ``n_draws`` in the last
    chunk. The trip count is traced: one compiled kernel serves every ``n_draws``."""
    offsets = jnp.arange(chunk, dtype=jnp.uint32)

    def loop(c, carry):
        draws = (c * chunk).astype(jnp.uint32) + offsets
        return body(carry, draws, draws < n_draws)

    return jax.lax.fori_loop(0, (n_draws + chunk - 1) // chunk, loop, init)


def _null_counts(t: Instruments, obs: Observed, key, n_draws, chunk: int, per_instrument: bool):
    """Exceedance counts over ``n_draws`` simulated data sets of one trait (``getRandomData``).

    Each data set draws ``bx*_i ~ N(bx_i, sx_i)`` and ``by*_i ~ N(slope_(-i) bx_i, sy_i)``
    (the observed leave-one-out prediction). Returns the number of sets whose leave-one-out
    RSS (weights ``1/sy^2``) exceeds ``RSSobs`` and, per instrument, the number whose
    ``(by*_i - slope_(-i) bx*_i)^2`` exceeds the observed ``(by_i - slope_(-i) bx_i)^2``.

    Arrays are ``[width, chunk]`` with the draws on the minor axis (elementwise work that
    XLA vectorises over draws); draw d of instrument i takes its two normals ``(z_x, z_y)``
    from ``box_muller(threefry2x32(key_i, (d, 0)))``, so a trait's data sets depend only on
    its key, never on the padded width or the chunk size. The normals of the next chunk are
    computed at the end of each step and carried (packed in one array): a loop carry is
    stored once, whereas XLA would otherwise recompute the hash and log for each normal.
    """
    width = t.bx.shape[-1]
    keys = instrument_keys(key, _PHASE_NULL, width)
    col = lambda a: a[:, None]  # noqa: E731  [width] -> [width, 1]
    mean_x, mean_y = col(obs.bx), col(obs.slope_loo * obs.bx)
    sx, sy, w = col(t.sx), col(t.sy), col(obs.w)
    slope_obs, resid2_obs, mask = col(obs.slope_loo), col(obs.resid2), col(t.mask)
    first = jnp.arange(chunk, dtype=jnp.uint32)

    def step(carry, draws, valid):
        n_global, n_inst, normals = carry
        z_x, z_y = _unpack_normals(normals)
        bx = mean_x + sx * z_x
        by = mean_y + sy * z_y
        wxy, wxx = w * bx * by, w * bx * bx
        resid = by - (jnp.sum(wxy, 0) - wxy) / (jnp.sum(wxx, 0) - wxx) * bx
        n_global = n_global + ((jnp.sum(w * resid * resid, 0) > obs.rss_obs) & valid)
        if per_instrument:
            e = by - slope_obs * bx
            n_inst = n_inst + ((e * e > resid2_obs) & mask & valid)
        return n_global, n_inst, _packed_normals(keys, draws + jnp.uint32(chunk))

    init = (
        jnp.zeros(chunk, jnp.int32),
        jnp.zeros((width, chunk) if per_instrument else (width, 1), jnp.int32),
        _packed_normals(keys, first),
    )
    n_global, n_inst, _ = _draw_loop(n_draws, chunk, step, init)
    return jnp.sum(n_global, dtype=jnp.int64), jnp.sum(n_inst, -1, dtype=jnp.int64)


def _distortion_count(t: Instruments, outlier, key, n_draws, chunk: int):
    """Distortion test of one trait (``getRandomBias``), including R's index quirk.

    R builds ``indices <- c(outliers, <n - k draws with replacement from the non-outliers>)``
    and fits IVW on ``indices[1:(n - k)]``: the k outliers themselves are always in the random
    set and only the first ``n - 2k`` draws are used (when ``2k >= n`` the set is just the
    first ``n - k`` outliers). This is reproduced as is. Returns the distortion coefficient
    ``100 (b_all - b_noOutliers) / |b_noOutliers|`` and the number of draws with
    ``|(b_all - b_rand) / |b_rand|| > |(b_all - b_noOutliers) / |b_noOutliers||``.

    Random slot s of draw d picks ``floor(u * #non-outliers)`` with ``u`` the first word of
    ``threefry2x32(key_s, (d, 0))`` over 2^32 (arrays ``[width, chunk]``, as
    :func:`_null_counts`).
    """
    obs = observed(t)
    mask = t.mask
    width = mask.shape[-1]
    n = jnp.sum(mask)
    outlier = outlier & mask
    k = jnp.sum(outlier)
    inlier = mask & ~outlier
    wxy = obs.w * obs.bx * obs.by
    wxx = obs.w * obs.bx * obs.bx
    b_all = jnp.sum(wxy) / jnp.sum(wxx)
    b_clean = jnp.sum(jnp.where(inlier, wxy, 0.0)) / jnp.sum(jnp.where(inlier, wxx, 0.0))
    bias_obs = (b_all - b_clean) / jnp.abs(b_clean)

    in_fixed_part = outlier & (jnp.cumsum(outlier) <= n - k)
    fixed_xy = jnp.sum(jnp.where(in_fixed_part, wxy, 0.0))
    fixed_xx = jnp.sum(jnp.where(in_fixed_part, wxx, 0.0))
    order = jnp.argsort(jnp.where(inlier, 0, 1), stable=True)  # inliers first, in input order
    pool_xy, pool_xx = wxy[order], wxx[order]
    n_pool = jnp.maximum(n - k, 1)
    n_random = jnp.maximum(n - 2 * k, 0)
    used_slot = (jnp.arange(width) < n_random)[:, None]
    keys = instrument_keys(key, _PHASE_DISTORTION, width)

    def step(count, draws, valid):
        u = counter_words(keys, draws)[0].astype(jnp.float64) * 2.0**-32
        pick = jnp.minimum((u * n_pool).astype(jnp.int32), n_pool - 1)
        sxy = fixed_xy + jnp.sum(jnp.where(used_slot, pool_xy[pick], 0.0), 0)
        sxx = fixed_xx + jnp.sum(jnp.where(used_slot, pool_xx[pick], 0.0), 0)
        b_rand = sxy / sxx
        return count + ((jnp.abs((b_all - b_rand) / jnp.abs(b_rand)) > jnp.abs(bias_obs)) & valid)

    count = _draw_loop(n_draws, chunk, step, jnp.zeros(chunk, jnp.int32))
    return 100.0 * bias_obs, jnp.sum(count, dtype=jnp.int64)


class NullOutput(NamedTuple):
    """Per-trait arrays of :func:`presso_kernel` (leading axis = traits)."""

    nsnp: jax.Array
    raw: Fit
    corrected: Fit  # NaN unless 1 <= #outliers < n
    rss_obs: jax.Array
    resid2: jax.Array  # [traits, width] outlier-test RSSobs per instrument
    n_exceed_global: jax.Array
    n_exceed_instrument: jax.Array  # [traits, width]
    outlier_test_run: jax.Array
    outlier: jax.Array  # [traits, width]


def trait_presso(t: Instruments, key, signif_threshold, n_draws, *, chunk: int, outlier_test: bool) -> NullOutput:
    """The MR-PRESSO global and outlier tests and the raw and outlier-corrected IVW of one
    trait (fields ``[width]``), ``n_draws`` null data sets (traced: changing it does not
    recompile). Returns exceedance counts; :func:`presso` turns them into p-values.

    Decision rules as ``mr_presso``: the outlier test runs when ``global count / n_draws <
    signif_threshold``; instrument i is an outlier when ``min(1, n * count_i / n_draws) <=
    signif_threshold``. The outlier-corrected IVW is fitted when 1 <= #outliers < n (R fits
    it only inside its distortion test; here it does not depend on ``distortion_test``).
    """
    obs = observed(t)
    n_global, n_inst = _null_counts(t, obs, key, n_draws, chunk, outlier_test)
    n = obs.nsnp
    run_outliers = jnp.asarray(outlier_test) & (n_global / n_draws < signif_threshold)
    p_inst = jnp.minimum(1.0, n * n_inst / n_draws)
    outlier = run_outliers & t.mask & (p_inst <= signif_threshold)
    k = jnp.sum(outlier)
    corrected = ivw_lm(obs.bx, obs.by, obs.w, t.mask & ~outlier)
    has_fit = (k > 0) & (k < n)
    return NullOutput(
        nsnp=n,
        raw=ivw_lm(obs.bx, obs.by, obs.w, t.mask),
        corrected=Fit(*(jnp.where(has_fit, v, jnp.nan) for v in corrected)),
        rss_obs=obs.rss_obs,
        resid2=obs.resid2,
        n_exceed_global=n_global,
        n_exceed_instrument=n_inst,
        outlier_test_run=run_outliers,
        outlier=outlier,
    )


def trait_distortion(t: Instruments, outlier, key, n_draws, *, chunk: int):
    """The distortion test of one trait (:func:`_distortion_count`)."""
    return _distortion_count(t, outlier, key, n_draws, chunk)


def presso_kernel(inst: Instruments, keys: jax.Array, signif_threshold, n_draws, *, chunk: int = DEFAULT_CHUNK,
                  outlier_test: bool = True, slot: int | None = None) -> NullOutput:
    """:func:`trait_presso` for every trait of ``inst`` (fields ``[traits, width]``, ``keys``
    one PRNG key per trait, :func:`mrjax.batch.trait_keys`) in one device call. Traits are
    independent; padding never changes a result."""
    return engine.map_traits(trait_presso, (inst, keys), (signif_threshold, n_draws), slot=slot, chunk=chunk,
                             outlier_test=bool(outlier_test))


def distortion_kernel(inst: Instruments, outlier: jax.Array, keys: jax.Array, n_draws, *, chunk: int = DEFAULT_CHUNK,
                      slot: int | None = None):
    """The MR-PRESSO distortion test (:func:`_distortion_count`) for traits with
    ``1 <= #outliers < n``; ``outlier`` is ``[traits, width]``. Returns
    ``(distortion_coef, exceedance count)`` per trait, in one device call."""
    return engine.map_traits(trait_distortion, (inst, outlier, keys), (n_draws,), slot=slot, chunk=chunk)


# --------------------------------------------------------------------------------------------
# The public entry point


@dataclass(frozen=True)
class PressoResult:
    """MR-PRESSO results: ``traits`` (one row per exposure–outcome pair) and ``instruments``
    (one row per instrument). ``params`` records the call's settings."""

    traits: pd.DataFrame
    instruments: pd.DataFrame
    params: dict = field(default_factory=dict)


def _mc_pval(count, n_draws, scale=1.0):
    """Monte-Carlo p ``min(1, scale * count / n_draws)``; a zero count becomes the bound
    ``min(1, scale / n_draws)`` (R prints it as ``"<scale/n_draws"``), flagged True."""
    count = np.asarray(count, dtype=float)
    bound = count == 0
    p = np.minimum(1.0, scale * np.maximum(count, 1.0) / n_draws)
    return p, bound


def _reason(n, n_draws, outlier_test, ran_outliers, k, distortion_test):
    if n < MIN_INSTRUMENTS:
        return f"too few instruments for MR-PRESSO (n = {n}, needs at least {MIN_INSTRUMENTS})"
    if n >= n_draws:
        return (f"n_draws ({n_draws}) must exceed the number of instruments ({n}) for empirical p-values "
                f"(R's mr_presso refuses too); rerun with n_draws above {n}")
    if not outlier_test:
        return "outlier test not requested"
    if not ran_outliers:
        return "global test not significant: no outlier test"
    if k == 0:
        return "no significant outliers"
    if k == n:
        return "all instruments are outliers"
    if not distortion_test:
        return "distortion test not requested"
    return ""


def _buckets(batch: TraitBatch, chunk: int, members: np.ndarray | None = None):
    """Padded buckets of the traits ``members`` (default all) by :data:`mrjax.batch.DRAW_BUCKETS`:
    one loop step holds ``traits * chunk * width`` elements per array, kept under
    :data:`mrjax.batch.MEMORY_BUDGET_ELEMENTS` whatever the number of traits, instruments or draws."""
    return batch.buckets(policy=DRAW_BUCKETS, members=members, row_elements=lambda width: chunk * width)


class _Collector:
    """Gathers per-bucket kernel outputs into per-trait vectors and ``[traits, width]``
    matrices indexed by trait row."""

    def __init__(self, n_traits: int, width: int):
        self.n_traits, self.width = n_traits, width
        self.values: dict[str, np.ndarray] = {}

    def add(self, name, trait_index, values):
        values = np.asarray(values)
        real = trait_index >= 0
        if name not in self.values:
            shape = (self.n_traits,) + ((self.width,) if values.ndim == 2 else ())
            self.values[name] = np.zeros(shape, dtype=values.dtype)
        if values.ndim == 2:
            self.values[name][trait_index[real], : values.shape[1]] = values[real]
        else:
            self.values[name][trait_index[real]] = values[real]

    PER_INSTRUMENT = ("resid2", "n_exceed_instrument", "outlier")

    def __getitem__(self, name):
        if name not in self.values:  # no bucket ran (no usable trait): zeros, masked out later
            return np.zeros((self.n_traits,) + ((self.width,) if name in self.PER_INSTRUMENT else ()))
        return self.values[name]


def presso(
    data: pd.DataFrame | TraitBatch,
    *,
    n_draws: int = 10_000,
    signif_threshold: float = 0.05,
    outlier_test: bool = True,
    distortion_test: bool = True,
    seed: int = 0,
    chunk_size: int = DEFAULT_CHUNK,
) -> PressoResult:
    """MR-PRESSO (``MRPRESSO::mr_presso`` 1.0, one exposure) for every trait of a harmonised
    table, the same input as :func:`mrjax.mr` (TwoSampleMR ``dat`` or its snake_case twin;
    ``mr_keep`` FALSE rows are left out).

    Per trait, with ``bx, by`` multiplied by ``sign(bx)`` and ``w = 1/sy^2``:

    * raw estimate: ``lm(by ~ -1 + bx, weights = w)``; t-based p with n - 1 df;
    * global test: ``RSSobs = sum_i w_i (by_i - slope_(-i) bx_i)^2`` with leave-one-out IVW
      slopes; ``n_draws`` null data sets ``bx* ~ N(bx, sx)``, ``by*_i ~ N(slope_(-i) bx_i,
      sy_i)``; ``global_pval`` = fraction of null RSS above RSSobs;
    * outlier test (when ``outlier_test`` and ``global_pval < signif_threshold``): per
      instrument the unweighted squared residual ``(by_i - slope_(-i) bx_i)^2`` against the
      same quantity in the same null sets; p times n (Bonferroni, capped at 1); outliers are
      the instruments with ``pval <= signif_threshold``;
    * outlier-corrected estimate: the raw fit without the outliers, t-based p with
      n - 1 - #outliers df (reported whenever 1 <= #outliers < n; R reports it only when
      its distortion test is on);
    * distortion test (when ``distortion_test`` and 1 <= #outliers < n):
      ``distortion_coef = 100 (b_all - b_corrected) / |b_corrected|`` against ``n_draws``
      IVW fits on random instrument sets built as R builds them: the outliers plus
      ``n - 2 #outliers`` draws with replacement from the non-outliers (R's quirk of
      truncating ``c(outliers, draws)`` to ``n - #outliers`` entries, kept on purpose so
      the p-values match R's).

    Monte-Carlo p-values with no exceeding draw are reported as their bound ``1/n_draws``
    (``n/n_draws`` for instruments) with ``*_bound`` True, never 0. Traits with fewer than 4
    instruments (R needs n > #exposures + 2) or with ``n >= n_draws`` get NaN and a
    ``reason``; ``reason`` also says why corrected/distortion values are NaN (empty when
    everything was computed). A trait whose instruments are all outliers is reported with
    NaN corrected and distortion values.

    Returns a :class:`PressoResult`. ``traits`` columns: ``exposure, outcome`` (and
    ``id.exposure, id.outcome`` when given), ``nsnp, raw_b, raw_se, raw_t, raw_pval,
    corrected_b, corrected_se, corrected_t, corrected_pval, rss_obs, global_pval,
    global_pval_bound, n_outliers, outliers`` (outlier SNP ids joined by ``","``),
    ``distortion_coef, distortion_pval, distortion_pval_bound, reason``. ``instruments``
    columns: ``exposure, outcome, SNP, rss_obs, pval, pval_bound, outlier`` (``pval`` NaN
    where the outlier test did not run).

    Draws are processed ``chunk_size`` at a time, so memory does not depend on ``n_draws``;
    each trait's draws depend only on ``seed`` and the trait's identity, so a trait gets the
    same result alone or in any batch, bucket or chunking. Example::

        res = mrjax.presso(dat, n_draws=100_000, seed=1)
        res.traits[["exposure", "outcome", "global_pval", "outliers", "corrected_b"]]
    """
    if not 1 <= int(n_draws) < 2**32:
        raise ValueError(f"n_draws must be a positive integer below 2^32 (the draw counter), got {n_draws!r}")
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if not 0 < float(signif_threshold) <= 1:
        raise ValueError(f"signif_threshold must be in (0, 1], got {signif_threshold!r}")
    n_draws, chunk = int(n_draws), min(int(chunk_size), int(n_draws))
    batch = data if isinstance(data, TraitBatch) else from_frame(data)
    nsnp = batch.traits["nsnp"].to_numpy()
    out = _Collector(batch.n_traits, DRAW_BUCKETS.width(nsnp.max()))
    # Traits that cannot be tested get NaN and a reason (``_reason``) without running the kernel.
    usable = (nsnp >= MIN_INSTRUMENTS) & (nsnp < n_draws)

    buckets = list(_buckets(batch, chunk, np.nonzero(usable)[0]))
    results = [  # every bucket dispatched before any is read back: they run on all devices at once
        presso_kernel(bucket.instruments, trait_keys(seed, bucket.uids), float(signif_threshold), n_draws,
                      chunk=chunk, outlier_test=bool(outlier_test), slot=i)
        for i, bucket in enumerate(buckets)
    ]
    for bucket, res in zip(buckets, results):
        res = jax.device_get(res)
        for prefix, fit in (("raw", res.raw), ("corrected", res.corrected)):
            for name, values in fit._asdict().items():
                out.add(f"{prefix}_{name}", bucket.trait_index, values)
        for name in ("rss_obs", "resid2", "n_exceed_global", "n_exceed_instrument", "outlier_test_run", "outlier"):
            out.add(name, bucket.trait_index, getattr(res, name))

    n_outliers = out["outlier"].sum(axis=1)
    distorted = usable & (n_outliers > 0) & (n_outliers < nsnp) & bool(distortion_test)
    out.add("distortion_coef", np.arange(batch.n_traits), np.full(batch.n_traits, np.nan))
    out.add("n_exceed_distortion", np.arange(batch.n_traits), np.zeros(batch.n_traits, dtype=np.int64))
    buckets = list(_buckets(batch, chunk, np.nonzero(distorted)[0]))
    results = []
    for i, bucket in enumerate(buckets):
        width = bucket.instruments.bx.shape[-1]
        outlier = np.where(bucket.real[:, None], out["outlier"][bucket.trait_index, :width], False)
        results.append(distortion_kernel(bucket.instruments, outlier, trait_keys(seed, bucket.uids), n_draws,
                                         chunk=chunk, slot=i))
    for bucket, res in zip(buckets, results):
        coef, count = jax.device_get(res)
        out.add("distortion_coef", bucket.trait_index, coef)
        out.add("n_exceed_distortion", bucket.trait_index, count)

    params = {
        "n_draws": n_draws,
        "signif_threshold": float(signif_threshold),
        "outlier_test": bool(outlier_test),
        "distortion_test": bool(distortion_test),
        "seed": seed,
        "chunk_size": chunk,
    }
    return _assemble(batch, out, usable, distorted, params)


def _assemble(batch: TraitBatch, out: _Collector, usable, distorted, params) -> PressoResult:
    """The two result tables from the collected kernel outputs."""
    traits, inst = batch.traits, batch.instruments
    n_draws = params["n_draws"]
    nsnp = traits["nsnp"].to_numpy()
    trait_of, slot = inst["trait"].to_numpy(), inst["slot"].to_numpy()

    ran = out["outlier_test_run"].astype(bool) & usable
    outlier = out["outlier"].astype(bool) & ran[:, None]
    n_outliers = outlier.sum(axis=1)
    inst_outlier = outlier[trait_of, slot]
    inst_p, inst_bound = _mc_pval(out["n_exceed_instrument"][trait_of, slot], n_draws, scale=nsnp[trait_of])
    global_p, global_bound = _mc_pval(out["n_exceed_global"], n_draws)
    dist_p, dist_bound = _mc_pval(out["n_exceed_distortion"], n_draws)

    outlier_ids = [[] for _ in range(len(traits))]
    for t, snp in zip(trait_of[inst_outlier], inst["SNP"].to_numpy()[inst_outlier]):
        outlier_ids[t].append(snp)

    def where(keep, values):
        return np.where(keep, np.asarray(values, dtype=float), np.nan)

    keys = [c for c in ["exposure", "outcome", "id.exposure", "id.outcome"] if c in traits.columns]
    table = traits[keys].copy()
    table["nsnp"] = nsnp
    for name in ["raw_b", "raw_se", "raw_t", "raw_pval", "corrected_b", "corrected_se", "corrected_t", "corrected_pval", "rss_obs"]:
        table[name] = where(usable, out[name])
    table["global_pval"] = where(usable, global_p)
    table["global_pval_bound"] = global_bound & usable
    has_count = usable & params["outlier_test"]
    table["n_outliers"] = pd.array([int(k) if ok else pd.NA for k, ok in zip(n_outliers, has_count)], dtype="Int64")
    table["outliers"] = [",".join(ids) for ids in outlier_ids]
    table["distortion_coef"] = where(distorted, out["distortion_coef"])
    table["distortion_pval"] = where(distorted, dist_p)
    table["distortion_pval_bound"] = dist_bound & distorted
    table["reason"] = [
        _reason(int(n), n_draws, params["outlier_test"], bool(r), int(k), params["distortion_test"])
        for n, r, k in zip(nsnp, ran, n_outliers)
    ]

    ran_inst = ran[trait_of]
    instruments = inst[["exposure", "outcome", "SNP"]].reset_index(drop=True)
    instruments["rss_obs"] = where(usable[trait_of], out["resid2"][trait_of, slot])
    instruments["pval"] = where(ran_inst, inst_p)
    instruments["pval_bound"] = inst_bound & ran_inst
    instruments["outlier"] = inst_outlier
    return PressoResult(traits=table.reset_index(drop=True), instruments=instruments, params=params)
