"""The tolerant plain reader (synonyms, sep=, mixed header/row whitespace, ambiguous or missing
columns), files without p, malformed lines (real line numbers, skip_bad_lines), the p-filter
prefilter, and harmonise on ids and alleles the readers leave missing."""

import gzip
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from mrjax.audit import audit_of, counts_of
from mrjax.gwas import harmonise, read_gwas


def _write(path, text, compress=False):
    data = text.encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


# ---------------------------------------------------------------------------- tolerant plain reader


def test_synonyms_of_the_tools_columns(tmp_path):
    text = ("MarkerName\thg19chrc\tBP\tALLELE1\tALLELE0\tA1FREQ\tEffect\tStdErr\tP_BOLT_LMM\tN\n"
            "rs1\tchr1\t100\ta\tg\t0.3\t0.1\t0.01\t1e-20\t5000\n")
    table = read_gwas(_write(tmp_path / "plain.txt", text))
    assert table.attrs["format"] == "plain"
    assert table[["SNP", "chr", "pos", "effect_allele", "other_allele"]].values.tolist() == [["rs1", "chr1", 100, "A", "G"]]
    assert table[["eaf", "beta", "se", "pval", "n"]].values.tolist() == [[0.3, 0.1, 0.01, 1e-20, 5000]]
    text = "SNP\tGENPOS\tEA\tNEA\tbeta\tse\tLOG10P\tFreq1\nrs2\t7\tT\tC\t0.2\t0.05\t4\t0.6\n"
    table = read_gwas(_write(tmp_path / "log.txt", text))
    assert table["pos"].tolist() == [7] and table["pval"].iloc[0] == pytest.approx(1e-4, rel=1e-12)
    assert table["eaf"].tolist() == [0.6]


def test_header_with_spaces_above_tab_separated_rows(tmp_path):
    text = "SNP A1 A2 BETA SE P\nrs1\tA\tG\t0.1\t0.01\t0.001\nrs2\tC\tT\t-0.2\t0.02\t0.5\n"
    table = read_gwas(_write(tmp_path / "mixed.txt", text))
    assert table["SNP"].tolist() == ["rs1", "rs2"] and table["beta"].tolist() == [0.1, -0.2]


def test_sep_option(tmp_path):
    text = "SNP;A1;A2;BETA;SE;P\nrs1;A;G;0.1;0.01;0.001\n"
    path = _write(tmp_path / "semi.txt", text)
    with pytest.raises(ValueError, match="missing required column"):
        read_gwas(path)
    assert read_gwas(path, sep=";")["beta"].tolist() == [0.1]
    spaced = _write(tmp_path / "spaced.txt", "SNP  A1 A2  BETA SE P\nrs1 A  G 0.1   0.01 0.001\n")
    assert read_gwas(spaced, sep="whitespace")["se"].tolist() == [0.01]
    with pytest.raises(ValueError, match="unknown sep"):
        read_gwas(path, sep="|")


def test_missing_and_ambiguous_fields_list_header_and_candidates(tmp_path):
    path = _write(tmp_path / "nose.txt", "SNP\tA1\tA2\tBETA\tP\nrs1\tA\tG\t0.1\t0.2\n")
    with pytest.raises(ValueError, match=r"missing required column\(s\) se; the header has \['SNP', 'A1', 'A2', "
                                         r"'BETA', 'P'\].*se \(a column named one of se, standard_error, sebeta"):
        read_gwas(path)
    path = _write(tmp_path / "two.txt", "SNP\tA1\tALT\tREF\tBETA\tSE\tP\nrs1\tA\tA\tG\t0.1\t0.01\t0.2\n")
    with pytest.raises(ValueError, match=r"ambiguous column\(s\) — effect_allele: any of \['A1', 'ALT'\]"):
        read_gwas(path)
    table = read_gwas(path, columns={"effect_allele": "ALT", "other_allele": "REF"})
    assert table[["effect_allele", "other_allele"]].values.tolist() == [["A", "G"]]


# ---------------------------------------------------------------------------- files without p


