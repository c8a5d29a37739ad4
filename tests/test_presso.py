"""MR-PRESSO against MRPRESSO 1.0 goldens (R), Monte-Carlo tolerances from the binomial SE and
the seed replicates, batch invariance, edge cases and calibration under the null."""

import json

import jax
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mrjax  # noqa: F401  (turns on float64)
from mrjax.batch import from_frame, make_instruments, trait_keys
from mrjax.mr_presso import (
    DEFAULT_CHUNK,
    _buckets,
    box_muller,
    distortion_kernel,
    ivw_lm,
    observed,
    presso,
    presso_kernel,
    threefry2x32,
)

N_DRAWS = 100_000  # ours: 10x R's main runs, so the Monte-Carlo error is mostly R's
THRESHOLD = 0.05
REPLICATE_DRAWS = 20_000  # R's seed replicates ran 1,000
Z = 4.5  # Monte-Carlo tolerance in binomial standard errors (many comparisons, no flakes)

# name -> (csv, golden json, columns bx, sx, by, sy)
DATASETS = {
    "e1": ("MRPRESSO/SummaryStats.csv", "MRPRESSO/golden_presso_summarystats_e1.json"),
    "ldl": ("MendelianRandomization/lipids_chd.csv", "MendelianRandomization/golden_presso_ldl_chd.json"),
    "bmi": ("TwoSampleMR/bmi_chd_harmonised.csv", "TwoSampleMR/golden_presso_bmi_chd_nb10000.json"),
}


def _table(shared_data, name):
    """The golden's input as a harmonised table, SNP ids in the golden's ``snp_order``."""
    csv, golden = DATASETS[name]
    gold = json.loads((shared_data / golden).read_text())
    raw = pd.read_csv(shared_data / csv)
    if "mr_keep" in raw.columns:
        raw = raw[raw["mr_keep"].astype(str).str.upper() == "TRUE"]
    cols = gold["dataset"]["columns"]
    return pd.DataFrame(
        {
            "SNP": gold["dataset"]["snp_order"],
            "exposure": name,
            "outcome": "outcome",
            "beta.exposure": raw[cols["bx"]].to_numpy(),
            "se.exposure": raw[cols["sx"]].to_numpy(),
            "beta.outcome": raw[cols["by"]].to_numpy(),
            "se.outcome": raw[cols["sy"]].to_numpy(),
        }
    )


def _golden(shared_data, name, file=None):
    return json.loads((shared_data / (file or DATASETS[name][1])).read_text())


def _p(value):
    """R's p-value as a number ('<0.001' -> 0.001, the bound)."""
    return float(str(value).lstrip("<"))


def _mc_tol(p_r, n_r, n_ours, scale=1.0):
    """|ours - R| allowed for two independent Monte-Carlo estimates of the same p (before a
    Bonferroni ``scale``): Z binomial SEs plus one resolution step of each."""
    q = min(max(p_r / scale, 1.0 / n_r), 0.5)
    return scale * (Z * np.sqrt(q * (1 - q) * (1 / n_r + 1 / n_ours)) + 1 / n_r + 1 / n_ours)


@pytest.fixture(scope="module")
def fits(shared_data):
    """All three goldens' traits in ONE presso call."""
    table = pd.concat([_table(shared_data, name) for name in DATASETS], ignore_index=True)
    result = presso(table, n_draws=N_DRAWS, seed=1)
    return {
        name: (
            result.traits.set_index("exposure").loc[name],
            result.instruments[result.instruments["exposure"] == name].reset_index(drop=True),
            _golden(shared_data, name)["main"],
        )
        for name in DATASETS
    }


@pytest.mark.parametrize("name", list(DATASETS))
def test_deterministic_parts_match_r(fits, name):
    row, inst, gold = fits[name]
    np.testing.assert_allclose(row["rss_obs"], gold["global_test"]["RSSobs"], rtol=1e-8)
    np.testing.assert_allclose(inst["rss_obs"], gold["outlier_test"]["RSSobs"], rtol=1e-8)
    raw = gold["raw"]
    got = [row["raw_b"], row["raw_se"], row["raw_t"], row["raw_pval"]]
    np.testing.assert_allclose(got, [raw["estimate"], raw["sd"], raw["t_stat"], raw["pval"]], rtol=1e-8)


