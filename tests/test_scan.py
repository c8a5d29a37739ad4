"""End to end: the scan pipeline on ``../shared/data/scan`` (a subset of its 50 exposures).

Checks against the oracle in ``scan/truth.json`` (plink 1.9 clumping, TwoSampleMR ``mr_ivw``),
an independent Benjamini–Hochberg computation, the reverse direction, resumption after a
kill, and the HTML report.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import pytest

from mrjax.pipeline import STOP_AFTER_ENV, ScanConfig, ScanInterrupted, run_scan

# Two causal exposures (007 with pleiotropic outliers, 014), one with a palindromic
# intermediate-EAF instrument (025) and two nulls: small enough to run in seconds.
TRAITS = ["trait_007", "trait_014", "trait_025", "trait_030", "trait_041"]
TABLES = ["results", "heterogeneity", "pleiotropy", "leave_one_out", "single_snp", "presso", "instruments", "audit"]


@pytest.fixture(scope="module")
def scan_inputs(shared_data, tmp_path_factory):
    """The chosen exposures as one long parquet table, plus the outcome, panel and truth."""
    folder = tmp_path_factory.mktemp("scan_inputs")
    exposures = pd.read_parquet(shared_data / "scan" / "exposures.parquet", filters=[("exposure", "in", TRAITS)])
    exposures["exposure"] = exposures["exposure"].astype(str)
    exposures.to_parquet(folder / "exposures.parquet", index=False)
    truth = json.loads((shared_data / "scan" / "truth.json").read_text())
    return {
        "exposures": str(folder / "exposures.parquet"),
        "outcome": str(shared_data / "scan" / "outcome.parquet"),
        "ld_ref": str(shared_data / "ldref" / "eur_sim"),
        "truth": truth,
    }


def config_for(inputs, out, **changes) -> ScanConfig:
    # action 1 and no proxies: the oracle aligns every instrument present in the outcome,
    # palindromic ones included, and uses no proxies.
    settings = dict(
        exposures=(inputs["exposures"],), outcome=inputs["outcome"], out=str(out), ld_ref=inputs["ld_ref"],
        outcome_name="outcome", action=1, proxies=False, bidirectional=True, n_boot=200, presso_draws=500,
        seed=7, correction="none", methods=("ivw", "egger_regression", "weighted_median"), chunk_size=2,
    )
    settings.update(changes)
    return ScanConfig(**settings)


@pytest.fixture(scope="module")
def scan(scan_inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("scan_out")
    result = run_scan(config_for(scan_inputs, out))
    return result, out


def test_forward_instruments_are_plinks_index_snps(scan, scan_inputs):
    result, _ = scan
    truth = scan_inputs["truth"]["exposures"]
    instruments = result.tables["instruments"]
    audit = result.tables["audit"]
    forward = instruments[instruments["direction"] == "forward"]
    for trait in TRAITS:
        plink = set(truth[trait]["plink_instruments_r2_0.001_kb_10000"])
        used = set(forward.loc[(forward["exposure"] == trait) & forward["mr_keep"].astype(bool), "SNP"])
        missing = audit[(audit["direction"] == "forward") & (audit["reason"] == "missing in outcome") & (audit["trait"] == trait)]
        assert used | set(missing["SNP"]) == plink, trait
        assert len(used) == truth[trait]["ivw_on_plink_instruments"]["nsnp"], trait


def test_forward_ivw_matches_the_oracle(scan, scan_inputs):
    result, _ = scan
    truth = scan_inputs["truth"]["exposures"]
    results = result.tables["results"]
    ivw = results[(results["direction"] == "forward") & (results["method_id"] == "ivw")].set_index("exposure")
    assert sorted(ivw.index) == sorted(TRAITS)
    for trait in TRAITS:
        oracle = truth[trait]["ivw_on_plink_instruments"]
        # the oracle is rounded to 6 decimals from float32 inputs
        assert ivw.loc[trait, "b"] == pytest.approx(oracle["b"], rel=1e-5, abs=2e-6), trait
        assert ivw.loc[trait, "se"] == pytest.approx(oracle["se_mre"], rel=1e-5, abs=2e-6), trait
        assert ivw.loc[trait, "nsnp"] == oracle["nsnp"]


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg step-up, written out: q_(i) = min_{j >= i} p_(j) m / j, capped at 1."""
    m = len(p)
    order = np.argsort(p)
    q = np.empty(m)
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p[i] * m / rank)
        q[i] = running
    return q


