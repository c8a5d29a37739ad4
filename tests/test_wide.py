"""Wide traits (issue 13): the sorted/binned, chunked paths of the median and mode estimators.

A budget small enough forces a few-hundred-instrument trait onto the wide path, where it is
compared with the pairwise path (same draws: point estimates identical, bootstrap SEs equal to
Monte-Carlo error) and with independent numpy transcriptions of TwoSampleMR's weighted median
and R's ``density()``. One compiled shape per family keeps the file fast.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mrjax
from mrjax.batch import make_instruments
from mrjax.estimators import wide
from mrjax.estimators.common import Params
from mrjax.estimators.draws import draw_normals, slot_key_words, slot_normals
from mrjax.estimators.median import (
    BOOTSTRAP_DTYPE,
    MedianPanel,
    interpolated_weighted_median,
    median_estimates,
    rank_mad,
    rank_median,
)
from mrjax.estimators.mode import (
    ModePanel,
    binned_bootstrap_modes,
    bootstrap_modes,
    mode_estimates,
    normalised_weights,
    ratio_se_delta,
)
from mrjax.stats import argsort_float32_last_axis

NSNP, WIDTH = 300, 320  # padded on purpose (garbage in padding must not matter)
N_BOOT = 200
# Forces both wide paths at WIDTH (320^2 x 8 point copies x 4 B = 3.3 MB > 1 MiB) with
# chunks of 1 MiB / (256 B x 320) = 12 draws: 17 chunks, the last one ragged.
SMALL_BUDGET = 2**20
NARROW_BUDGET = 10**15
KEY = jax.random.key(11)


def _trait(nsnp=NSNP, width=WIDTH, seed=3):
    rng = np.random.default_rng(seed)
    bx = rng.normal(0.0, 0.03, nsnp)
    bx = np.where(np.abs(bx) < 0.01, np.sign(bx) * 0.01 + bx, bx)
    sx = rng.uniform(0.003, 0.008, nsnp)
    sy = rng.uniform(0.004, 0.01, nsnp)
    by = 0.3 * bx + rng.normal(0, 1, nsnp) * sy + (rng.random(nsnp) < 0.1) * rng.normal(0, 0.01, nsnp)
    by[1], bx[1] = 2 * by[0], 2 * bx[0]  # a tied ratio
    pad = lambda v, fill: np.concatenate([v, np.full(width - nsnp, fill)])  # noqa: E731
    t = make_instruments(pad(bx, 9.0), pad(sx, 9.0), pad(by, 9.0), pad(sy, 9.0), np.arange(width) < nsnp)
    return t, dict(bx=bx, sx=sx, by=by, sy=sy)


def _np_weighted_median(b, w):
    """TwoSampleMR ``weighted_median``, rows of ``b`` at once."""
    order = np.argsort(b, axis=-1, kind="stable")
    b, w = np.take_along_axis(b, order, -1), w[order]
    p = (np.cumsum(w, -1) - 0.5 * w) / np.sum(w, -1, keepdims=True)
    k = np.sum(p < 0.5, -1) - 1
    rows = np.arange(len(b))
    return b[rows, k] + (b[rows, k + 1] - b[rows, k]) * (0.5 - p[rows, k]) / (p[rows, k + 1] - p[rows, k])


def _np_r_density_mode(x, w, bw, n=512):
    """Location of the first maximum of R 4.2.2's ``density(x, weights = w, bw = bw)``."""
    start, stop = x.min() - 3 * bw, x.max() + 3 * bw
    lo, up = start - 4 * bw, stop + 4 * bw
    delta = (up - lo) / (n - 1)
    pos = (x - lo) / delta
    ix = np.floor(pos).astype(int)
    fx = pos - ix
    y = np.zeros(2 * n)
    np.add.at(y, ix, w * (1 - fx))
    np.add.at(y, ix + 1, w * fx)
    seq = lambda a, b, m: np.concatenate([a + np.arange(m - 1) * ((b - a) / (m - 1)), [b]])  # noqa: E731
    kords = seq(0.0, 2 * (up - lo), 2 * n)
    kords[n + 1 :] = -kords[n - 1 : 0 : -1]
    dens = np.maximum(0.0, np.fft.ifft(np.fft.fft(y) * np.conj(np.fft.fft(stats.norm.pdf(kords, scale=bw)))).real[:n])
    xout = seq(start, stop, 512)
    return xout[np.argmax(np.interp(xout, seq(lo, up, n), dens))]


# --- the static choice ---------------------------------------------------------------------


