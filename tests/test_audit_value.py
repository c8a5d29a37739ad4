"""The audit as a value (``mrjax.audit.Audit``, ``Audited``): combination, balance, the
``audited=`` form of every data step against the default (deprecated) form, and a scan whose
records travel as values only."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

import mrjax
from mrjax.audit import COUNT_COLUMNS, Audit, Audited, audit_of, counts_of, drops, step_audit, unlisted_of
from mrjax.gwas import filter_weak, harmonise, read_gwas, select_instruments
from mrjax.ld import LDPanel, clump, substitute_proxies
from mrjax.scan import demo_config, example_data_folder

DATA = example_data_folder()
P = 5e-8


@pytest.fixture(scope="module")
def panel():
    return LDPanel.load(str(DATA / "demo_panel"))


@pytest.fixture(scope="module")
def chains(panel):
    """The demo's exposures -> instruments -> harmonised, once with values, once the old way."""
    exposures = read_gwas(DATA / "exposures.parquet", audited=True)
    outcome = read_gwas(DATA / "outcome.tsv.gz", trait="outcome", audited=True)
    steps = {"read": exposures}
    steps["select"] = select_instruments(exposures, p=P, audited=True)
    steps["clump"] = clump(steps["select"], panel, p1=P, audited=True)
    steps["strength"] = filter_weak(steps["clump"], audited=True)
    reduced = Audited(outcome.table.iloc[::2].reset_index(drop=True), outcome.audit)  # proxies have work to do
    steps["proxies"] = substitute_proxies(steps["strength"], reduced, panel, audited=True)
    steps["harmonise"] = harmonise(steps["strength"], steps["proxies"], audited=True)

    old = {"read": read_gwas(DATA / "exposures.parquet")}
    old["select"] = select_instruments(old["read"], p=P)
    old["clump"] = clump(old["select"], panel, p1=P)
    old["strength"] = filter_weak(old["clump"])
    old_outcome = read_gwas(DATA / "outcome.tsv.gz", trait="outcome")
    old_reduced = old_outcome.iloc[::2].reset_index(drop=True)
    old["proxies"] = substitute_proxies(old["strength"], old_reduced, panel)
    old["harmonise"] = harmonise(old["strength"], old["proxies"])
    return steps, old


@pytest.mark.parametrize("step", ["read", "select", "clump", "strength", "proxies", "harmonise"])
def test_the_audited_form_gives_the_default_forms_table_and_records(chains, step):
    new, old = chains
    assert isinstance(new[step], Audited) and isinstance(old[step], pd.DataFrame)
    table, records = new[step]
    pd.testing.assert_frame_equal(table, old[step])
    pd.testing.assert_frame_equal(records.unlisted, unlisted_of(old[step]), check_dtype=False)
    pd.testing.assert_frame_equal(records.drops, audit_of(old[step]), check_dtype=False, check_categorical=False)
    pd.testing.assert_frame_equal(records.counts, counts_of(old[step]), check_dtype=False)
    # audit_of / counts_of / unlisted_of accept the value too
    assert audit_of(new[step]) is records.drops and counts_of(new[step]) is records.counts
    assert unlisted_of(new[step]) is records.unlisted
    assert not {"audit", "audit_counts", "audit_unlisted"} & set(table.attrs)  # the value form leaves attrs alone


def test_records_combined_across_steps_balance_and_chain(chains):
    steps, _ = chains
    records = steps["harmonise"].audit.check()
    counts = records.counts
    # the exposures' steps, then the outcome's read (carried by proxies), then proxies and harmonise
    assert list(dict.fromkeys(counts["step"])) == ["read", "select", "clump", "strength", "proxies", "harmonise"]
    assert counts.loc[counts["step"] == "read", "trait"].tolist()[-1] == "outcome"
    assert (counts["n_in"] == counts["n_kept"] + counts["n_dropped"]).all()
    by = counts.set_index(["step", "trait"])
    exposures = sorted(set(counts.loc[counts["step"] == "select", "trait"]))
    assert len(exposures) == 10
    for trait in exposures:  # each step starts where the one before ended
        for before, after in [("read", "select"), ("select", "clump"), ("clump", "strength"), ("strength", "proxies"),
                              ("strength", "harmonise")]:
            assert by.loc[(after, trait), "n_in"] == by.loc[(before, trait), "n_kept"], (before, after, trait)
    # every listed drop of a step is counted in its n_dropped (the rest are counted-only)
    listed = records.drops[records.drops["reason"] != "proxy used"]
    listed = listed[listed["reason"] != "one allele only"].groupby(["step", "trait"], observed=True).size()
    unlisted = records.unlisted.groupby(["step", "trait"])["n"].sum()
    total = listed.add(unlisted, fill_value=0).reindex(by.index, fill_value=0)
    assert (total.to_numpy() == by["n_dropped"].to_numpy()).all()
    assert (records.drops["reason"] == "proxy used").any() and (records.drops["reason"] == "missing in outcome").any()


