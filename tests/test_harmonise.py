"""Harmonisation: the TwoSampleMR golden (action 2), actions 1 and 3, every allele case,
the audit balance, many exposures/outcomes, bi-directional use and the gwas/ truth IVW."""

import json

import numpy as np
import pandas as pd
import pytest

from mrjax.audit import audit_of, counts_of
from mrjax.gwas import harmonise, read_gwas

GOLDEN_COLUMNS = [
    "effect_allele.exposure", "other_allele.exposure", "effect_allele.outcome", "other_allele.outcome",
    "beta.exposure", "beta.outcome", "eaf.exposure", "eaf.outcome", "remove", "palindromic", "ambiguous",
    "se.exposure", "se.outcome", "pval.exposure", "pval.outcome", "samplesize.exposure", "samplesize.outcome",
    "exposure", "outcome", "id.exposure", "id.outcome", "action", "mr_keep",
]


@pytest.fixture(scope="module")
def bmi_chd(shared_data):
    folder = shared_data / "TwoSampleMR"
    return (
        pd.read_csv(folder / "bmi_exposure.csv"),
        pd.read_csv(folder / "chd_outcome.csv"),
        pd.read_csv(folder / "bmi_chd_harmonised.csv"),
    )


def _balanced(table):
    counts = counts_of(table)
    assert (counts["n_in"] == counts["n_kept"] + counts["n_dropped"]).all()
    return counts


# ---------------------------------------------------------------------------- TwoSampleMR golden


def test_reproduces_twosamplemr_action_2(bmi_chd):
    exposure, outcome, golden = bmi_chd
    result = harmonise(exposure, outcome, action=2)
    assert result["SNP"].tolist() == sorted(golden["SNP"])  # R's merge leaves rows sorted by SNP
    result = result.set_index("SNP").loc[golden["SNP"]]
    golden = golden.set_index("SNP")
    for column in GOLDEN_COLUMNS:
        mine, theirs = result[column], golden[column]
        if theirs.dtype.kind in "fi":
            np.testing.assert_array_equal(mine.to_numpy(float), theirs.to_numpy(float), err_msg=column)
        else:
            assert mine.astype(str).tolist() == theirs.astype(str).tolist(), column
    assert golden["palindromic"].sum() == 4 and result["mr_keep"].all()
    counts = _balanced(result)
    assert counts.iloc[-1][["n_in", "n_kept", "n_dropped"]].tolist() == [79, 79, 0]


def test_action_3_drops_every_palindromic_snp(bmi_chd):
    exposure, outcome, golden = bmi_chd
    result = harmonise(exposure, outcome, action=3).set_index("SNP")
    palindromic = set(golden.loc[golden["palindromic"], "SNP"])
    assert set(result.index[~result["mr_keep"]]) == palindromic
    drops = audit_of(result)
    assert set(drops["SNP"]) == palindromic and set(drops["reason"]) == {"palindromic ambiguous"}
    assert _balanced(result).iloc[-1]["n_dropped"] == len(palindromic)


def test_action_1_leaves_palindromic_effects_unflipped(bmi_chd):
    exposure, outcome, golden = bmi_chd
    result = harmonise(exposure, outcome, action=1).set_index("SNP")
    assert result["mr_keep"].all()
    raw = outcome.set_index("SNP")
    for snp in golden.loc[golden["palindromic"], "SNP"]:
        row = result.loc[snp]
        same = raw.loc[snp, "effect_allele.outcome"] == row["effect_allele.exposure"]
        assert row["beta.outcome"] == (1 if same else -1) * raw.loc[snp, "beta.outcome"]
    non_pal = golden.loc[~golden["palindromic"], "SNP"]
    np.testing.assert_array_equal(result.loc[non_pal, "beta.outcome"], golden.set_index("SNP").loc[non_pal, "beta.outcome"])


# ---------------------------------------------------------------------------- allele cases


