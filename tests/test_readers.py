"""GWAS readers: the four shipped formats against gwas/truth.json, parquet, synonyms, column
mapping, compression, p-value precision, streaming, and every bad-input path."""

import gzip
import json
import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from mrjax.audit import audit_of, counts_of
from mrjax.gwas import read_finngen, read_gwas, read_gwas_catalog, read_vcf
from mrjax.gwas._audit import unlisted_of
from mrjax.gwas.readers import OUTPUT_COLUMNS

FILES = {
    "exposure_a": "exposure_a.h.tsv.gz",
    "exposure_b": "exposure_b.vcf.gz",
    "exposure_c": "exposure_c.tsv",
    "outcome": "outcome_finngen.gz",
}
FORMATS = {"exposure_a": "gwas_catalog", "exposure_b": "vcf", "exposure_c": "plain", "outcome": "finngen"}
COMPLEMENT = {"A": "T", "T": "A", "C": "G", "G": "C"}


@pytest.fixture(scope="module")
def truth(shared_data):
    return json.loads((shared_data / "gwas" / "truth.json").read_text())


@pytest.fixture(scope="module")
def tables(shared_data):
    return {name: read_gwas(shared_data / "gwas" / file, trait=name) for name, file in FILES.items()}


def _balanced(table):
    counts = counts_of(table)
    assert (counts["n_in"] == counts["n_kept"] + counts["n_dropped"]).all()
    return counts


# ---------------------------------------------------------------------------- the four formats


@pytest.mark.parametrize("name", list(FILES))
def test_each_file_reads_into_the_normalised_table(tables, truth, name):
    table = tables[name]
    info = truth["files"][name]
    assert list(table.columns) == OUTPUT_COLUMNS
    assert table.attrs["format"] == FORMATS[name]
    counts = _balanced(table)
    assert counts["n_in"].tolist() == [info["rows"]]
    assert counts["n_kept"].tolist() == [len(table)]
    assert table["trait"].unique().tolist() == [name]
    assert not table["SNP"].duplicated().any()
    assert (table["se"] > 0).all() and table["pval"].between(0, 1).all()
    assert np.allclose(table["mlog10p"], -np.log10(table["pval"]), rtol=1e-3, atol=1e-4)
    assert table["effect_allele"].str.fullmatch("[ACGT]+").all()


@pytest.mark.parametrize("name", ["exposure_a", "exposure_b", "outcome"])
def test_effect_allele_is_alt_for_every_causal_variant(tables, truth, name):
    """hm_effect_allele / VCF ALT / FinnGen alt = the truth's effect allele, with its position."""
    table = tables[name].set_index("SNP")
    causal = pd.DataFrame(truth["traits"][name]["causal_variants"]).set_index("rsid")
    rows = table.loc[causal.index]
    assert (rows["effect_allele"] == causal["effect_allele"]).all()
    assert (rows["other_allele"] == causal["other_allele"]).all()
    assert (rows["chr"] == causal["chrom"]).all()
    assert (rows["pos"].astype(int) == causal["pos"]).all()


@pytest.mark.parametrize("name", list(FILES))
def test_estimated_effects_follow_the_true_effects(tables, truth, name):
    """Orientation check on the numbers: true per-ALT effects vs estimates turned to ALT."""
    table = tables[name].set_index("SNP")
    causal = pd.DataFrame(truth["traits"][name]["causal_variants"]).set_index("rsid")
    rows = table.loc[causal.index]
    reverse = set(truth["files"][name].get("reverse_strand_rows", []))
    alt = [
        a if s not in reverse else COMPLEMENT[a] for a, s in zip(rows["effect_allele"], rows.index)
    ]
    sign = np.where(np.array(alt) == causal["effect_allele"].to_numpy(), 1.0, -1.0)
    strong = np.abs(causal["z_expected_no_ld"].to_numpy()) > 5
    estimated = sign * rows["beta"].to_numpy()
    assert np.corrcoef(estimated, causal["beta"])[0, 1] > 0.6
    assert np.mean(np.sign(estimated[strong]) == np.sign(causal["beta"].to_numpy()[strong])) >= 0.9


