"""Simulation studies: the generator, the Monte-Carlo summaries, and the published patterns.

Statistical checks compare with the design (the scenario's parameters) or with plain numpy
formulas written here, at tolerances of a few Monte-Carlo standard errors computed from the
replicate count — never with numbers produced by the code under test.
"""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

import mrjax  # noqa: F401  (x64)
from mrjax.batch import PAD_VALUES
from mrjax.estimators.common import Params
from mrjax.simulation import (
    PRESETS,
    Scenario,
    _Moments,
    as_scenario,
    draw_instruments,
    scenario_grid,
    simulate,
    simulate_grid,
    summarise_moments,
)

PANEL = ("ivw", "egger_regression", "weighted_median")
PARAMS = Params(n_boot=0)  # point estimates: the median's bootstrap SE is not checked here
R = 3000
NOMINAL = 0.05


def _strong(name: str, **changes) -> Scenario:
    """A preset with strong instruments (mean F 1000), so the weak-instrument dilution of
    order θ/F (Bowden et al. 2016, I²_GX) is far below the Monte-Carlo error."""
    return PRESETS[name].replace(mean_f=1000.0, name=name, **changes)


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    """One simulate() call over the scenarios the published-pattern tests read."""
    moderate = Scenario(n_instruments=25, theta=0.1, mean_f=50, pleiotropy_fraction=0.3, pleiotropy_mean=0.02,
                        pleiotropy_sd=0.005)
    scenarios = [
        _strong("valid_ivs", theta=0.0).replace(name="null"),
        _strong("valid_ivs"),
        _strong("balanced_pleiotropy"),
        _strong("directional_pleiotropy"),
        moderate.replace(name="wm_n1e5"),
        # the same per-allele effects in ten times larger samples: F grows tenfold
        moderate.replace(n_exposure=1_000_000, n_outcome=1_000_000, mean_f=1 + 49 * 10, name="wm_n1e6"),
    ]
    table = simulate(scenarios, R, PANEL, seed=2024, params=PARAMS)
    return table.set_index(["scenario", "method_id"])


def _row(panel, scenario, method):
    return panel.loc[(scenario, method)]


# -- the Monte-Carlo properties the issue lists --------------------------------------------------


def test_null_ivw_rejection_rate_is_nominal(panel):
    row = _row(panel, "null", "ivw")
    mcse = math.sqrt(NOMINAL * (1 - NOMINAL) / R)
    assert row["n_estimated"] == R
    assert abs(row["rejection_rate"] - NOMINAL) < 3 * mcse


def test_ivw_confidence_interval_coverage_is_nominal(panel):
    mcse = math.sqrt(0.95 * 0.05 / R)
    for scenario in ("null", "valid_ivs"):
        assert abs(_row(panel, scenario, "ivw")["coverage"] - 0.95) < 3 * mcse


def test_egger_unbiased_under_directional_pleiotropy_with_inside(panel):
    egger = _row(panel, "directional_pleiotropy", "egger_regression")
    ivw = _row(panel, "directional_pleiotropy", "ivw")
    assert abs(egger["bias"]) < 3 * egger["bias_mcse"]
    assert ivw["bias"] > 20 * ivw["bias_mcse"]  # IVW absorbs the mean pleiotropy


def test_weighted_median_robust_with_under_half_invalid_weight(panel):
    # 30% invalid instruments: the weighted median's bias is a fraction of IVW's and shrinks
    # as the ratio estimates sharpen with sample size, while IVW's stays (Bowden et al. 2016).
    small_wm, large_wm = _row(panel, "wm_n1e5", "weighted_median"), _row(panel, "wm_n1e6", "weighted_median")
    small_ivw, large_ivw = _row(panel, "wm_n1e5", "ivw"), _row(panel, "wm_n1e6", "ivw")
    assert large_wm["bias"] < 0.25 * large_ivw["bias"]
    assert large_wm["bias"] < 0.6 * small_wm["bias"]
    assert abs(large_ivw["bias"] - small_ivw["bias"]) < 0.1 * small_ivw["bias"]


