"""End to end: the scan pipeline on ``../shared/data/scan`` (a subset of its 50 exposures).

Checks against the oracle in ``scan/truth.json`` (plink 1.9 clumping, TwoSampleMR ``mr_ivw``),
an independent Benjamini–Hochberg computation, the reverse direction, resumption after a
kill, and the HTML report.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mrjax.audit import Audited, audit_of, counts_of
from mrjax.scan import STOP_AFTER_ENV, ScanConfig, ScanInterrupted, run_scan
from mrjax.scan import run as scan_run

HARMONISE = scan_run._harmonise_block

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
    # the outcome file has case/control counts (odds ratios); the immune-like exposures, the
    # reverse direction's outcomes, are continuous (b)
    assert set(results.loc[results["direction"] == "forward", "effect_scale"]) == {"OR"}
    assert set(reverse["effect_scale"]) == {"beta"}


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
    """Killed after its second block (of three: five exposures in chunks of two), the scan
    resumes at the third and writes the bytes of an uninterrupted run."""
    reference, reference_out = scan
    out = tmp_path / "resumed"
    config = config_for(scan_inputs, out)
    monkeypatch.setenv(STOP_AFTER_ENV, "2")
    with pytest.raises(ScanInterrupted):
        run_scan(config)
    assert len(list((out / ".checkpoints").glob("*/block__*.pkl"))) == 2
    assert not (out / "results.tsv").exists()
    assert "stopped" in (out / "RUNNING").read_text()  # the folder says it is unfinished
    stale = [out / ".results.tsv.abc123.tmp", out / "figures" / ".forest_plot.png.x1y2.tmp"]
    for path in stale:  # what a kill during the writing leaves behind
        path.parent.mkdir(exist_ok=True)
        path.write_text("partial")
    monkeypatch.delenv(STOP_AFTER_ENV)
    computed = []
    monkeypatch.setattr(scan_run, "_harmonise_block", lambda block, *args: computed.append(block.name) or HARMONISE(block, *args))
    resumed = run_scan(config)
    assert computed == ["00002-0000"]  # only the unfinished block
    assert resumed.resumed_traits == 4  # the two finished chunks' exposures
    assert not (out / "RUNNING").exists() and (out / "manifest.json").is_file()
    assert not any(path.exists() for path in stale)
    for name in TABLES:
        pd.testing.assert_frame_equal(resumed.tables[name], reference.tables[name], check_exact=True, obj=name)
    written = sorted(p.relative_to(reference_out) for p in reference_out.rglob("*")
                     if p.is_file() and p.suffix in (".tsv", ".parquet") and ".checkpoints" not in p.parts)
    assert Path("results/direction=reverse/block=00002-0000/part-0.parquet") in written
    for path in written:
        assert (out / path).read_bytes() == (reference_out / path).read_bytes(), path


def test_results_dataset_holds_the_results_table(scan):
    import pyarrow.dataset as ds

    result, out = scan
    dataset = ds.dataset(out / "results", partitioning="hive").to_table().to_pandas()
    assert sorted(set(dataset["block"].astype(str))) == ["00000-0000", "00001-0000", "00002-0000"]
    key = ["direction", "exposure", "outcome", "method_id"]
    table = pd.read_parquet(out / "results.parquet")
    dataset = dataset.astype({"direction": str}).sort_values(key).reset_index(drop=True)[table.columns]
    pd.testing.assert_frame_equal(dataset, table.sort_values(key).reset_index(drop=True), check_dtype=False)


# --- the audit trail of a forward-only scan with LD proxies --------------------------------

AUDITED = ["trait_014", "trait_033"]


@pytest.fixture(scope="module")
def audited_scan(shared_data, scan_inputs, tmp_path_factory):
    """A forward-only scan of two exposures with proxies on against an edited outcome: two of trait_014's
    instruments lose their whole ±600 kb neighbourhood (no proxy can stand in), a third only
    its own row (a proxy may), and the outcome gains a duplicate row and a row with no beta
    (read-time drops)."""
    folder = tmp_path_factory.mktemp("audited_inputs")
    truth = scan_inputs["truth"]["exposures"]
    index_snps = truth["trait_014"]["plink_instruments_r2_0.001_kb_10000"]
    bim = pd.read_csv(shared_data / "ldref" / "eur_sim.bim", sep="\t", header=None, names=["chr", "SNP", "cm", "pos", "a1", "a2"])
    located = bim.set_index("SNP").loc[index_snps[:2]]
    gone = set(index_snps[2:3])
    for chrom, pos in zip(located["chr"], located["pos"]):
        gone |= set(bim.loc[(bim["chr"] == chrom) & ((bim["pos"] - pos).abs() <= 600_000), "SNP"])
    outcome = pd.read_parquet(shared_data / "scan" / "outcome.parquet")
    outcome = outcome[~outcome["SNP"].isin(gone)].reset_index(drop=True)
    no_beta = outcome.iloc[[10]].assign(beta=np.nan)
    edited = pd.concat([outcome, outcome.iloc[[5]], no_beta], ignore_index=True)
    edited.to_parquet(folder / "outcome.parquet", index=False)
    exposures = pd.read_parquet(shared_data / "scan" / "exposures.parquet", filters=[("exposure", "in", AUDITED)])
    exposures.astype({"exposure": str}).to_parquet(folder / "exposures.parquet", index=False)
    config = config_for(scan_inputs, tmp_path_factory.mktemp("audited_out"), exposures=(str(folder / "exposures.parquet"),),
                        outcome=str(folder / "outcome.parquet"),
                        proxies=True, bidirectional=False, methods=("ivw",), presso_draws=0, figures=False, report=False)
    return run_scan(config), config, {"removed": index_snps[:2], "duplicate": outcome["SNP"].iloc[5],
                                      "no_beta": outcome["SNP"].iloc[10]}


def test_missing_instruments_are_recorded_once(audited_scan):
    result, _, edits = audited_scan
    audit = result.tables["audit"]
    missing = audit[audit["reason"] == "missing in outcome"]
    assert set(edits["removed"]) <= set(missing.loc[missing["trait"] == "trait_014", "SNP"])
    repeated = missing[missing.duplicated(["direction", "trait", "SNP"], keep=False)]
    assert repeated.empty, repeated.to_string()
    assert set(missing["step"]) == {"proxies"}  # the step that first decides it


def test_audit_counts_balance_and_chain(audited_scan):
    result, _, _ = audited_scan
    counts = result.tables["audit_counts"]
    np.testing.assert_array_equal(counts["n_in"], counts["n_kept"] + counts["n_dropped"])
    forward = counts[counts["trait"].isin(AUDITED)].set_index(["trait", "step"])
    for trait in AUDITED:
        # what one step keeps is what the next step receives
        assert forward.loc[(trait, "proxies"), "n_in"] == forward.loc[(trait, "strength"), "n_kept"], trait
        assert forward.loc[(trait, "harmonise"), "n_in"] == forward.loc[(trait, "proxies"), "n_kept"], trait
    drops = result.tables["audit"]
    listed = drops[drops["reason"] != "proxy used"].groupby(["trait", "step"]).size()
    for (trait, step), n in listed.items():
        if step not in ("read", "select"):  # those steps only count "not significant" drops
            assert counts.set_index(["trait", "step"]).loc[(trait, step), "n_dropped"] == n, (trait, step)


def test_forward_scan_audits_the_outcome_read(audited_scan):
    result, config, edits = audited_scan
    audit = result.tables["audit"]
    read = audit[(audit["step"] == "read") & (audit["trait"] == "outcome")]
    assert set(zip(read["SNP"], read["reason"])) == {(edits["duplicate"], "duplicate"), (edits["no_beta"], "bad value")}
    assert set(read["direction"]) == {"forward"}
    counts = result.tables["audit_counts"]
    row = counts[(counts["step"] == "read") & (counts["trait"] == "outcome")]
    assert len(row) == 1 and int(row["n_dropped"].iloc[0]) == 2
    written = pd.read_csv(Path(config.out) / "audit.tsv", sep="\t")
    assert ((written["step"] == "read") & (written["trait"] == "outcome")).sum() == 2
    # a re-run that finds every exposure checkpointed still reports them
    resumed = run_scan(config)
    assert resumed.resumed_traits == len(AUDITED)
    pd.testing.assert_frame_equal(resumed.tables["audit"], result.tables["audit"])


def test_an_exposure_without_index_snps_is_data_not_a_warning(scan_inputs):
    """Clumping warns NoIndexSNPWarning for a trait whose candidates are all absent from the
    panel; inside a scan that trait simply has no instruments (its audit says why)."""
    import warnings

    from mrjax.ld import LDPanel
    from mrjax.ld.clump import NoIndexSNPWarning
    from mrjax.outputs import StageTimer
    from mrjax.scan import select_and_clump

    exposures = pd.read_parquet(scan_inputs["exposures"])
    exposures = exposures[exposures["exposure"] == "trait_014"].rename(columns={"exposure": "trait", "samplesize": "n"})
    exposures["trait"] = exposures["trait"].astype(str)
    unknown = exposures[exposures["pval"] < 1e-5].assign(trait="not_in_panel")
    unknown["SNP"] = "rsunknown" + pd.Series(range(len(unknown)), index=unknown.index).astype(str)
    table = pd.concat([exposures, unknown], ignore_index=True)
    config = config_for(scan_inputs, "-")
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoIndexSNPWarning)
        instruments = select_and_clump(table, config, LDPanel.load(scan_inputs["ld_ref"]), StageTimer())
    assert set(instruments.table["trait"]) == {"trait_014"}
    clumped = counts_of(instruments).set_index(["step", "trait"]).loc[("clump", "not_in_panel")]
    assert clumped["n_kept"] == 0 and clumped["n_dropped"] == clumped["n_in"] == len(unknown)


def _trait_014_instruments(shared_data, scan_inputs):
    """The LD panel, a proxies-on config, trait_014's clumped instruments and the panel's bim
    table: the set-up of the look-up tests below."""
    from mrjax.ld import LDPanel
    from mrjax.outputs import StageTimer
    from mrjax.scan import select_and_clump

    panel = LDPanel.load(scan_inputs["ld_ref"])
    exposures = pd.read_parquet(scan_inputs["exposures"])
    exposures = exposures[exposures["exposure"] == "trait_014"].rename(columns={"exposure": "trait", "samplesize": "n"})
    config = config_for(scan_inputs, "-", proxies=True)
    instruments = select_and_clump(exposures, config, panel, StageTimer())
    bim = pd.read_csv(shared_data / "ldref" / "eur_sim.bim", sep="\t", header=None, names=["chr", "SNP", "cm", "pos", "a1", "a2"])
    return panel, config, instruments, bim


def test_an_exposure_with_every_instrument_missing_in_the_outcome(shared_data, scan_inputs):
    """Proxies come from the instrument's own chromosome: instruments of one chromosome
    against an outcome holding only the others are all "missing in outcome", once, at the proxies step,
    and the empty result still carries the exposure's earlier records."""
    from mrjax.outputs import StageTimer
    from mrjax.scan import look_up

    panel, config, (instruments, records), bim = _trait_014_instruments(shared_data, scan_inputs)
    chromosome = bim.loc[bim["SNP"].isin(instruments["SNP"]), "chr"].iloc[0]
    instruments = Audited(instruments[instruments["SNP"].isin(bim.loc[bim["chr"] == chromosome, "SNP"])], records)
    elsewhere = set(bim.loc[bim["chr"] != chromosome, "SNP"])
    outcome = pd.read_parquet(shared_data / "scan" / "outcome.parquet")
    outcome = outcome[outcome["SNP"].isin(elsewhere)].assign(trait="outcome").reset_index(drop=True)
    assert len(outcome) and len(instruments.table)
    pairs = look_up(instruments, outcome, config, panel, StageTimer())
    assert len(pairs.table) == 0
    audit, counts = audit_of(pairs), counts_of(pairs)
    missing = audit[audit["reason"] == "missing in outcome"]
    assert sorted(missing["SNP"]) == sorted(instruments.table["SNP"]) and set(missing["step"]) == {"proxies"}
    by_step = counts.set_index("step")
    assert by_step.loc["proxies", "n_in"] == by_step.loc["proxies", "n_dropped"] == len(instruments.table)
    assert "harmonise" not in by_step.index  # nothing entered it
    assert {"select", "clump", "strength"} <= set(by_step.index)


