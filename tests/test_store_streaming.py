"""Streaming ingest: memory bounded by the block size (no step sees more than a block, a batch
or a row group of rows), and the store still equals ``read_gwas`` — duplicates across blocks,
bad rows, files out of position order, several traits in one file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import mrjax
from mrjax.gwas import readers
from mrjax.store import GWASStore, ingest, layout, metadata, streaming, tables

ROWS = 12_000
SMALL = 400  # rows per batch and per row group while testing


def _write_gwas(path, *, shuffled=False, traits=None, seed=0):
    """A plain tab-separated GWAS: 3 chromosomes sorted by position, a few SNP ids repeated far
    apart (in other blocks), some bad rows, per-row N with an even count of rows."""
    rng = np.random.default_rng(seed)
    chromosomes = np.repeat(["1", "2", "X"], [5_000, 4_000, ROWS - 9_000])
    positions = np.concatenate([np.sort(rng.choice(10**8, k, replace=False)) for k in (5_000, 4_000, ROWS - 9_000)])
    frame = pd.DataFrame({
        "SNP": [f"rs{i}" for i in range(ROWS)],
        "CHR": chromosomes, "BP": positions,
        "A1": rng.choice(list("ACGT"), ROWS), "A2": rng.choice(list("ACGT"), ROWS),
        "BETA": np.round(rng.normal(0, 0.05, ROWS), 6), "SE": np.round(rng.uniform(0.01, 0.05, ROWS), 6),
        "P": [f"{p:.4g}" for p in rng.uniform(1e-9, 1, ROWS)],
        "EAF": np.round(rng.uniform(0.01, 0.99, ROWS), 4), "N": rng.choice([1000, 1200, 1500, 2000], ROWS),
    })
    frame.loc[[9_500, 11_000, 11_001], "SNP"] = ["rs17", "rs5002", "rs17"]  # repeats of earlier blocks' ids
    frame.loc[[40, 7_000], "SE"] = [0.0, -1.0]  # se <= 0
    frame.loc[3_333, "P"] = "NA"
    frame.loc[rng.choice(ROWS, 30, replace=False), "P"] = "1e-12"  # top hits
    frame.loc[ROWS - 5:, "BP"] = -1  # made missing below: unplaced rows
    if traits is not None:
        frame.insert(0, "phenotype", np.array(traits)[np.arange(ROWS) % len(traits)])
    if shuffled:
        frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    text = frame.to_csv(sep="\t", index=False).replace("\t-1\t", "\tNA\t")
    path.write_text(text)
    return path


@pytest.fixture
def bounded(monkeypatch):
    """Small blocks, batches and row groups; every step's rows recorded."""
    seen: dict[str, int] = {}

    def observe(step, rows):
        seen[step] = max(seen.get(step, 0), rows)

    monkeypatch.setattr(streaming, "observe", observe)
    monkeypatch.setattr(readers, "BLOCK_SIZE", 16 << 10)
    monkeypatch.setattr(streaming, "ROWS_PER_BATCH", SMALL)
    monkeypatch.setattr(tables, "VARIANT_GROUP_ROWS", SMALL)
    monkeypatch.setattr(tables, "INDEX_GROUP_ROWS", SMALL)
    monkeypatch.setattr(tables, "TOP_HITS_GROUP_ROWS", SMALL)
    monkeypatch.setattr(streaming, "SMALL_RUN", SMALL)  # larger runs: duckdb's external sort
    return seen


def _whole_table(self):
    raise AssertionError("ingest built the whole table")


def _ingest_one(path, root, **options):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(readers._Reader, "_finish", _whole_table)
        summary = ingest([str(path)], store=root, workers=0, progress=False, **options)
    assert summary["status"].isin(["written"]).all(), summary
    return GWASStore(root)


def _assert_bounded(seen):
    assert set(seen) >= {"block", "run", "batch"}
    assert seen["block"] < ROWS / 10  # many blocks ...
    assert seen["run"] <= seen["block"]  # ... and no step saw more than one of them
    assert seen["batch"] <= streaming.ROWS_PER_BATCH <= SMALL
    assert seen.get("in-memory sort", 0) <= streaming.SMALL_RUN


def _assert_same_as_read_gwas(store, path, trait, **options):
    expected = mrjax.read_gwas(path, audited=True, **options)
    table = expected.table[expected.table["trait"] == trait].reset_index(drop=True)
    got = store.table(trait, audited=True)
    pd.testing.assert_frame_equal(got.table, table)
    pd.testing.assert_frame_equal(got.audit.drops.reset_index(drop=True),
                                  expected.audit.drops[expected.audit.drops["trait"] == trait].reset_index(drop=True))
    assert store.metadata(trait)["sample_size"] == metadata.sample_size(table["n"])
    return expected