def _pair(rows, outcome_rows=None):
    """A one-exposure, one-outcome pair from ``(SNP, A1, A2, fA, B1, B2, fB)`` tuples."""
    exposure = pd.DataFrame(
        {
            "SNP": [r[0] for r in rows], "effect_allele.exposure": [r[1] for r in rows],
            "other_allele.exposure": [r[2] for r in rows], "eaf.exposure": [r[3] for r in rows],
            "beta.exposure": 0.1, "se.exposure": 0.01, "exposure": "X", "id.exposure": "x",
        }
    )
    outcome_rows = rows if outcome_rows is None else outcome_rows
    outcome = pd.DataFrame(
        {
            "SNP": [r[0] for r in outcome_rows], "effect_allele.outcome": [r[4] for r in outcome_rows],
            "other_allele.outcome": [r[5] for r in outcome_rows], "eaf.outcome": [r[6] for r in outcome_rows],
            "beta.outcome": 0.2, "se.outcome": 0.02, "outcome": "Y", "id.outcome": "y",
        }
    )
    return exposure, outcome


CASES = [
    # SNP, A1, A2, fA, B1, B2, fB  -> expected (sign of beta.outcome, B1, B2, eaf.outcome, remove, pal, amb)
    (("same", "A", "G", 0.2, "A", "G", 0.21), (1, "A", "G", 0.21, False, False, False)),
    (("swapped", "A", "G", 0.2, "G", "A", 0.79), (-1, "A", "G", 1 - 0.79, False, False, False)),
    (("strand", "A", "G", 0.2, "T", "C", 0.2), (1, "A", "G", 0.2, False, False, False)),
    (("strand_swapped", "A", "G", 0.2, "C", "T", 0.8), (-1, "A", "G", 1 - 0.8, False, False, False)),
    (("pal_same", "A", "T", 0.1, "A", "T", 0.12), (1, "A", "T", 0.12, False, True, False)),
    (("pal_other_strand", "A", "T", 0.1, "A", "T", 0.88), (-1, "A", "T", 1 - 0.88, False, True, False)),
    (("pal_mid", "C", "G", 0.45, "C", "G", 0.3), (1, "C", "G", 0.3, False, True, True)),
    (("pal_no_eaf", "C", "G", np.nan, "C", "G", 0.3), (1, "C", "G", 0.3, False, True, True)),
    (("mismatch", "A", "G", 0.2, "A", "C", 0.2), (1, "T", "G", 0.2, True, False, False)),
    (("indel", "AT", "A", 0.3, "I", "D", 0.3), (1, "AT", "A", 0.3, False, False, False)),
    (("indel_swapped", "AT", "A", 0.3, "D", "I", 0.7), (-1, "AT", "A", 1 - 0.7, False, False, False)),
]


@pytest.mark.parametrize("case,expected", CASES, ids=[c[0][0] for c in CASES])
def test_allele_cases_action_2(case, expected):
    exposure, outcome = _pair([case, ("anchor", "A", "G", 0.2, "A", "G", 0.2)])
    result = harmonise(exposure, outcome, action=2).set_index("SNP").loc[case[0]]
    sign, b1, b2, f_b, remove, pal, amb = expected
    assert result["beta.outcome"] == sign * 0.2 and result["beta.exposure"] == 0.1
    assert (result["effect_allele.outcome"], result["other_allele.outcome"]) == (b1, b2)
    assert result["eaf.outcome"] == pytest.approx(f_b, abs=1e-15)
    assert (result["remove"], result["palindromic"], result["ambiguous"]) == (remove, pal, amb)
    assert result["mr_keep"] == (not remove and not amb)


