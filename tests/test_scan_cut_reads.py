"""A scan of single-trait GWAS files that reads them whole (bi-directional, or with LD proxies)
keeps of each file only the rows it can use (``mrjax.scan.inputs.usable_rows``), so a chunk
holds one whole GWAS at a time, and looks each chunk's instruments up in the outcome's rows
they can use (``mrjax.scan.stages.rows_at``): every output table equals that of the scan that
keeps and searches the whole tables, and the rows held are the instruments, the reverse
look-ups' SNPs and one stand-in row per trait."""

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from mrjax.audit import Audit, Audited
from mrjax.scan import ScanConfig, run_scan
from mrjax.scan import run as scan_run
from mrjax.scan.inputs import usable_rows

SETTINGS = dict(n_boot=20, presso_draws=50, figures=False, report=False, seed=3,
                methods=("ivw", "egger_regression", "weighted_median"), chunk_size=3)
TRAITS = ["trait_004", "trait_007", "trait_014", "trait_018", "trait_026"]


@pytest.fixture(scope="module")
def exposure_files(shared_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("single_trait")
    table = pq.read_table(shared_data / "scan" / "exposures.parquet", filters=[("exposure", "in", TRAITS)])
    for trait in TRAITS:
        one = table.filter(pc.equal(table.column("exposure"), trait)).drop_columns(["exposure"])
        pq.write_table(one, folder / f"{trait}.parquet")
    return folder


def _scan(folder, out, shared_data, **options):
    return run_scan(ScanConfig(exposures=(str(folder / "trait_0*.parquet"),), outcome=str(shared_data / "scan" / "outcome.parquet"),
                               out=str(out), outcome_name="outcome", ld_ref=str(shared_data / "ldref" / "eur_sim"),
                               **SETTINGS, **options))


@pytest.mark.slow
@pytest.mark.parametrize("bidirectional", [True, False])
def test_cut_reads_give_the_scan_of_the_whole_tables(exposure_files, shared_data, tmp_path, monkeypatch, bidirectional):
    held = []
    read_chunk = scan_run.read_chunk

    def recording(*args, **kwargs):
        exposures, not_read = read_chunk(*args, **kwargs)
        held.append((exposures.table, dict(not_read), set(kwargs.get("lookup_snps", ()))))
        return exposures, not_read

    monkeypatch.setattr(scan_run, "read_chunk", recording)
    cut = _scan(exposure_files, tmp_path / "cut", shared_data, bidirectional=bidirectional)
    rows_cut = sum(len(table) for table, _, _ in held)
    held.clear()
    monkeypatch.setattr("mrjax.scan.inputs.usable_rows", lambda read, p, lookup_snps: (read, 0))
    whole = _scan(exposure_files, tmp_path / "whole", shared_data, bidirectional=bidirectional)
    rows_whole = sum(len(table) for table, _, _ in held)

    assert sorted(cut.tables) == sorted(whole.tables)
    for name, table in whole.tables.items():
        pd.testing.assert_frame_equal(cut.tables[name].reset_index(drop=True), table.reset_index(drop=True), obj=name)
    assert len(whole.tables["results"]) and (whole.tables["audit_counts"]["step"] == "select").any()
    assert rows_cut < 0.05 * rows_whole  # the chunks held a small part of each GWAS


@pytest.mark.slow
def test_a_cut_chunk_holds_instruments_look_up_snps_and_a_stand_in(exposure_files, shared_data, tmp_path, monkeypatch):
    held = []
    read_chunk = scan_run.read_chunk

    def recording(*args, **kwargs):
        exposures, not_read = read_chunk(*args, **kwargs)
        held.append((exposures.table, dict(not_read), set(kwargs["lookup_snps"])))
        return exposures, not_read

    monkeypatch.setattr(scan_run, "read_chunk", recording)
    _scan(exposure_files, tmp_path / "cut", shared_data, bidirectional=True)
    assert len(held) == 2  # chunks of 3 and 2
    for table, not_read, lookup in held:
        assert lookup  # the outcome's instruments and their possible proxies
        for trait, rows in table.groupby("trait", sort=False):
            whole = pq.read_table(exposure_files / f"{trait}.parquet").num_rows
            usable = (rows["pval"].to_numpy() < 1e-5) | rows["SNP"].isin(lookup).to_numpy()
            assert usable[1:].all() and len(rows) + not_read[trait] == whole
            assert (rows["SNP"].isin(lookup) & (rows["pval"] >= 1e-5)).any()  # look-up rows kept beyond the instruments


def test_usable_rows_keeps_a_stand_in_row_when_nothing_else_is_usable():
    table = pd.DataFrame({"SNP": ["rs1", "rs2", "rs3"], "pval": [0.5, 0.2, 0.9], "mlog10p": np.nan, "trait": "t"})
    records = Audit.empty()
    kept, cut = usable_rows(Audited(table, records), 1e-5, ())
    assert kept.table["SNP"].tolist() == ["rs1"] and cut == 2 and kept.audit is records
    kept, cut = usable_rows(Audited(table.assign(pval=[0.5, 1e-9, 0.9]), records), 1e-5, {"rs3"})
    assert kept.table["SNP"].tolist() == ["rs1", "rs2", "rs3"] and cut == 0


@pytest.mark.slow
def test_forward_look_ups_in_the_outcome_rows_they_can_use_equal_those_in_the_whole_outcome(
        exposure_files, shared_data, tmp_path, monkeypatch):
    """The forward look-up reads the outcome's rows at the instruments and their possible proxies
    (``mrjax.scan.stages.rows_at``), not the whole GWAS: an outcome lacking some instruments, so
    proxies are used, gives every table of the look-up in the whole outcome."""
    outcome = pq.read_table(shared_data / "scan" / "outcome.parquet")
    exposures = pq.read_table(shared_data / "scan" / "exposures.parquet", filters=[("exposure", "in", TRAITS)])
    hits = exposures.filter(pc.less(exposures.column("pval"), 1e-5)).column("SNP").unique()
    lacking = outcome.filter(pc.invert(pc.is_in(outcome.column("SNP"), value_set=hits.slice(0, 200))))
    pq.write_table(lacking, tmp_path / "outcome.parquet")

    def scan(out):
        return run_scan(ScanConfig(exposures=(str(exposure_files / "trait_0*.parquet"),), outcome=str(tmp_path / "outcome.parquet"),
                                   out=str(out), outcome_name="outcome", ld_ref=str(shared_data / "ldref" / "eur_sim"),
                                   **SETTINGS))

    cut = scan(tmp_path / "cut")
    monkeypatch.setattr(scan_run, "rows_at", lambda gwas, snps: gwas)
    whole = scan(tmp_path / "whole")
    for name, table in whole.tables.items():
        pd.testing.assert_frame_equal(cut.tables[name].reset_index(drop=True), table.reset_index(drop=True), obj=name)
    audit = whole.tables["audit"]
    assert ((audit["direction"] == "forward") & (audit["reason"] == "proxy used")).any()
    assert ((audit["direction"] == "forward") & (audit["reason"] == "missing in outcome")).any()


def test_files_read_in_threads_give_the_chunk_read_one_by_one(exposure_files, shared_data):
    from mrjax.scan.inputs import list_exposures, read_chunk

    config = ScanConfig(exposures=(str(exposure_files / "trait_0*.parquet"),), outcome=str(shared_data / "scan" / "outcome.parquet"),
                        out="unused", ld_ref=str(shared_data / "ldref" / "eur_sim"), bidirectional=True)
    chunk = list_exposures(config, {})
    lookup = {"rs3000000", "rs12345"} | set(pq.read_table(exposure_files / "trait_004.parquet").column("SNP").to_pylist()[100:300])
    one, not_read_one = read_chunk(chunk, config, {}, full=True, lookup_snps=lookup, threads=1)
    many, not_read_many = read_chunk(chunk, config, {}, full=True, lookup_snps=lookup, threads=3)
    assert len(chunk) == len(TRAITS) and not_read_one == not_read_many and set(not_read_one) == set(TRAITS)
    pd.testing.assert_frame_equal(many.table, one.table)
    for frame in ("drops", "counts", "unlisted"):
        pd.testing.assert_frame_equal(getattr(many.audit, frame), getattr(one.audit, frame))
    assert one.table["trait"].drop_duplicates().tolist() == [s.trait for s in chunk]  # chunk order
