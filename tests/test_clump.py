"""plink 1.9 --clump reproduction: the 16 golden index lists, the scan oracle, audit, edge cases."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from mrjax.audit import audit_of, counts_of
from mrjax.gwas import unlisted_of
from mrjax.ld.clump import NoIndexSNPWarning, clump
from mrjax.ld.panel import LDPanel

TRAITS = ["exposure_a", "exposure_b", "exposure_c", "outcome"]
SETTINGS = [(0.001, 10000), (0.01, 250), (0.1, 250), (0.1, 10000)]


@pytest.fixture(scope="module")
def panel(shared_data):
    return LDPanel.load(shared_data / "ldref" / "eur_sim")


@pytest.fixture(scope="module")
def inputs(shared_data):
    return {t: pd.read_csv(shared_data / "ldref" / "clump_inputs" / f"{t}.assoc.gz", sep=r"\s+") for t in TRAITS}


def _golden(shared_data, trait, r2, kb):
    path = shared_data / "ldref" / f"golden_clump_{trait}_r2_{r2}_kb_{kb}.txt"
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("trait", TRAITS)
@pytest.mark.parametrize("r2,kb", SETTINGS)
def test_golden_index_lists(panel, inputs, shared_data, trait, r2, kb):
    out = clump(inputs[trait], panel, r2=r2, kb=kb, p1=1e-5, p2=1.0)
    assert out["SNP"].tolist() == _golden(shared_data, trait, r2, kb)


def test_audit_balances_and_names_each_drop(panel, inputs):
    gwas = inputs["exposure_a"]
    out = clump(gwas, panel)
    log = audit_of(out)
    counts = counts_of(out)
    assert len(counts) == 1
    row = counts.iloc[0]
    not_significant = gwas.loc[gwas["P"] > 1e-5, "SNP"]
    assert row["n_in"] == len(gwas) == row["n_kept"] + row["n_dropped"]
    assert row["n_kept"] == len(out) and row["n_dropped"] == len(log) + len(not_significant)
    assert set(log["SNP"]) | set(out["SNP"]) | set(not_significant) == set(gwas["SNP"])
    # p > p1 rows (millions in a whole GWAS) are counted, not listed
    assert "not significant" not in set(log["reason"])
    assert unlisted_of(out).set_index("reason").loc["not significant", "n"] == len(not_significant)

    # "not in panel": exactly the p <= p1 variants absent from the .bim (plink's warnings).
    top = gwas[gwas["P"] <= 1e-5]
    absent = set(top["SNP"][panel.locate(top["SNP"]) < 0])
    assert absent and set(log.loc[log["reason"] == "not in panel", "SNP"]) == absent
    clumped = log[log["reason"] == "clumped"]
    leaders = clumped["detail"].str.removeprefix("clumped by ")
    assert clumped["detail"].str.startswith("clumped by rs").all()
    assert set(leaders) <= set(out["SNP"])


def test_missing_top_variants_can_be_kept(panel, inputs):
    gwas = inputs["exposure_a"]
    plain = clump(gwas, panel)
    kept = clump(gwas, panel, keep_missing=True)
    top = gwas[gwas["P"] <= 1e-5]
    absent = top[panel.locate(top["SNP"]) < 0]
    assert set(kept["SNP"]) == set(plain["SNP"]) | set(absent["SNP"])
    assert kept["P"].is_monotonic_increasing
    assert [s for s in kept["SNP"] if s in set(plain["SNP"])] == plain["SNP"].tolist()
    assert "not in panel" not in set(audit_of(kept)["reason"])


def test_many_traits_in_one_call(panel, inputs, shared_data):
    long = pd.concat([df.assign(trait=t) for t, df in inputs.items()], ignore_index=True)
    out = clump(long, panel, r2=0.01, kb=250)
    for t in TRAITS:
        assert out.loc[out["trait"] == t, "SNP"].tolist() == _golden(shared_data, t, 0.01, 250)
    counts = counts_of(out).set_index("trait")
    assert (counts["n_in"] == counts["n_kept"] + counts["n_dropped"]).all()
    assert counts.loc[TRAITS, "n_in"].tolist() == [len(inputs[t]) for t in TRAITS]
    assert out["trait"].drop_duplicates().tolist() == TRAITS


def test_input_order_does_not_matter(panel, inputs, shared_data):
    """Ties are broken by panel order, never by file order (exposure_c is sorted by SNP name)."""
    shuffled = inputs["exposure_c"].sample(frac=1.0, random_state=5)
    for r2, kb in SETTINGS:
        assert clump(shuffled, panel, r2=r2, kb=kb)["SNP"].tolist() == _golden(shared_data, "exposure_c", r2, kb)


def test_duplicate_snp_uses_smallest_p(panel, inputs, shared_data):
    gwas = inputs["outcome"]
    index_snp = _golden(shared_data, "outcome", 0.001, 10000)[0]
    extra = gwas[gwas["SNP"] == index_snp].assign(P=0.5e-5)  # listed again, larger p
    out = clump(pd.concat([gwas, extra], ignore_index=True), panel)
    assert out["SNP"].tolist() == _golden(shared_data, "outcome", 0.001, 10000)
    assert out["P"].iloc[0] == gwas.loc[gwas["SNP"] == index_snp, "P"].iloc[0]
    log = audit_of(out)
    assert log.loc[log["reason"] == "duplicate", "SNP"].tolist() == [index_snp]


def test_strict_r2_threshold_and_kb_radius(panel):
    """Two variants: they clump only when r² > threshold (strict) and |Δbp| < kb·1000."""
    rows = np.arange(0, 60)
    ld = panel.ld(0, rows[1:])
    j = 1 + int(np.nanargmax(np.where(ld.r2 < 0.999, ld.r2, -1)))  # a high but not perfect pair
    r2 = float(ld.r2[j - 1])
    distance = int(panel.pos[j] - panel.pos[0])
    gwas = pd.DataFrame({"SNP": [panel.snp[0], panel.snp[j]], "pval": [1e-10, 1e-9]})
    assert len(clump(gwas, panel, r2=r2, kb=1000)) == 2  # r² equal to the threshold: no clump
    assert len(clump(gwas, panel, r2=np.nextafter(r2, 0), kb=1000)) == 1
    assert len(clump(gwas, panel, r2=0.1, kb=distance / 1000)) == 2  # exactly kb apart: outside
    assert len(clump(gwas, panel, r2=0.1, kb=(distance + 1) / 1000)) == 1


def test_zero_index_snps_warns_and_records(panel, inputs):
    gwas = inputs["outcome"]
    with pytest.warns(NoIndexSNPWarning, match="no index SNP"):
        out = clump(gwas, panel, p1=1e-300)
    assert len(out) == 0
    assert counts_of(out)["n_dropped"].iloc[0] == len(gwas)


def test_bad_p_values(panel):
    gwas = pd.DataFrame({"SNP": ["rs119608934", "rs123230245", "rs140519586"], "pval": [1e-8, np.nan, 1.5]})
    out = clump(gwas, panel)
    assert out["SNP"].tolist() == ["rs119608934"]
    log = audit_of(out)
    assert sorted(log.loc[log["reason"] == "bad value", "SNP"]) == ["rs123230245", "rs140519586"]
    with pytest.raises(ValueError, match=r"'pval'.*non-numeric.*rows \[1\]"):
        clump(pd.DataFrame({"SNP": ["rs1", "rs2"], "pval": ["1e-8", "abc"]}), panel)
    with pytest.raises(ValueError, match="'SNP' missing"):
        clump(pd.DataFrame({"rsid": ["rs1"], "pval": [1e-9]}), panel)
    with pytest.raises(ValueError, match="no p-value column"):
        clump(pd.DataFrame({"SNP": ["rs1"], "beta": [0.1]}), panel)
    with pytest.raises(ValueError, match="no rows"):
        clump(pd.DataFrame({"SNP": [], "pval": []}), panel)
    with pytest.raises(ValueError, match="r2 must be"):
        clump(gwas, panel, r2=1.5)


def test_panel_path_is_accepted(shared_data, inputs):
    out = clump(inputs["outcome"], shared_data / "ldref" / "eur_sim", r2=0.1, kb=250)
    assert out["SNP"].tolist() == _golden(shared_data, "outcome", 0.1, 250)


def test_scan_traits_match_plink_oracle(panel, shared_data):
    scan = shared_data / "scan"
    truth = json.loads((scan / "truth.json").read_text())
    gwas = pd.read_parquet(scan / "exposures.parquet", columns=["exposure", "SNP", "pval"])
    gwas = gwas[gwas["pval"] <= 1e-5]  # index SNPs depend only on these (README, rule 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = clump(gwas, panel, r2=0.001, kb=10_000, p1=1e-5)
    traits = _scan_truth(truth)
    assert len(traits) == 50
    for name, expected in traits.items():
        assert out.loc[out["exposure"] == name, "SNP"].tolist() == expected, name


def _scan_truth(truth):
    per_trait = truth.get("exposures", truth)
    return {
        name: entry["plink_instruments_r2_0.001_kb_10000"]
        for name, entry in per_trait.items()
        if isinstance(entry, dict) and "plink_instruments_r2_0.001_kb_10000" in entry
    }


def test_twosamplemr_columns(panel, inputs, shared_data):
    """TwoSampleMR exposure tables: pval.exposure and id.exposure name the p and the trait."""
    tsmr = pd.concat(
        [df.rename(columns={"P": "pval.exposure"}).assign(**{"id.exposure": t, "exposure": f"name {t}"}) for t, df in inputs.items()],
        ignore_index=True,
    )
    out = clump(tsmr, panel, r2=0.1, kb=250)
    for t in TRAITS:
        assert out.loc[out["id.exposure"] == t, "SNP"].tolist() == _golden(shared_data, t, 0.1, 250)
    assert set(counts_of(out)["trait"]) == set(TRAITS)