def test_actions_differ_only_on_palindromes():
    rows = [c[0] for c in CASES]
    exposure, outcome = _pair(rows)
    by_action = {a: harmonise(exposure, outcome, action=a).set_index("SNP") for a in (1, 2, 3)}
    one, two, three = by_action[1], by_action[2], by_action[3]
    assert one.loc["pal_other_strand", "beta.outcome"] == 0.2  # no frequency flip under action 1
    assert two.loc["pal_other_strand", "beta.outcome"] == -0.2
    assert one.loc["pal_mid", "mr_keep"] and not two.loc["pal_mid", "mr_keep"]
    assert set(three.index[~three["mr_keep"]]) == set(three.index[three["palindromic"] | three["remove"]])
    for table in by_action.values():
        assert not table.loc["mismatch", "mr_keep"]
    drops = audit_of(by_action[2]).set_index("SNP")
    assert drops.loc["mismatch", "reason"] == "allele mismatch"
    assert drops.loc["pal_mid", "reason"] == "palindromic ambiguous"


def test_one_allele_missing_in_the_outcome():
    exposure, outcome = _pair(
        [("a", "A", "G", 0.2, "A", None, 0.2), ("b", "A", "G", 0.2, "G", None, 0.8), ("c", "A", "G", 0.2, "G", None, 0.2),
         ("d", "A", "T", 0.2, "A", None, 0.2)]
    )
    result = harmonise(exposure, outcome, action=2).set_index("SNP")
    assert result.loc["a", ["other_allele.outcome", "beta.outcome", "mr_keep"]].tolist() == ["G", 0.2, True]
    assert result.loc["b", ["effect_allele.outcome", "beta.outcome", "mr_keep"]].tolist() == ["A", -0.2, True]
    assert not result.loc["c", "mr_keep"] and result.loc["c", "ambiguous"]  # frequencies disagree
    assert result.loc["d", "remove"] and result.loc["d", "palindromic"]


def test_missing_values_and_missing_snps_are_audited():
    exposure, outcome = _pair(
        [("a", "A", "G", 0.2, "A", "G", 0.2), ("b", "A", "G", 0.2, "A", "G", 0.2), ("gone", "A", "G", 0.2, "A", "G", 0.2)],
        [("a", "A", "G", 0.2, "A", "G", 0.2), ("b", "A", "G", 0.2, "A", "G", 0.2)],
    )
    outcome.loc[1, "se.outcome"] = np.nan
    result = harmonise(exposure, outcome)
    assert result["SNP"].tolist() == ["a", "b"] and result["mr_keep"].tolist() == [True, False]
    drops = audit_of(result).set_index("SNP")
    assert drops.loc["gone", "reason"] == "missing in outcome" and "'Y'" in drops.loc["gone", "detail"]
    assert drops.loc["b", "reason"] == "bad value"
    assert _balanced(result).iloc[-1][["n_in", "n_kept", "n_dropped"]].tolist() == [3, 1, 2]


def test_eaf_tolerance_flags_disagreeing_frequencies():
    exposure, outcome = _pair([("a", "A", "G", 0.2, "A", "G", 0.5), ("b", "A", "G", 0.2, "A", "G", 0.22)])
    assert harmonise(exposure, outcome)["mr_keep"].all()  # TwoSampleMR does not compare them
    result = harmonise(exposure, outcome, eaf_tolerance=0.1)
    assert result["mr_keep"].tolist() == [False, True]
    assert audit_of(result)["detail"].iloc[0].startswith("EAF 0.2 vs 0.5")


def test_palindrome_band_is_configurable():
    exposure, outcome = _pair([("p", "A", "T", 0.38, "A", "T", 0.38), ("q", "A", "G", 0.2, "A", "G", 0.2)])
    assert harmonise(exposure, outcome)["mr_keep"].all()
    wide = harmonise(exposure, outcome, palindrome_band=(0.35, 0.65)).set_index("SNP")
    assert not wide.loc["p", "mr_keep"]


# ---------------------------------------------------------------------------- many traits, audit