def test_a_pair_with_no_usable_snp_keeps_the_proxies_records(shared_data, scan_inputs):
    """When harmonise finds no usable SNP (here: every instrument the outcome has lacks its
    beta) the pair is empty, yet the proxies step's "missing in outcome" rows and harmonise's
    own reasons stay."""
    from mrjax.outputs import StageTimer
    from mrjax.scan import look_up

    panel, config, (instruments, records), bim = _trait_014_instruments(shared_data, scan_inputs)
    first = bim.set_index("SNP").loc[instruments["SNP"].iloc[0]]
    near = bim.loc[(bim["chr"] == first["chr"]) & ((bim["pos"] - first["pos"]).abs() <= 600_000), "SNP"]
    outcome = pd.read_parquet(shared_data / "scan" / "outcome.parquet").assign(trait="outcome")
    outcome = outcome[~outcome["SNP"].isin(near)].reset_index(drop=True)
    outcome.loc[outcome["SNP"].isin(instruments["SNP"]), "beta"] = np.nan
    pairs = look_up(Audited(instruments, records), outcome, config, panel, StageTimer())
    assert len(pairs.table) == 0
    missing = audit_of(pairs).query("reason == 'missing in outcome'")
    gone = set(instruments["SNP"]) & set(near)
    assert 0 < len(gone) < len(instruments)
    assert sorted(missing["SNP"]) == sorted(gone) and set(missing["step"]) == {"proxies"}
    counts = counts_of(pairs).set_index("step")
    assert counts.loc["harmonise", "n_in"] == counts.loc["proxies", "n_kept"] == len(instruments) - len(gone)
    assert counts.loc["harmonise", "n_dropped"] == counts.loc["harmonise", "n_in"]
    # harmonise's own reasons for the SNPs it could not use are kept too, one row each
    lost = audit_of(pairs).query("step == 'harmonise'")
    assert sorted(lost["SNP"]) == sorted(set(instruments["SNP"]) - gone)
    assert lost["reason"].str.len().gt(0).all()


