"""LD proxies: choice, phase and allele mapping, against plink's golden LD and the scan data."""

import json

import numpy as np
import pandas as pd
import pytest

from mrjax.audit import audit_of, counts_of, record
from mrjax.ld.panel import MISSING, LDPanel
from mrjax.ld.proxies import find_proxies, map_proxy_alleles, substitute_proxies


@pytest.fixture(scope="module")
def panel(shared_data):
    return LDPanel.load(shared_data / "ldref" / "eur_sim")


@pytest.fixture(scope="module")
def outcome(shared_data):
    return pd.read_parquet(shared_data / "scan" / "outcome.parquet")


@pytest.fixture(scope="module")
def instruments(shared_data):
    truth = json.loads((shared_data / "scan" / "truth.json").read_text())["exposures"]
    rows = [(t, s) for t, e in truth.items() for s in e["plink_instruments_r2_0.001_kb_10000"]]
    return pd.DataFrame(rows, columns=["trait", "SNP"])


def _dosage_correlation(panel, a, b):
    """Independent phase reference: Pearson correlation of A1 counts over people called at both."""
    ga, gb = panel.genotypes[a].astype(float), panel.genotypes[b].astype(float)
    both = (panel.genotypes[a] != MISSING) & (panel.genotypes[b] != MISSING)
    return np.corrcoef(ga[both], gb[both])[0, 1]


def test_golden_high_ld_pairs_are_found_with_plink_r2(panel, shared_data):
    pairs = pd.read_csv(shared_data / "ldref" / "golden_r2_pairs.tsv", sep="\t")
    near = pairs[(pairs["DIST_BP"] >= 0) & (pairs["DIST_BP"] <= 500_000)]
    strong, weak = near[near["R2_EM"] >= 0.8], near[(near["R2_EM"] < 0.8) & (near["R2_EM"] > 0.5)]
    assert len(strong) >= 5 and len(weak) >= 1
    for pair in strong.itertuples():
        found = find_proxies(panel, [pair.SNP_A], [pair.SNP_B], r2_min=0.8, kb=500)
        assert found["proxy"].tolist() == [pair.SNP_B]
        assert found["r2"].iloc[0] == pytest.approx(pair.R2_EM, abs=1e-5)
        assert found["distance"].iloc[0] == pair.DIST_BP
    for pair in weak.itertuples():
        assert len(find_proxies(panel, [pair.SNP_A], [pair.SNP_B], r2_min=0.8, kb=500)) == 0


def test_ranking_threshold_window_and_phase(panel):
    targets = panel.snp[[100, 5000, 20000, 30000]]
    available = panel.snp[::2]
    found = find_proxies(panel, targets, available, r2_min=0.9, kb=250)
    assert len(found) > 0 and (found["r2"] >= 0.9).all()
    assert (found["distance"] <= 250_000).all()
    assert not set(found["proxy"]) - set(available)
    assert (found["target"] != found["proxy"]).all()
    for _, group in found.groupby("target"):
        key = list(zip(-group["r2"], group["distance"]))
        assert key == sorted(key)
        assert group["rank"].tolist() == list(range(1, len(group) + 1))
    for row in found.itertuples():
        t, p = panel.locate([row.target, row.proxy])
        in_phase = _dosage_correlation(panel, t, p) > 0
        assert (row.d > 0) == in_phase
        assert row.target_a1 == panel.a1[t]
        assert row.proxy_a1 == (panel.a1[p] if in_phase else panel.a2[p])


def test_substituted_rows_carry_the_target_alleles(panel, outcome, instruments):
    targets = instruments["SNP"].drop_duplicates().sample(40, random_state=3)
    reduced = outcome[~outcome["SNP"].isin(targets)].copy()
    reduced = record(reduced, "read", {"outcome": len(reduced)})  # an earlier step's records
    result = substitute_proxies(instruments, reduced, panel)
    assert counts_of(result)["step"].iloc[0] == "read"  # carried forward
    proxied = result[result["proxy"]]
    assert len(proxied) >= 20
    assert set(proxied["SNP"]) <= set(targets)
    assert (proxied["proxy_r2"] >= 0.8).all()
    assert not set(proxied["proxy_snp"]) & set(targets)
    # Compare with the target's real outcome row, aligned to the same effect allele. In-phase
    # alleles of variants in strong LD have nearly equal frequencies, so a wrong mapping
    # (effect allele swapped) would show as eaf ≈ 1 − eaf.
    merged = proxied.merge(outcome, on="SNP", suffixes=("", "_true"))
    same = merged["effect_allele"] == merged["effect_allele_true"]
    assert (same | (merged["effect_allele"] == merged["other_allele_true"])).all()
    eaf_true = np.where(same, merged["eaf_true"], 1 - merged["eaf_true"])
    beta_true = np.where(same, merged["beta_true"], -merged["beta_true"])
    strong = merged["proxy_r2"] >= 0.95
    assert strong.sum() >= 10
    np.testing.assert_allclose(merged["eaf"][strong], eaf_true[strong], atol=0.06)
    assert np.corrcoef(merged["beta"], beta_true)[0, 1] > 0.8

    log = audit_of(result)
    used = log[log["reason"] == "proxy used"]
    assert set(used["SNP"]) == set(proxied["SNP"])
    assert used["detail"].str.match(r"rs\d+ via rs\d+ r2=\d\.\d{3}").all()
    counts = counts_of(result)
    assert (counts["n_in"] == counts["n_kept"] + counts["n_dropped"]).all()
    counts = counts[counts["step"] == "proxies"]
    assert counts["n_in"].sum() == len(instruments)
    missing = log[log["reason"] == "missing in outcome"]
    assert set(missing["SNP"]) == set(targets) - set(proxied["SNP"])
    assert counts["n_dropped"].sum() == len(missing)