def test_many_exposures_and_outcomes_balance(bmi_chd):
    exposure, outcome, _ = bmi_chd
    second = exposure.assign(exposure="BMI copy", **{"id.exposure": "copy"}).iloc[:40]
    other_outcome = outcome.assign(outcome="CHD half", **{"id.outcome": "half"}).iloc[::2]
    result = harmonise(pd.concat([exposure, second]), pd.concat([outcome, other_outcome]))
    pairs = result.groupby(["id.exposure", "id.outcome"]).size().to_dict()
    expected_half = len(set(exposure["SNP"]) & set(other_outcome["SNP"]))
    assert pairs[("ieu-a-2", "ieu-a-7")] == 79 and pairs[("copy", "ieu-a-7")] == 40
    assert pairs[("ieu-a-2", "half")] == expected_half
    counts = _balanced(result).set_index("trait")
    assert counts.loc["BMI copy", "n_in"] == 80  # 40 SNPs x 2 outcomes
    missing = audit_of(result)
    assert (missing["reason"] == "missing in outcome").sum() == (79 - expected_half) + (
        40 - len(set(second["SNP"]) & set(other_outcome["SNP"]))
    )
    assert result.equals(result.sort_values(["id.exposure", "id.outcome", "SNP"]).reset_index(drop=True))


def test_action_per_outcome(bmi_chd):
    exposure, outcome, golden = bmi_chd
    both = pd.concat([outcome, outcome.assign(**{"id.outcome": "again", "outcome": "again"})])
    result = harmonise(exposure, both, action={"ieu-a-7": 2, "again": 3})
    n_pal = golden["palindromic"].sum()
    assert (~result.loc[result["id.outcome"] == "again", "mr_keep"]).sum() == n_pal
    assert result.loc[result["id.outcome"] == "ieu-a-7", "mr_keep"].all()


def test_bad_arguments_raise(bmi_chd):
    exposure, outcome, _ = bmi_chd
    with pytest.raises(ValueError, match="action must be 1, 2 or 3"):
        harmonise(exposure, outcome, action=4)
    with pytest.raises(ValueError, match=r"no action given for outcome id\(s\) \['ieu-a-7'\]"):
        harmonise(exposure, outcome, action={"other": 2})
    with pytest.raises(ValueError, match=r"outcome table: missing required column\(s\) \['se.outcome'\]"):
        harmonise(exposure, outcome.drop(columns="se.outcome"))
    with pytest.raises(ValueError, match="duplicated SNP rows within a trait: rs977747"):
        harmonise(pd.concat([exposure, exposure.iloc[:1]]), outcome)
    with pytest.raises(ValueError, match="palindrome_band"):
        harmonise(exposure, outcome, palindrome_band=(0.6, 0.7))
    with pytest.raises(ValueError, match="no SNP usable"):
        harmonise(exposure, outcome.assign(SNP="rs0" + outcome["SNP"]))


def test_no_usable_snp_error_keeps_the_drop_records(bmi_chd):
    """When no SNP survives, the error still carries harmonise's table and audit: every SNP
    with its reason, counts balanced (so a scan that goes on can report them)."""
    from mrjax.gwas import NoUsableSNPError

    exposure, outcome, _ = bmi_chd
    mismatched = outcome.assign(**{"effect_allele.outcome": "Q", "other_allele.outcome": "Z"})
    with pytest.raises(NoUsableSNPError, match="no SNP usable") as caught:
        harmonise(exposure, mismatched)
    table = caught.value.table
    assert len(table) and not table["mr_keep"].any()
    drops = audit_of(table)
    harmonise_drops = drops[drops["step"] == "harmonise"]
    assert set(harmonise_drops["SNP"]) == set(exposure["SNP"]) & set(outcome["SNP"])
    counts = _balanced(table)
    row = counts[counts["step"] == "harmonise"].iloc[0]
    assert row["n_kept"] == 0 and row["n_dropped"] == row["n_in"] == len(exposure)


# ---------------------------------------------------------------------------- normalised tables, truth


@pytest.fixture(scope="module")
def gwas(shared_data):
    folder = shared_data / "gwas"
    return {
        "exposure_a": read_gwas(folder / "exposure_a.h.tsv.gz", trait="exposure_a"),
        "exposure_b": read_gwas(folder / "exposure_b.vcf.gz", trait="exposure_b"),
        "exposure_c": read_gwas(folder / "exposure_c.tsv", trait="exposure_c"),
        "outcome": read_gwas(folder / "outcome_finngen.gz", trait="outcome"),
    }