# --- read counts and the reverse direction's cut of each exposure GWAS -----------------------


def test_each_exposure_read_is_counted_once(scan, scan_inputs):
    """A long table's read-time counts belong to each of its traits once, whatever the chunk
    size (they were repeated once per trait of a chunk)."""
    counts = scan[0].tables["audit_counts"]
    read = counts[(counts["step"] == "read") & (counts["direction"] == "forward")]
    assert sorted(read["trait"]) == sorted(TRAITS)
    rows = pd.read_parquet(scan_inputs["exposures"])["exposure"].value_counts()
    assert dict(zip(read["trait"], read["n_in"])) == {t: int(rows[t]) for t in TRAITS}


def test_reverse_lookup_with_proxies_equals_the_whole_exposure_gwas(shared_data, scan_inputs, tmp_path):
    """The reverse direction looks the outcome's instruments up in a cut of each exposure GWAS
    (the instruments and their possible LD proxies); with proxies on, its harmonised
    instruments and audit equal a look-up in the whole GWAS of each exposure."""
    from mrjax.ld import LDPanel
    from mrjax.outputs import StageTimer
    from mrjax.scan import look_up, read_table, select_and_clump

    traits = ["trait_019", "trait_033"]  # both need a proxy for one outcome instrument
    exposures = pd.read_parquet(shared_data / "scan" / "exposures.parquet", filters=[("exposure", "in", traits)])
    exposures["exposure"] = exposures["exposure"].astype(str)
    exposures.to_parquet(tmp_path / "exposures.parquet", index=False)
    config = config_for({**scan_inputs, "exposures": str(tmp_path / "exposures.parquet")}, tmp_path / "out",
                        proxies=True, action=2, methods=("ivw",), presso_draws=0, figures=False, report=False)
    result = run_scan(config)
    reverse = result.tables["instruments"][result.tables["instruments"]["direction"] == "reverse"]
    audit = result.tables["audit"]

    panel = LDPanel.load(config.ld_ref)
    outcome_instruments = select_and_clump(read_table(config.outcome, config.read_options, trait="outcome"), config, panel, StageTimer())
    used = 0
    for trait in traits:
        whole = read_table(str(tmp_path / "exposures.parquet"), config.read_options)
        whole = whole[whole["trait"] == trait].reset_index(drop=True)
        whole.attrs = {}
        expected, records = look_up(outcome_instruments, whole, config, panel, StageTimer())
        got = reverse[reverse["outcome"] == trait].drop(columns="direction").reset_index(drop=True)
        pd.testing.assert_frame_equal(got[expected.columns], expected.reset_index(drop=True), check_dtype=False)
        records = records.for_steps(["proxies", "harmonise"]).drops
        mine = audit[(audit["direction"] == "reverse") & (audit["outcome"] == trait)]
        assert sorted(zip(mine["SNP"], mine["reason"])) == sorted(zip(records["SNP"], records["reason"]))
        used += int((records["reason"] == "proxy used").sum())
    assert used >= 2  # the proxy path was exercised