def _assert_row_groups(store, trait):
    """Row groups of SMALL rows, one chromosome each, in store order; only a chromosome's last
    group is short."""
    handle = pq.ParquetFile(store.folders[trait] / layout.VARIANTS)
    runs = []
    for g in range(handle.num_row_groups):
        group = handle.metadata.row_group(g)
        chr_stats, pos_stats = group.column(1).statistics, group.column(2).statistics
        assert chr_stats.min == chr_stats.max
        name = None if pos_stats.null_count == group.num_rows else chr_stats.min  # None: the unplaced rows
        assert name is None or pos_stats.null_count == 0
        if runs and runs[-1][0] == name:
            runs[-1][1].append(group.num_rows)
        else:
            runs.append((name, [group.num_rows]))
    assert [name for name, _ in runs] == ["1", "2", "X", None]
    for _, group_sizes in runs:
        assert all(size == SMALL for size in group_sizes[:-1]) and 0 < group_sizes[-1] <= SMALL


@pytest.mark.parametrize("batch", [SMALL, 3])  # 3: runs of a repeated SNP cross batches
def test_ingest_in_blocks_equals_read_gwas(tmp_path, bounded, monkeypatch, batch):
    monkeypatch.setattr(streaming, "ROWS_PER_BATCH", batch)
    path = _write_gwas(tmp_path / "study.tsv")
    store = _ingest_one(path, tmp_path / "s")
    _assert_bounded(bounded)
    expected = _assert_same_as_read_gwas(store, path, "study")
    drops = expected.audit.drops
    repeats = drops[drops["reason"] == "duplicate"]
    assert list(repeats["SNP"]) == ["rs17", "rs5002", "rs17"]
    assert list(repeats["detail"]) == [f"data row {r} repeats data row {f}; the first is kept"
                                       for r, f in ((9_500, 17), (11_000, 5_002), (11_001, 17))]
    _assert_row_groups(store, "study")
    info = store.metadata("study")
    assert info["rows"]["dropped_by_reason"] == {"bad value": 3, "duplicate": 3}
    assert info["chromosomes"] == ["1", "2", "X"]
    top = store.top_hits("study", p=1e-4)
    pd.testing.assert_frame_equal(top, mrjax.read_gwas(path, p_max=1e-4).reset_index(drop=True))
    index = pq.read_table(store.folders["study"] / layout.SNP_INDEX)
    assert index.column("SNP").to_pylist() == sorted(store.table("study")["SNP"])


def test_file_out_of_position_order_is_sorted_externally(tmp_path, bounded):
    path = _write_gwas(tmp_path / "shuffled.tsv", shuffled=True)
    store = _ingest_one(path, tmp_path / "o'brien's store")  # a quote in the paths duckdb reads
    _assert_bounded(bounded)
    _assert_same_as_read_gwas(store, path, "shuffled")
    _assert_row_groups(store, "shuffled")
    # the file in store order: read_gwas's rows sorted by chromosome and position (stable), unplaced last
    expected = mrjax.read_gwas(path)
    unplaced = expected["chr"].isna() | expected["pos"].isna()
    rank = expected["chr"].map(lambda c: tables.chromosome_key(c)[0])
    expected = expected.assign(_u=unplaced, _r=rank.where(~unplaced, 0), _p=expected["pos"].fillna(0))
    expected = expected.sort_values(["_u", "_r", "_p"], kind="stable").drop(columns=["_u", "_r", "_p"])
    in_file = tables.to_pandas(pq.read_table(store.folders["shuffled"] / layout.VARIANTS))
    pd.testing.assert_frame_equal(in_file, expected.reset_index(drop=True))


def test_long_table_streams_one_run_per_trait(tmp_path, bounded):
    path = _write_gwas(tmp_path / "long.tsv", traits=["b_trait", "a_trait", "c_trait"])
    store = _ingest_one(path, tmp_path / "s")
    _assert_bounded(bounded)
    assert store.traits() == ["a_trait", "b_trait", "c_trait"]
    for trait in store.traits():
        _assert_same_as_read_gwas(store, path, trait)


def test_sample_size_median_from_counts():
    rng = np.random.default_rng(3)
    for values in (rng.choice([1000.0, 1200.0, 1500.0], 10), rng.choice([5.0, 7.0], 9), np.array([np.nan, 3.0])):
        counts = pd.Series(values).value_counts(dropna=False).to_dict()
        assert streaming.sample_size(counts) == metadata.sample_size(pd.Series(values))
    assert streaming.sample_size({}) == {"n": None, "n_min": None, "n_max": None}
