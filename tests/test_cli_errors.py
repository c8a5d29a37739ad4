"""A new user's mistakes on the command line: each exits 2 with one sentence naming the
option or file and a hint — never "Internal error" — and is caught before any computing."""

from __future__ import annotations

import gzip

import pytest

from test_cli import assert_user_error, error_text, invoke


@pytest.fixture(scope="module")
def harmonised(shared_data):
    return shared_data / "TwoSampleMR" / "bmi_chd_harmonised.csv"


def assert_bad_option(result, option: str):
    """typer's range check: exit 2 naming the option (its own "Invalid value" box, no traceback)."""
    text = error_text(result)
    assert result.exit_code == 2, (result.exit_code, text)
    assert option in text and "Traceback" not in text and "Internal error" not in text, text


@pytest.mark.parametrize("args, option", [
    (["scan", "-e", "x.tsv", "-o", "y.tsv", "-O", "out", "--alpha", "2"], "--alpha"),
    (["scan", "-e", "x.tsv", "-o", "y.tsv", "-O", "out", "--p", "0"], "--p"),
    (["scan", "-e", "x.tsv", "-o", "y.tsv", "-O", "out", "--chunk-size", "0"], "--chunk-size"),
    (["scan", "-e", "x.tsv", "-o", "y.tsv", "-O", "out", "--devices", "0"], "--devices"),
    (["scan", "-e", "x.tsv", "-o", "y.tsv", "-O", "out", "--workers", "-1"], "--workers"),
    (["mr", "x.csv", "-O", "out", "--devices", "0"], "--devices"),
    (["mr", "x.csv", "-O", "out", "--n-boot", "-5"], "--n-boot"),
    (["mr", "x.csv", "-O", "out", "--seed", "-1"], "--seed"),
    (["mr", "x.csv", "-O", "out", "--seed", "abc"], "--seed"),
    (["presso", "x.csv", "-O", "out", "--draws", "-3"], "--draws"),
    (["harmonise", "-e", "x", "-o", "y", "-O", "z.tsv", "--action", "4"], "--action"),
])
def test_numeric_options_are_range_checked_in_one_place(args, option):
    assert_bad_option(invoke(*args), option)


def test_out_naming_a_file_is_refused_before_any_computing(harmonised, tmp_path, monkeypatch):
    import mrjax.scan.estimate

    def no_estimation(*args, **kwargs):
        raise AssertionError("estimated before checking --out")

    monkeypatch.setattr(mrjax.scan.estimate, "estimate_tables", no_estimation)
    existing = tmp_path / "taken.txt"
    existing.write_text("not a folder")
    assert_user_error(invoke("mr", harmonised, "--out", existing, "--method", "ivw"), "taken.txt", "existing file")
    assert_user_error(invoke("presso", harmonised, "--out", existing), "taken.txt", "existing file")


def test_output_file_extension_decides_the_format(tmp_path):
    assert_user_error(invoke("harmonise", "-e", "x.tsv", "-o", "y.tsv", "--out", tmp_path / "dat.xlsx"),
                      "dat.xlsx", "extension")


def test_empty_and_corrupt_inputs_are_user_errors(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert_user_error(invoke("mr", empty, "--out", tmp_path / "o1"), "empty.csv")
    truncated = tmp_path / "dat.csv.gz"
    truncated.write_bytes(gzip.compress(b"SNP,beta.exposure,se.exposure,beta.outcome,se.outcome\n" * 500)[:120])
    assert_user_error(invoke("mr", truncated, "--out", tmp_path / "o2"))
    assert_user_error(invoke("presso", truncated, "--out", tmp_path / "o3"))


def test_se_zero_is_reported_as_a_number_with_the_row(harmonised, tmp_path):
    import pandas as pd

    table = pd.read_csv(harmonised)
    table.loc[3, "se.outcome"] = 0.0
    bad = tmp_path / "bad.csv"
    table.to_csv(bad, index=False)
    result = invoke("mr", bad, "--out", tmp_path / "o", "--method", "ivw")
    assert_user_error(result, "se.outcome", "must be > 0")
    assert "np.float64" not in error_text(result)


def test_version_flag_and_help_lists_method_ids_and_formats():
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.strip()
    help_text = " ".join(invoke("mr", "--help").output.split())
    assert "weighted_median" in help_text and "egger_regression" in help_text
    scan_help = " ".join(invoke("scan", "--help").output.split())
    assert "finngen" in scan_help and "-O" in scan_help


def test_harmonise_says_why_every_dropped_row_went(shared_data, tmp_path):
    import pandas as pd

    out = tmp_path / "dat.tsv"
    result = invoke("harmonise", "--exposure", shared_data / "gwas" / "exposure_c.tsv",
                    "--outcome", shared_data / "gwas" / "outcome_finngen.gz", "--p", "1e-8", "--out", out)
    assert result.exit_code == 0, error_text(result)
    audit = tmp_path / "dat.audit.tsv"
    assert audit.is_file()
    records = pd.read_csv(audit, sep="\t")
    text = error_text(result)
    assert f"dropped {len(records)} rows" in text
    for reason in records["reason"].unique():
        assert reason in text, reason


def test_scan_prints_one_line_per_stage_when_not_a_terminal(shared_data, tmp_path):
    exposure = tmp_path / "trait_014.tsv"
    import pandas as pd

    table = pd.read_parquet(shared_data / "scan" / "exposures.parquet", filters=[("exposure", "in", ["trait_014"])])
    table.drop(columns="exposure").to_csv(exposure, sep="\t", index=False)
    result = invoke("scan", "-e", exposure, "-o", shared_data / "scan" / "outcome.parquet", "-O", tmp_path / "out",
                    "--ld-ref", shared_data / "ldref" / "eur_sim", "-m", "ivw", "--presso-draws", "0", "--n-boot", "10")
    assert result.exit_code == 0, error_text(result)
    text = error_text(result)
    for stage in ("inputs", "instruments", "estimate", "tables", "figures", "report"):
        assert f"{stage}: " in text and "done in" in text, (stage, text)
    assert not (tmp_path / "out" / "RUNNING").exists()


def test_the_compilation_cache_is_on_by_default_in_the_users_cache_folder(harmonised, tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "MRJAX_NO_CACHE"}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), JAX_PLATFORMS="cpu")
    command = [sys.executable, "-m", "mrjax", "mr", str(harmonised), "-O", str(tmp_path / "out"), "-m", "ivw"]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert any((tmp_path / "cache" / "mrjax" / "jax").iterdir())  # compiled kernels were stored
    subprocess.run(command, env={**env, "XDG_CACHE_HOME": str(tmp_path / "c2"), "MRJAX_NO_CACHE": "1"},
                   capture_output=True, check=True)
    assert not (tmp_path / "c2" / "mrjax").exists()  # (matplotlib may keep its font cache there)