def test_path_choice_is_static_from_width_draws_and_budget():
    assert wide.pairwise_fits(32, 1000) and wide.pairwise_fits(128, 1000)  # a scan's buckets
    assert not wide.pairwise_fits(32768, 1000)  # a 20,000-instrument trait's bucket
    assert not wide.pairwise_fits(32768, wide.POINT_COPIES)
    assert wide.pairwise_fits(WIDTH, N_BOOT, NARROW_BUDGET)
    assert not wide.pairwise_fits(WIDTH, wide.POINT_COPIES, SMALL_BUDGET)
    for width in (320, 8192, 32768):
        chunk = wide.draw_chunk(width, 1000)
        assert 1 <= chunk <= 1000
        assert chunk == 1 or chunk * width * wide.BYTES_PER_DRAW_SLOT <= wide.CHUNK_BUDGET_BYTES
    assert wide.draw_chunk(WIDTH, N_BOOT, SMALL_BUDGET) == 12


def test_chunked_draws_equal_the_whole_draw_set():
    width, n_boot = 37, 50
    whole = np.asarray(slot_normals(KEY, n_boot, width))  # [width, n_boot]
    words = slot_key_words(KEY, width)
    counters = jnp.asarray([0, 7, 49], dtype=jnp.uint32)
    np.testing.assert_array_equal(np.asarray(draw_normals(words, counters)), whole[:, [0, 7, 49]].T)
    chunked = [
        np.asarray(jax.jit(lambda w, chunk=chunk: wide.over_draw_chunks(lambda c: draw_normals(w, c).T, n_boot, chunk))(words))
        for chunk in (1, 7, 50)
    ]
    # The same counters and keys; XLA may round the float32 Box-Muller arithmetic differently
    # in differently shaped loops (a few units in the last place, never more).
    for got in chunked:
        np.testing.assert_allclose(got, whole, rtol=5e-7, atol=5e-7)


# --- medians -------------------------------------------------------------------------------


def test_packed_argsort_equals_numpy_stable_argsort():
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, (3, 257)).astype(np.float32)
    x[:, 5] = x[:, 9] = x[:, 200]  # ties keep slot order
    x[0, 3], x[1, 7], x[2, 0] = np.inf, -np.inf, -0.0
    got_values, got_slots = jax.jit(argsort_float32_last_axis)(jnp.asarray(x))
    order = np.argsort(x, axis=-1, kind="stable")
    np.testing.assert_array_equal(np.asarray(got_slots), order)
    np.testing.assert_array_equal(np.asarray(got_values), np.take_along_axis(x, order, -1))


def test_sorted_order_statistics_equal_numpy():
    t, raw = _trait()
    r = jnp.where(t.mask, t.by / t.bx, 5.0)
    r_np = raw["by"] / raw["bx"]
    w_np = 1.0 / (raw["sy"] ** 2 / raw["bx"] ** 2)
    w = jnp.asarray(np.concatenate([w_np, np.full(WIDTH - NSNP, 3.0)]))
    for budget in (SMALL_BUDGET, NARROW_BUDGET):
        np.testing.assert_allclose(float(rank_median(r, t.mask, budget)), np.median(r_np), rtol=1e-15)
        mad = 1.4826 * np.median(np.abs(r_np - np.median(r_np)))
        np.testing.assert_allclose(float(rank_mad(r, t.mask, budget)), mad, rtol=1e-14)
        got = float(interpolated_weighted_median(r, w, t.mask, budget))
        np.testing.assert_allclose(got, _np_weighted_median(r_np[None], w_np)[0], rtol=1e-13)


@pytest.fixture(scope="module")
def medians():
    t, raw = _trait()
    run = {
        budget: jax.jit(functools.partial(median_estimates, params=Params(n_boot=N_BOOT), methods=MedianPanel._fields, budget=budget))(t, KEY)
        for budget in (SMALL_BUDGET, NARROW_BUDGET)
    }
    return t, raw, run


def test_wide_median_point_estimates_equal_the_pairwise_path(medians):
    _, _, run = medians
    for m in MedianPanel._fields:
        # Same order statistics; the total weight's summation order may differ in the last bit.
        np.testing.assert_allclose(float(run[SMALL_BUDGET][m].b), float(run[NARROW_BUDGET][m].b), rtol=1e-14)
        assert int(run[SMALL_BUDGET][m].reason) == 0


