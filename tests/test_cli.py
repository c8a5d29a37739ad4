"""The ``mrjax`` command line: every command's exit code, output files and columns, and the
one-sentence errors (no traceback) for bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mrjax_cli._common import USER_ERROR
from mrjax_cli.main import app

runner = CliRunner()

RESULT_COLUMNS = ["direction", "exposure", "outcome", "method_id", "method", "nsnp", "b", "se", "pval", "or",
                  "or_lci95", "or_uci95", "effect_scale", "qval_fdr", "pval_bonferroni"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def error_text(result) -> str:
    return " ".join((result.output + (result.stderr if result.stderr_bytes is not None else "")).split())


def assert_user_error(result, *fragments):
    """Non-zero exit with one clear sentence and a hint, never a traceback."""
    text = error_text(result)
    assert result.exit_code == USER_ERROR, (result.exit_code, text, result.exception)
    assert "Error:" in text and "Hint:" in text, text
    assert "Traceback" not in text, text
    for fragment in fragments:
        assert fragment in text, (fragment, text)


@pytest.fixture(scope="module")
def harmonised(shared_data):
    return shared_data / "TwoSampleMR" / "bmi_chd_harmonised.csv"


@pytest.fixture(scope="module")
def golden(shared_data):
    return json.loads((shared_data / "TwoSampleMR" / "golden_methods_bmi_chd.json").read_text())["twosamplemr"]


def test_version_and_help():
    assert invoke("version").exit_code == 0
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("scan", "demo", "mr", "presso", "clump", "harmonise"):
        assert command in result.output


def test_mr_on_twosamplemr_dat_writes_every_table(harmonised, golden, tmp_path):
    out = tmp_path / "mr"
    result = invoke("mr", harmonised, "--out", out, "--method", "ivw", "--method", "egger_regression", "--n-boot", "50")
    assert result.exit_code == 0, error_text(result)
    for name in ("results", "heterogeneity", "pleiotropy", "leave_one_out", "single_snp"):
        assert (out / f"{name}.tsv").is_file(), name
    table = pd.read_csv(out / "results.tsv", sep="\t")
    assert list(table.columns[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    ivw = table.set_index("method_id").loc["ivw"]
    assert ivw["b"] == pytest.approx(golden["mr"]["mr_ivw"]["b"], rel=1e-6)
    assert ivw["se"] == pytest.approx(golden["mr"]["mr_ivw"]["se"], rel=1e-6)
    assert ivw["or"] == pytest.approx(np.exp(golden["mr"]["mr_ivw"]["b"]), rel=1e-6)
    assert pd.read_parquet(out / "results.parquet").shape == table.shape
    assert {"Q", "Q_df", "Q_pval"} <= set(pd.read_csv(out / "heterogeneity.tsv", sep="\t").columns)
    assert {"egger_intercept", "se", "pval"} <= set(pd.read_csv(out / "pleiotropy.tsv", sep="\t").columns)
    loo = pd.read_csv(out / "leave_one_out.tsv", sep="\t")
    assert len(loo) == 79 + 1  # one row per SNP and the "All" row


def test_mr_missing_file(tmp_path):
    assert_user_error(invoke("mr", tmp_path / "nope.csv", "--out", tmp_path / "o"), "nope.csv", "not found")


def test_mr_missing_column_names_the_column(harmonised, tmp_path):
    broken = tmp_path / "broken.csv"
    pd.read_csv(harmonised).drop(columns=["se.outcome"]).to_csv(broken, index=False)
    assert_user_error(invoke("mr", broken, "--out", tmp_path / "o"), "se.outcome")


def test_mr_non_numeric_value_names_the_rows(harmonised, tmp_path):
    broken = tmp_path / "broken.csv"
    table = pd.read_csv(harmonised)
    table["beta.exposure"] = table["beta.exposure"].astype(object)
    table.loc[3, "beta.exposure"] = "oops"
    table.to_csv(broken, index=False)
    assert_user_error(invoke("mr", broken, "--out", tmp_path / "o"), "beta.exposure", "4")


def test_mr_debug_shows_the_traceback(tmp_path):
    result = invoke("mr", tmp_path / "nope.csv", "--out", tmp_path / "o", "--debug")
    assert result.exit_code != 0
    assert result.exception is not None and not isinstance(result.exception, SystemExit)


def test_unknown_method_is_a_user_error(harmonised, tmp_path):
    assert_user_error(invoke("mr", harmonised, "--out", tmp_path / "o", "--method", "not_a_method"), "not_a_method")


def test_presso_writes_trait_and_instrument_tables(harmonised, tmp_path):
    out = tmp_path / "presso"
    result = invoke("presso", harmonised, "--out", out, "--draws", "200", "--seed", "1")
    assert result.exit_code == 0, error_text(result)
    traits = pd.read_csv(out / "presso.tsv", sep="\t")
    assert len(traits) == 1
    assert {"exposure", "outcome", "nsnp", "raw_b", "corrected_b", "rss_obs", "global_pval", "n_outliers"} <= set(traits.columns)
    instruments = pd.read_csv(out / "presso_instruments.tsv", sep="\t")
    assert len(instruments) == 79 and {"SNP", "rss_obs", "pval", "outlier"} <= set(instruments.columns)


def test_presso_rejects_zero_draws(harmonised, tmp_path):
    assert_user_error(invoke("presso", harmonised, "--out", tmp_path / "o", "--draws", "0"), "--draws")


def test_clump_reproduces_plink(shared_data, tmp_path):
    out = tmp_path / "index.tsv"
    result = invoke("clump", shared_data / "gwas" / "exposure_c.tsv", "--ld-ref", shared_data / "ldref" / "eur_sim",
                    "--out", out)
    assert result.exit_code == 0, error_text(result)
    golden = (shared_data / "ldref" / "golden_clump_exposure_c_r2_0.001_kb_10000.txt").read_text().split()
    index = pd.read_csv(out, sep="\t")
    assert sorted(index["SNP"]) == sorted(golden)


def test_clump_bad_panel_prefix(shared_data, tmp_path):
    result = invoke("clump", shared_data / "gwas" / "exposure_c.tsv", "--ld-ref", tmp_path / "nopanel", "--out", tmp_path / "x.tsv")
    assert_user_error(result, "nopanel")


def test_harmonise_writes_a_table_mr_can_read(shared_data, tmp_path):
    out = tmp_path / "dat.csv"
    result = invoke("harmonise", "--exposure", shared_data / "gwas" / "exposure_c.tsv",
                    "--outcome", shared_data / "gwas" / "outcome_finngen.gz", "--p", "1e-8", "--out", out)
    assert result.exit_code == 0, error_text(result)
    table = pd.read_csv(out)
    assert {"SNP", "beta.exposure", "se.exposure", "beta.outcome", "se.outcome", "mr_keep"} <= set(table.columns)
    assert len(table) > 3
    result = invoke("mr", out, "--out", tmp_path / "mr", "--method", "ivw")
    assert result.exit_code == 0, error_text(result)


def test_harmonise_unknown_format_is_a_user_error(shared_data, tmp_path):
    result = invoke("harmonise", "--exposure", shared_data / "gwas" / "exposure_c.tsv", "--outcome",
                    shared_data / "gwas" / "outcome_finngen.gz", "--format", "klingon", "--out", tmp_path / "x.csv")
    assert_user_error(result, "klingon")


def test_harmonise_bad_column_mapping(shared_data, tmp_path):
    result = invoke("harmonise", "--exposure", shared_data / "gwas" / "exposure_c.tsv", "--outcome",
                    shared_data / "gwas" / "outcome_finngen.gz", "--column", "beta", "--out", tmp_path / "x.csv")
    assert_user_error(result, "NAME=COLUMN")


# --- scan: errors -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_scan(shared_data, tmp_path_factory):
    """Two exposures of the shared scan as two separate files, plus outcome and panel."""
    folder = tmp_path_factory.mktemp("small_scan")
    exposures = pd.read_parquet(shared_data / "scan" / "exposures.parquet", filters=[("exposure", "in", ["trait_014", "trait_033"])])
    for name, part in exposures.groupby("exposure", observed=True):
        part.drop(columns="exposure").to_csv(folder / f"{name}.tsv.gz", sep="\t", index=False)
    return {"glob": str(folder / "trait_*.tsv.gz"), "outcome": shared_data / "scan" / "outcome.parquet",
            "ld_ref": shared_data / "ldref" / "eur_sim"}


def test_scan_needs_a_panel_unless_already_clumped(small_scan, tmp_path):
    result = invoke("scan", "--exposure", small_scan["glob"], "--outcome", small_scan["outcome"], "--out", tmp_path)
    assert_user_error(result, "--ld-ref", "--already-clumped")


def test_scan_conflicting_options(small_scan, tmp_path):
    result = invoke("scan", "--exposure", small_scan["glob"], "--outcome", small_scan["outcome"], "--out", tmp_path,
                    "--ld-ref", small_scan["ld_ref"], "--already-clumped")
    assert_user_error(result, "contradict")


def test_scan_glob_matching_nothing(small_scan, tmp_path):
    result = invoke("scan", "--exposure", tmp_path / "none_*.tsv", "--outcome", small_scan["outcome"], "--out", tmp_path,
                    "--ld-ref", small_scan["ld_ref"])
    assert_user_error(result, "matches no file")


def test_scan_missing_outcome(small_scan, tmp_path):
    result = invoke("scan", "--exposure", small_scan["glob"], "--outcome", tmp_path / "absent.tsv", "--out", tmp_path,
                    "--ld-ref", small_scan["ld_ref"])
    assert_user_error(result, "absent.tsv", "not found")


def test_scan_bad_outcome_type(small_scan, tmp_path):
    result = invoke("scan", "--exposure", small_scan["glob"], "--outcome", small_scan["outcome"], "--out", tmp_path,
                    "--ld-ref", small_scan["ld_ref"], "--outcome-type", "ordinal")
    assert_user_error(result, "outcome type", "'ordinal'", "binary")


def test_scan_bad_precision(small_scan, tmp_path):
    result = invoke("scan", "--exposure", small_scan["glob"], "--outcome", small_scan["outcome"], "--out", tmp_path,
                    "--ld-ref", small_scan["ld_ref"], "--precision", "16")
    assert result.exit_code != 0 and "Traceback" not in error_text(result)


def test_scan_no_instruments_left(small_scan, tmp_path):
    result = invoke("scan", "--exposure", small_scan["glob"], "--outcome", small_scan["outcome"], "--out", tmp_path,
                    "--ld-ref", small_scan["ld_ref"], "--p", "1e-300", "--presso-draws", "0")
    assert_user_error(result, "no instruments")


def test_scan_end_to_end_from_files(small_scan, tmp_path):
    out = tmp_path / "scan"
    result = invoke("scan", "--exposure", small_scan["glob"], "--outcome", small_scan["outcome"], "--out", out,
                    "--ld-ref", small_scan["ld_ref"], "--bidirectional", "--method", "ivw", "--method", "weighted_median",
                    "--n-boot", "100", "--presso-draws", "200", "--correction", "none", "--read-threads", "2")
    assert result.exit_code == 0, error_text(result)
    results = pd.read_csv(out / "results.tsv", sep="\t")
    assert list(results.columns[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    assert set(results["direction"]) == {"forward", "reverse"}
    assert set(results.loc[results["direction"] == "forward", "exposure"]) == {"trait_014", "trait_033"}
    for name in ("report.html", "manifest.json", "audit.tsv", "instruments.tsv", "presso.tsv"):
        assert (out / name).is_file(), name


def test_simulate_is_registered():
    result = invoke("simulate", "--help")
    assert result.exit_code == 0 and "replicates" in result.output


def test_demo_runs_the_bundled_scan(tmp_path):
    out = tmp_path / "demo"
    # the full demo runs five methods and 10^4 PRESSO draws; two methods keep this test quick
    result = invoke("demo", "--out", out, "--method", "ivw", "--method", "egger_regression", "--presso-draws", "200")
    assert result.exit_code == 0, error_text(result)
    results = pd.read_csv(out / "results.tsv", sep="\t")
    assert set(results["direction"]) == {"forward", "reverse"}
    assert results["exposure"].nunique() == 11  # 10 exposures forward, the outcome reverse
    ivw = results[(results["method_id"] == "ivw") & (results["direction"] == "forward")].set_index("exposure")
    assert ivw.loc["exp_01", "qval_fdr"] < 0.05 and ivw.loc["exp_01", "b"] > 0  # a simulated causal effect
    assert (out / "report.html").is_file() and (out / "figures" / "forest_plot.png").is_file()
    assert json.loads((out / "manifest.json").read_text())["parameters"]["bidirectional"] is True


def test_scan_permutations_are_valid_and_reproducible(small_scan, tmp_path):
    n_perm = 19
    tables = []
    for run in ("first", "again"):
        out = tmp_path / run
        result = invoke("scan", "--exposure", small_scan["glob"], "--outcome", small_scan["outcome"], "--out", out,
                        "--ld-ref", small_scan["ld_ref"], "--method", "ivw", "--n-boot", "10", "--presso-draws", "0",
                        "--permutations", n_perm, "--seed", "3")
        assert result.exit_code == 0, error_text(result)
        tables.append(pd.read_csv(out / "permutations.tsv", sep="\t"))
    table = tables[0]
    assert {"direction", "exposure", "outcome", "method_id", "pval", "pval_perm", "n_perm", "pval_perm_min"} <= set(table.columns)
    assert set(table.loc[table["method_id"] == "ivw", "exposure"]) == {"trait_014", "trait_033"}
    assert set(table["direction"]) == {"forward"}
    assert (table["n_perm"] <= n_perm).all() and (table["n_perm"] > 0).all()
    np.testing.assert_allclose(table["pval_perm_min"], 1 / (n_perm + 1))
    assert ((table["pval_perm"] >= 1 / (n_perm + 1)) & (table["pval_perm"] <= 1)).all(), table["pval_perm"]
    # (1 + exceedances) / (1 + valid permutations): a whole number of steps
    steps = table["pval_perm"] * (table["n_perm"] + 1)
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-9)
    pd.testing.assert_frame_equal(tables[1], table, check_exact=True)
