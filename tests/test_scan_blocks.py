"""Blocks of pairs: their plan from the memory budget, bounded estimation calls, the same
results as a scan in one block, and resumption at the first unfinished block with the bytes of
an uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import mrjax.batch
from mrjax.scan import STOP_AFTER_ENV, ScanInterrupted, run_scan
from mrjax.scan import blocks as scan_blocks
from mrjax.scan import run as scan_run
from mrjax.scan import workers as scan_workers
from test_scan import PER_PAIR, config_for, scan, scan_inputs  # noqa: F401  (fixtures)

EXPOSURES = [f"e{i}" for i in range(100)]


@pytest.mark.parametrize("n, size", [(731, 64), (10, 2), (5, 2), (7, 3), (64, 64), (65, 64), (1, 64), (0, 8), (100, 1)])
def test_chunks_are_as_few_and_as_equal_as_the_size_allows(n, size):
    """Consecutive chunks of at most ``size``, ceil(n / size) of them, sizes within one of each other."""
    items = list(range(n))
    chunks = scan_blocks.chunk_exposures(items, size)
    assert [x for chunk in chunks for x in chunk] == items
    assert len(chunks) == -(-n // size)
    sizes = [len(chunk) for chunk in chunks]
    assert all(0 < k <= size for k in sizes) and (not sizes or max(sizes) - min(sizes) <= 1)


def test_a_chunk_that_fits_is_one_block():
    (block,) = scan_blocks.plan_blocks(3, EXPOSURES[:64], ["y"], 40, directions=2, n_boot=1000)
    assert (block.chunk, block.part, block.name) == (3, 0, "00003-0000")
    assert block.exposures == tuple(EXPOSURES[:64]) and block.outcomes == ("y",)


def test_blocks_hold_what_one_budget_sized_call_holds(monkeypatch):
    # width 64, 1,000 draws: 2^23 / 64,000 elements per pair = 131, i.e. 128 pairs per block
    assert scan_blocks.pairs_per_block(40, 1000) == 128
    outcomes = [f"o{i}" for i in range(5)]
    plan = scan_blocks.plan_blocks(0, EXPOSURES[:60], outcomes, 40, directions=1, n_boot=1000)
    assert [b.outcomes for b in plan] == [("o0", "o1"), ("o2", "o3"), ("o4",)]
    assert all(len(b.exposures) * len(b.outcomes) <= 128 for b in plan)
    monkeypatch.setattr(mrjax.batch, "MEMORY_BUDGET_ELEMENTS", 1 << 25)  # read at call time
    assert len(scan_blocks.plan_blocks(0, EXPOSURES[:60], outcomes, 40, directions=1, n_boot=1000)) == 1


def test_more_pairs_make_more_blocks_of_the_same_size():
    sizes = []
    for n_outcomes in (10, 100, 1000):
        plan = scan_blocks.plan_blocks(0, EXPOSURES, [f"o{i}" for i in range(n_outcomes)], 10, directions=2, n_boot=1000)
        sizes.append(max(len(b.exposures) * len(b.outcomes) * 2 for b in plan))
        pairs = {(e, o) for b in plan for e in b.exposures for o in b.outcomes}
        assert len(pairs) == 100 * n_outcomes  # every pair once
    assert sizes[0] == sizes[1] == sizes[2] <= scan_blocks.pairs_per_block(10, 1000)


def test_an_outcome_whose_pairs_do_not_fit_is_split_by_exposures():
    plan = scan_blocks.plan_blocks(0, EXPOSURES, ["a", "b"], 500, directions=2, n_boot=1000)
    limit = scan_blocks.pairs_per_block(500, 1000)
    assert all(len(b.outcomes) == 1 and 2 * len(b.exposures) <= limit for b in plan)
    assert [b.part for b in plan] == list(range(len(plan)))
    assert {(e, o) for b in plan for e in b.exposures for o in b.outcomes} == {(e, o) for e in EXPOSURES for o in "ab"}


@pytest.fixture(scope="module")
def two_outcomes(scan_inputs, tmp_path_factory):
    folder = tmp_path_factory.mktemp("block_outcomes")
    base = pd.read_parquet(scan_inputs["outcome"])
    paths = [folder / "outcome_a.parquet", folder / "outcome_b.parquet"]
    base.to_parquet(paths[0], index=False)
    base.assign(beta=base["beta"] * 0.5 + 0.001).to_parquet(paths[1], index=False)
    return tuple(str(p) for p in paths)


def _config(scan_inputs, outcomes, out):
    exposures = pd.read_parquet(scan_inputs["exposures"])
    path = Path(out).parent / "three_exposures.parquet"
    if not path.exists():
        exposures[exposures["exposure"].isin(["trait_007", "trait_014", "trait_030"])].to_parquet(path, index=False)
    return config_for(scan_inputs, out, exposures=(str(path),), outcome=outcomes, outcome_name=None, n_boot=50,
                      presso_draws=100, figures=False, report=False)


def _tables_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.suffix in (".tsv", ".parquet") and ".checkpoints" not in p.parts}


@pytest.fixture(scope="module")
def small_blocks(scan_inputs, two_outcomes, tmp_path_factory):
    """Three exposures (chunks of two) × two outcomes, both directions, in blocks of at most
    two pairs (six blocks), in this process: the scan, its folder and the pairs of each
    estimation call."""
    calls = []
    estimate = scan_workers.estimate_tables
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scan_blocks, "pairs_per_block", lambda widest, n_boot: 2)
        patch.setattr(scan_workers, "estimate_tables", lambda table, *a: calls.append(
            len(table[["exposure", "outcome"]].drop_duplicates())) or estimate(table, *a))
        out = tmp_path_factory.mktemp("small_blocks") / "scan"
        result = run_scan(_config(scan_inputs, two_outcomes, out))
    return result, out, calls


def test_small_blocks_bound_each_call_and_resume_to_identical_bytes(small_blocks, scan_inputs, two_outcomes, tmp_path,
                                                                    monkeypatch):
    """No estimation call over more than a block's two pairs; the results of a scan in one
    block per chunk (to rounding: other batch shapes); a scan killed after three blocks resumes
    at the fourth with the bytes of an uninterrupted run."""
    split, split_out, calls = small_blocks
    assert len(calls) == 6 and max(calls) <= 2, calls
    whole = run_scan(_config(scan_inputs, two_outcomes, tmp_path / "whole"))
    for table in PER_PAIR:
        pd.testing.assert_frame_equal(split.tables[table], whole.tables[table], check_exact=False, rtol=1e-7,
                                      atol=1e-12, obj=table)

    monkeypatch.setattr(scan_blocks, "pairs_per_block", lambda widest, n_boot: 2)
    out = tmp_path / "killed"
    monkeypatch.setenv(STOP_AFTER_ENV, "3")
    with pytest.raises(ScanInterrupted):
        run_scan(_config(scan_inputs, two_outcomes, out))
    monkeypatch.delenv(STOP_AFTER_ENV)
    computed = []
    harmonise = scan_run._harmonise_block
    monkeypatch.setattr(scan_run, "_harmonise_block", lambda block, *a: computed.append(block.name) or harmonise(block, *a))
    resumed = run_scan(_config(scan_inputs, two_outcomes, out))
    assert computed == ["00000-0003", "00001-0000", "00001-0001"]  # blocks 4 to 6 only
    assert resumed.resumed_traits == 0  # no chunk was finished: its blocks were
    written = _tables_bytes(split_out)
    assert len([name for name in written if name.startswith("results/")]) == 12  # 6 blocks × 2 directions
    assert _tables_bytes(out) == written


def test_blocks_on_two_dask_workers_give_the_bytes_of_one_process(small_blocks, scan_inputs, two_outcomes, tmp_path,
                                                                   monkeypatch):
    _, here, _ = small_blocks
    monkeypatch.setattr(scan_blocks, "pairs_per_block", lambda widest, n_boot: 2)
    in_this_process = []
    monkeypatch.setattr(scan_workers, "estimate_tables", lambda *a: in_this_process.append(1))
    run_scan(_config(scan_inputs, two_outcomes, tmp_path / "dask"), workers=2)
    assert not in_this_process  # every block was estimated on a worker
    assert _tables_bytes(tmp_path / "dask") == _tables_bytes(here)


def test_a_scan_above_the_tsv_line_streams_the_same_results(scan, scan_inputs, tmp_path, monkeypatch):
    """With the TSV line at 0 rows the scan of ``test_scan`` is written block by block: no
    per-pair TSV, the datasets hold the rows of the in-memory scan (q-values across every
    pair: the same), and findings are those of the in-memory scan."""
    import pyarrow.dataset as ds

    reference, reference_out = scan
    monkeypatch.setattr(scan_blocks, "RESULTS_TSV_MAX_ROWS", 0)
    config = config_for(scan_inputs, tmp_path / "streamed")
    streamed = run_scan(config)
    out = Path(config.out)
    assert not (out / "results.tsv").exists() and not (out / "leave_one_out.tsv").exists()
    key = ["direction", "exposure", "outcome", "method_id"]
    for name, by in (("results", key), ("leave_one_out", ["direction", "exposure", "outcome", "SNP"]),
                     ("heterogeneity", ["direction", "exposure", "outcome", "method"])):
        got = ds.dataset(out / name, partitioning="hive").to_table().to_pandas().astype({"direction": str})
        want = reference.tables[name]
        got = got[want.columns].sort_values(by).reset_index(drop=True)
        want = want.sort_values(by).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, check_dtype=False, rtol=1e-12, obj=name)
    audit = ds.dataset(out / "audit", partitioning="hive").to_table().to_pandas()
    assert len(audit) == len(reference.tables["audit"])
    pd.testing.assert_frame_equal(streamed.tables["findings"], reference.tables["findings"], check_dtype=False)
    assert (out / "report.html").is_file() and (out / "manifest.json").is_file()
    pairs = reference.tables["results"][["direction", "exposure", "outcome"]].drop_duplicates()["direction"].value_counts()
    assert streamed.manifest["pairs"] == pairs.to_dict() and streamed.manifest["streamed"]


def test_streamed_corrections_per_outcome_span_every_block(scan_inputs, two_outcomes, tmp_path, monkeypatch):
    """Six blocks streamed with FDR within each outcome: each block's q-values are cut from
    the corrections of all blocks together, equal to those of the in-memory scan."""
    import dataclasses

    import pyarrow.dataset as ds

    monkeypatch.setattr(scan_blocks, "pairs_per_block", lambda widest, n_boot: 2)
    settings = dict(correct_per_outcome=True, presso_draws=0, methods=("ivw", "egger_regression"))
    memory = run_scan(dataclasses.replace(_config(scan_inputs, two_outcomes, tmp_path / "memory"), **settings))
    monkeypatch.setattr(scan_blocks, "RESULTS_TSV_MAX_ROWS", 0)
    out = tmp_path / "streamed"
    run_scan(dataclasses.replace(_config(scan_inputs, two_outcomes, out), **settings))
    got = ds.dataset(out / "results", partitioning="hive").to_table().to_pandas().astype({"direction": str})
    assert got["block"].nunique() == 6
    key = ["direction", "exposure", "outcome", "method_id"]
    want = memory.tables["results"].sort_values(key).reset_index(drop=True)
    got = got[want.columns].sort_values(key).reset_index(drop=True)
    assert want["qval_fdr"].nunique() > 4  # corrections that differ between groups
    pd.testing.assert_frame_equal(got, want, check_dtype=False, check_exact=True)