@pytest.mark.parametrize("name", list(DATASETS))
def test_global_pvalue_within_monte_carlo_error(fits, name):
    row, _, gold = fits[name]
    p_r = gold["global_test"]["pvalue_numeric"]
    assert row["global_pval"] > 0
    assert abs(row["global_pval"] - p_r) <= _mc_tol(p_r, gold["NbDistribution"], N_DRAWS)
    if row["global_pval_bound"]:
        assert row["global_pval"] == 1 / N_DRAWS


@pytest.mark.parametrize("name", list(DATASETS))
def test_outlier_pvalues_within_monte_carlo_error(fits, name):
    _, inst, gold = fits[name]
    n, n_r = len(inst), gold["NbDistribution"]
    p_r = np.array([_p(v) for v in gold["outlier_test"]["pvalue"]])
    tol = np.array([_mc_tol(p, n_r, N_DRAWS, scale=n) for p in p_r])
    assert np.all(np.abs(inst["pval"].to_numpy() - p_r) <= tol)
    assert np.all(inst["pval"] >= n / N_DRAWS)  # never 0: a zero count is the bound n / n_draws
    assert np.all(inst["pval"][inst["pval_bound"]] == n / N_DRAWS)


@pytest.mark.parametrize("name", list(DATASETS))
def test_same_outliers_where_r_is_far_from_threshold(fits, name):
    """'Far': R's exceedance count would have probability < 0.005 (binomial, R's draws) if the
    instrument's true raw p sat exactly at the Bonferroni threshold (ours, at 10x R's draws,
    is close to the true p)."""
    _, inst, gold = fits[name]
    n, n_r = len(inst), gold["NbDistribution"]
    p_r = np.array([_p(v) for v in gold["outlier_test"]["pvalue"]])
    bound = np.array([str(v).startswith("<") for v in gold["outlier_test"]["pvalue"]])
    count_r = np.where(bound, 0, np.round(p_r * n_r / n))
    r_outlier = p_r <= THRESHOLD
    at_threshold = stats.binom(n_r, THRESHOLD / n)
    far = np.where(r_outlier, at_threshold.cdf(count_r), at_threshold.sf(count_r - 1)) < 0.005
    assert far.sum() >= 0.9 * n and (far & r_outlier).any()  # the comparison is not vacuous
    np.testing.assert_array_equal(inst["outlier"].to_numpy()[far], r_outlier[far])


def test_corrected_estimate_and_distortion_when_outlier_sets_match(fits):
    matched = []
    for name, (row, inst, gold) in fits.items():
        r_set = gold["distortion_test"]["outlier_indices_1based"]
        if list(np.nonzero(inst["outlier"].to_numpy())[0] + 1) != r_set:
            continue
        matched.append(name)
        assert row["n_outliers"] == len(r_set)
        assert row["outliers"] == ",".join(inst["SNP"][np.array(r_set) - 1])
        c = gold["outlier_corrected"]
        got = [row["corrected_b"], row["corrected_se"], row["corrected_t"], row["corrected_pval"]]
        np.testing.assert_allclose(got, [c["estimate"], c["sd"], c["t_stat"], c["pval"]], rtol=1e-8)
        np.testing.assert_allclose(row["distortion_coef"], gold["distortion_test"]["distortion_coefficient"], rtol=1e-8)
        p_r = _p(gold["distortion_test"]["pvalue"])
        assert abs(row["distortion_pval"] - p_r) <= _mc_tol(p_r, gold["NbDistribution"], N_DRAWS)
    # ldl's outliers have p <= 0.0028 and every other instrument p >= 0.24 in R: must match
    assert "ldl" in matched


def _replicate_cases(shared_data):
    cases = []
    for name in ("e1", "ldl"):
        for rep in _golden(shared_data, name)["seed_replicates"]:
            cases.append((name, rep))
    for rep in _golden(shared_data, "bmi", "TwoSampleMR/golden_presso_bmi_chd.json")["seed_replicates"]:
        cases.append(("bmi", rep))
    return cases


_observed, _ivw_lm = jax.jit(observed), jax.jit(ivw_lm)


