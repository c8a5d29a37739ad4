"""Named layouts: one small file per tool, in the header its documentation gives (column order,
names, missing markers, OR vs beta), read into the normalised table.

Expected values are written out from the rows themselves (beta = ln OR, p = 10^-LOG10P, ...)
or computed with scipy, never by the reader."""

import math

import numpy as np
import pytest
from scipy.stats import norm

from mrjax.audit import audit_of, counts_of
from mrjax.gwas import read_gwas, read_gwas_catalog
from mrjax.gwas._audit import unlisted_of


def _write(path, rows, sep="\t"):
    path.write_text("\n".join(sep.join(str(v) for v in row) for row in rows) + "\n")
    return path


def _by_snp(table):
    return table.set_index("SNP")


# ---------------------------------------------------------------------------- GWAS Catalog


SSF_HEADER = ["chromosome", "base_pair_location", "effect_allele", "other_allele", "beta", "standard_error",
              "effect_allele_frequency", "p_value", "variant_id", "rsid", "ci_upper", "ci_lower", "n"]


def test_gwas_ssf_rsid_missing_ids_and_na(tmp_path):
    """GWAS-SSF 1.0: SNP = rsid (not variant_id), '#NA' is missing everywhere, two '#NA' rsids
    are two variants named chr:pos:other:effect."""
    path = _write(tmp_path / "GCST90000001.tsv", [
        SSF_HEADER,
        [1, 1026830, "A", "G", 0.0123, 0.0045, 0.34, 0.0063, "1_1026830_G_A", "rs2710888", "#NA", "#NA", 12345],
        [1, 1040026, "T", "C", -0.21, 0.03, "#NA", 2.6e-12, "1_1040026_C_T", "#NA", "#NA", "#NA", 12345],
        [2, 5000, "G", "A", 0.05, 0.01, 0.5, 5.7e-7, "2_5000_A_G", "#NA", "#NA", "#NA", "#NA"],
    ])
    table = read_gwas(path)
    assert table.attrs["format"] == "gwas_ssf"
    assert table["SNP"].tolist() == ["rs2710888", "1:1040026:C:T", "2:5000:A:G"]
    assert table["effect_allele"].tolist() == ["A", "T", "G"] and table["other_allele"].tolist() == ["G", "C", "A"]
    np.testing.assert_array_equal(table["beta"], [0.0123, -0.21, 0.05])
    np.testing.assert_array_equal(table["pval"], [0.0063, 2.6e-12, 5.7e-7])
    assert math.isnan(table["eaf"].iloc[1]) and table["eaf"].iloc[0] == 0.34
    assert table["n"].iloc[0] == 12345 and math.isnan(table["n"].iloc[2])
    assert len(audit_of(table)) == 0  # no "duplicate" between the two #NA rows
    catalog = read_gwas_catalog(path)  # the Catalog reader reads its current layout too
    assert catalog["SNP"].tolist() == table["SNP"].tolist()


def test_gwas_ssf_odds_ratio_and_neg_log10_p(tmp_path):
    header = ["chromosome", "base_pair_location", "effect_allele", "other_allele", "odds_ratio", "ci_lower",
              "ci_upper", "standard_error", "effect_allele_frequency", "neg_log_10_p_value", "rsid"]
    path = _write(tmp_path / "or.tsv", [
        header,
        [3, 100, "C", "T", 1.25, 1.1, 1.4, 0.06, 0.2, 350.5, "rs1"],
        [3, 200, "A", "G", 0.8, 0.7, 0.9, 0.05, 0.7, 2.0, "rs2"],
    ])
    table = read_gwas(path, p_max=1e-300)
    assert table["SNP"].tolist() == ["rs1"]
    assert table["beta"].iloc[0] == pytest.approx(math.log(1.25), rel=1e-15)
    assert table["mlog10p"].iloc[0] == 350.5 and table["pval"].iloc[0] == 0.0  # 10^-350.5 underflows
    both = read_gwas(path)
    np.testing.assert_allclose(both["pval"], [10 ** -350.5, 0.01], rtol=1e-12)
    assert unlisted_of(table)["n"].tolist() == [1]