def test_published_pattern_bowden_2016_table(panel):
    """Qualitative pattern of Bowden et al. 2016 (Genet Epidemiol 40:304, Table 2) and Hartwig
    et al. 2017 (Table 1): balanced pleiotropy leaves IVW and the weighted median unbiased;
    directional pleiotropy (InSIDE holding) biases IVW but not MR-Egger; IVW keeps the nominal
    type-I error with valid instruments."""
    for method in ("ivw", "weighted_median"):
        row = _row(panel, "balanced_pleiotropy", method)
        assert abs(row["bias"]) < 3 * row["bias_mcse"], method
    directional = {m: _row(panel, "directional_pleiotropy", m) for m in PANEL}
    assert directional["ivw"]["bias"] > 20 * directional["ivw"]["bias_mcse"]
    assert abs(directional["egger_regression"]["bias"]) < 3 * directional["egger_regression"]["bias_mcse"]
    assert directional["weighted_median"]["bias"] < directional["ivw"]["bias"]
    null = _row(panel, "null", "ivw")
    assert abs(null["rejection_rate"] - NOMINAL) < 3 * math.sqrt(NOMINAL * (1 - NOMINAL) / R)
    # with the effect present every method has power, IVW the most
    valid = {m: _row(panel, "valid_ivs", m)["rejection_rate"] for m in PANEL}
    assert valid["ivw"] > 0.99 and valid["ivw"] >= max(valid.values())


def test_result_columns_and_mcse_formulas(panel):
    row = _row(panel, "valid_ivs", "ivw")
    n = row["n_estimated"]
    assert row["bias_mcse"] == pytest.approx(row["emp_sd"] / math.sqrt(n))
    assert row["emp_sd_mcse"] == pytest.approx(row["emp_sd"] / math.sqrt(2 * (n - 1)))
    assert row["coverage_mcse"] == pytest.approx(math.sqrt(row["coverage"] * (1 - row["coverage"]) / n))
    assert row["mean_b"] == pytest.approx(0.1 + row["bias"])
    # mean reported SE tracks the empirical SD for the valid-IV IVW (within 10%)
    assert row["mean_se"] == pytest.approx(row["emp_sd"], rel=0.1)


# -- Monte-Carlo summaries against plain numpy --------------------------------------------------


def test_moments_match_numpy_and_do_not_depend_on_how_values_arrive():
    rng = np.random.default_rng(1)
    n = 10_000
    theta = 0.3
    b = rng.normal(theta + 0.01, 0.2, n)
    se = np.abs(rng.normal(0.2, 0.02, n))
    p = rng.uniform(size=n)
    b[[5, 77]] = np.nan  # failed replicates are left out
    se[9] = np.nan
    z = sps.norm.ppf(0.975)

    def accumulate(pieces):
        acc = _Moments()
        edges = np.concatenate([[0], np.sort(pieces), [n]])
        for lo, hi in zip(edges[:-1], edges[1:]):
            acc.add(b[lo:hi], se[lo:hi], p[lo:hi], theta, z, 0.05)
        return summarise_moments(acc.totals(), theta)

    one = accumulate(np.array([], dtype=int))
    many = accumulate(rng.choice(np.arange(1, n), 37, replace=False))
    assert one == many  # bitwise: block sums + fsum

    ok = np.isfinite(b)
    ok_se = ok & np.isfinite(se)
    bb = b[ok]
    assert one["n_estimated"] == ok.sum()
    assert one["mean_b"] == pytest.approx(bb.mean(), rel=1e-13)
    assert one["emp_sd"] == pytest.approx(bb.std(ddof=1), rel=1e-10)
    assert one["mean_se"] == pytest.approx(se[ok_se].mean(), rel=1e-13)
    assert one["mean_se_mcse"] == pytest.approx(se[ok_se].std(ddof=1) / math.sqrt(ok_se.sum()), rel=1e-8)
    cover = np.mean(np.abs(b[ok_se] - theta) <= z * se[ok_se])
    assert one["coverage"] == pytest.approx(cover, abs=1e-15)
    assert one["rejection_rate"] == pytest.approx(np.mean(p < 0.05), abs=1e-15)


# -- determinism ---------------------------------------------------------------------------------


def test_same_seed_identical_and_independent_of_chunk_size():
    scenario = PRESETS["directional_pleiotropy"]
    methods = ("ivw", "egger_regression")
    base = simulate(scenario, 300, methods, seed=7)
    again = simulate(scenario, 300, methods, seed=7)
    chunked = simulate(scenario, 300, methods, seed=7, chunk_size=64)  # 4 full chunks + a partial one
    pd.testing.assert_frame_equal(base, again, check_exact=True)
    # other chunk shapes compile separately: the same draws, estimates equal to rounding
    pd.testing.assert_frame_equal(base, chunked, check_exact=False, rtol=1e-12, atol=1e-15)
    counts = ["n_replicates", "n_estimated", "coverage", "rejection_rate"]
    pd.testing.assert_frame_equal(base[counts], chunked[counts], check_exact=True)
    other = simulate(scenario, 300, methods, seed=8, chunk_size=64)
    assert not np.allclose(other["mean_b"], base["mean_b"])