def test_plain_tsv_keeps_a1_and_its_quirks(tables, truth):
    """exposure_c: A1 is the effect allele as written (REF or ALT, some on the reverse strand)."""
    table = tables["exposure_c"].set_index("SNP")
    info = truth["files"]["exposure_c"]
    assert table["eaf"].isna().sum() == info["eaf_NA_rows"]
    causal = pd.DataFrame(truth["traits"]["exposure_c"]["causal_variants"]).set_index("rsid")
    rows = table.loc[causal.index]
    as_written = {frozenset(p) for p in zip(rows["effect_allele"], rows["other_allele"])}
    assert as_written == {frozenset(p) for p in zip(causal["effect_allele"], causal["other_allele"])} or all(
        {a, b} == {c, d} or {COMPLEMENT[a], COMPLEMENT[b]} == {c, d}
        for a, b, c, d in zip(rows["effect_allele"], rows["other_allele"], causal["effect_allele"], causal["other_allele"])
    )
    a1_is_alt = rows["effect_allele"] == causal["effect_allele"]
    assert 0 < a1_is_alt.sum() < len(rows)  # both codings occur, and are kept as written


def test_gwas_catalog_hm_code_15_rows_are_audited(shared_data, tables, truth):
    table = tables["exposure_a"]
    drops = audit_of(table)
    assert len(drops) == truth["files"]["exposure_a"]["hm_code_15_rows"]
    assert set(drops["reason"]) == {"bad value"}
    assert drops["detail"].str.contains("hm_code 15").all()
    raw = pd.read_csv(shared_data / "gwas" / FILES["exposure_a"], sep="\t")
    assert set(drops["SNP"]) == set(raw.loc[raw["hm_code"] == 15, "variant_id"])


def test_gwas_catalog_original_columns_on_request(shared_data):
    path = shared_data / "gwas" / FILES["exposure_a"]
    original = read_gwas_catalog(path, use_harmonised=False).set_index("SNP")
    raw = pd.read_csv(path, sep="\t").set_index("variant_id")
    assert len(original) == len(raw) and len(audit_of(original)) == 0
    assert (original["effect_allele"] == raw.loc[original.index, "effect_allele"]).all()
    np.testing.assert_array_equal(original["beta"], raw.loc[original.index, "beta"])
    harmonised = read_gwas_catalog(path).set_index("SNP")
    flipped = raw.index[raw["hm_code"].isin([11, 6])]
    np.testing.assert_array_equal(harmonised.loc[flipped, "beta"], -original.loc[flipped, "beta"])


def test_vcf_p_is_ten_to_minus_lp(shared_data, tables):
    rows = []
    with gzip.open(shared_data / "gwas" / FILES["exposure_b"], "rt") as handle:
        for line in handle:
            if not line.startswith("#"):
                fields = line.rstrip("\n").split("\t")
                rows.append((fields[2], fields[8], fields[9]))
            if len(rows) == 500:
                break
    table = tables["exposure_b"].set_index("SNP")
    for snp, fmt, sample in rows:
        values = dict(zip(fmt.split(":"), sample.split(":")))
        row = table.loc[snp]
        assert row["beta"] == float(values["ES"]) and row["se"] == float(values["SE"])
        assert row["mlog10p"] == float(values["LP"])
        assert math.isclose(row["pval"], 10 ** -float(values["LP"]), rel_tol=1e-12)
        assert row["eaf"] == float(values["AF"]) and row["n"] == float(values["SS"])


def test_finngen_rsids_first_id_and_missing_ids(shared_data, tables, truth):
    table = tables["outcome"]
    info = truth["files"]["outcome"]
    assert set(info["multi_rsid_rows"]) <= set(table["SNP"])
    assert not table["SNP"].str.contains(",").any()
    made = table[table["SNP"].str.match(r"^\d+:\d+:[ACGT]+:[ACGT]+$")]
    assert len(made) == info["empty_rsids_rows"]
    dropped = read_finngen(shared_data / "gwas" / FILES["outcome"], missing_id="drop")
    assert dropped["trait"].iloc[0] == "outcome_finngen"  # the file name without its suffixes
    assert len(dropped) == info["rows"] - info["empty_rsids_rows"]
    assert (audit_of(dropped)["detail"].str.startswith("no SNP id")).sum() == info["empty_rsids_rows"]