def _ivw(table):
    """TwoSampleMR mr_ivw, written out in numpy."""
    bx, by, sy = (table[c].to_numpy() for c in ("beta.exposure", "beta.outcome", "se.outcome"))
    w = 1 / sy**2
    b = np.sum(w * bx * by) / np.sum(w * bx**2)
    se = 1 / np.sqrt(np.sum(w * bx**2))
    sigma = np.sqrt(np.sum(w * (by - b * bx) ** 2) / (len(bx) - 1))
    return b, se, se * max(1.0, sigma)


@pytest.mark.parametrize("name", ["exposure_a", "exposure_b", "exposure_c"])
def test_gwas_files_give_the_truth_ivw(shared_data, gwas, name):
    """read -> harmonise on the plink instruments reproduces gwas/README's IVW table.

    The reference aligns everything to ALT without dropping palindromes: action 1 does that
    (these files share a strand for palindromic SNPs); action 2 keeps them unless their EAF is
    in 0.42-0.58, which is exactly the README's list for exposure_c."""
    truth = json.loads((shared_data / "gwas" / "truth.json").read_text())["traits"][name]
    reference = truth["mr_reference_r2_0.001_kb_10000"]
    instruments = gwas[name][gwas[name]["SNP"].isin(reference["instruments_used"])]
    result = harmonise(instruments, gwas["outcome"], action=1)
    kept = result[result["mr_keep"]]
    assert len(kept) == reference["ivw"]["nsnp"]
    b, se_fixed, se_mre = _ivw(kept)
    assert b == pytest.approx(reference["ivw"]["b"], rel=2e-4)
    assert se_fixed == pytest.approx(reference["ivw"]["se_fixed"], rel=2e-4)
    assert se_mre == pytest.approx(reference["ivw"]["se_mre"], rel=2e-4)
    default = harmonise(instruments, gwas["outcome"], action=2)
    intermediate = set(default.loc[default["palindromic"] & (default["eaf.exposure"].between(0.42, 0.58)), "SNP"])
    assert set(default.loc[~default["mr_keep"], "SNP"]) == intermediate
    assert set(audit_of(default).query("step == 'harmonise'")["reason"]) <= {"palindromic ambiguous"}
    assert intermediate <= set(reference["palindromic_instruments"])


def test_normalised_tables_chain_their_audit(gwas):
    instruments = gwas["exposure_a"][gwas["exposure_a"]["pval"] < 1e-6]
    result = harmonise(instruments, gwas["outcome"])
    counts = _balanced(result)
    assert counts["step"].tolist() == ["read", "read", "harmonise"]  # exposure's read, outcome's read
    assert result["exposure"].unique().tolist() == ["exposure_a"]
    assert result["outcome"].unique().tolist() == ["outcome"]
    assert {"chr.exposure", "pos.exposure", "mlog10p.outcome"} <= set(result.columns)


def test_bi_directional_use(gwas):
    """Reverse direction: outcome GWAS as exposure, an exposure GWAS as outcome. Products
    beta.exposure * beta.outcome are orientation-free, so both directions must agree."""
    snps = gwas["outcome"]["SNP"].iloc[::97]
    forward = harmonise(gwas["exposure_b"][gwas["exposure_b"]["SNP"].isin(snps)], gwas["outcome"], action=3)
    reverse = harmonise(gwas["outcome"][gwas["outcome"]["SNP"].isin(snps)], gwas["exposure_b"], action=3)
    assert reverse["exposure"].unique().tolist() == ["outcome"]
    f = forward[forward["mr_keep"]].set_index("SNP")
    r = reverse[reverse["mr_keep"]].set_index("SNP")
    shared = f.index.intersection(r.index)
    assert len(shared) > 300
    np.testing.assert_array_equal(
        (f.loc[shared, "beta.exposure"] * f.loc[shared, "beta.outcome"]).to_numpy(),
        (r.loc[shared, "beta.exposure"] * r.loc[shared, "beta.outcome"]).to_numpy(),
    )
    np.testing.assert_array_equal(f.loc[shared, "se.exposure"], r.loc[shared, "se.outcome"])