def test_effect_scale_per_reverse_row_follows_its_exposure_file(shared_data, scan_inputs):
    """Reverse rows (an exposure as outcome) take their own file's scale when the exposure
    files differ; --exposure-type / --outcome-type override the detection."""
    from mrjax.scan.assemble import with_effect_scale
    from mrjax.scan.inputs import ExposureSource, OutcomeSource

    binary, continuous = str(shared_data / "scan" / "outcome.parquet"), str(shared_data / "scan" / "exposures.parquet")
    sources = [ExposureSource("cases", binary, False), ExposureSource("levels", continuous, False)]
    results = pd.DataFrame({"direction": ["forward", "forward", "reverse", "reverse"],
                            "exposure": ["cases", "levels", "outcome", "outcome"], "outcome": ["outcome", "outcome", "cases", "levels"]})
    outcomes = [OutcomeSource(scan_inputs["outcome"], "outcome")]
    scaled = with_effect_scale(results, config_for(scan_inputs, "-"), sources, outcomes)
    assert scaled["effect_scale"].tolist() == ["OR", "OR", "OR", "beta"]
    declared = with_effect_scale(results, config_for(scan_inputs, "-", outcome_type="continuous", exposure_type="binary"),
                                 sources, outcomes)
    assert declared["effect_scale"].tolist() == ["beta", "beta", "OR", "OR"]