def test_byte_order_mark_before_the_header(tmp_path):
    path = tmp_path / "bom.tsv"
    path.write_bytes("\ufeffSNP\tA1\tA2\tBETA\tSE\tP\nrs1\tA\tG\t0.1\t0.01\t0.5\n".encode("utf-8"))
    assert read_gwas(path)["SNP"].tolist() == ["rs1"]


def test_gwas_ssf_variant_id_only_where_it_is_an_rsid(tmp_path):
    """Catalog files without an rsid column (pre-2023 unharmonised: variant_id holds rsIDs)."""
    header = ["variant_id", "p_value", "chromosome", "base_pair_location", "effect_allele", "other_allele",
              "effect_allele_frequency", "beta", "standard_error"]
    path = _write(tmp_path / "old.tsv", [
        header, ["rs10", 0.01, 1, 10, "A", "C", 0.1, 0.2, 0.05], ["1_20_C_A", 0.02, 1, 20, "A", "C", 0.1, 0.2, 0.05],
    ])
    assert read_gwas(path)["SNP"].tolist() == ["rs10", "1:20:C:A"]


def test_harmonised_ssf_hm_code_15_is_dropped(tmp_path):
    header = SSF_HEADER[:10] + ["hm_coordinate_conversion", "hm_code"]
    path = _write(tmp_path / "h.tsv", [
        header,
        [1, 10, "A", "G", 0.1, 0.01, 0.3, 1e-9, "1_10_G_A", "rs1", "lo", 10],
        [1, 20, "A", "G", 0.1, 0.01, 0.3, 1e-9, "1_20_G_A", "rs2", "lo", 15],
    ])
    table = read_gwas(path)
    assert table["SNP"].tolist() == ["rs1"]
    assert audit_of(table)["detail"].str.contains("hm_code 15").all()
    assert read_gwas(path, use_harmonised=False)["SNP"].tolist() == ["rs1", "rs2"]


# ---------------------------------------------------------------------------- association tools


def test_regenie(tmp_path):
    """REGENIE step 2 (space-separated): effect allele ALLELE1, GENPOS = bp, p = 10^-LOG10P,
    only TEST = ADD rows (the DOM row is counted as another test)."""
    header = "CHROM GENPOS ID ALLELE0 ALLELE1 A1FREQ INFO N TEST BETA SE CHISQ LOG10P EXTRA".split()
    path = _write(tmp_path / "step2_y1.regenie", [
        header,
        [1, 79033, "1:79033:A:G", "A", "G", 0.0051, 1, 23203, "ADD", 0.0906, 0.1447, 0.39, 0.27, "NA"],
        [1, 79033, "1:79033:A:G", "A", "G", 0.0051, 1, 23203, "DOM", 0.1, 0.15, 0.44, 0.29, "NA"],
        [1, 1000, "rs5", "C", "T", 0.3, 1, 23203, "ADD", -0.2, 0.02, 100, 23.5, "NA"],
    ], sep=" ")
    table = _by_snp(read_gwas(path))
    assert table.attrs["format"] == "regenie"
    assert table.index.tolist() == ["1:79033:A:G", "rs5"]
    assert table["effect_allele"].tolist() == ["G", "T"] and table["other_allele"].tolist() == ["A", "C"]
    assert table["pos"].tolist() == [79033, 1000]
    np.testing.assert_allclose(table["pval"], [10 ** -0.27, 10 ** -23.5], rtol=1e-12)
    assert table["n"].tolist() == [23203, 23203] and table["eaf"].tolist() == [0.0051, 0.3]
    counts = counts_of(table)
    assert counts[["n_in", "n_kept", "n_dropped"]].values.tolist() == [[3, 2, 1]]
    assert unlisted_of(table)["reason"].tolist() == ["other test (TEST is not ADD)"]
    filtered = read_gwas(path, p_max=1e-8)
    assert filtered["SNP"].tolist() == ["rs5"]
    assert dict(zip(unlisted_of(filtered)["reason"], unlisted_of(filtered)["n"])) == {
        "not significant": 1, "other test (TEST is not ADD)": 1}