def test_a_table_written_for_the_other_side_is_accepted(bmi_chd):
    exposure, outcome, _ = bmi_chd
    as_exposure = outcome.rename(columns=lambda c: c.replace(".outcome", ".exposure")).rename(columns={"outcome": "exposure"})
    as_outcome = exposure.rename(columns=lambda c: c.replace(".exposure", ".outcome")).rename(columns={"exposure": "outcome"})
    straight = harmonise(exposure, outcome).set_index("SNP")
    swapped_names = harmonise(as_outcome, as_exposure).set_index("SNP")  # each written for the other side
    np.testing.assert_array_equal(straight["beta.outcome"], swapped_names.loc[straight.index, "beta.outcome"])


def test_an_outcome_sharing_no_snp_is_still_accounted(bmi_chd):
    exposure, outcome, _ = bmi_chd
    stranger = outcome.assign(SNP="x" + outcome["SNP"], outcome="Other", **{"id.outcome": "other"})
    result = harmonise(exposure, pd.concat([outcome, stranger]))
    assert set(result["id.outcome"]) == {"ieu-a-7"}
    drops = audit_of(result)
    assert (drops["detail"] == "not in outcome 'Other'").sum() == 79
    assert _balanced(result).iloc[-1][["n_in", "n_kept", "n_dropped"]].tolist() == [158, 79, 79]


def test_scan_fixture_all_50_traits_give_the_oracle_ivw(shared_data):
    """scan/: plink's instruments of 50 exposures, harmonised in one call against the outcome
    (coded on the panel's minor allele, so ~16% need a swap), give truth.json's IVW."""
    truth = json.loads((shared_data / "scan" / "truth.json").read_text())["exposures"]
    exposures = read_gwas(shared_data / "scan" / "exposures.parquet", p_max=1e-5)
    outcome = read_gwas(shared_data / "scan" / "outcome.parquet", trait="outcome")
    wanted = {(t, s) for t, info in truth.items() for s in info["plink_instruments_r2_0.001_kb_10000"]}
    instruments = exposures[[(t, s) in wanted for t, s in zip(exposures["trait"], exposures["SNP"])]]
    result = harmonise(instruments, outcome, action=1)
    _balanced(result)
    by_trait = dict(tuple(result[result["mr_keep"]].groupby("exposure")))
    for trait, info in truth.items():
        reference = info["ivw_on_plink_instruments"]
        kept = by_trait[trait]
        assert len(kept) == reference["nsnp"], trait
        b, se_fixed, se_mre = _ivw(kept)
        assert b == pytest.approx(reference["b"], abs=2e-6, rel=1e-4), trait
        assert se_fixed == pytest.approx(reference["se_fixed"], abs=2e-6, rel=1e-4), trait
        assert se_mre == pytest.approx(reference["se_mre"], abs=2e-6, rel=1e-4), trait
    default = harmonise(instruments, outcome, action=2)
    ambiguous = {(t, s) for t, info in truth.items() for s in info["palindromic_intermediate_eaf_instruments"]}
    assert set(zip(default.loc[~default["mr_keep"], "exposure"], default.loc[~default["mr_keep"], "SNP"])) == ambiguous


