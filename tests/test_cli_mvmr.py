"""``mrjax mvmr``: a thin command over mrjax.mvmr (tables written, bad input exits 2)."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from mrjax_cli.main import app


def _table(shared_data, path):
    df = pd.read_csv(shared_data / "MendelianRandomization/lipids_chd.csv")
    rows = [pd.DataFrame({"SNP": [f"snp{i}" for i in df["snp_index"]], "exposure": e, "beta.exposure": df[e],
                          "se.exposure": df[e + "se"], "outcome": "chd", "beta.outcome": df["chdlodds"],
                          "se.outcome": df["chdloddsse"]}) for e in ("ldlc", "hdlc")]
    pd.concat(rows).to_csv(path, index=False)
    return pd.concat(rows)


def test_mvmr_writes_results_strength_and_q(shared_data, tmp_path):
    _table(shared_data, tmp_path / "mv.csv")
    res = CliRunner().invoke(app, ["mvmr", str(tmp_path / "mv.csv"), "--out", str(tmp_path / "out"), "-m", "mv_ivw"])
    assert res.exit_code == 0, res.output
    results = pd.read_csv(tmp_path / "out" / "mvmr_results.tsv", sep="\t")
    assert list(results["exposure"]) == ["ldlc", "hdlc"] and results["b"].notna().all()
    assert len(pd.read_csv(tmp_path / "out" / "mvmr_strength.tsv", sep="\t")) == 2
    assert len(pd.read_csv(tmp_path / "out" / "mvmr_heterogeneity.tsv", sep="\t")) == 1


def test_mvmr_incomplete_snp_exits_2_naming_it(shared_data, tmp_path):
    table = _table(shared_data, tmp_path / "mv.csv")
    table = table[~((table["SNP"] == "snp3") & (table["exposure"] == "hdlc"))]
    table.to_csv(tmp_path / "holed.csv", index=False)
    res = CliRunner().invoke(app, ["mvmr", str(tmp_path / "holed.csv"), "--out", str(tmp_path / "out"), "-m", "mv_ivw"])
    assert res.exit_code == 2 and "snp3" in res.output


def test_mvmr_nx_reaches_the_conditional_f_and_is_range_checked(shared_data, tmp_path):
    import numpy as np

    import mrjax

    table = _table(shared_data, tmp_path / "mv.csv")
    res = CliRunner().invoke(app, ["mvmr", str(tmp_path / "mv.csv"), "--out", str(tmp_path / "out"), "-m", "mv_ivw",
                                   "--nx", "20000"])
    assert res.exit_code == 0, res.output
    got = pd.read_csv(tmp_path / "out" / "mvmr_strength.tsv", sep="\t")
    want = mrjax.mvmr_strength(table, nx=20000)
    assert (got["nx"] == 20000).all()
    np.testing.assert_allclose(got["cond_f"], want["cond_f"], rtol=1e-9)
    without = mrjax.mvmr_strength(table)
    assert np.all(np.abs(got["cond_f"].to_numpy() - without["cond_f"].to_numpy()) > 1e-6)
    bad = CliRunner().invoke(app, ["mvmr", str(tmp_path / "mv.csv"), "--out", str(tmp_path / "out2"), "--nx", "0"])
    assert bad.exit_code == 2 and "--nx" in bad.output


def test_mvmr_cml_takes_its_sample_size_from_nx(shared_data, tmp_path):
    import numpy as np

    import mrjax

    table = _table(shared_data, tmp_path / "mv.csv")
    missing = CliRunner().invoke(app, ["mvmr", str(tmp_path / "mv.csv"), "--out", str(tmp_path / "o1"), "-m", "mv_cml"])
    assert missing.exit_code == 2 and "--nx" in missing.output
    res = CliRunner().invoke(app, ["mvmr", str(tmp_path / "mv.csv"), "--out", str(tmp_path / "o2"), "-m", "mv_cml",
                                   "--nx", "17723", "--cml-perturbations", "0"])
    assert res.exit_code == 0, res.output
    got = pd.read_csv(tmp_path / "o2" / "mvmr_results.tsv", sep="\t")
    want = mrjax.mvmr(table, methods=[("mv_cml", {"n": 17723, "dp": False})])
    np.testing.assert_allclose(got["b"], want["b"], rtol=1e-9)
    one = CliRunner().invoke(app, ["mvmr", str(tmp_path / "mv.csv"), "--out", str(tmp_path / "o3"), "-m", "mv_cml",
                                   "--nx", "17723", "--cml-perturbations", "1"])
    assert one.exit_code == 2 and "--cml-perturbations" in one.output
    dp = CliRunner().invoke(app, ["mvmr", str(tmp_path / "mv.csv"), "--out", str(tmp_path / "o4"), "-m", "mv_cml",
                                  "--nx", "17723", "--cml-perturbations", "20", "--seed", "3"])
    assert dp.exit_code == 0, dp.output
    got = pd.read_csv(tmp_path / "o4" / "mvmr_results.tsv", sep="\t")
    want = mrjax.mvmr(table, methods=[("mv_cml", {"n": 17723, "num_pert": 20})], seed=3)
    np.testing.assert_allclose(got[["b", "se"]], want[["b", "se"]], rtol=1e-9)


def test_mvmr_method_options_as_in_the_method_id(shared_data, tmp_path):
    """``-m 'mv_ivw[robust=True]'`` asks for what the results call ``mv_ivw[robust=True]``;
    an unknown option or a malformed id exits 2 naming it."""
    import numpy as np

    import mrjax

    table = _table(shared_data, tmp_path / "mv.csv")
    res = CliRunner().invoke(app, ["mvmr", str(tmp_path / "mv.csv"), "--out", str(tmp_path / "o1"), "-m", "mv_ivw[robust=True]",
                                   "-m", "mv_egger[orientate=2]", "-m", "mv_qhet[pcor=((1, 0.3), (0.3, 1))]",
                                   "--seed", "4"])
    assert res.exit_code == 0, res.output
    got = pd.read_csv(tmp_path / "o1" / "mvmr_results.tsv", sep="\t")
    pcor = np.array([[1, 0.3], [0.3, 1]])
    want = mrjax.mvmr(table, methods=[("mv_ivw", {"robust": True}), ("mv_egger", {"orientate": 2}), ("mv_qhet", {"pcor": pcor})], seed=4)
    assert list(got["method_id"].unique()) == ["mv_ivw[robust=True]", "mv_egger[orientate=2]",
                                               "mv_qhet[pcor=((1, 0.3), (0.3, 1))]"]
    np.testing.assert_allclose(got["b"], want["b"], rtol=1e-9)
    bad = CliRunner().invoke(app, ["mvmr", str(tmp_path / "mv.csv"), "--out", str(tmp_path / "o2"), "-m", "mv_ivw[robst=True]"])
    assert bad.exit_code == 2 and "robst" in bad.output and "robust" in bad.output
    malformed = CliRunner().invoke(app, ["mvmr", str(tmp_path / "mv.csv"), "--out", str(tmp_path / "o3"), "-m", "mv_ivw[robust]"])
    assert malformed.exit_code == 2 and "option=value" in malformed.output


def test_mvmr_gmm_takes_its_sample_sizes_from_nx_and_ny(shared_data, tmp_path):
    import numpy as np

    import mrjax

    table = _table(shared_data, tmp_path / "mv.csv")
    missing = CliRunner().invoke(app, ["mvmr", str(tmp_path / "mv.csv"), "--out", str(tmp_path / "o1"), "-m", "mv_gmm",
                                       "--nx", "17723"])
    assert missing.exit_code == 2 and "--ny" in missing.output
    res = CliRunner().invoke(app, ["mvmr", str(tmp_path / "mv.csv"), "--out", str(tmp_path / "o2"), "-m", "mv_gmm",
                                   "-m", "mv_gmm[robust=False]", "--nx", "17723", "--ny", "17723"])
    assert res.exit_code == 0, res.output
    got = pd.read_csv(tmp_path / "o2" / "mvmr_results.tsv", sep="\t")
    want = mrjax.mvmr(table, methods=[("mv_gmm", {"nx": 17723, "ny": 17723}),
                                      ("mv_gmm", {"nx": 17723, "ny": 17723, "robust": False})])
    np.testing.assert_allclose(got["b"], want["b"], rtol=1e-9)
    assert got["method_id"].nunique() == 2


def test_mvmr_ld_matrix_gives_r_correlated_fits(shared_data, tmp_path):
    """``--ld-matrix`` with MendelianRandomization's calcium_rho (unnamed: taken in table order)
    gives R's correlated-instrument IVW and Egger (``mr_ivw``/``mr_egger`` with ``correlation``)."""
    import json

    import numpy as np

    raw = pd.read_csv(shared_data / "MendelianRandomization/calcium_fastgluc.csv")
    pd.DataFrame({"SNP": [f"snp{i}" for i in raw["snp_index"]], "exposure": "calcium", "effect_allele.exposure": "A",
                  "beta.exposure": raw["calcium"], "se.exposure": raw["calciumse"], "outcome": "fastgluc",
                  "beta.outcome": raw["fastgluc"], "se.outcome": raw["fastglucse"]}).to_csv(tmp_path / "ca.csv", index=False)
    rho = shared_data / "MendelianRandomization/calcium_rho.csv"
    res = CliRunner().invoke(app, ["mvmr", str(tmp_path / "ca.csv"), "--out", str(tmp_path / "out"), "-m", "mv_ivw",
                                   "-m", "mv_egger", "--ld-matrix", str(rho)])
    assert res.exit_code == 0, res.output
    got = pd.read_csv(tmp_path / "out" / "mvmr_results.tsv", sep="\t").set_index(["method_id", "exposure"])
    golden = json.loads((shared_data / "MendelianRandomization/golden_methods_calcium_fastgluc.json").read_text())
    golden = golden["mendelianrandomization"]
    for (method, exposure), label, b, se in [(("mv_ivw", "calcium"), "ivw_default", "Estimate", "StdError"),
                                             (("mv_egger", "calcium"), "egger_default", "Estimate", "StdError.Est"),
                                             (("mv_egger", "(intercept)"), "egger_default", "Intercept", "StdError.Int")]:
        np.testing.assert_allclose(got.loc[(method, exposure), ["b", "se"]].to_numpy(float),
                                   [golden[label][b], golden[label][se]], rtol=1e-6)
    both = CliRunner().invoke(app, ["mvmr", str(tmp_path / "ca.csv"), "--out", str(tmp_path / "o2"), "--ld-matrix", str(rho),
                                    "--ld-ref", "panel"])
    assert both.exit_code == 2 and "not both" in both.output
    pd.DataFrame(np.eye(2), index=["snp1", "snp2"], columns=["snp1", "snp2"]).to_csv(tmp_path / "small.csv")
    short = CliRunner().invoke(app, ["mvmr", str(tmp_path / "ca.csv"), "--out", str(tmp_path / "o3"), "--ld-matrix",
                                     str(tmp_path / "small.csv")])
    assert short.exit_code == 2 and "snp3" in short.output and "small.csv" in short.output