def test_combination_keeps_order_and_selection_by_trait():
    a = step_audit("select", {"A": 3, "B": 2}, pd.Series({"A": 2, "B": 1}), drops("select", ["A", "B"], ["rs1", "rs2"],
                                                                                  "bad value"))
    b = step_audit("strength", {"A": 2}, pd.Series({"A": 1}), drops("strength", "A", ["rs3"], "weak instrument"))
    both = a + b
    assert both.counts["step"].tolist() == ["select", "select", "strength"]
    assert both.drops["SNP"].tolist() == ["rs1", "rs2", "rs3"]
    assert Audit.combine(a, b).drops.equals(both.drops) and Audit.combine(b, a).drops["SNP"].tolist() == ["rs3", "rs1", "rs2"]
    only_a = both.for_traits("A")
    assert only_a.counts["trait"].tolist() == ["A", "A"] and only_a.drops["SNP"].tolist() == ["rs1", "rs3"]
    assert both.for_steps("strength").counts["step"].tolist() == ["strength"]
    assert not Audit.empty() and (Audit.empty() + a).counts.equals(a.counts)
    assert len(a.counts) == 2  # a itself unchanged by the combinations


def test_an_unbalanced_step_is_an_error_naming_it():
    with pytest.raises(AssertionError, match="'clump'"):
        step_audit("clump", {"A": 5}, pd.Series({"A": 3}), drops("clump", "A", ["rs1"], "clumped"))
    bad = Audit(counts=pd.DataFrame([["harmonise", "A", 4, 2, 1]], columns=COUNT_COLUMNS))
    with pytest.raises(AssertionError, match="'harmonise'"):
        (Audit.empty() + bad).check()


def test_no_usable_snp_error_carries_the_records_as_a_value(chains):
    steps, _ = chains
    instruments = steps["strength"]
    outcome = steps["proxies"].table.assign(beta=float("nan"))
    with pytest.raises(mrjax.gwas.NoUsableSNPError) as caught:
        harmonise(instruments, Audited(outcome, Audit.empty()), audited=True)
    records = caught.value.audit
    assert isinstance(records, Audit) and set(records.counts["step"]) >= {"read", "harmonise"}
    harmonised = records.counts[records.counts["step"] == "harmonise"]
    assert (harmonised["n_kept"] == 0).all()


def test_the_scan_package_has_no_attrs():
    """No module of the scan reads or writes ``DataFrame.attrs``: records travel as values."""
    folder = Path(mrjax.__file__).parent / "scan"
    found = [f"{p.name}:{i}" for p in sorted(folder.glob("*.py"))
             for i, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"\.attrs\b", line)]
    assert not found, found


def test_a_scan_writes_its_audit_from_values_alone(tmp_path, monkeypatch):
    """With the deprecated path disabled (reading records from ``attrs`` raises), a scan still
    writes its audit tables, balanced, with every step of both directions."""
    from mrjax import audit
    from mrjax.scan.run import run_scan

    def refuse(*args, **kwargs):
        raise AssertionError("a scan read audit records from DataFrame.attrs")

    monkeypatch.setattr(audit, "from_attrs", refuse)
    monkeypatch.setattr(audit, "records_of", refuse)
    monkeypatch.setattr(audit, "to_attrs", refuse)
    run_scan(demo_config(tmp_path, methods=("ivw",), n_boot=10, presso_draws=0, figures=False, report=False,
                         chunk_size=4))
    counts = pd.read_csv(tmp_path / "audit_counts.tsv", sep="\t")
    drops_written = pd.read_csv(tmp_path / "audit.tsv", sep="\t")
    assert (counts["n_in"] == counts["n_kept"] + counts["n_dropped"]).all()
    forward = set(counts.loc[counts["direction"] == "forward", "step"])
    assert forward == {"read", "select", "clump", "strength", "proxies", "harmonise"}
    assert {"select", "clump", "harmonise"} <= set(counts.loc[counts["direction"] == "reverse", "step"])
    assert len(drops_written) and set(drops_written["direction"]) == {"forward", "reverse"}


def test_the_estimators_take_the_harmonised_value_as_it_comes(chains):
    """``mr(harmonise(..., audited=True))`` estimates the pair's table (no unpacking needed)."""
    new, _ = chains
    from_value = mrjax.mr(new["harmonise"], methods=["ivw", "egger_regression"])
    from_table = mrjax.mr(new["harmonise"].table, methods=["ivw", "egger_regression"])
    pd.testing.assert_frame_equal(from_value, from_table)
    assert len(from_value) > 0
    pd.testing.assert_frame_equal(mrjax.heterogeneity(new["harmonise"]), mrjax.heterogeneity(new["harmonise"].table))