def test_palindromic_snp_coded_the_other_way_round_in_the_outcome():
    """A/T in the exposure, T/A in the outcome: TwoSampleMR swaps the outcome alleles first and
    only then compares frequencies, so the outcome beta and EAF end up on the exposure's allele."""
    exposure = pd.DataFrame({
        "SNP": ["rs1"], "exposure": ["x"], "id.exposure": ["x"],
        "effect_allele.exposure": ["A"], "other_allele.exposure": ["T"],
        "beta.exposure": [0.1], "se.exposure": [0.01], "eaf.exposure": [0.1], "pval.exposure": [1e-20],
    })
    outcome = pd.DataFrame({
        "SNP": ["rs1"], "outcome": ["y"], "id.outcome": ["y"],
        "effect_allele.outcome": ["T"], "other_allele.outcome": ["A"],
        "beta.outcome": [-0.02], "se.outcome": [0.01], "eaf.outcome": [0.9], "pval.outcome": [0.05],
    })
    out = harmonise(exposure, outcome, action=2)
    row = out.iloc[0]
    assert row["beta.outcome"] == pytest.approx(0.02)
    assert row["eaf.outcome"] == pytest.approx(0.1)
    assert bool(row["mr_keep"])


def test_pairs_equal_one_call_per_pair(bmi_chd):
    """``pairs=``: each exposure harmonised with its own outcome in one call gives the table
    and records of one call per pair, stacked (a pair keeping nothing keeps its rows and
    records; a separate call would raise for it)."""
    from mrjax.audit import Audit
    from mrjax.gwas import NoUsableSNPError

    exposure, outcome, _ = bmi_chd
    snps = exposure["SNP"].tolist()
    b = exposure.iloc[:40].assign(exposure="B", **{"id.exposure": "B"})
    b.loc[b.index[3], "SNP"] = "NA"  # a missing id: "bad value"
    b_out = outcome[outcome["SNP"].isin(snps[::3] + snps[1::3])].assign(outcome="out B", **{"id.outcome": "ob"})
    palindromic = (b_out["effect_allele.outcome"] + b_out["other_allele.outcome"]).isin(["AT", "TA", "CG", "GC"])
    b_out.loc[palindromic.to_numpy(), "eaf.outcome"] = 0.5  # ambiguous
    # B's last shared SNP mismatches: B lists "palindromic ambiguous" first, A "allele mismatch"
    last = max(set(b["SNP"]) & set(b_out.loc[~palindromic.to_numpy(), "SNP"]))
    b_out.loc[(b_out["SNP"] == last).to_numpy(), "effect_allele.outcome"] = "Q"
    a_out = outcome.copy()
    a_out.loc[(a_out["SNP"] == min(snps)).to_numpy(), "effect_allele.outcome"] = "Q"
    c = exposure.iloc[10:30].assign(exposure="C", **{"id.exposure": "C"})
    c_out = outcome.assign(outcome="out C", **{"id.outcome": "oc", "effect_allele.outcome": "Q"})
    pairs = [(exposure.assign(exposure="A", **{"id.exposure": "A"}), a_out, "ieu-a-7"), (b, b_out, "ob"), (c, c_out, "oc")]
    one_by_one = []
    for exp_side, out_side, _ in pairs:
        try:
            one_by_one.append(harmonise(exp_side, out_side, audited=True))
        except NoUsableSNPError as error:
            one_by_one.append((error.table, error.audit))
    table, records = harmonise(pd.concat([p[0] for p in pairs]), pd.concat([p[1] for p in pairs]), audited=True,
                               pairs={p[0]["id.exposure"].iloc[0]: p[2] for p in pairs})
    pd.testing.assert_frame_equal(table, pd.concat([t for t, _ in one_by_one], ignore_index=True), check_exact=True)
    reasons = set()
    for (exp_side, _, _), (_, alone) in zip(pairs, one_by_one):
        name = exp_side["exposure"].iloc[0]
        for frame in ("drops", "counts", "unlisted"):
            mine, theirs = getattr(records.for_traits(name), frame), getattr(alone.for_traits(name), frame)
            assert len(mine) == len(theirs)
            if len(theirs):
                pd.testing.assert_frame_equal(mine, theirs, check_exact=True)
        reasons |= set(alone.drops["reason"])
    assert {"bad value", "missing in outcome", "allele mismatch", "palindromic ambiguous"} <= reasons
    assert isinstance(records, Audit)
    with pytest.raises(ValueError, match="no outcome given for exposure id"):
        harmonise(pd.concat([p[0] for p in pairs]), outcome, pairs={"A": "ieu-a-7"})