def test_strand_flipped_outcome_maps_the_same(panel, outcome, instruments):
    target = instruments["SNP"].iloc[0]
    reduced = outcome[outcome["SNP"] != target]
    plain = substitute_proxies(instruments.iloc[:1], reduced, panel)
    row = plain[plain["proxy"]].iloc[0]
    flip = {"A": "T", "T": "A", "C": "G", "G": "C"}
    palindromic = flip[row["proxy_effect_allele"]] == row["proxy_other_allele"]
    assert not palindromic  # this proxy is non-palindromic, so the other strand is unambiguous
    flipped = reduced.copy()
    at = flipped["SNP"] == row["proxy_snp"]
    flipped.loc[at, "effect_allele"] = flipped.loc[at, "effect_allele"].map(flip)
    flipped.loc[at, "other_allele"] = flipped.loc[at, "other_allele"].map(flip)
    again = substitute_proxies(instruments.iloc[:1], flipped, panel)
    row2 = again[again["proxy"]].iloc[0]
    assert (row2["SNP"], row2["effect_allele"], row2["other_allele"]) == (row["SNP"], row["effect_allele"], row["other_allele"])


def test_allele_mapping_rules():
    # proxy A/G, in phase: target C with proxy A (so target T with proxy G)
    args = dict(proxy_a1="A", proxy_a2="G", target_a1="C", target_a2="T")
    assert map_proxy_alleles("A", "G", 0.2, **args) == ("C", "T")  # straight
    assert map_proxy_alleles("G", "A", 0.8, **args) == ("T", "C")  # switch
    assert map_proxy_alleles("T", "C", 0.2, **args) == ("C", "T")  # other strand, straight
    assert map_proxy_alleles("C", "T", 0.8, **args) == ("T", "C")  # other strand, switch
    assert map_proxy_alleles("A", None, 0.2, **args) == ("C", "T")  # other allele unknown
    assert map_proxy_alleles("A", "C", 0.2, **args) is None  # not the panel's alleles
    # palindromic proxy A/T, panel minor allele A: frequency decides which allele is which
    pal = dict(proxy_a1="A", proxy_a2="T", target_a1="C", target_a2="G", proxy_minor="A")
    assert map_proxy_alleles("A", "T", 0.1, **pal) == ("C", "G")
    assert map_proxy_alleles("A", "T", 0.9, **pal) == ("G", "C")
    assert map_proxy_alleles("T", "A", 0.1, **pal) == ("C", "G")
    assert map_proxy_alleles("A", "T", 0.45, **pal) is None  # ambiguous frequency
    assert map_proxy_alleles("A", "T", None, **pal) is None
    assert map_proxy_alleles("A", "T", 0.1, palindromes=False, **pal) is None
    assert map_proxy_alleles("A", "T", 0.1, **{**pal, "proxy_minor": None}) is None  # minor unknown


def test_no_proxy_is_recorded_as_missing(panel, outcome):
    instruments = pd.DataFrame({"trait": ["x", "x", "x"], "SNP": ["rs_not_in_panel", panel.snp[10], panel.snp[11]]})
    reduced = outcome[~outcome["SNP"].isin(instruments["SNP"])]
    result = substitute_proxies(instruments, reduced, panel, r2_min=1.0, kb=0.001)
    assert not result["proxy"].any() and len(result) == len(reduced)
    log = audit_of(result)
    assert sorted(log["SNP"]) == sorted(instruments["SNP"])
    assert (log["reason"] == "missing in outcome").all()
    assert log.loc[log["SNP"] == "rs_not_in_panel", "detail"].iloc[0].endswith("LD panel (no proxy search)")
    counts = counts_of(result).iloc[-1]
    assert (counts["n_in"], counts["n_kept"], counts["n_dropped"]) == (3, 0, 3)


def test_outcome_without_alleles_is_a_clear_error(panel):
    with pytest.raises(ValueError, match="no effect allele column"):
        substitute_proxies(pd.DataFrame({"SNP": ["rs1"]}), pd.DataFrame({"SNP": ["rs2"], "beta": [0.1]}), panel)