def test_distortion_test_reproduces_r_for_every_replicate_outlier_set(shared_data):
    """R's seed replicates found different outlier sets; given each set, the corrected IVW
    and distortion coefficient must equal R's and the distortion p (R's quirky sampling:
    outliers plus n - 2k draws) must agree within Monte-Carlo error."""
    for name, rep in _replicate_cases(shared_data):
        table = _table(shared_data, name)
        n = len(table)
        (bucket,) = _buckets(from_frame(table), DEFAULT_CHUNK)  # the shapes presso() compiled
        outlier = np.zeros(bucket.instruments.bx.shape, dtype=bool)
        outlier[0, np.array(rep["outlier_indices_1based"]) - 1] = True
        coef, count = jax.device_get(
            distortion_kernel(bucket.instruments, outlier, trait_keys(7, bucket.uids), REPLICATE_DRAWS)
        )
        np.testing.assert_allclose(coef[0], rep["distortion_coefficient"], rtol=1e-8, err_msg=name)
        p_r = _p(rep["distortion_pvalue"])
        ours = max(count[0], 1) / REPLICATE_DRAWS
        assert abs(ours - p_r) <= _mc_tol(p_r, rep["NbDistribution"], REPLICATE_DRAWS), (name, rep["seed"], ours, p_r)
        t = jax.tree.map(lambda a: a[0], bucket.instruments)
        obs = _observed(t)
        fit = _ivw_lm(obs.bx, obs.by, obs.w, t.mask & ~outlier[0])
        np.testing.assert_allclose(float(fit.b), rep["outlier_corrected_estimate"], rtol=1e-8)
        assert n > len(rep["outlier_indices_1based"])


def test_a_traits_draws_do_not_depend_on_batch_width_or_chunking(shared_data, fits):
    """ldl alone, and padded to width 64 beside another trait with another chunk size, gives
    the same counts as in the three-trait call of ``fits`` (shapes reused to save compiles)."""
    ldl = _table(shared_data, "ldl")
    row, inst, _ = fits["ldl"]
    alone = presso(ldl, n_draws=N_DRAWS, seed=1)
    pd.testing.assert_frame_equal(alone.instruments.drop(columns="exposure"), inst.drop(columns="exposure"))
    for col in ["global_pval", "n_outliers", "outliers", "corrected_b", "distortion_coef", "distortion_pval"]:
        assert alone.traits.iloc[0][col] == row[col], col

    n = len(ldl)
    cols = ["beta.exposure", "se.exposure", "beta.outcome", "se.outcome"]
    other = np.random.default_rng(0).normal(0.1, 0.01, size=(4, 40))
    padded, mask = [], np.zeros((2, 64), dtype=bool)
    mask[0, :40] = mask[1, :n] = True
    for k, c in enumerate(cols):
        arr = np.ones((2, 64))
        arr[0, :40] = np.abs(other[k])
        arr[1, :n] = ldl[c].to_numpy()
        padded.append(arr)
    uids = np.array([999, from_frame(ldl).traits["trait_uid"][0]], dtype=np.uint32)
    out = jax.device_get(
        presso_kernel(make_instruments(*padded, mask=mask), trait_keys(1, uids), THRESHOLD, N_DRAWS, chunk=100)
    )
    n_global = round(row["global_pval"] * N_DRAWS) if not row["global_pval_bound"] else 0
    assert out.n_exceed_global[1] == n_global
    expected = np.where(inst["pval_bound"], 0, np.round(inst["pval"] * N_DRAWS / n))
    below_cap = inst["pval"].to_numpy() < 1
    np.testing.assert_array_equal(out.n_exceed_instrument[1, :n][below_cap], expected[below_cap])
    np.testing.assert_array_equal(out.n_exceed_instrument[1, n:], 0)
    np.testing.assert_array_equal(out.outlier[1, :n], inst["outlier"])
    np.testing.assert_allclose(out.rss_obs[1], row["rss_obs"], rtol=1e-12)


def test_too_few_instruments_and_all_outliers_are_reported_not_raised(shared_data):
    ldl = _table(shared_data, "ldl")
    small = ldl.head(3).assign(exposure="small")
    res = presso(pd.concat([ldl, small]), n_draws=N_DRAWS, signif_threshold=1.0, seed=0)
    rows = res.traits.set_index("exposure")
    assert np.isnan(rows.loc["small", "raw_b"]) and np.isnan(rows.loc["small", "global_pval"])
    assert "too few instruments" in rows.loc["small", "reason"]
    assert pd.isna(rows.loc["small", "n_outliers"])
    # threshold 1: every Bonferroni p (capped at 1) is <= 1, so every instrument is an outlier
    assert rows.loc["ldl", "n_outliers"] == len(ldl)
    assert rows.loc["ldl", "reason"] == "all instruments are outliers"
    assert np.isnan(rows.loc["ldl", "corrected_b"]) and np.isnan(rows.loc["ldl", "distortion_pval"])
    assert np.isfinite(rows.loc["ldl", "raw_b"])
    small_inst = res.instruments[res.instruments["exposure"] == "small"]
    assert small_inst["pval"].isna().all() and not small_inst["outlier"].any()


