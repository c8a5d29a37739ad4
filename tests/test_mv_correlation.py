"""The analyses' LD matrices from a panel or a matrix file, aligned to the MV table's alleles
(mrjax.mv.correlation), checked against plain numpy and the R golden of the calcium set."""

from __future__ import annotations

import json
from pathlib import Path
import numpy as np
import pandas as pd
import pytest

import mrjax
from mrjax.mv.correlation import aligned_correlations, panel_correlations, read_correlation

PANEL = Path(mrjax.__file__).parent / "example_data" / "demo_panel"


@pytest.fixture(scope="module")
def mv_table(demo_mv_table):
    return demo_mv_table[2]


@pytest.fixture(scope="module")
def calcium(shared_data):
    raw = pd.read_csv(shared_data / "MendelianRandomization/calcium_fastgluc.csv")
    table = pd.DataFrame({"SNP": [f"snp{i}" for i in raw["snp_index"]], "exposure": "calcium",
                          "effect_allele.exposure": list("AGCTAG"), "other_allele.exposure": list("GATCCT"),
                          "beta.exposure": raw["calcium"], "se.exposure": raw["calciumse"], "outcome": "fastgluc",
                          "beta.outcome": raw["fastgluc"], "se.outcome": raw["fastglucse"]})
    golden = json.loads((shared_data / "MendelianRandomization/golden_methods_calcium_fastgluc.json").read_text())
    return table, shared_data / "MendelianRandomization/calcium_rho.csv", golden["mendelianrandomization"]


def test_panel_correlations_are_the_signed_dosage_correlations_of_each_analysis(mv_table):
    table = pd.concat([mv_table.assign(analysis="a"),
                       mv_table[mv_table["SNP"].isin(mv_table["SNP"].unique()[:3])].assign(analysis="b")])
    got = panel_correlations(table, PANEL)
    assert set(got) == {"a", "b"}
    first = mv_table.drop_duplicates("SNP")
    snps = first["SNP"].tolist()
    assert list(got["a"].index) == snps and list(got["b"].index) == snps[:3]
    want = mrjax.ld_matrix(snps, first["effect_allele.exposure"], PANEL)  # tested against bed-reader + numpy
    np.testing.assert_allclose(got["a"].to_numpy(), want.to_numpy(), rtol=0, atol=1e-14)
    np.testing.assert_allclose(got["b"].to_numpy(), want.to_numpy()[:3, :3], rtol=0, atol=1e-14)


def test_panel_correlations_name_the_snp_and_analysis_that_do_not_fit(mv_table):
    bad = mv_table.copy()
    bad.loc[bad["SNP"] == bad["SNP"].iloc[0], "effect_allele.exposure"] = "Z"
    with pytest.raises(ValueError, match=f"analysis 'case'.*{bad['SNP'].iloc[0]}.*do not match the panel"):
        panel_correlations(bad, PANEL)
    torn = mv_table.copy()
    torn.loc[torn.index[torn["exposure"] == "exp_02"][0], "effect_allele.exposure"] = "Z"
    with pytest.raises(ValueError, match="different alleles on its exposure rows"):
        panel_correlations(torn, PANEL)
    with pytest.raises(ValueError, match="needs the column 'effect_allele.exposure'"):
        panel_correlations(mv_table.drop(columns="effect_allele.exposure"), PANEL)


def test_an_unnamed_matrix_is_taken_in_table_order_and_gives_r_correlated_ivw(calcium):
    table, rho_file, golden = calcium
    corr = aligned_correlations(read_correlation(rho_file), table)
    rho = pd.read_csv(rho_file).to_numpy()
    np.testing.assert_array_equal(corr["fastgluc"].to_numpy(), rho)
    res = mrjax.mvmr(table, methods=["mv_ivw"], correlation=corr)
    entry = golden["ivw_default"]
    assert res["b"].iloc[0] == pytest.approx(entry["Estimate"], rel=1e-6)
    assert res["se"].iloc[0] == pytest.approx(entry["StdError"], rel=1e-6)
    two = pd.concat([table.assign(analysis="x"), table.assign(analysis="y")])
    with pytest.raises(ValueError, match="names none of the SNPs of analysis 'x'"):
        aligned_correlations(read_correlation(rho_file), two)