def test_bolt_lmm(tmp_path):
    """BOLT-LMM: ALLELE1 is the effect allele, BP the position (GENPOS is in cM), p = P_BOLT_LMM."""
    header = "SNP CHR BP GENPOS ALLELE1 ALLELE0 A1FREQ F_MISS BETA SE P_BOLT_LMM_INF P_BOLT_LMM".split()
    rows = [header, ["rs58108140", 1, 10583, 0.000, "A", "G", 0.109, 0.01, 0.0025, 0.0049, 0.6, 0.61],
            ["rs180734498", 1, 13302, 0.0002, "T", "C", 0.89, 0.0, -0.01, 0.002, 4.1e-7, 3.9e-7]]
    table = read_gwas(_write(tmp_path / "bolt.stats", rows))
    assert table.attrs["format"] == "bolt_lmm"
    assert table["pos"].tolist() == [10583, 13302]
    assert table["effect_allele"].tolist() == ["A", "T"] and table["other_allele"].tolist() == ["G", "C"]
    assert table["pval"].tolist() == [0.61, 3.9e-7]
    inf_only = [header[:-1]] + [row[:-1] for row in rows[1:]]
    assert read_gwas(_write(tmp_path / "inf.stats", inf_only))["pval"].tolist() == [0.6, 4.1e-7]


def test_saige(tmp_path):
    """SAIGE step 2: BETA is Allele2's effect; n = N_case + N_ctrl."""
    header = ("CHR POS MarkerID Allele1 Allele2 AC_Allele2 AF_Allele2 MissingRate BETA SE Tstat var p.value "
              "p.value.NA Is.SPA AF_case AF_ctrl N_case N_ctrl").split()
    path = _write(tmp_path / "saige.txt", [
        header, [1, 13273, "1:13273:G:C", "G", "C", 3, 0.15, 0, 0.35, 0.1, 1.2, 4.3, 4.5e-4, 4.5e-4, "FALSE",
                 0.16, 0.14, 1200, 3800],
    ], sep=" ")
    table = read_gwas(path)
    assert table.attrs["format"] == "saige"
    assert table["effect_allele"].tolist() == ["C"] and table["other_allele"].tolist() == ["G"]
    assert table["eaf"].tolist() == [0.15] and table["n"].tolist() == [5000.0]
    assert table["pval"].tolist() == [4.5e-4] and table["SNP"].tolist() == ["1:13273:G:C"]


PLINK2_LINEAR = "#CHROM POS ID REF ALT PROVISIONAL_REF? A1 OMITTED A1_FREQ TEST OBS_CT BETA SE T_STAT P ERRCODE"


def test_plink2_linear_a1_is_the_effect_allele(tmp_path):
    path = _write(tmp_path / "out.y.glm.linear", [
        PLINK2_LINEAR.split(),
        [1, 100, "rs1", "A", "G", "N", "G", "A", 0.2, "ADD", 1000, 0.3, 0.05, 6, 1e-9, "."],
        [1, 100, "rs1", "A", "G", "N", "G", "A", 0.2, "AGE", 1000, 0.01, 0.001, 10, 1e-20, "."],
        [1, 200, ".", "C", "T", "N", "C", "T", 0.6, "ADD", 990, -0.1, 0.05, -2, 0.04, "."],
    ])
    table = read_gwas(path)
    assert table.attrs["format"] == "plink2"
    assert table["SNP"].tolist() == ["rs1", "1:200:T:C"]  # ID '.' -> chr:pos:other:effect
    assert table["effect_allele"].tolist() == ["G", "C"] and table["other_allele"].tolist() == ["A", "T"]
    assert table["beta"].tolist() == [0.3, -0.1] and table["n"].tolist() == [1000, 990]
    assert unlisted_of(table)["reason"].tolist() == ["other test (TEST is not ADD)"]


def test_plink2_logistic_odds_ratio_and_no_omitted_column(tmp_path):
    """Older PLINK 2 (no OMITTED column): the other allele is whichever of REF/ALT is not A1."""
    header = "#CHROM POS ID REF ALT A1 FIRTH? TEST OBS_CT OR LOG(OR)_SE Z_STAT P".split()
    path = _write(tmp_path / "out.y.glm.logistic.hybrid", [
        header,
        [2, 10, "rs7", "A", "G", "G", "N", "ADD", 5000, 1.3, 0.04, 6.5, 7e-11],
        [2, 20, "rs8", "C", "T", "C", "Y", "ADD", 5000, 0.9, 0.05, -2.1, 0.035],
    ])
    table = read_gwas(path)
    assert table["other_allele"].tolist() == ["A", "T"]
    np.testing.assert_allclose(table["beta"], [math.log(1.3), math.log(0.9)], rtol=1e-15)
    assert table["se"].tolist() == [0.04, 0.05]