def test_formats_are_detected_not_named(tmp_path, shared_data, tables):
    """Renamed files (no telling suffix) read the same: detection looks at the bytes."""
    for name, file in FILES.items():
        copy = tmp_path / f"{name}.data"
        copy.write_bytes((shared_data / "gwas" / file).read_bytes())
        again = read_gwas(copy, trait=name)
        pd.testing.assert_frame_equal(again, tables[name])


def test_small_blocks_stream_to_the_same_table(shared_data, tables):
    for name in ("exposure_b", "outcome"):
        streamed = read_gwas(shared_data / "gwas" / FILES[name], trait=name, block_size=1 << 18)
        pd.testing.assert_frame_equal(streamed, tables[name])


def test_p_max_filters_while_reading(shared_data, tables):
    for name, file in FILES.items():
        full = tables[name]
        part = read_gwas(shared_data / "gwas" / file, p_max=1e-5, trait=name)
        expected = full[full["pval"] <= 1e-5].reset_index(drop=True)
        pd.testing.assert_frame_equal(part, expected)
        counts = _balanced(part)
        not_significant = unlisted_of(part)["n"].sum()
        assert not_significant >= (full["pval"] > 1e-5).sum()  # + bad rows that were not significant
        assert not_significant + len(part) + len(audit_of(part)) == counts["n_in"].iloc[0]
        assert "not significant" not in set(audit_of(part)["reason"])
        assert counts["n_in"].iloc[0] == counts_of(full)["n_in"].iloc[0]


# ---------------------------------------------------------------------------- parquet


def test_long_multi_trait_parquet(shared_data):
    path = shared_data / "scan" / "exposures.parquet"
    table = read_gwas(path, p_max=1e-5)
    raw = pq.read_table(path, columns=["exposure", "SNP", "pval"]).to_pandas()
    expected = raw[raw["pval"] <= 1e-5]
    assert len(table) == len(expected)
    assert table.groupby("trait").size().to_dict() == expected.groupby("exposure", observed=True).size().to_dict()
    counts = _balanced(table)
    assert counts.set_index("trait")["n_in"].to_dict() == raw.groupby("exposure", observed=True).size().to_dict()
    one = read_gwas(path, p_max=1e-5, trait=["trait_007", "trait_014"])
    assert set(one["trait"]) == {"trait_007", "trait_014"}
    assert len(one) == expected["exposure"].isin(["trait_007", "trait_014"]).sum()
    assert one["beta"].dtype == np.float64 and one["n"].notna().all()


def test_parquet_and_text_agree(tmp_path, tables):
    table = tables["exposure_c"].head(300)
    frame = table.rename(columns={"SNP": "rsid", "effect_allele": "A1", "other_allele": "A2", "pval": "P"}).drop(
        columns=["mlog10p", "trait", "chr", "pos"]
    )
    frame.to_parquet(tmp_path / "c.parquet")
    frame.to_csv(tmp_path / "c.csv", index=False)
    from_parquet = read_gwas(tmp_path / "c.parquet", trait="c")
    from_csv = read_gwas(tmp_path / "c.csv", trait="c")
    pd.testing.assert_frame_equal(from_parquet.drop(columns=["chr"]), from_csv.drop(columns=["chr"]))
    np.testing.assert_array_equal(from_parquet["beta"], table["beta"])


# ---------------------------------------------------------------------------- synonyms, mapping, gz


def _write(path, text, compress=False):
    data = text.encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


SYNONYM_CSV = """rsid,Allele1,Allele2,b,StdErr,p.value,FRQ,samplesize
rs1,a,g,0.1,0.01,1e-20,0.3,1000
rs2,C,T,-0.2,0.05,0.003,0.7,1000
"""


