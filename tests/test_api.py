"""The public DataFrame API (``mrjax.api``): TwoSampleMR shapes, failure-as-data, randomness."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import mrjax
from mrjax import api
from mrjax.batch import from_frame, trait_keys
from mrjax.engine import run_methods
from mrjax.estimators.common import Params

from _golden_data import load_golden, rel_err

MR_COLUMNS = ["exposure", "outcome", "id.exposure", "id.outcome", "method_id", "method", "nsnp", "b", "se", "pval", "lo_ci", "up_ci", "reason"]


def small_traits() -> pd.DataFrame:
    """Traits with 1, 2, 3 and 4 instruments (one bucket of width 4), TwoSampleMR columns."""
    rng = np.random.default_rng(7)
    rows = []
    for k in (1, 2, 3, 4):
        for j in range(k):
            bx = rng.normal(0.1, 0.03)
            rows.append(
                {
                    "SNP": f"rs{k}{j}",
                    "exposure": f"exp{k}",
                    "outcome": "out",
                    "id.exposure": f"e{k}",
                    "id.outcome": "o",
                    "beta.exposure": bx,
                    "se.exposure": 0.01,
                    "beta.outcome": 0.3 * bx + rng.normal(0, 0.01),
                    "se.outcome": 0.02,
                    "mr_keep": True,
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def bmi(shared_data):
    golden, _ = load_golden(shared_data, "bmi_chd")
    frame = pd.read_csv(shared_data / "TwoSampleMR/bmi_chd_harmonised.csv")
    return golden, frame


@pytest.fixture(scope="module")
def both(bmi):
    return pd.concat([bmi[1], small_traits()], ignore_index=True)


@pytest.fixture(scope="module")
def default_run(bmi):
    return api.mr(bmi[1], seed=20240101)


CHEAP = ("wald_ratio", "egger_regression", "ivw")


@pytest.fixture(scope="module")
def small_run():
    """Few-instrument traits with a cheap method set (compiles fast; no bootstrap)."""
    return api.mr(small_traits(), methods=CHEAP)


def test_mr_columns_and_default_methods(default_run):
    assert list(default_run.columns) == MR_COLUMNS
    bmi = default_run[default_run["id.exposure"] == "ieu-a-2"]
    # Wald ratio dropped for a multi-SNP trait, TwoSampleMR's order otherwise.
    assert list(bmi["method"]) == ["MR Egger", "Weighted median", "Inverse variance weighted", "Simple mode", "Weighted mode"]
    assert (bmi["reason"] == "").all()


def test_mr_default_call_matches_r(default_run, bmi):
    table = bmi[0]["twosamplemr"]["mr_default_call"]["table"]
    ours = default_run[default_run["id.exposure"] == "ieu-a-2"].set_index("method")
    for method, b, se, p in zip(table["method"], table["b"], table["se"], table["pval"]):
        row = ours.loc[method]
        assert rel_err(row["b"], b) < 1e-6, method  # point estimates are deterministic
        if method in ("MR Egger", "Inverse variance weighted"):
            assert rel_err(row["se"], se) < 1e-10
            assert rel_err(row["pval"], p) < 1e-10
        else:  # bootstrap SEs: Monte-Carlo error ~2-5% at 1000 draws
            assert rel_err(row["se"], se) < 0.25, method


def test_few_instruments_are_rows_with_reasons(small_run):
    one = small_run[small_run["exposure"] == "exp1"].set_index("method_id")
    assert list(one.index) == list(CHEAP)
    assert np.isfinite(one.loc["wald_ratio", "b"]) and one.loc["wald_ratio", "reason"] == ""
    others = one.drop(index="wald_ratio")
    assert others["b"].isna().all() and (others["reason"] == "too few instruments").all()
    two = small_run[small_run["exposure"] == "exp2"].set_index("method_id")
    assert "wald_ratio" not in two.index
    assert np.isfinite(two.loc["ivw", "b"]) and two.loc["ivw", "reason"] == ""
    assert np.isnan(two.loc["egger_regression", "b"]) and two.loc["egger_regression", "reason"] == "too few instruments"


def test_wald_ratio_values(small_run):
    row = small_run[(small_run["exposure"] == "exp1") & (small_run["method_id"] == "wald_ratio")].iloc[0]
    small = small_traits()
    snp = small[small["exposure"] == "exp1"].iloc[0]
    assert row["b"] == pytest.approx(snp["beta.outcome"] / snp["beta.exposure"], rel=1e-14)
    assert row["se"] == pytest.approx(snp["se.outcome"] / abs(snp["beta.exposure"]), rel=1e-14)


def test_wald_ratio_alone_on_many_snps_says_why():
    res = api.mr(small_traits(), methods=["mr_wald_ratio"])
    multi = res[res["exposure"] != "exp1"]
    assert len(multi) == 3 and multi["b"].isna().all() and (multi["reason"] == "not applicable").all()


def test_snake_case_input_and_batch_input_agree(small_run):
    snake = small_traits().rename(columns=lambda c: c.replace(".", "_"))
    a = api.mr(snake, methods=CHEAP)
    pd.testing.assert_frame_equal(a, small_run)
    b = api.mr(from_frame(small_traits()), methods=CHEAP)
    pd.testing.assert_frame_equal(b, small_run)


def test_seed_and_key(bmi, default_run):
    alone = default_run
    keyed = api.mr(bmi[1], seed=jax.random.key(20240101))
    pd.testing.assert_frame_equal(keyed, alone)
    other = api.mr(bmi[1], seed=1)
    boot = other["method_id"] == "weighted_median"
    assert (other.loc[boot, "se"].to_numpy() != alone.loc[boot, "se"].to_numpy()).all()
    assert (other.loc[~boot, "b"].to_numpy() == alone.loc[~boot, "b"].to_numpy()).all()


def test_unknown_method_and_bad_input_raise():
    with pytest.raises(ValueError, match="unknown method 'mr_nonsense'"):
        api.mr(small_traits(), methods=["mr_nonsense"])
    bad = small_traits()
    bad.loc[2, "se.outcome"] = 0.0
    with pytest.raises(ValueError, match="se.outcome"):
        api.mr(bad)
    with pytest.raises(ValueError, match="dtype"):
        api.mr(small_traits(), dtype="int32")


def test_odds_ratios_formula(default_run):
    res = api.odds_ratios(default_run)
    b, se = default_run["b"].to_numpy(), default_run["se"].to_numpy()
    np.testing.assert_allclose(res["or"], np.exp(b))
    np.testing.assert_allclose(res["or_lci95"], np.exp(b - 1.96 * se))
    np.testing.assert_allclose(res["or_uci95"], np.exp(b + 1.96 * se))
    assert list(res.columns[-5:]) == ["lo_ci", "up_ci", "or", "or_lci95", "or_uci95"]


def test_heterogeneity_table(both, bmi):
    res = api.heterogeneity(both)
    assert list(res.columns) == ["exposure", "outcome", "id.exposure", "id.outcome", "method", "Q", "Q_df", "Q_pval", "I2", "reason"]
    ours = res[res["id.exposure"] == "ieu-a-2"]
    table = bmi[0]["twosamplemr"]["mr_heterogeneity"]["default_methods"]
    assert list(ours["method"]) == table["method"]
    assert np.max(rel_err(ours["Q"], table["Q"])) < 1e-10
    assert list(ours["Q_df"]) == table["Q_df"]
    q, df = ours["Q"].to_numpy(), ours["Q_df"].to_numpy()
    np.testing.assert_allclose(ours["I2"], np.maximum(0, (q - df) / q))
    two = res[res["exposure"] == "exp2"].set_index("method")
    assert np.isnan(two.loc["MR Egger", "Q"]) and two.loc["MR Egger", "reason"] == "too few instruments"
    assert np.isfinite(two.loc["Inverse variance weighted", "Q"])
    allm = api.heterogeneity(both, methods=["two_sample_ml", "egger_regression", "ivw", "ivw_radial", "uwr"])
    assert len(allm[allm["id.exposure"] == "ieu-a-2"]) == 5
    with pytest.raises(ValueError):
        api.heterogeneity(both, methods=["weighted_median"])


def test_pleiotropy_table(both, bmi):
    res = api.pleiotropy(both)
    row = res[res["id.exposure"] == "ieu-a-2"].iloc[0]
    pt = bmi[0]["twosamplemr"]["mr_pleiotropy_test"]
    assert rel_err(row["egger_intercept"], pt["egger_intercept"]) < 1e-10
    assert rel_err(row["pval"], pt["pval"]) < 1e-10
    short = res[res["exposure"] == "exp2"].iloc[0]
    assert np.isnan(short["egger_intercept"]) and short["reason"] == "too few instruments"


def test_leave_one_out_rows(both, bmi):
    res = api.leave_one_out(both)
    assert list(res.columns) == ["exposure", "outcome", "id.exposure", "id.outcome", "SNP", "b", "se", "p"]
    ours = res[res["id.exposure"] == "ieu-a-2"]
    table = bmi[0]["twosamplemr"]["mr_leaveoneout"]["table"]
    assert list(ours["SNP"]) == table["SNP"]
    assert np.max(rel_err(ours["b"], table["b"])) < 1e-9
    for k in (1, 2):
        assert list(res.loc[res["exposure"] == f"exp{k}", "SNP"]) == ["All"]
    assert list(res.loc[res["exposure"] == "exp3", "SNP"]) == ["rs30", "rs31", "rs32", "All"]


def test_single_snp_rows(both, bmi):
    res = api.single_snp(both)
    ours = res[res["id.exposure"] == "ieu-a-2"]
    table = bmi[0]["twosamplemr"]["mr_singlesnp"]["table"]
    assert list(ours["SNP"]) == table["SNP"]
    assert np.max(rel_err(ours["se"], table["se"])) < 1e-10
    assert list(res.loc[res["exposure"] == "exp2", "SNP"]) == ["rs20", "rs21", "All - Inverse variance weighted", "All - MR Egger"]


def test_instrument_strength_formulae(bmi):
    frame = bmi[1]
    res = api.instrument_strength(frame)
    b, se = frame["beta.exposure"].to_numpy(), frame["se.exposure"].to_numpy()
    eaf, n = frame["eaf.exposure"].to_numpy(), frame["samplesize.exposure"].to_numpy()
    r2 = 2 * eaf * (1 - eaf) * b**2
    np.testing.assert_allclose(res["r2"], r2, rtol=1e-14)
    np.testing.assert_allclose(res["f_stat"], r2 * (n - 2) / (1 - r2), rtol=1e-12)
    np.testing.assert_allclose(res["f_stat_z2"], (b / se) ** 2, rtol=1e-14)
    assert res["mean_f_stat_z2"].iloc[0] == pytest.approx(np.mean((b / se) ** 2), rel=1e-12)
    # MendelianRandomization reports Fstat = mean((bx/sx)^2) for IVW.
    assert res["mean_f_stat_z2"].iloc[0] == pytest.approx(bmi[0]["mendelianrandomization"]["ivw_default"]["Fstat"], rel=1e-10)


def test_directionality_needs_columns():
    with pytest.raises(ValueError, match="pval.exposure"):
        api.directionality(small_traits())


def test_float32_path_close_to_float64(bmi):
    """The float32 path: same methods, instruments cast to float32, numbers within 1e-4."""
    batch = from_frame(bmi[1])
    methods = ("ivw", "egger_regression", "ivw_radial")
    b64 = next(batch.buckets())
    b32 = next(batch.buckets(dtype=np.float32))
    keys = trait_keys(0, b64.uids)
    r64 = run_methods(b64.instruments, keys, methods)
    r32 = run_methods(b32.instruments, keys, methods)
    for m in methods:
        assert r32[m].b.dtype == jnp.float32
        for f in ("b", "se", "pval"):
            np.testing.assert_allclose(np.asarray(getattr(r32[m], f)), np.asarray(getattr(r64[m], f)), rtol=1e-4, err_msg=f"{m}.{f}")
    with pytest.raises(ValueError):
        run_methods(b64.instruments, jnp.concatenate([keys, keys]), methods, Params())


def test_n_boot_zero_gives_point_estimates_without_standard_errors(shared_data):
    """Simulation studies run the bootstrap methods for their point estimates only."""
    dat = pd.read_csv(shared_data / "TwoSampleMR" / "bmi_chd_harmonised.csv")
    with_boot = api.mr(dat, n_boot=20).set_index("method_id")
    without = api.mr(dat, n_boot=0).set_index("method_id")
    for method in ("weighted_median", "simple_mode", "weighted_mode"):
        assert without.loc[method, "b"] == with_boot.loc[method, "b"]
        assert np.isnan(without.loc[method, "se"]) and np.isnan(without.loc[method, "pval"])
    assert without.loc["ivw", "se"] == with_boot.loc["ivw", "se"]


def test_modules_do_not_shadow_the_functions_of_the_same_name():
    """``mrjax.presso`` and ``mrjax.simulate`` are functions; their modules have other names,
    so importing a module never hands back a function (or the reverse)."""
    import importlib
    import types

    for module, function in (("mrjax.mr_presso", "presso"), ("mrjax.simulation", "simulate")):
        loaded = importlib.import_module(module)
        assert isinstance(loaded, types.ModuleType)
        assert getattr(loaded, function) is getattr(mrjax, function)
        assert callable(getattr(mrjax, function)) and not isinstance(getattr(mrjax, function), types.ModuleType)


def test_mr_settings_are_checked_before_any_estimation():
    with pytest.raises(ValueError, match="unknown method setting.*robustness"):
        api.mr(small_traits(), ["ivw"], robustness=True)
    with pytest.raises(ValueError, match="model='mixed'"):
        api.mr(small_traits(), ["ivw"], model="mixed")
    with pytest.raises(ValueError, match=r"model=\['fixed', 'random'\] is not one of"):  # was a TypeError
        api.mr(small_traits(), ["mrivw"], model=["fixed", "random"])
    # a real setting that none of the requested methods reads would be ignored silently
    with pytest.raises(ValueError, match="'robust' applies to none of the methods ivw"):
        api.mr(small_traits(), ["ivw"], robust=True)