def test_metal_stderr_scheme(tmp_path):
    header = ("MarkerName Allele1 Allele2 Freq1 FreqSE MinFreq MaxFreq Effect StdErr P-value Direction HetISq "
              "HetChiSq HetDf HetPVal").split()
    path = _write(tmp_path / "METAANALYSIS1.TBL", [
        header, ["rs10", "a", "g", 0.31, 0.01, 0.29, 0.33, 0.05, 0.01, 5.7e-7, "++", 0, 0.5, 1, 0.48],
    ])
    table = read_gwas(path)
    assert table.attrs["format"] == "metal"
    assert table["effect_allele"].tolist() == ["A"] and table["other_allele"].tolist() == ["G"]
    assert table["eaf"].tolist() == [0.31] and table["beta"].tolist() == [0.05] and table["se"].tolist() == [0.01]


def test_metal_sample_size_scheme_derives_effects(tmp_path):
    """Zscore + Weight + Freq1: beta = z / sqrt(2f(1-f)(n+z^2)), se = 1 / sqrt(...)."""
    header = "MarkerName Allele1 Allele2 Freq1 FreqSE Weight Zscore P-value Direction".split()
    path = _write(tmp_path / "z.TBL", [header, ["rs1", "t", "c", 0.2, 0.01, 50000, 5.5, 3.8e-8, "++"]])
    table = read_gwas(path)
    scale = math.sqrt(2 * 0.2 * 0.8 * (50000 + 5.5 ** 2))
    assert table["beta"].iloc[0] == pytest.approx(5.5 / scale, rel=1e-12)
    assert table["se"].iloc[0] == pytest.approx(1 / scale, rel=1e-12)
    assert table["pval"].tolist() == [3.8e-8] and table["n"].tolist() == [50000]


def test_gcta_cojo_ma(tmp_path):
    path = _write(tmp_path / "test.ma", [
        "SNP A1 A2 freq b se p N".split(), ["rs1001", "A", "G", 0.8493, 0.0024, 0.0055, 0.6653, 129850],
    ], sep=" ")
    table = read_gwas(path)
    assert table.attrs["format"] == "gcta_cojo"
    assert table[["effect_allele", "other_allele"]].values.tolist() == [["A", "G"]]
    assert table[["eaf", "beta", "se", "pval", "n"]].values.tolist() == [[0.8493, 0.0024, 0.0055, 0.6653, 129850]]


def test_ldsc_sumstats_refused_unless_a_frequency_is_given(tmp_path):
    path = _write(tmp_path / "trait.sumstats", ["SNP A1 A2 Z N".split(), ["rs1", "A", "G", 4.2, 90000]])
    with pytest.raises(ValueError, match=r"Z-scores without effects.*allele frequency.*\['SNP', 'A1', 'A2', 'Z', 'N'\]"):
        read_gwas(path)
    with_frq = _write(tmp_path / "frq.sumstats", ["SNP A1 A2 Z N FRQ".split(), ["rs1", "A", "G", -4.2, 90000, 0.3]])
    table = read_gwas(with_frq)
    scale = math.sqrt(2 * 0.3 * 0.7 * (90000 + 4.2 ** 2))
    assert table["beta"].iloc[0] == pytest.approx(-4.2 / scale, rel=1e-12)
    assert table["se"].iloc[0] == pytest.approx(1 / scale, rel=1e-12)
    assert table["pval"].iloc[0] == pytest.approx(2 * norm.sf(4.2), rel=1e-12)  # from z: the file has no p
    assert math.isnan(table["eaf"].iloc[0])  # FRQ of a .sumstats is a MAF, not A1's frequency
    with_beta = _write(tmp_path / "b.sumstats", ["SNP A1 A2 Z N BETA SE P".split(), ["rs1", "A", "G", 4.2, 90000, 0.1, 0.02, 3e-5]])
    assert read_gwas(with_beta)[["beta", "se", "pval"]].values.tolist() == [[0.1, 0.02, 3e-5]]  # its own effects win