def test_wide_median_bootstrap_equals_numpy_on_the_same_draws(medians):
    """The sorted, chunked bootstrap against numpy's stable argsort of the very same draws
    (slot_normals), and against the pairwise path: equal up to float32 rounding of the draws'
    cumulative weights."""
    t, raw, run = medians
    z_bx, z_by = (np.asarray(slot_normals(k, N_BOOT, WIDTH))[:NSNP].T for k in jax.random.split(KEY))
    ratios = ((raw["by"] + raw["sy"] * z_by) / (raw["bx"] + raw["sx"] * z_bx)).astype(np.float32).astype(float)
    w2 = 1.0 / (raw["sy"] ** 2 / raw["bx"] ** 2 + raw["by"] ** 2 * raw["sx"] ** 2 / raw["bx"] ** 4)
    weights = {"simple_median": np.full(NSNP, 1.0 / NSNP), "weighted_median": w2}
    for m, w in weights.items():
        se_np = np.std(_np_weighted_median(ratios, w.astype(BOOTSTRAP_DTYPE).astype(float)), ddof=1)
        np.testing.assert_allclose(float(run[SMALL_BUDGET][m].se), se_np, rtol=1e-6)
    for m in MedianPanel._fields:
        np.testing.assert_allclose(float(run[SMALL_BUDGET][m].se), float(run[NARROW_BUDGET][m].se), rtol=1e-3)


# --- modes ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def modes():
    t, raw = _trait()
    run = {
        budget: jax.jit(functools.partial(mode_estimates, params=Params(n_boot=N_BOOT), methods=ModePanel._fields, budget=budget))(t, KEY)
        for budget in (SMALL_BUDGET, NARROW_BUDGET)
    }
    return t, raw, run


def test_wide_mode_point_estimates_equal_the_pairwise_path(modes):
    _, _, run = modes
    for m in ModePanel._fields:
        assert float(run[SMALL_BUDGET][m].b) == float(run[NARROW_BUDGET][m].b)


def test_wide_mode_bootstrap_agrees_with_the_direct_search(modes):
    """Same draws, modes from R's binned density (wide) instead of the direct search (narrow):
    per draw within two output-grid steps (R's binning error; near-tied peaks aside), so the
    MADs agree to Monte-Carlo error (the relative SE of a MAD of 200 draws is ~8%)."""
    t, _, run = modes
    r = jnp.where(t.mask, t.by / t.bx, 0.0)
    se = jnp.where(t.mask, ratio_se_delta(t), 1.0)
    weights = jnp.stack([normalised_weights(jnp.ones_like(r), t.mask), normalised_weights(se, t.mask)])[None]
    z = slot_normals(KEY, N_BOOT, WIDTH, row_by_row=True)[None]
    direct = np.asarray(jax.jit(lambda: bootstrap_modes(r, se[None], weights, t.mask, 1.0, z))())[0]
    binned = np.asarray(
        jax.jit(lambda: binned_bootstrap_modes(r, se[None], weights, t.mask, 1.0, [KEY], N_BOOT, SMALL_BUDGET))()
    )[0]
    draws = np.asarray(r)[:NSNP, None] + np.asarray(se)[:NSNP, None] * np.asarray(z[0])[:NSNP]
    grid_step = np.ptp(draws, axis=0) / 511  # below the output grid's step (which adds 6 bandwidths)
    assert np.mean(np.abs(direct - binned) <= 2.01 * grid_step) >= 0.99
    for m in ModePanel._fields:
        wide_se, narrow_se = float(run[SMALL_BUDGET][m].se), float(run[NARROW_BUDGET][m].se)
        assert np.isfinite(wide_se) and abs(wide_se / narrow_se - 1) < 0.15, (m, wide_se, narrow_se)


def test_binned_bootstrap_modes_are_r_density_modes_of_the_draws():
    t, raw = _trait()
    n_boot = 6
    r = jnp.where(t.mask, t.by / t.bx, 0.0)
    se = jnp.where(t.mask, ratio_se_delta(t), 1.0)
    w = jnp.where(t.mask, se**-2, 0.0)
    weights = jnp.stack([jnp.where(t.mask, 1.0 / NSNP, 0.0), w / jnp.sum(w)])[None]  # [S=1, k=2, width]
    got = np.asarray(
        jax.jit(lambda: binned_bootstrap_modes(r, se[None], weights, t.mask, 1.0, [KEY], n_boot, SMALL_BUDGET))()
    )[0]
    z = np.asarray(slot_normals(KEY, n_boot, WIDTH))[:NSNP].T
    draws = np.asarray(r)[:NSNP] + np.asarray(se)[:NSNP] * z
    for d in range(n_boot):
        x = draws[d]
        x32 = x.astype(np.float32)
        mad = 1.4826 * np.median(np.abs(x32 - np.median(x32)))
        bw = 0.9 * min(np.std(x32, ddof=1), mad) / NSNP**0.2
        for k in range(2):
            want = _np_r_density_mode(x, np.asarray(weights[0, k])[:NSNP], bw)
            step = (x.max() - x.min() + 6 * bw) / 511
            assert abs(got[k, d] - want) <= step * 1.01, (d, k, got[k, d], want)