def test_qvalues_are_benjamini_hochberg_per_direction_and_method(scan):
    results = scan[0].tables["results"]
    assert {"direction", "exposure", "outcome", "method_id", "method", "nsnp", "b", "se", "pval", "or",
            "or_lci95", "or_uci95", "qval_fdr", "pval_bonferroni"} <= set(results.columns)
    groups = results.dropna(subset=["pval"]).groupby(["direction", "method_id"])
    assert len(groups) >= 2
    for _, group in groups:
        p = group["pval"].to_numpy()
        np.testing.assert_allclose(group["qval_fdr"].to_numpy(), _bh(p), rtol=1e-12)
        np.testing.assert_allclose(group["pval_bonferroni"].to_numpy(), np.minimum(1, p * len(p)), rtol=1e-12)
    np.testing.assert_allclose(results["or"], np.exp(results["b"]), rtol=1e-12)


def test_reverse_direction_has_rows_for_every_exposure(scan):
    results = scan[0].tables["results"]
    reverse = results[results["direction"] == "reverse"]
    assert set(reverse["exposure"]) == {"outcome"}
    assert set(reverse["outcome"]) == set(TRAITS)
    assert reverse["method_id"].eq("ivw").sum() == len(TRAITS)
    assert np.isfinite(reverse.loc[reverse["method_id"] == "ivw", "b"]).all()


def test_outputs_are_written(scan):
    result, out = scan
    for name in ("results.tsv", "results.parquet", "heterogeneity.tsv", "pleiotropy.tsv", "presso.tsv",
                 "leave_one_out.tsv", "single_snp.tsv", "instruments.tsv", "audit.tsv", "manifest.json", "report.html"):
        assert (out / name).is_file(), name
    written = pd.read_parquet(out / "results.parquet")
    assert len(written) == len(result.tables["results"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 7
    assert manifest["parameters"]["bidirectional"] is True
    assert {"read", "clump", "harmonise", "estimate"} <= set(manifest["timings_s"])
    assert len(manifest["inputs"]) == 5 and all(len(i["sha256"]) == 64 for i in manifest["inputs"])
    assert not list(out.glob("**/*.tmp")), "temporary files left behind"


def test_report_embeds_every_figure(scan):
    result, out = scan
    figures = sorted((out / "figures").rglob("*.png"))
    assert len(result.significant) > 0, "the causal exposures should be nominally significant"
    per_trait = [f for f in figures if f.parent.name == "traits"]
    assert {f.name for f in figures if f.parent.name == "figures"} >= {"forest_plot.png", "scan_overview.png"}
    assert len(per_trait) == 3 * len(result.significant)  # scatter, leave-one-out and funnel per hit
    assert all(f.with_suffix(".svg").is_file() for f in figures)
    html = (out / "report.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    for figure in figures:
        assert base64.b64encode(figure.read_bytes()).decode() in html, figure.name


def test_a_killed_scan_resumes_to_identical_outputs(scan, scan_inputs, tmp_path, monkeypatch):
    reference, _ = scan
    out = tmp_path / "resumed"
    config = config_for(scan_inputs, out)
    monkeypatch.setenv(STOP_AFTER_ENV, "3")
    with pytest.raises(ScanInterrupted):
        run_scan(config)
    checkpoints = list((out / ".checkpoints").glob("*/forward__*.pkl")) + list((out / ".checkpoints").glob("*/reverse__*.pkl"))
    assert len(checkpoints) == 3
    assert not (out / "results.tsv").exists()
    monkeypatch.delenv(STOP_AFTER_ENV)
    resumed = run_scan(config)
    assert resumed.resumed_traits == 1  # one exposure had both directions checkpointed
    for name in TABLES:
        pd.testing.assert_frame_equal(resumed.tables[name], reference.tables[name], check_exact=True, obj=name)