def test_csv_synonyms(tmp_path):
    table = read_gwas(_write(tmp_path / "s.csv", SYNONYM_CSV))
    assert table["SNP"].tolist() == ["rs1", "rs2"]
    assert table["effect_allele"].tolist() == ["A", "C"] and table["other_allele"].tolist() == ["G", "T"]
    np.testing.assert_array_equal(table["beta"], [0.1, -0.2])
    np.testing.assert_array_equal(table["eaf"], [0.3, 0.7])
    np.testing.assert_array_equal(table["n"], [1000, 1000])
    assert table["trait"].tolist() == ["s", "s"]


def test_odds_ratio_becomes_log_odds(tmp_path):
    text = "SNP\tA1\tA2\tOR\tSE\tP\nrs1\tA\tG\t1.5\t0.1\t0.01\nrs2\tA\tG\t0.8\t0.1\t0.01\n"
    table = read_gwas(_write(tmp_path / "or.tsv", text))
    np.testing.assert_allclose(table["beta"], [math.log(1.5), math.log(0.8)], rtol=1e-15)


def test_column_mapping_overrides_detection(tmp_path):
    text = "MarkerName\tA1\tA2\tEffect\tWeird_SE\tPv\tBETA\nrs1\tA\tG\t0.5\t0.1\t1e-3\t9\n"
    path = _write(tmp_path / "m.tsv", text)
    with pytest.raises(ValueError, match="missing required column"):
        read_gwas(path)
    table = read_gwas(path, columns={"SNP": "MarkerName", "beta": "Effect", "se": "weird_se", "pval": "Pv"})
    assert table["beta"].tolist() == [0.5] and table["se"].tolist() == [0.1] and table["SNP"].tolist() == ["rs1"]
    inverse = read_gwas(path, columns={"MarkerName": "SNP", "Effect": "beta", "Weird_SE": "se", "Pv": "pval"})
    pd.testing.assert_frame_equal(inverse, table)
    with pytest.raises(ValueError, match="'Nope'.*not in the header"):
        read_gwas(path, columns={"SNP": "Nope"})


def test_gzip_is_transparent(tmp_path):
    plain = read_gwas(_write(tmp_path / "s.csv", SYNONYM_CSV))
    packed = read_gwas(_write(tmp_path / "s.csv.gz", SYNONYM_CSV, compress=True))
    pd.testing.assert_frame_equal(plain, packed)


def test_p_zero_and_underflow_keep_their_precision(tmp_path):
    text = "SNP\tA1\tA2\tBETA\tSE\tP\nrs1\tA\tG\t0.5\t0.01\t1.5e-400\nrs2\tA\tG\t0.5\t0.01\t0\nrs3\tA\tG\t0.1\t0.1\t0.5\n"
    table = read_gwas(_write(tmp_path / "p.tsv", text), p_max=1e-8)
    assert table["SNP"].tolist() == ["rs1", "rs2"]
    assert table["pval"].tolist() == [0.0, 0.0]
    assert table["mlog10p"].iloc[0] == pytest.approx(400 - math.log10(1.5), rel=1e-12)
    assert table["mlog10p"].iloc[1] == math.inf


# ---------------------------------------------------------------------------- bad input


GOOD = "SNP\tA1\tA2\tBETA\tSE\tP\tEAF\n"