def test_replicate_draws_depend_only_on_seed_and_index():
    scenario = PRESETS["inside_violated"]
    first = draw_instruments(scenario, 1024, seed=3)
    some = draw_instruments(scenario, seed=3, replicates=[5, 1000])
    wide = draw_instruments(scenario, 8, seed=3, width=64)
    k = scenario.n_instruments
    for field in ("bx", "sx", "by", "sy"):
        full = np.asarray(getattr(first, field))
        np.testing.assert_allclose(np.asarray(getattr(some, field)), full[[5, 1000]], rtol=1e-13, atol=0)
        np.testing.assert_allclose(np.asarray(getattr(wide, field))[:, :k], full[:8, :k], rtol=1e-13, atol=0)
        assert np.all(np.asarray(getattr(wide, field))[:, k:] == PAD_VALUES[field])
    assert np.asarray(wide.mask)[:, :k].all() and not np.asarray(wide.mask)[:, k:].any()


# -- the generator against its design ------------------------------------------------------------


def test_instrument_strength_and_standard_errors_follow_the_design():
    scenario = Scenario(n_instruments=20, theta=0.2, mean_f=30, n_exposure=50_000, n_outcome=200_000,
                        binary_outcome=True, case_fraction=0.2)
    t = draw_instruments(scenario, 1024, seed=11)
    bx, sx, sy = (np.asarray(a)[:, :20] for a in (t.bx, t.sx, t.sy))
    per_replicate_f = ((bx / sx) ** 2).mean(axis=1)
    se_of_mean = per_replicate_f.std(ddof=1) / math.sqrt(len(per_replicate_f))
    assert abs(per_replicate_f.mean() - 30) < 4 * se_of_mean
    v_min, v_max = 2 * 0.05 * 0.95, 2 * 0.5 * 0.5  # genotype variance over eaf in [0.05, 0.5]
    assert sx.max() <= 1 / math.sqrt(50_000 * v_min) and sx.min() >= 1 / math.sqrt(50_000 * v_max)
    # log-OR standard errors: information N φ (1 − φ) v
    np.testing.assert_allclose(sy / sx, math.sqrt(50_000 / (200_000 * 0.2 * 0.8)), rtol=1e-12)


def test_r2_sets_strength_by_the_f_formula():
    s = Scenario(n_instruments=10, r2=0.01, n_exposure=20_000)
    assert s.implied_mean_f == pytest.approx((20_000 - 11) / 10 * 0.01 / 0.99)


def test_pleiotropy_outliers_and_inside_correlation_follow_the_design():
    # theta = 0 and a huge outcome sample: by is the direct effect plus negligible noise
    base = dict(n_instruments=20, theta=0.0, mean_f=1e6, n_exposure=10_000, n_outcome=10**10)
    directional = draw_instruments(Scenario(**base, pleiotropy_fraction=0.5, pleiotropy_mean=0.02, pleiotropy_sd=0.01), 1024, seed=1)
    by = np.asarray(directional.by)[:, :20]
    assert abs(by[:, :10].mean() - 0.02) < 4 * 0.01 / math.sqrt(by[:, :10].size)
    assert np.abs(by[:, 10:]).max() < 1e-3
    balanced = draw_instruments(Scenario(**base, pleiotropy_fraction=0.5, pleiotropy_mean=0.02, pleiotropy_sd=0.001,
                                         direction="balanced"), 1024, seed=1)
    by = np.asarray(balanced.by)[:, :10]
    assert abs(by.mean()) < 4 * 0.02 / math.sqrt(by.size) and np.abs(by).mean() > 0.018
    inside = draw_instruments(Scenario(**base, pleiotropy_fraction=1.0, pleiotropy_sd=0.01, inside_correlation=0.6), 1024, seed=1)
    bx, by = np.asarray(inside.bx)[:, :20], np.asarray(inside.by)[:, :20]
    correlations = [np.corrcoef(x, y)[0, 1] for x, y in zip(bx, by)]
    assert np.mean(correlations) == pytest.approx(0.6, abs=0.03)
    outliers = draw_instruments(Scenario(n_instruments=20, theta=0.0, mean_f=50, outlier_fraction=0.1, outlier_size=8.0), 1024, seed=1)
    z = np.asarray(outliers.by)[:, :20] / np.asarray(outliers.sy)[:, :20]
    assert abs(z[:, :2].mean() - 8.0) < 4 / math.sqrt(z[:, :2].size)
    assert abs(z[:, 2:].mean()) < 4 / math.sqrt(z[:, 2:].size)