def test_p_from_beta_and_se_when_a_file_has_none(tmp_path):
    text = "SNP\tA1\tBETA\tSE\nrs1\tA\t0.5\t0.01\nrs2\tC\t-0.01\t0.02\nrs3\tG\t2\t0.01\n"
    table = read_gwas(_write(tmp_path / "nop.txt", text))
    z = np.array([50.0, 0.5, 200.0])
    np.testing.assert_allclose(table["pval"], 2 * norm.sf(z), rtol=1e-10)
    np.testing.assert_allclose(table["mlog10p"], -(norm.logsf(z) + math.log(2)) / math.log(10), rtol=1e-10)
    assert table["pval"].iloc[2] == 0.0 and table["mlog10p"].iloc[2] > 8000  # far below 1e-308, still exact
    assert "p computed from beta/se" in table.attrs["read_notes"][0]
    assert read_gwas(_write(tmp_path / "nop2.txt", text), p_max=1e-8)["SNP"].tolist() == ["rs1", "rs3"]


def test_outcome_without_p_or_other_allele_harmonises_and_estimates(tmp_path):
    import mrjax

    exposure = pd.DataFrame({"SNP": ["rs1", "rs2", "rs3", "rs4"], "effect_allele": ["A", "C", "G", "T"],
                             "other_allele": ["G", "T", "A", "C"], "eaf": [0.2, 0.3, 0.7, 0.8],
                             "beta": [0.1, 0.2, -0.15, 0.3], "se": [0.01] * 4, "pval": [1e-20] * 4, "trait": "x"})
    text = ("SNP\tEA\tBETA\tSE\tEAF\n"
            "rs1\tA\t0.05\t0.02\t0.21\n" "rs2\tT\t-0.1\t0.02\t0.69\n" "rs3\tG\t-0.07\t0.02\t0.72\n" "rs4\tT\t0.16\t0.02\t0.79\n")
    outcome = read_gwas(_write(tmp_path / "y.txt", text), trait="y")
    assert outcome["other_allele"].isna().all() or (outcome["other_allele"] == "None").all()
    table = harmonise(exposure, outcome)
    assert table["mr_keep"].all()
    assert table.set_index("SNP").loc["rs2", "beta.outcome"] == 0.1  # T is rs2's other allele: flipped
    notes = audit_of(table)
    notes = notes[notes["step"] == "harmonise"]
    assert set(notes["SNP"]) == {"rs1", "rs2", "rs3", "rs4"}
    assert (notes["reason"] == "one allele only").all()
    assert notes["detail"].str.contains("outcome other allele missing").all()
    assert counts_of(table).query("step == 'harmonise'")[["n_in", "n_kept", "n_dropped"]].values.tolist() == [[4, 4, 0]]
    result = mrjax.mr(table, methods=["ivw"])
    bx, by = table["beta.exposure"].to_numpy(), table["beta.outcome"].to_numpy()
    w = 1 / table["se.outcome"].to_numpy() ** 2
    assert result["b"].iloc[0] == pytest.approx(np.sum(w * bx * by) / np.sum(w * bx * bx), rel=1e-6)


def test_missing_ids_never_pair_in_harmonise(tmp_path):
    """Two different variants both called '#NA' must not be paired (nor be 'duplicates')."""
    exposure = pd.DataFrame({"SNP": ["rs1", "#NA", "#NA", None], "effect_allele": ["A", "C", "G", "A"],
                             "other_allele": ["G", "T", "A", "C"], "beta": [0.1, 0.2, 0.3, 0.4], "se": [0.01] * 4,
                             "eaf": [0.2] * 4, "pval": [1e-10] * 4, "trait": "x"})
    outcome = pd.DataFrame({"SNP": ["rs1", "#NA", "."], "effect_allele": ["A", "C", "A"], "other_allele": ["G", "T", "C"],
                            "beta": [0.05, 0.1, 0.2], "se": [0.02] * 3, "eaf": [0.2] * 3, "pval": [0.01] * 3, "trait": "y"})
    table = harmonise(exposure, outcome)
    assert table["SNP"].tolist() == ["rs1"]
    dropped = audit_of(table)
    unnamed = dropped[dropped["detail"].str.contains("missing SNP id", na=False)]
    assert len(unnamed) == 3 and set(unnamed["reason"]) == {"bad value"}
    counts = counts_of(table).query("step == 'harmonise'")
    assert counts[["n_in", "n_kept", "n_dropped"]].values.tolist() == [[4, 1, 3]]