def test_row_level_problems_are_audited(tmp_path):
    text = GOOD + (
        "rs1\tA\tG\t0.1\t0.01\t0.01\t0.2\n"
        "rs2\tA\tG\t0.1\t0\t0.01\t0.2\n"          # se = 0
        "rs3\tA\tG\tNA\t0.01\t0.01\t0.2\n"        # missing beta
        "rs4\tA\tG\t0.1\t-1\t0.01\t0.2\n"         # se < 0
        "rs5\tA\tG\t0.1\t0.01\t1.5\t0.2\n"        # p > 1
        "rs6\tA\tG\t0.1\t0.01\t0.01\t1.2\n"       # eaf > 1
        "rs1\tA\tG\t0.3\t0.01\t0.01\t0.2\n"       # duplicate of rs1
        "rs7\t\tG\t0.1\t0.01\t0.01\t0.2\n"        # no effect allele
        "rs8\tA\tG\t0.1\t0.01\tNA\t0.2\n"         # no p
        "rs9\tA\tG\t0.1\t0.01\t0.01\tNA\n"        # missing EAF is fine
    )
    table = read_gwas(_write(tmp_path / "bad.tsv", text))
    assert table["SNP"].tolist() == ["rs1", "rs9"]
    assert table["beta"].tolist() == [0.1, 0.1]
    drops = audit_of(table).set_index("SNP")
    assert set(drops.index) == {"rs1", "rs2", "rs3", "rs4", "rs5", "rs6", "rs7", "rs8"}
    assert drops.loc["rs1", "reason"] == "duplicate" and "data row 6 repeats data row 0" in drops.loc["rs1", "detail"]
    assert drops.loc["rs2", "detail"].startswith("se <= 0") and drops.loc["rs4", "detail"].startswith("se <= 0")
    assert drops.loc["rs3", "detail"].startswith("missing or non-finite beta")
    assert drops.loc["rs5", "detail"].startswith("p-value outside")
    assert drops.loc["rs6", "detail"].startswith("eaf outside")
    assert drops.loc["rs7", "detail"].startswith("missing effect allele")
    assert drops.loc["rs8", "detail"].startswith("missing p-value")
    counts = _balanced(table)
    assert counts[["n_in", "n_kept", "n_dropped"]].values.tolist() == [[10, 2, 8]]


def test_non_numeric_value_names_column_and_row(tmp_path):
    text = GOOD + "rs1\tA\tG\t0.1\t0.01\t0.01\t0.2\nrs2\tA\tG\tabc\t0.01\t0.01\t0.2\n"
    with pytest.raises(ValueError, match=r"column 'BETA' must be numeric.*data row 1 \(line 3\): 'abc'"):
        read_gwas(_write(tmp_path / "nn.tsv", text))
    text = GOOD + "rs1\tA\tG\t0.1\t0.01\tsmall\t0.2\n"
    with pytest.raises(ValueError, match=r"P must be numeric.*data row 0: 'small'"):
        read_gwas(_write(tmp_path / "np.tsv", text))


def test_file_level_problems_raise(tmp_path, shared_data):
    with pytest.raises(ValueError, match="no such file"):
        read_gwas(tmp_path / "absent.tsv")
    with pytest.raises(ValueError, match="is a directory"):
        read_gwas(tmp_path)
    with pytest.raises(ValueError, match="empty"):
        read_gwas(_write(tmp_path / "empty.tsv", ""))
    with pytest.raises(ValueError, match="no data rows"):
        read_gwas(_write(tmp_path / "header.tsv", GOOD))
    with pytest.raises(ValueError, match="unknown format 'bed'"):
        read_gwas(_write(tmp_path / "x.tsv", GOOD), format="bed")
    with pytest.raises(ValueError, match=r"missing required column\(s\) se"):
        read_gwas(_write(tmp_path / "nose.tsv", "SNP\tA1\tBETA\tP\nrs1\tA\t0.1\t0.2\n"))
    with pytest.raises(ValueError, match="line 2 has 5 fields where the header has 7"):
        read_gwas(_write(tmp_path / "ragged.tsv", GOOD + "rs1\tA\tG\t0.1\t0.01\n"))
    with pytest.raises(ValueError, match="no variant left.*none has p <= 1e-30"):
        read_gwas(_write(tmp_path / "weak.tsv", GOOD + "rs1\tA\tG\t0.1\t0.01\t0.01\t0.2\n"), p_max=1e-30)
    with pytest.raises(ValueError, match="not a readable parquet"):
        read_gwas(_write(tmp_path / "fake.parquet", "PAR1 but not really"), format="parquet")


def test_truncated_and_corrupt_gzip_raise(tmp_path, shared_data):
    data = (shared_data / "gwas" / FILES["outcome"]).read_bytes()
    truncated = tmp_path / "truncated.gz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.gz.*(corrupt|truncated)"):
        read_gwas(truncated)
    corrupt = tmp_path / "corrupt.gz"
    corrupt.write_bytes(data[:4000] + bytes(range(256)) * 40 + data[14240:])
    with pytest.raises(ValueError, match="corrupt.gz"):
        read_gwas(corrupt)