def test_winners_curse_selects_on_the_exposure_sample():
    weak = Scenario(n_instruments=20, theta=0.1, mean_f=10)
    cursed = draw_instruments(weak.replace(winners_curse=True), 1024, seed=5)
    clean = draw_instruments(weak, 1024, seed=5)
    z_cursed = np.abs(np.asarray(cursed.bx) / np.asarray(cursed.sx))[:, :20]
    z_clean = np.abs(np.asarray(clean.bx) / np.asarray(clean.sx))[:, :20]
    threshold = sps.norm.isf(5e-8 / 2)
    assert z_cursed.min() > threshold
    assert (z_clean < threshold).mean() > 0.5  # without selection most of these are not significant


# -- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"n_instruments": 0}, "n_instruments"),
        ({"n_instruments": 2.5}, "n_instruments"),
        ({"mean_f": 0.5}, "mean_f"),
        ({"mean_f": None}, "mean_f"),
        ({"r2": 0.1}, "mean_f"),  # both given
        ({"pleiotropy_fraction": 1.5}, "pleiotropy_fraction"),
        ({"pleiotropy_sd": -1.0}, "pleiotropy_sd"),
        ({"inside_correlation": 2.0}, "inside_correlation"),
        ({"direction": "sideways"}, "direction"),
        ({"direction": "balanced", "inside_correlation": 0.5}, "inside_correlation"),
        ({"case_fraction": 0.0}, "case_fraction"),
        ({"n_exposure": 5}, "n_exposure"),
        ({"theta": float("nan")}, "theta"),
        ({"winners_curse": "yes"}, "winners_curse"),
        ({"pleiotropy_fraction": 0.6, "outlier_fraction": 0.6}, "outlier_fraction"),
    ],
)
def test_scenario_validation_names_the_field(changes, field):
    fields = {"n_instruments": 10, "mean_f": 20.0} | changes
    with pytest.raises(ValueError, match=field):
        Scenario(**fields)


def test_as_scenario_presets_dicts_and_errors():
    assert as_scenario("outliers") is PRESETS["outliers"]
    tweaked = as_scenario({"preset": "valid_ivs", "theta": 0.0})
    assert tweaked.theta == 0.0 and tweaked.n_instruments == PRESETS["valid_ivs"].n_instruments
    switched = as_scenario({"preset": "valid_ivs", "r2": 0.05})
    assert switched.mean_f is None and switched.r2 == 0.05
    assert as_scenario({"n_instruments": 5, "mean_f": 20}).n_instruments == 5
    with pytest.raises(ValueError, match="unknown scenario preset"):
        as_scenario("nonsense")
    with pytest.raises(ValueError, match="'thetta'"):
        as_scenario({"n_instruments": 5, "mean_f": 20, "thetta": 1})
    with pytest.raises(ValueError, match="n_replicates"):
        simulate("valid_ivs", 1, ("ivw",))
    with pytest.raises(ValueError, match="unknown method"):
        simulate("valid_ivs", 10, ("not_a_method",))


def test_grid_power_increases_with_effect_size():
    table = simulate_grid("valid_ivs", 400, ("ivw", "egger_regression"), seed=1, axes={"theta": [0.0, 0.05, 0.1]})
    assert list(table.columns[:3]) == ["scenario", "theta", "method_id"]
    power = table[table["method_id"] == "ivw"].sort_values("theta")["rejection_rate"].to_numpy()
    assert power[0] < 0.1 and power[1] < power[2] and power[2] > 0.8
    assert len(scenario_grid("valid_ivs", theta=[0, 1], n_instruments=[5, 10, 20])) == 6


# -- figures and the command ---------------------------------------------------------------------


def test_plots_and_simulate_command(tmp_path):
    import typer
    from typer.testing import CliRunner

    from mrjax_cli.simulate import simulate_command

    spec = tmp_path / "grid.toml"
    spec.write_text('preset = "directional_pleiotropy"\n[grid]\ntheta = [0.0, 0.1]\n')
    app = typer.Typer()
    app.command()(simulate_command)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [str(spec), "--replicates", "50", "--out", str(out), "--methods", "ivw,egger_regression"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "simulation.tsv", sep="\t")
    assert len(table) == 4 and set(table["method_id"]) == {"ivw", "egger_regression"}
    assert sorted(table["theta"].unique()) == [0.0, 0.1]
    for name in ("bias_coverage.png", "bias_coverage.svg", "power_curve.png", "scenarios.tsv"):
        assert (out / name).stat().st_size > 0
    bad = CliRunner().invoke(app, ["no_such_preset", "--replicates", "50", "--out", str(out)])
    assert bad.exit_code == 2 and "neither a preset" in bad.output