def test_bad_arguments_are_rejected(shared_data):
    ldl = _table(shared_data, "ldl")
    with pytest.raises(ValueError, match="n_draws"):
        presso(ldl, n_draws=0)
    with pytest.raises(ValueError, match="2\\^32"):
        presso(ldl, n_draws=2**32)  # draw indices are uint32 Threefry counters
    with pytest.raises(ValueError, match="signif_threshold"):
        presso(ldl, signif_threshold=1.5)
    with pytest.raises(ValueError, match="se.outcome"):
        presso(ldl.drop(columns="se.outcome"))


def test_global_pvalue_is_uniform_without_pleiotropy():
    """256 simulated traits with valid instruments only, one batch: global p ~ U(0, 1)."""
    rng = np.random.default_rng(2026)
    n_traits, n = 256, 12
    bx_true = rng.uniform(0.05, 0.15, size=(n_traits, n))
    sx = np.full_like(bx_true, 0.005)
    sy = rng.uniform(0.01, 0.02, size=(n_traits, n))
    bx = bx_true + sx * rng.standard_normal(bx_true.shape)
    by = 0.4 * bx_true + sy * rng.standard_normal(bx_true.shape)
    table = pd.DataFrame(
        {
            "exposure": np.repeat([f"t{i}" for i in range(n_traits)], n),
            "outcome": "y",
            "SNP": np.tile([f"rs{j}" for j in range(n)], n_traits),
            "beta.exposure": bx.ravel(),
            "se.exposure": sx.ravel(),
            "beta.outcome": by.ravel(),
            "se.outcome": sy.ravel(),
        }
    )
    res = presso(table, n_draws=1000, seed=11, outlier_test=False, distortion_test=False)
    p = res.traits["global_pval"].to_numpy()
    assert len(p) == n_traits and np.all((p > 0) & (p <= 1))
    assert stats.kstest(p, "uniform").pvalue > 0.001


def test_threefry_hash_is_bit_identical_to_jax():
    """The fused elementwise Threefry-2x32 equals JAX's own primitive on random keys and counters."""
    from jax.extend.random import threefry2x32_p

    rng = np.random.default_rng(5)
    k0, k1, x0, x1 = (rng.integers(0, 2**32, size=(3, 1000), dtype=np.uint32) for _ in range(4))
    ours = jax.jit(threefry2x32)(k0, k1, x0, x1)
    ref = threefry2x32_p.bind(*(jax.numpy.asarray(a) for a in (k0, k1, x0, x1)))
    np.testing.assert_array_equal(np.asarray(ours[0]), np.asarray(ref[0]))
    np.testing.assert_array_equal(np.asarray(ours[1]), np.asarray(ref[1]))


def test_box_muller_normals_are_standard_normal_and_independent():
    """400k pairs from uniform random words: each coordinate N(0, 1) by KS against scipy, the
    two coordinates uncorrelated, their squared radius chi-square with 2 df, P(|z| > 3) right."""
    bits = np.random.default_rng(6).integers(0, 2**32, size=(2, 400_000), dtype=np.uint32)
    z0, z1 = (np.asarray(z, dtype=float) for z in jax.jit(box_muller)(bits[0], bits[1]))
    for z in (z0, z1):
        assert stats.kstest(z, "norm").pvalue > 1e-3
        assert abs(z.mean()) < 5 / np.sqrt(len(z)) and abs(z.std() - 1) < 5 / np.sqrt(2 * len(z))
    assert abs(np.corrcoef(z0, z1)[0, 1]) < 5 / np.sqrt(len(z0))
    assert stats.kstest(z0**2 + z1**2, stats.chi2(2).cdf).pvalue > 1e-3
    tail = np.concatenate([z0, z1])
    expected = 2 * stats.norm.sf(3)  # the tails too, not only the bulk that KS weighs
    assert abs(np.mean(np.abs(tail) > 3) - expected) < 5 * np.sqrt(expected / len(tail))