# --- many outcomes ---------------------------------------------------------------------------

PER_PAIR = ["results", "heterogeneity", "pleiotropy", "leave_one_out", "single_snp", "presso", "instruments"]


def _pair_rows(table: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """The rows of one scanned outcome (forward: its outcome column; reverse: its exposure)."""
    mine = ((table["direction"] == "forward") & (table["outcome"] == outcome)) | (
        (table["direction"] == "reverse") & (table["exposure"] == outcome))
    return table[mine].reset_index(drop=True)


def test_a_scan_of_many_outcomes_equals_one_scan_per_outcome(scan_inputs, tmp_path):
    """Every exposure against two outcomes in one scan gives, pair for pair, the tables of two
    single-outcome scans; with correct_per_outcome the q-values agree too."""
    base = pd.read_parquet(scan_inputs["outcome"])
    second = base.assign(beta=base["beta"] * 0.5 + 0.001)  # a different outcome on the same variants
    paths = {"outcome_a": tmp_path / "outcome_a.parquet", "outcome_b": tmp_path / "outcome_b.parquet"}
    base.to_parquet(paths["outcome_a"], index=False)
    second.to_parquet(paths["outcome_b"], index=False)
    settings = dict(methods=("ivw", "egger_regression", "weighted_median"), n_boot=50, presso_draws=100,
                    figures=False, report=False, outcome_name=None, correct_per_outcome=True)
    many = run_scan(config_for(scan_inputs, tmp_path / "many", outcome=tuple(str(p) for p in paths.values()), **settings))
    for name, path in paths.items():
        single = run_scan(config_for(scan_inputs, tmp_path / name, outcome=str(path), **settings))
        for table in PER_PAIR:
            got = _pair_rows(many.tables[table], name)
            want = single.tables[table]
            assert len(want), table
            # Not bit-for-bit: a different batch composition changes XLA's vectorised loops, so
            # values agree to rounding (and the float32 bootstrap order statistics to ~1e-8).
            pd.testing.assert_frame_equal(got[want.columns], want, check_exact=False, rtol=1e-7, atol=1e-12,
                                          obj=f"{table} of {name}")
    results = many.tables["results"]
    assert set(results.loc[results["direction"] == "forward", "outcome"]) == set(paths)


def test_many_outcomes_correct_across_every_pair_by_default(scan_inputs, tmp_path):
    base = pd.read_parquet(scan_inputs["outcome"])
    paths = [tmp_path / "o1.parquet", tmp_path / "o2.parquet"]
    base.to_parquet(paths[0], index=False)
    base.assign(beta=-base["beta"]).to_parquet(paths[1], index=False)
    result = run_scan(config_for(scan_inputs, tmp_path / "out", outcome=tuple(map(str, paths)), methods=("ivw",),
                                 presso_draws=0, figures=False, report=False, outcome_name=None, bidirectional=False))
    ivw = result.tables["results"]
    assert ivw["outcome"].nunique() == 2
    np.testing.assert_allclose(ivw["qval_fdr"], _bh(ivw["pval"].to_numpy()), rtol=1e-12)