def test_mvmr_ld_ref_computes_each_analysis_ld_from_the_panel(tmp_path):
    """``--ld-ref``: the correlated fits use the panel's signed LD of the analysis's SNPs
    (``mrjax.ld_matrix``, tested against bed-reader + numpy) and differ from the independent fit."""
    import numpy as np

    import mrjax

    data = mrjax.__file__.rsplit("/", 1)[0] + "/example_data"
    exposures = pd.read_parquet(data + "/exposures.parquet")
    table = mrjax.mv_instruments(exposures[exposures["exposure"].isin(["exp_01", "exp_02"])],
                                 pd.read_csv(data + "/outcome.tsv.gz", sep="\t"), data + "/demo_panel", outcome_name="case",
                                 r2=0.5, kb=250)
    table.to_csv(tmp_path / "mv.tsv", sep="\t", index=False)
    res = CliRunner().invoke(app, ["mvmr", str(tmp_path / "mv.tsv"), "--out", str(tmp_path / "out"), "-m", "mv_ivw",
                                   "--ld-ref", data + "/demo_panel"])
    assert res.exit_code == 0, res.output
    got = pd.read_csv(tmp_path / "out" / "mvmr_results.tsv", sep="\t")
    first = table.drop_duplicates("SNP")
    rho = mrjax.ld_matrix(first["SNP"], first["effect_allele.exposure"], data + "/demo_panel")
    want = mrjax.mvmr(table, methods=["mv_ivw"], correlation=rho)
    np.testing.assert_allclose(got[["b", "se"]], want[["b", "se"]], rtol=1e-9)
    independent = mrjax.mvmr(table, methods=["mv_ivw"])
    assert np.abs(got["b"].to_numpy() - independent["b"].to_numpy()).max() > 1e-6
    strength = pd.read_csv(tmp_path / "out" / "mvmr_strength.tsv", sep="\t")
    assert (strength["pcs"] > 0).all()  # the conditional F on the principal components
    gone = CliRunner().invoke(app, ["mvmr", str(tmp_path / "mv.tsv"), "--out", str(tmp_path / "o2"), "--ld-ref", str(tmp_path / "nopanel")])
    assert gone.exit_code == 2 and "nopanel.bed" in gone.output