def test_read_gwas_missing_ids_become_positions(tmp_path):
    text = ("SNP\tCHR\tBP\tA1\tA2\tBETA\tSE\tP\n"
            "#NA\t1\t10\tA\tG\t0.1\t0.01\t1e-9\n" "#NA\t1\t20\tC\tT\t0.1\t0.01\t1e-9\n" ".\t1\t30\tC\tT\t0.1\t0.01\t1e-9\n")
    table = read_gwas(_write(tmp_path / "ids.txt", text))
    assert table["SNP"].tolist() == ["1:10:G:A", "1:20:T:C", "1:30:T:C"]


# ---------------------------------------------------------------------------- malformed lines


def _rows(n, start=0):
    return "".join(f"rs{i}\tA\tG\t0.1\t0.01\t{'1e-9' if i % 50 == 0 else '0.3'}\n" for i in range(start, start + n))


HEADER = "SNP\tA1\tA2\tBETA\tSE\tP\n"


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("p_max", [None, 1e-5])
def test_a_line_cut_short_is_named_by_its_line_number(tmp_path, compress, p_max):
    text = HEADER + _rows(405) + "rs405\tA\tG\t0.1\n" + _rows(600, 406)
    path = _write(tmp_path / ("cut.txt.gz" if compress else "cut.txt"), text, compress)
    with pytest.raises(ValueError, match=r"line 407 has 4 fields where the header has 6 \('rs405"):
        read_gwas(path, p_max=p_max, block_size=4096)  # the bad line is deep inside a later block
    table = read_gwas(path, p_max=p_max, block_size=4096, skip_bad_lines=True)
    assert "rs405" not in set(table["SNP"]) and len(table) == (1005 if p_max is None else 21)
    bad = audit_of(table)
    assert bad["SNP"].tolist() == ["line 407"] and bad["detail"].iloc[0].startswith("malformed line 407: 4 fields")
    counts = counts_of(table)
    assert counts["n_in"].tolist() == [1006] and (counts["n_in"] == counts["n_kept"] + counts["n_dropped"]).all()


def test_rows_after_blank_lines_keep_their_numbers(tmp_path):
    text = HEADER + _rows(3) + "\n" + "rs1\tA\tG\t0.1\t0.01\t0.3\n"
    table = read_gwas(_write(tmp_path / "blank.txt", text))
    assert audit_of(table)["detail"].tolist() == ["data row 3 repeats data row 1; the first is kept"]


# ---------------------------------------------------------------------------- prefilter


def test_prefilter_reads_only_candidate_lines_and_agrees_with_a_full_read(shared_data, monkeypatch):
    """With p_max, polars picks the lines whose p may pass; the kept table equals filtering a
    full read (so the pyarrow parse of the candidates is exact)."""
    from mrjax.gwas import textblocks

    calls = []
    real = textblocks.prefilter
    monkeypatch.setattr(textblocks, "prefilter", lambda *a: calls.append(1) or real(*a))
    parsed = []
    real_parse = textblocks.parse
    monkeypatch.setattr(textblocks, "parse", lambda data, *a: parsed.append(data.count(b"\n")) or real_parse(data, *a))
    path = shared_data / "gwas" / "exposure_a.h.tsv.gz"
    part = read_gwas(path, p_max=1e-6, block_size=1 << 18)
    # blocks with few candidates parse only those lines; dense ones (> 5% candidates) whole
    assert calls and min(parsed) < 50 and sum(parsed) < 0.2 * counts_of(part)["n_in"].iloc[0]
    full = read_gwas(path)
    expected = full[full["pval"] <= 1e-6].reset_index(drop=True)
    pd.testing.assert_frame_equal(part, expected)