def test_named_and_allele_annotated_matrices_are_reordered_and_sign_aligned(calcium, tmp_path):
    table, rho_file, _ = calcium
    rho = pd.read_csv(rho_file).to_numpy()
    snps, ea, oa = table["SNP"].tolist(), table["effect_allele.exposure"].tolist(), table["other_allele.exposure"].tolist()
    order = [3, 0, 5, 1, 4, 2]
    # R's write.csv of a named matrix: a row-name column and the names in the header.
    named = pd.DataFrame(rho[np.ix_(order, order)], index=[snps[i] for i in order], columns=[snps[i] for i in order])
    named.to_csv(tmp_path / "named.csv")
    np.testing.assert_allclose(aligned_correlations(read_correlation(tmp_path / "named.csv"), table)["fastgluc"].to_numpy(),
                               rho, rtol=0, atol=1e-15)
    # TwoSampleMR ld_matrix(with_alleles = TRUE): SNP_A1_A2, the correlation of the A1 dosages.
    # SNPs 1 and 4 are given in their other allele: their rows and columns flip sign.
    flip = np.array([1.0, -1, 1, 1, -1, 1])
    names = [f"{s}_{o}_{e}" if f < 0 else f"{s}_{e}_{o}" for s, e, o, f in zip(snps, ea, oa, flip)]
    annotated = pd.DataFrame(rho * np.outer(flip, flip), index=names, columns=names)
    annotated.to_csv(tmp_path / "annotated.tsv", sep="\t")
    got = aligned_correlations(read_correlation(tmp_path / "annotated.tsv"), table)["fastgluc"]
    np.testing.assert_allclose(got.to_numpy(), rho, rtol=0, atol=1e-15)
    names[2] = f"{snps[2]}_T_G"
    wrong = pd.DataFrame(rho, index=names, columns=names)
    with pytest.raises(ValueError, match="alleles of SNP 'snp3'.*do not match"):
        aligned_correlations(wrong, table)
    with pytest.raises(ValueError, match="SNP 'snp3' of analysis 'fastgluc' is not in the matrix"):
        aligned_correlations(named.iloc[:5, :5], table)  # snp3 came last


def test_read_correlation_rejects_what_is_not_a_correlation_matrix(tmp_path):
    good = pd.DataFrame(np.eye(3), index=list("abc"), columns=list("abc"))
    good.iloc[0, 1] = 0.5
    good.to_csv(tmp_path / "asym.csv")
    with pytest.raises(ValueError, match="asym.csv.*symmetric with a unit diagonal"):
        read_correlation(tmp_path / "asym.csv")
    pd.DataFrame(np.eye(3)[:2], columns=list("abc")).to_csv(tmp_path / "rect.csv", index=False)
    with pytest.raises(ValueError, match="rect.csv.*2 x 3, not square"):
        read_correlation(tmp_path / "rect.csv")
    holed = pd.DataFrame(np.eye(2), index=list("ab"), columns=list("ab")).astype(object)
    holed.iloc[1, 0] = "x"
    holed.to_csv(tmp_path / "holed.csv")
    with pytest.raises(ValueError, match="holed.csv.*row 2, column 'a' is missing or not a number"):
        read_correlation(tmp_path / "holed.csv")
    pd.DataFrame(np.eye(2), index=list("ab"), columns=list("ba")).to_csv(tmp_path / "mixed.csv")
    with pytest.raises(ValueError, match="row names .* differ from the column names"):
        read_correlation(tmp_path / "mixed.csv")
    with pytest.raises(ValueError, match="not found"):
        read_correlation(tmp_path / "nothing.csv")