def test_missing_column_in_parquet_and_unknown_trait(tmp_path):
    pd.DataFrame({"SNP": ["rs1"], "beta": [0.1], "pval": [0.1]}).to_parquet(tmp_path / "x.parquet")
    with pytest.raises(ValueError, match=r"x.parquet: missing required column\(s\) effect_allele, se"):
        read_gwas(tmp_path / "x.parquet")
    long = pd.DataFrame({"SNP": ["rs1", "rs1"], "A1": ["A", "A"], "beta": [0.1, 0.2], "se": [0.1, 0.1],
                         "p": [0.1, 0.1], "exposure": ["t1", "t2"]})
    long.to_parquet(tmp_path / "long.parquet")
    assert read_gwas(tmp_path / "long.parquet")["trait"].tolist() == ["t1", "t2"]
    with pytest.raises(ValueError, match=r"trait\(s\) \['t3'\] not found"):
        read_gwas(tmp_path / "long.parquet", trait=["t1", "t3"])


# ---------------------------------------------------------------------------- many files, sample size


def test_a_list_of_files_reads_into_one_table(shared_data, tables):
    folder = shared_data / "gwas"
    both = read_gwas([folder / FILES["exposure_b"], folder / FILES["exposure_c"]], trait=["b", "c"], p_max=1e-5)
    assert both.groupby("trait").size().to_dict() == {
        "b": (tables["exposure_b"]["pval"] <= 1e-5).sum(), "c": (tables["exposure_c"]["pval"] <= 1e-5).sum()
    }
    counts = _balanced(both)
    assert counts["trait"].tolist() == ["b", "c"] and counts["n_in"].tolist() == [39314, 39270]
    assert unlisted_of(both)["trait"].tolist() == ["b", "c"]
    with pytest.raises(ValueError, match="2 paths but 1 trait names"):
        read_gwas([folder / FILES["exposure_b"], folder / FILES["exposure_c"]], trait=["b"])


def test_concat_tables_keeps_both_audits(shared_data, tables):
    from mrjax.gwas import concat_tables

    both = concat_tables([tables["exposure_a"], tables["exposure_b"]])
    assert len(both) == len(tables["exposure_a"]) + len(tables["exposure_b"])
    assert len(audit_of(both)) == len(audit_of(tables["exposure_a"]))
    assert counts_of(both)["trait"].tolist() == ["exposure_a", "exposure_b"]


def test_audited_tables_are_ordinary_pandas_tables(tables, tmp_path):
    """pandas compares attrs with ``==`` on concat/merge, deep-copies them on every operation
    and writes them to parquet as JSON: the audit records held in attrs must survive all
    three (a bare DataFrame there raised "truth value of a DataFrame is ambiguous")."""
    import copy

    a, b = tables["exposure_a"], tables["exposure_b"]
    assert len(audit_of(a)) and len(counts_of(b))
    mixed = pd.concat([a, b], ignore_index=True)  # different records: pandas drops them
    assert len(mixed) == len(a) + len(b) and len(audit_of(mixed)) == 0
    same = pd.concat([a.head(5), a.tail(5)])  # the same records: pandas keeps them
    pd.testing.assert_frame_equal(audit_of(same), audit_of(a))
    merged = a.merge(b[["SNP", "beta"]], on="SNP", how="left", suffixes=("", "_b"))
    assert len(merged) == len(a)
    assert audit_of(copy.deepcopy(a)) is audit_of(a)  # records are shared, never copied
    a.to_parquet(tmp_path / "a.parquet")
    back = pd.read_parquet(tmp_path / "a.parquet")
    pd.testing.assert_frame_equal(back, a)
    assert len(audit_of(back)) == 0  # records are written beside tables, not into parquet


def test_sample_size_from_cases_and_controls_or_given(shared_data, tmp_path):
    outcome = read_gwas(shared_data / "scan" / "outcome.parquet")
    assert set(outcome["n"]) == {450_000.0}  # ncase + ncontrol
    finngen = read_finngen(shared_data / "gwas" / FILES["outcome"], n=400_000)
    assert set(finngen["n"]) == {400_000.0}
    text = "SNP\tA1\tBETA\tSE\tP\tN\nrs1\tA\t0.1\t0.01\t0.01\tNA\nrs2\tA\t0.1\t0.01\t0.01\t500\n"
    filled = read_gwas(_write(tmp_path / "n.tsv", text), n=1000)
    assert filled["n"].tolist() == [1000.0, 500.0]  # n= fills only the gaps