def test_prefiltered_reads_equal_a_filtered_full_read_at_any_block_size(tmp_path):
    """Blocks cut anywhere, p text that underflows, missing p, -log10 p beside p: the
    p-filtered read equals filtering the full read."""
    rng = np.random.default_rng(3)
    n = 3000
    p = np.where(rng.random(n) < 0.02, rng.random(n) * 1e-7, rng.random(n))
    text = np.char.mod("%.3g", p).astype(object)
    text[rng.random(n) < 0.01] = "NA"
    text[::701] = "1e-400"
    lines = ["SNP\tA1\tA2\tBETA\tSE\tP\tMLOG10P"] + [
        f"rs{i}\tA\tG\t{rng.normal():.4f}\t0.01\t{t}\t{'NA' if t == 'NA' else (400.0 if t == '1e-400' else -np.log10(float(t)))}"
        for i, t in enumerate(text)
    ]
    path = _write(tmp_path / "p.tsv.gz", "\n".join(lines) + "\n", compress=True)
    full = read_gwas(path)
    for p_max, block_size in ((1e-6, 997), (1e-6, 1 << 20), (0.2, 1 << 14)):
        part = read_gwas(path, p_max=p_max, block_size=block_size)
        keep = (full["pval"] <= p_max) | ((full["pval"] == 0) & (full["mlog10p"] >= -np.log10(p_max)))
        pd.testing.assert_frame_equal(part, full[keep].reset_index(drop=True))
        counts = counts_of(part)
        assert counts["n_in"].tolist() == [n] and (counts["n_in"] == counts["n_kept"] + counts["n_dropped"]).all()


def test_bad_row_mask_flags_exactly_the_rows_bad_rows_gives_a_reason():
    """The arrow pre-check that spares clean rows the pandas conversion flags the same rows."""
    import pyarrow as pa

    from mrjax.gwas.columns import bad_row_mask, bad_rows

    nan, inf = float("nan"), float("inf")
    rows = [  # (_note, SNP, effect_allele, pval, mlog10p, beta, se, eaf)
        (None, "rs1", "A", 0.5, None, 0.1, 0.01, 0.3),
        ("hm_code 15", "rs2", "A", 0.5, None, 0.1, 0.01, 0.3),
        (None, None, "A", 0.5, None, 0.1, 0.01, 0.3),
        (None, "rs3", None, 0.5, None, 0.1, 0.01, 0.3),
        (None, "rs4", "", 0.5, None, 0.1, 0.01, 0.3),
        (None, "rs5", "A", None, None, 0.1, 0.01, 0.3),
        (None, "rs6", "A", nan, nan, 0.1, 0.01, 0.3),
        (None, "rs7", "A", None, 300.0, 0.1, 0.01, None),
        (None, "rs8", "A", 1.5, None, 0.1, 0.01, 0.3),
        (None, "rs9", "A", -0.1, None, 0.1, 0.01, 0.3),
        (None, "rs10", "A", 0.5, None, inf, 0.01, 0.3),
        (None, "rs11", "A", 0.5, None, None, 0.01, 0.3),
        (None, "rs12", "A", 0.5, None, 0.1, nan, 0.3),
        (None, "rs13", "A", 0.5, None, 0.1, 0.0, 0.3),
        (None, "rs14", "A", 0.5, None, 0.1, -1.0, 0.3),
        (None, "rs15", "A", 0.5, None, 0.1, 0.01, 1.2),
        (None, "rs16", "A", 0.5, None, 0.1, 0.01, nan),
        (None, "rs17", "A", 0.0, None, 0.1, 0.01, 1.0),
    ]
    names = ["_note", "SNP", "effect_allele", "pval", "mlog10p", "beta", "se", "eaf"]
    types = [pa.string()] * 3 + [pa.float64()] * 5
    table = pa.table({n: pa.array([r[i] for r in rows], type=t) for i, (n, t) in enumerate(zip(names, types))})
    expected = bad_rows(table.to_pandas()).notna().to_numpy()
    assert expected.sum() == 14
    np.testing.assert_array_equal(bad_row_mask(table), expected)
