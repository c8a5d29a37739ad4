"""Median and mode estimators against the R goldens, plus the R-density mimic against an
independent numpy transcription of ``stats::density.default`` (R 4.2.2).

All five golden datasets (and a few synthetic edge-case traits) run as ONE padded batch
through one jitted, vmapped call of both panels, so the file compiles each kernel once per
width; the same batch at a second width checks that padding never changes any output.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mrjax.batch import make_instruments, trait_keys
from mrjax.estimators import density as rdensity
from mrjax.estimators.common import Params, Reason
from mrjax.estimators.median import (
    interpolated_weighted_median,
    median_estimates,
    median_panel,
    penalised_weighted_median,
    rank_mad,
    rank_median,
)
from mrjax.estimators.mode import mode_estimate, mode_estimates, mode_panel

GOLDENS = [
    "TwoSampleMR/golden_methods_bmi_chd.json",
    "MendelianRandomization/golden_methods_ldl_chd.json",
    "MendelianRandomization/golden_methods_hdl_chd.json",
    "MendelianRandomization/golden_methods_trig_chd.json",
    "MRPRESSO/golden_methods_summarystats_e1.json",
]
MEDIANS = ["simple_median", "weighted_median", "penalised_weighted_median"]
MODES = ["simple_mode", "weighted_mode", "simple_mode_nome", "weighted_mode_nome"]
PARAMS = Params(n_boot=1000, phi=1.0, penk=20.0)
SEED = 20240101
WIDTHS = (128, 96)  # the batch below is run at both; 79 instruments is the largest trait


def _load(shared_data, rel):
    golden = json.loads((shared_data / rel).read_text())
    ds = golden["dataset"]
    cols = ds["columns"]
    frame = pd.read_csv(shared_data / ds["source"].removeprefix("shared/data/"))
    arrays = {k: frame[cols[k]].to_numpy(dtype=float) for k in ("bx", "sx", "by", "sy")}
    assert len(arrays["bx"]) == ds["nsnp"]
    return arrays, golden["twosamplemr"]


@pytest.fixture(scope="module")
def traits(shared_data):
    """Rows of the test batch: the five golden datasets, then BMI with half its instruments
    flipped (bx, by -> -bx, -by), a 3-instrument and a 2-instrument trait."""
    rows, goldens = [], []
    for rel in GOLDENS:
        arrays, tsmr = _load(shared_data, rel)
        rows.append(arrays)
        goldens.append(tsmr)
    flipped = dict(rows[0])
    sign = np.where(np.arange(len(flipped["bx"])) % 2 == 0, -1.0, 1.0)
    flipped["bx"], flipped["by"] = flipped["bx"] * sign, flipped["by"] * sign
    rows.append(flipped)
    rows.append({k: v[:3] for k, v in rows[1].items()})
    rows.append({k: v[:2] for k, v in rows[1].items()})
    return rows, goldens


def _batch(rows, width):
    padded = {k: np.ones((len(rows), width)) for k in ("bx", "sx", "by", "sy")}
    mask = np.zeros((len(rows), width), dtype=bool)
    for i, row in enumerate(rows):
        n = len(row["bx"])
        mask[i, :n] = True
        for k in padded:
            padded[k][i, :n] = row[k]
    return make_instruments(padded["bx"], padded["sx"], padded["by"], padded["sy"], mask)


@jax.jit
def _run_panels(t, keys):
    def one(t, key):
        return {**mode_panel(t, key, PARAMS)._asdict(), **median_panel(t, key, PARAMS)._asdict()}

    return jax.vmap(one)(t, keys)


@jax.jit
def _run_singles(t, keys):
    def one(t, key):
        subset = mode_estimates(t, key, PARAMS, ["weighted_mode", "simple_mode_nome"])  # one method per draw set
        return {**subset, "penalised_weighted_median": penalised_weighted_median(t, key, PARAMS)}

    return jax.vmap(one)(t, keys)


@pytest.fixture(scope="module")
def results(traits):
    """Panels at both widths; at the first width also a subset of the modes and one median
    method called on its own (each distinct jitted graph costs a compile, the dominant cost
    of this file)."""
    rows, _ = traits
    keys = trait_keys(SEED, np.arange(len(rows)))
    out = {width: {"panel": jax.device_get(_run_panels(_batch(rows, width), keys))} for width in WIDTHS}
    out[WIDTHS[0]]["single"] = jax.device_get(_run_singles(_batch(rows, WIDTHS[0]), keys))
    return out


def _panel(results):
    return results[WIDTHS[0]]["panel"]


@pytest.mark.parametrize("dataset", range(len(GOLDENS)), ids=[g.split("/")[-1] for g in GOLDENS])
def test_point_estimates_match_r(traits, results, dataset):
    _, goldens = traits
    panel = _panel(results)
    for method in MEDIANS + MODES:
        gold = goldens[dataset]["mr"][f"mr_{method}"]
        est = panel[method]
        assert int(est.nsnp[dataset]) == gold["nsnp"]
        assert int(est.reason[dataset]) == Reason.OK
        np.testing.assert_allclose(est.b[dataset], gold["b"], rtol=1e-10, err_msg=method)


@pytest.mark.parametrize("dataset", range(len(GOLDENS)), ids=[g.split("/")[-1] for g in GOLDENS])
def test_median_and_mode_tables_share_the_point_estimates(traits, results, dataset):
    _, goldens = traits
    panel = _panel(results)
    labels = {
        "Simple median": "simple_median",
        "Weighted median": "weighted_median",
        "Penalised median": "penalised_weighted_median",
        "Simple mode": "simple_mode",
        "Weighted mode": "weighted_mode",
        "Simple mode (NOME)": "simple_mode_nome",
        "Weighted mode (NOME)": "weighted_mode_nome",
    }
    for table in ("mr_median_table", "mr_mode_table"):
        t = goldens[dataset][table]["table"]
        for label, b in zip(t["method"], t["b"]):
            if label in labels:  # the mode table's "Penalised mode" is not a TwoSampleMR method id
                np.testing.assert_allclose(panel[labels[label]].b[dataset], b, rtol=1e-10, err_msg=label)


def _monte_carlo_tolerance(gold, method):
    """5x the larger of R's seed-to-seed spread and the Monte-Carlo error expected for
    n_boot draws: sd/sqrt(2 n_boot) for an sd (medians); for a MAD of bootstrap modes the
    spread is wider (asymptotic ~1.2/sqrt(n) for normal data, more when the mode jumps
    between peaks), so 1.7/sqrt(n_boot)."""
    ses = np.array([gold["se"], *gold["seed_replicates"]["se"]])
    factor = 1.7 if method in MODES else 1.0 / np.sqrt(2.0)
    spread = max(ses.std(ddof=1), factor * ses.mean() / np.sqrt(PARAMS.n_boot))
    return ses.mean(), 5.0 * spread


@pytest.mark.parametrize("dataset", range(len(GOLDENS)), ids=[g.split("/")[-1] for g in GOLDENS])
def test_bootstrap_se_within_monte_carlo_spread_of_r(traits, results, dataset):
    _, goldens = traits
    panel = _panel(results)
    for method in MEDIANS + MODES:
        gold = goldens[dataset]["mr"][f"mr_{method}"]
        centre, tol = _monte_carlo_tolerance(gold, method)
        se = float(panel[method].se[dataset])
        assert abs(se - centre) <= tol, f"{method}: se {se:.5g} vs R {centre:.5g} +- {tol:.3g}"


def test_pvalues_use_r_reference_distributions(traits, results):
    """Medians: normal p; modes: Student t with n - 1 df (as R's goldens satisfy too)."""
    _, goldens = traits
    panel = _panel(results)
    for i, tsmr in enumerate(goldens):
        for method in MEDIANS + MODES:
            gold = tsmr["mr"][f"mr_{method}"]
            est = panel[method]

            def reference(b, se, n, method=method):
                z = abs(b / se)
                return 2 * stats.t.sf(z, n - 1) if method in MODES else 2 * stats.norm.sf(z)

            np.testing.assert_allclose(reference(gold["b"], gold["se"], gold["nsnp"]), gold["pval"], rtol=1e-6)
            expected = reference(float(est.b[i]), float(est.se[i]), int(est.nsnp[i]))
            np.testing.assert_allclose(est.pval[i], expected, rtol=1e-9, err_msg=method)


def test_too_few_instruments_is_nan_with_reason(traits, results):
    rows, _ = traits
    panel = _panel(results)
    three, two = len(rows) - 2, len(rows) - 1
    for method in MEDIANS + MODES:
        est = panel[method]
        assert np.isfinite(est.b[three]) and np.isfinite(est.se[three]) and est.reason[three] == Reason.OK, method
        assert np.isnan(est.b[two]) and np.isnan(est.se[two]) and np.isnan(est.pval[two]), method
        assert est.reason[two] == Reason.TOO_FEW_SNPS and est.nsnp[two] == 2


def test_flipping_instrument_orientation_keeps_point_estimates(results):
    panel = _panel(results)
    bmi, flipped = 0, len(GOLDENS)
    for method in MEDIANS + MODES:
        assert panel[method].b[flipped] == pytest.approx(panel[method].b[bmi], rel=1e-12), method


def test_padding_width_never_changes_any_output(results):
    wide, narrow = (results[w]["panel"] for w in WIDTHS)
    for method in MEDIANS + MODES:
        for field in ("b", "se", "pval", "nsnp", "reason"):
            np.testing.assert_allclose(
                getattr(wide[method], field), getattr(narrow[method], field), rtol=1e-12, err_msg=f"{method}.{field}"
            )


def test_panels_equal_the_methods_called_one_by_one(results):
    res = results[WIDTHS[0]]
    for method, single in res["single"].items():
        for field in ("b", "se", "pval", "reason"):
            # Same draws; only the reduction order of a stacked vs a single sd may differ (by
            # an ulp, which a p-value ~1e-150 far in the tail magnifies ~z^2-fold).
            rtol = 1e-9 if field == "pval" else 1e-13
            np.testing.assert_allclose(getattr(single, field), getattr(res["panel"][method], field), rtol=rtol, err_msg=method)


# ---------------------------------------------------------------------------------------
# Independent numpy transcriptions of the R code paths.


def _r_seq(start, stop, n):
    out = start + np.arange(n) * ((stop - start) / (n - 1))
    out[0], out[-1] = start, stop
    return out


def _numpy_r_density(x, w, bw, n=512, cut=3.0):
    """``stats::density.default(x, weights = w, bw = bw)`` of R 4.2.2, step by step."""
    start, stop = x.min() - cut * bw, x.max() + cut * bw
    lo, up = start - 4 * bw, stop + 4 * bw
    y = np.zeros(2 * n)  # C_BinDist
    delta = (up - lo) / (n - 1)
    for xi, wi in zip(x, w):
        pos = (xi - lo) / delta
        ix = int(np.floor(pos))
        fx = pos - ix
        if 0 <= ix <= n - 2:
            y[ix] += wi * (1 - fx)
            y[ix + 1] += wi * fx
        elif ix == -1:
            y[0] += wi * fx
        elif ix == n - 1:
            y[ix] += wi * (1 - fx)
    kords = _r_seq(0.0, 2 * (up - lo), 2 * n)
    kords[n + 1 :] = -kords[n - 1 : 0 : -1]
    kords = stats.norm.pdf(kords, scale=bw)
    conv = np.fft.ifft(np.fft.fft(y) * np.conj(np.fft.fft(kords)))  # numpy's ifft divides by 2n
    dens = np.maximum(0.0, conv.real[:n])
    xout = _r_seq(start, stop, 512)
    return xout, np.interp(xout, _r_seq(lo, up, n), dens)


def _numpy_mode(r, se, phi=1.0):
    """TwoSampleMR ``mr_mode``'s ``beta`` for one phi."""
    mad = 1.4826 * np.median(np.abs(r - np.median(r)))
    s = 0.9 * min(np.std(r, ddof=1), mad) / len(r) ** (1 / 5)
    w = se**-2.0 / np.sum(se**-2.0)
    xout, y = _numpy_r_density(r, w, max(1e-8, s * phi))
    return xout[np.argmax(y)]


def _numpy_weighted_median(b, w):
    """TwoSampleMR ``weighted_median``."""
    order = np.argsort(b, kind="stable")
    b, w = b[order], w[order]
    p = (np.cumsum(w) - 0.5 * w) / np.sum(w)
    k = np.max(np.nonzero(p < 0.5)[0])
    return b[k] + (b[k + 1] - b[k]) * (0.5 - p[k]) / (p[k + 1] - p[k])


def _samples(rng, sizes, width):
    """Random ratio-like samples (with a cluster, an outlier and a tie) padded to ``width``."""
    out = []
    for n in sizes:
        x = np.concatenate([rng.normal(0.3, 0.05, n - n // 3), rng.normal(1.0, 0.4, n // 3)])
        x[-1] = 6.0
        x[1] = x[0]
        w = rng.uniform(0.2, 3.0, n)
        xp, wp = np.full(width, 123.0), np.full(width, 7.0)  # garbage in padding on purpose
        xp[:n], wp[:n] = x, w / w.sum()
        out.append((x, w / w.sum(), xp, wp, np.arange(width) < n))
    return out


def test_density_mimic_matches_numpy_transcription_of_r():
    rng = np.random.default_rng(7)
    width = 64
    samples = _samples(rng, (3, 10, 33, 64), width)
    xp, wp, mask = (jnp.asarray(np.stack([s[i] for s in samples])) for i in (2, 3, 4))
    bws = jnp.asarray([0.02, 0.05, 0.11, 0.3])
    grid, y = jax.jit(jax.vmap(rdensity.r_density))(xp, wp, mask, bws)
    for i, (x, w, *_) in enumerate(samples):
        ref_x, ref_y = _numpy_r_density(x, w, float(bws[i]))
        np.testing.assert_allclose(grid[i], ref_x, rtol=0, atol=4e-16 * (ref_x[-1] - ref_x[0]))
        np.testing.assert_allclose(y[i], ref_y, rtol=0, atol=1e-12 * ref_y.max())


def test_mode_estimate_matches_numpy_transcription_of_mr_mode():
    rng = np.random.default_rng(11)
    width = 64
    samples = _samples(rng, (3, 5, 12, 29, 47, 64), width)
    xp, wp, mask = (jnp.asarray(np.stack([s[i] for s in samples])) for i in (2, 3, 4))
    se = jnp.where(mask, 1.0 / jnp.sqrt(jnp.where(mask, wp, 1.0)), 1.0)  # weights ∝ se^-2
    weights = jnp.stack([jnp.where(mask, 1.0, 0.0) / mask.sum(1, keepdims=True), wp], axis=1)
    modes = jax.jit(jax.vmap(lambda x, w, m: mode_estimate(x, w, m, 1.0)))(xp, weights, mask)
    for i, (x, w, *_) in enumerate(samples):
        assert modes[i, 0] == pytest.approx(_numpy_mode(x, np.ones_like(x)), rel=1e-12)
        assert modes[i, 1] == pytest.approx(_numpy_mode(x, np.asarray(se[i, : len(x)])), rel=1e-12)


def test_weighted_median_and_order_statistics_match_numpy():
    rng = np.random.default_rng(3)
    width = 32
    samples = _samples(rng, (3, 4, 9, 20, 32), width)
    xp, wp, mask = (jnp.asarray(np.stack([s[i] for s in samples])) for i in (2, 3, 4))
    wm = jax.jit(jax.vmap(interpolated_weighted_median))(xp, wp, mask)
    med = jax.jit(jax.vmap(rank_median))(xp, mask)
    mad = jax.jit(jax.vmap(rank_mad))(xp, mask)
    for i, (x, w, *_) in enumerate(samples):
        assert wm[i] == pytest.approx(_numpy_weighted_median(x, w), rel=1e-13)
        assert med[i] == np.median(x)
        assert mad[i] == pytest.approx(1.4826 * np.median(np.abs(x - np.median(x))), rel=1e-15)


def test_bootstrap_mode_search_agrees_with_r_binned_mode():
    """The bootstrap draws' cheap mode search (exact KDE, no binning) lands within 2 steps of
    R's output grid of the numpy transcription of R's binned-density mode in >= 99% of 500
    random bootstrap-like samples (differences come only from R's binning, and from
    near-tied peaks, where any choice is as good)."""
    rng = np.random.default_rng(2024)
    width, n_samples = 32, 500
    xp, wp = np.full((n_samples, width), 5.0), np.full((n_samples, width), 3.0)  # garbage padding
    mask = np.zeros((n_samples, width), dtype=bool)
    bws, refs, steps = np.empty(n_samples), np.empty(n_samples), np.empty(n_samples)
    densities = []
    for i in range(n_samples):
        n = int(rng.integers(3, width + 1))
        centre, spread = rng.normal(0.0, 1.0), rng.uniform(0.01, 0.5)
        x = centre + spread * rng.standard_normal(n)
        k = int(rng.integers(0, n // 2 + 1))  # a second, wider cluster of k points
        x[:k] = centre + rng.normal(2 * spread, 3 * spread, k)
        if rng.uniform() < 0.2:
            x[-1] = centre + rng.choice([-1, 1]) * rng.uniform(10, 50) * spread  # an outlier
        w = rng.uniform(0.1, 3.0, n) if rng.uniform() < 0.5 else np.ones(n)
        w = w / w.sum()
        mad = 1.4826 * np.median(np.abs(x - np.median(x)))
        bws[i] = max(1e-8, 0.9 * min(np.std(x, ddof=1), mad) / n ** (1 / 5))
        xout, y = _numpy_r_density(x, w, bws[i])
        refs[i], steps[i] = xout[np.argmax(y)], xout[1] - xout[0]
        densities.append((xout, y))
        xp[i, :n], wp[i, :n], mask[i, :n] = x, w, True
    def search(x, w, m, bw):  # one sample as a single draw: x [width, 1]
        return rdensity.kde_modes(x[:, None], w[None, :], m, bw[None])[0, 0]

    modes = jax.jit(jax.vmap(search))(jnp.asarray(xp), jnp.asarray(wp), jnp.asarray(mask), jnp.asarray(bws))
    off = np.abs(np.asarray(modes) - refs) / steps
    assert np.mean(off <= 2.0) >= 0.99, np.sort(off)[-10:]
    assert np.median(off) <= 1.0
    # Where they part, R's own density at our mode is within 2% of its maximum: a near-tie.
    for i in np.nonzero(off > 2.0)[0]:
        xout, y = densities[i]
        assert np.interp(modes[i], xout, y) >= 0.98 * y.max(), (i, off[i])


def test_masked_mad_equals_numpy_mad_with_ties_and_masks():
    """``stats.masked_mad`` (one sort + windows over the V-shaped deviations) equals R's ``mad``
    written plainly in numpy, exactly: odd and even counts, 1 and 2 entries, heavy ties."""
    from mrjax.stats import masked_mad

    rng = np.random.default_rng(8)
    x = rng.normal(size=(2000, 23)) * rng.choice([1.0, 1e-3, 1e3], size=(2000, 1))
    x = np.stack([np.round(row, int(d)) for row, d in zip(x, rng.choice([0, 1, 12], size=2000))])  # ties
    mask = rng.uniform(size=x.shape) < rng.uniform(0.0, 1.0, size=(2000, 1))
    mask[:40] = False
    mask[:20, 3] = True  # one entry
    mask[20:40, 5:7] = True  # two entries
    ours = np.asarray(jax.jit(jax.vmap(masked_mad))(jnp.asarray(x), jnp.asarray(mask)))
    for i in range(len(x)):
        v = x[i][mask[i]]
        expected = 1.4826 * np.median(np.abs(v - np.median(v))) if len(v) else np.nan
        np.testing.assert_equal(ours[i], expected)


def test_integer_key_sort_equals_numpy_sort():
    """``stats.sort_last_axis`` (integer-key sort behind every median/MAD) orders floats
    exactly as ``np.sort``: negatives, signed zeros, infinities, NaN of either sign last."""
    from mrjax.stats import sort_last_axis

    x = np.random.default_rng(5).normal(size=(40, 57)) * 10.0 ** np.random.default_rng(6).integers(-30, 30, (40, 57))
    x[0, 3], x[1, :5], x[2, 7], x[3, 1] = np.nan, -0.0, -np.inf, np.inf
    x[4, 2] = -np.abs(np.nan)
    for dtype in (np.float64, np.float32):
        values = x.astype(dtype)
        ours = np.asarray(jax.jit(sort_last_axis)(jnp.asarray(values)))
        np.testing.assert_array_equal(ours, np.sort(values, axis=-1))


def test_sorting_network_sorts_every_width_and_input():
    """``draws.sort_slots`` (Batcher's network, pruned to the width) equals ``np.sort`` along
    the slots for every width 1-40, with ties, infinities and signed zeros."""
    from mrjax.estimators.draws import sort_slots, sorting_layers

    rng = np.random.default_rng(11)
    for width in range(1, 41):
        x = np.round(rng.normal(size=(width, 300)), rng.integers(0, 3))
        x[rng.uniform(size=x.shape) < 0.05] = np.inf
        x[rng.uniform(size=x.shape) < 0.05] = -0.0
        np.testing.assert_array_equal(np.asarray(jax.jit(sort_slots)(jnp.asarray(x))), np.sort(x, axis=0))
        for layer in sorting_layers(width):  # disjoint pairs within the width
            slots = [i for pair in layer for i in pair]
            assert len(set(slots)) == len(slots) and max(slots) < width


@pytest.mark.parametrize("width", [5, 16, 32, 33])
def test_draw_bandwidths_equal_numpy_sd_and_mad(width):
    """The bootstrap draws' bandwidths (sorting network up to 32 slots, pairwise ranks beyond)
    equal ``max(1e-8, phi 0.9 min(sd, mad) / n^(1/5))`` written plainly in numpy, to float32
    rounding of the sd (the order statistics are exact)."""
    from mrjax.estimators.mode import draw_bandwidths

    rng = np.random.default_rng(width)
    n = rng.integers(3, width + 1, 64)
    mask = np.arange(width)[None, :] < n[:, None]
    x = rng.normal(0.3, 0.1, (64, width, 200)).astype(np.float32) * rng.choice([1.0, 1e-3], (64, 1, 1)).astype(np.float32)
    ours = np.asarray(jax.jit(jax.vmap(lambda a, m: draw_bandwidths(a, m, 1.0)))(jnp.asarray(x), jnp.asarray(mask)))
    for i in range(64):
        v = x[i][mask[i]].astype(np.float64)
        mad = 1.4826 * np.median(np.abs(v - np.median(v, axis=0)), axis=0)
        expected = np.maximum(1e-8, 0.9 * np.minimum(v.std(axis=0, ddof=1), mad) / n[i] ** 0.2)
        np.testing.assert_allclose(ours[i], expected, rtol=1e-5)


def test_family_functions_name_unknown_methods():
    t = make_instruments(np.ones(4), np.ones(4), np.ones(4), np.ones(4))
    key = trait_keys(0, np.array([1], dtype=np.uint32))[0]
    with pytest.raises(ValueError, match=r"unknown median method\(s\) \['ivw'\]"):
        median_estimates(t, key, Params(n_boot=2), ["weighted_median", "ivw"])
    with pytest.raises(ValueError, match=r"unknown mode method\(s\) \['mode'\]"):
        mode_estimates(t, key, Params(n_boot=2), ["mode"])