def test_space_aligned_columns(tmp_path, shared_data, tables):
    """PLINK-1.9-style files: columns padded with runs of spaces, leading and trailing blanks."""
    lines = (shared_data / "gwas" / FILES["exposure_c"]).read_text().splitlines()
    aligned = "\n".join("  " + "   ".join(line.split("\t")) + " " for line in lines) + "\n"
    for name, data in (("c.txt", aligned.encode()), ("c.txt.gz", gzip.compress(aligned.encode()))):
        (tmp_path / name).write_bytes(data)
        table = read_gwas(tmp_path / name, trait="exposure_c", block_size=65521)  # ~45 blocks, cut mid-line
        pd.testing.assert_frame_equal(table, tables["exposure_c"])


def test_case_control_files_are_told_from_their_headers(shared_data, tmp_path):
    """FinnGen files and files with case and control counts hold binary traits (reported as
    odds ratios); the GWAS Catalog file's empty odds-ratio column does not make it one; a
    GWAS-VCF says so in its ##SAMPLE line."""
    from mrjax.gwas import is_case_control

    folder = shared_data / "gwas"
    assert is_case_control(folder / FILES["outcome"])
    assert not any(is_case_control(folder / FILES[name]) for name in ("exposure_a", "exposure_b", "exposure_c"))
    assert is_case_control(shared_data / "scan" / "outcome.parquet")  # ncase, ncontrol columns
    assert not is_case_control(shared_data / "scan" / "exposures.parquet")
    with gzip.open(folder / FILES["exposure_b"], "rt") as handle:
        text = handle.read(200_000)
    vcf = tmp_path / "cc.vcf"
    vcf.write_text(text.replace("StudyType=Continuous", "TotalCases=1200,StudyType=CaseControl"))
    assert is_case_control(vcf)
    plain = tmp_path / "plain.tsv"
    plain.write_text("SNP\tA1\tA2\tBETA\tSE\tP\tN_CASES\tN_CONTROLS\nrs1\tA\tG\t0.1\t0.01\t1e-8\t10\t20\n")
    assert is_case_control(plain)
    assert not is_case_control(plain, columns={"n_cases": None})


def test_a_table_instead_of_a_path_is_named():
    with pytest.raises(TypeError, match="read_gwas reads a file .* not a DataFrame.*to_parquet"):
        read_gwas(pd.DataFrame({"SNP": ["rs1"]}))


def test_quotes_non_ascii_and_invalid_utf8(tmp_path):
    """Blocks with quote characters or non-ASCII text parse as before (the parser's quote and
    UTF-8 checks are only skipped where a block has neither); text that is not UTF-8 is an
    error naming the line and column."""
    header = "SNP\teffect_allele\tother_allele\tbeta\tse\tpval\teaf\n"
    quoted = read_gwas(_write(tmp_path / "q.tsv", header + '"rs1"\tA\tG\t0.1\t0.01\t1e-8\t0.3\nrs2\t"C"\tT\t0.2\t0.02\t1e-9\t0.4\n'))
    assert quoted["SNP"].tolist() == ["rs1", "rs2"] and quoted["effect_allele"].tolist() == ["A", "C"]
    accented = read_gwas(_write(tmp_path / "u.tsv", header + "rs1\tA\tG\t0.1\t0.01\t1e-8\t0.3\nrsé2\tC\tT\t0.2\t0.02\t1e-9\t0.4\n"))
    assert accented["SNP"].tolist() == ["rs1", "rsé2"]
    bad = tmp_path / "bad.tsv"
    bad.write_bytes(header.encode() + b"rs1\tA\tG\t0.1\t0.01\t1e-8\t0.3\nrs\xff2\tC\tT\t0.2\t0.02\t1e-9\t0.4\n")
    with pytest.raises(ValueError, match=r"bad\.tsv: line 3, column 'SNP' holds text that is not UTF-8"):
        read_gwas(bad)