def test_wide_path_does_not_depend_on_padding():
    """The same trait padded to two widths (both wide) gives the same results."""
    out = []
    for width in (WIDTH, 352):
        t, _ = _trait(width=width)
        params = Params(n_boot=24)
        med, mod = jax.jit(lambda t, k: (
            median_estimates(t, k, params, ("weighted_median",), budget=SMALL_BUDGET)["weighted_median"],
            mode_estimates(t, k, params, ("weighted_mode",), budget=SMALL_BUDGET)["weighted_mode"],
        ))(t, KEY)
        out.append([float(v) for e in (med, mod) for v in (e.b, e.se)])
    np.testing.assert_allclose(out[0], out[1], rtol=1e-12)


# --- the public API on a trait whose bucket takes the wide bootstraps by default -------------


def test_default_panel_takes_the_wide_bootstraps_for_a_wide_trait():
    """200 instruments pad to a 256-wide bucket, over the default budget for 1,000 draws:
    ``mrjax.mr`` runs the sorted/binned bootstraps and gives finite SEs close to a numpy
    bootstrap of the weighted median with its own RNG (Monte-Carlo error ~5% at 1,000 draws)."""
    nsnp = 200
    assert not wide.pairwise_fits(256, 1000)
    _, raw = _trait(nsnp=nsnp, width=nsnp)
    frame = pd.DataFrame({"SNP": [f"rs{i}" for i in range(nsnp)], "beta.exposure": raw["bx"], "se.exposure": raw["sx"],
                          "beta.outcome": raw["by"], "se.outcome": raw["sy"]})
    res = mrjax.mr(frame, n_boot=1000, seed=5).set_index("method_id")
    assert (res["reason"] == "").all() and np.isfinite(res["se"]).all()
    rng = np.random.default_rng(0)
    zx, zy = rng.standard_normal((2, 1000, nsnp))
    ratios = (raw["by"] + raw["sy"] * zy) / (raw["bx"] + raw["sx"] * zx)
    w2 = 1.0 / (raw["sy"] ** 2 / raw["bx"] ** 2 + raw["by"] ** 2 * raw["sx"] ** 2 / raw["bx"] ** 4)
    se_np = np.std(_np_weighted_median(ratios, w2), ddof=1)
    assert abs(res.loc["weighted_median", "se"] / se_np - 1) < 0.15


def test_egger_bootstrap_in_chunks_equals_one_vmap(monkeypatch):
    """Wide traits run the MR-Egger bootstrap's replicates in chunks: the same replicates."""
    from mrjax.estimators.egger import egger_regression_bootstrap

    t, _ = _trait()
    params = Params(n_boot=100)
    whole = jax.jit(lambda t, k: egger_regression_bootstrap(t, k, params))(t, KEY)
    monkeypatch.setattr(wide, "CHUNK_BUDGET_BYTES", SMALL_BUDGET)  # 12 replicates per chunk
    assert wide.draw_chunk(WIDTH, 100) == 12
    chunked = jax.jit(lambda t, k: egger_regression_bootstrap(t, k, params))(t, KEY)
    for a, b in zip(whole[:3], chunked[:3]):
        np.testing.assert_allclose(float(b), float(a), rtol=1e-12)


# --- MR-PRESSO: O(width) per draw, so wide traits run; R's own limit n_draws > n is explained --


def _presso_frame(sizes):
    frames = []
    for i, n in enumerate(sizes):
        _, raw = _trait(nsnp=n, width=n, seed=10 + i)
        frames.append(pd.DataFrame({"SNP": [f"rs{j}" for j in range(n)], "exposure": f"e{i}", "outcome": "y",
                                    "beta.exposure": raw["bx"], "se.exposure": raw["sx"],
                                    "beta.outcome": raw["by"], "se.outcome": raw["sy"]}))
    return pd.concat(frames, ignore_index=True)


def test_presso_explains_too_few_draws_for_a_wide_trait_and_runs_the_others():
    res = mrjax.presso(_presso_frame([40, 6]), n_draws=30, seed=1).traits.set_index("exposure")
    assert np.isnan(res.loc["e0", "raw_b"]) and np.isnan(res.loc["e0", "global_pval"])
    assert "n_draws (30) must exceed the number of instruments (40)" in res.loc["e0", "reason"]
    assert "rerun with n_draws above 40" in res.loc["e0", "reason"]
    assert np.isfinite(res.loc["e1", "raw_b"]) and np.isfinite(res.loc["e1", "global_pval"])
    only_wide = mrjax.presso(_presso_frame([40]), n_draws=30, seed=1).traits
    assert only_wide["raw_b"].isna().all() and only_wide["reason"].str.contains("rerun with n_draws").all()