# ---------------------------------------------------------------------------- FinnGen, VCF


def test_finngen_r3_without_mlogp_and_r12_with_several_rsids(tmp_path):
    r3 = _write(tmp_path / "finngen_R3_X.gz.tsv", [
        "#chrom pos ref alt rsids nearest_genes pval beta sebeta maf maf_cases maf_controls".split(),
        [1, 100, "A", "G", "rs1", "GENE1", 1e-10, 0.2, 0.03, 0.7, 0.71, 0.69],
    ])
    table = read_gwas(r3)
    assert table.attrs["format"] == "finngen"
    assert table["effect_allele"].tolist() == ["G"] and table["pval"].tolist() == [1e-10]
    assert math.isnan(table["eaf"].iloc[0])  # 'maf' is not read as the alt allele's frequency
    r12 = _write(tmp_path / "finngen_R12_Y", [
        "#chrom pos ref alt rsids nearest_genes pval mlogp beta sebeta af_alt af_alt_cases af_alt_controls".split(),
        [1, 100, "A", "G", "rs1,rs999", "GENE1", 0, 400.2, 0.2, 0.003, 0.7, 0.71, 0.69],
        [1, 200, "C", "T", "", "GENE1", 0.5, 0.3, 0.2, 0.1, 0.7, 0.71, 0.69],
    ])
    table = read_gwas(r12)
    assert table["SNP"].tolist() == ["rs1", "1:200:C:T"]
    assert table["mlog10p"].iloc[0] == 400.2 and table["eaf"].iloc[0] == 0.7


def test_gwas_vcf_sample_size_from_the_header(tmp_path):
    text = (
        "##fileformat=VCFv4.2\n"
        "##FORMAT=<ID=ES,Number=A,Type=Float,Description=\"Effect size estimate relative to the alternative allele\">\n"
        "##SAMPLE=<ID=ieu-b-1,TotalVariants=2,VariantsNotRead=0,HarmonisedVariants=2,TotalControls=300000,"
        "TotalCases=20000,StudyType=CaseControl>\n"
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tieu-b-1\n"
        "1\t100\trs1\tA\tG\t.\tPASS\tAF=0.2\tES:SE:LP:AF:ID\t0.1:0.01:9.5:0.2:rs1\n"
        "1\t200\trs2\tC\tT\t.\tPASS\tAF=0.4\tES:SE:LP:AF:SS:ID\t0.1:0.01:1.2:0.4:1000:rs2\n"
    )
    (tmp_path / "ieu-b-1.vcf").write_text(text)
    table = read_gwas(tmp_path / "ieu-b-1.vcf")
    assert table["n"].tolist() == [320000.0, 1000.0]  # header totals where a row has no SS


@pytest.mark.parametrize("name", ["regenie", "bolt_lmm", "gcta_cojo"])
def test_layouts_are_selectable_by_name(tmp_path, name):
    rows = {
        "regenie": ("CHROM GENPOS ID ALLELE0 ALLELE1 A1FREQ N TEST BETA SE CHISQ LOG10P", "1 5 rs1 A G 0.1 10 ADD 0.1 0.01 100 3"),
        "bolt_lmm": ("SNP CHR BP GENPOS ALLELE1 ALLELE0 A1FREQ F_MISS BETA SE P_BOLT_LMM", "rs1 1 5 0 G A 0.1 0 0.1 0.01 0.001"),
        "gcta_cojo": ("SNP A1 A2 freq b se p N", "rs1 G A 0.1 0.1 0.01 0.001 10"),
    }[name]
    path = tmp_path / "x.txt"
    path.write_text("\n".join(rows) + "\n")
    table = read_gwas(path, format=name)
    assert table.attrs["format"] == name
    assert table[["SNP", "effect_allele", "other_allele"]].values.tolist() == [["rs1", "G", "A"]]
    with pytest.raises(ValueError, match="missing required column"):
        read_gwas(path, format="saige")
