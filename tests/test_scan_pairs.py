"""The scan's reverse direction does its per-exposure steps in one call per chunk
(``mrjax.scan.stages.with_proxies_each``, ``harmonise_each``): tables and records equal one
call per exposure, on the shared scan data (outcome instruments looked up in exposures)."""

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from mrjax.audit import Audit, Audited
from mrjax.gwas import read_gwas, select_instruments
from mrjax.ld import LDPanel
from mrjax.outputs import StageTimer
from mrjax.scan import ScanConfig
from mrjax.scan.stages import harmonise_each, harmonise_tolerant, with_proxies, with_proxies_each


@pytest.fixture(scope="module")
def pairs_input(shared_data, tmp_path_factory):
    panel = LDPanel.load(shared_data / "ldref" / "eur_sim")
    outcome = read_gwas(shared_data / "scan" / "outcome.parquet", trait="outcome")
    instruments = select_instruments(outcome, p=1e-5).head(40)
    source = pq.read_table(shared_data / "scan" / "exposures.parquet")
    names = sorted(set(source.column("exposure").to_pylist()), key=str)[:6]
    few = tmp_path_factory.mktemp("pairs") / "exposures.parquet"
    pq.write_table(source.filter(pc.is_in(source.column("exposure"), value_set=pa.array(names))), few)
    exposures = read_gwas(few)
    names = list(pd.unique(exposures["trait"]))
    lookups = []
    for k, name in enumerate(names):
        gwas = exposures[exposures["trait"] == name]
        # each exposure lacks a different share of the instruments, so proxies are searched
        gwas = gwas[~gwas["SNP"].isin(instruments["SNP"].iloc[k::3])].reset_index(drop=True)
        if k == 3:  # a pair with a mismatched allele and one no SNP of which is usable
            gwas = gwas.assign(effect_allele="Q", other_allele="Z")
        lookups.append(Audited(gwas, Audit.empty()))
    config = ScanConfig(exposures=("x",), outcome="y", out="unused", ld_ref=str(shared_data / "ldref" / "eur_sim"))
    return Audited(instruments, Audit.empty()), lookups, config, panel


def _same(left: Audited, right: Audited):
    pd.testing.assert_frame_equal(left.table, right.table, check_exact=True)
    for frame in ("drops", "counts", "unlisted"):
        mine, theirs = getattr(left.audit, frame), getattr(right.audit, frame)
        assert len(mine) == len(theirs)
        if len(theirs):
            pd.testing.assert_frame_equal(mine.reset_index(drop=True), theirs.reset_index(drop=True), check_exact=True)


def test_proxies_and_harmonise_of_all_pairs_at_once_equal_one_call_each(pairs_input):
    instruments, lookups, config, panel = pairs_input
    timings = StageTimer()
    one_by_one = [with_proxies(instruments, gwas, config, panel, timings) for gwas in lookups]
    at_once = with_proxies_each(instruments, lookups, config, panel, timings)
    assert len(at_once) == len(one_by_one)
    for (found, proxied), (found_alone, proxied_alone) in zip(at_once, one_by_one):
        _same(found, found_alone)
        _same(proxied, proxied_alone)
    assert any((p.audit.drops["reason"] == "proxy used").any() for _, p in one_by_one)
    harmonised = harmonise_each(at_once, config.action)
    alone = [harmonise_tolerant(found, proxied, config.action) for found, proxied in one_by_one]
    for mine, theirs in zip(harmonised, alone):
        _same(mine, theirs)
    assert len(alone[3].table) == 0 and len(alone[3].audit.drops)  # nothing usable: records only
    assert all(len(a.table) for k, a in enumerate(alone) if k != 3)
