"""The scan's reverse direction does a chunk's pairs stacked (``mrjax.scan.reverse.reverse_pairs``:
one proxy search, one harmonisation, the records cut into audit runs): its table and audit rows
equal one look-up per exposure (``with_proxies``, ``harmonise_tolerant``, ``trait_audit`` on the
exposure's whole GWAS), on the shared scan data (outcome instruments looked up in exposures)."""

import dataclasses

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
from mrjax.scan.audits import trait_audit
from mrjax.scan.config import REVERSE
from mrjax.scan.reverse import STEPS, reverse_pairs
from mrjax.scan.stages import empty_carrying, harmonise_tolerant, with_proxies

OUTCOME = "outcome"


@pytest.fixture(scope="module")
def pairs_input(shared_data, tmp_path_factory):
    panel = LDPanel.load(shared_data / "ldref" / "eur_sim")
    outcome = read_gwas(shared_data / "scan" / "outcome.parquet", trait=OUTCOME)
    instruments = select_instruments(outcome, p=1e-5).head(40)
    source = pq.read_table(shared_data / "scan" / "exposures.parquet")
    names = sorted(set(source.column("exposure").to_pylist()), key=str)[:6]
    few = tmp_path_factory.mktemp("pairs") / "exposures.parquet"
    pq.write_table(source.filter(pc.is_in(source.column("exposure"), value_set=pa.array(names))), few)
    exposures = read_gwas(few)
    names = list(pd.unique(exposures["trait"]))
    gwas = []
    for k, name in enumerate(names):
        one = exposures[exposures["trait"] == name]
        # each exposure lacks a different share of the instruments, so proxies are searched
        one = one[~one["SNP"].isin(instruments["SNP"].iloc[k::3])]
        if k == 3:  # a pair with a mismatched allele and one no SNP of which is usable
            one = one.assign(effect_allele="Q", other_allele="Z")
        if k == 5:  # a pair none of whose instruments the exposure has, nor a proxy of them
            one = one[~one["SNP"].isin(instruments["SNP"])].iloc[:50]
        gwas.append(one)
    config = ScanConfig(exposures=("x",), outcome="y", out="unused", ld_ref=str(shared_data / "ldref" / "eur_sim"))
    # the last name has no GWAS in the chunk: no pair, no records
    return Audited(instruments, Audit.empty()), pd.concat(gwas, ignore_index=True), names + ["not_read"], config, panel


def _one_look_up_each(instruments, exposures, names, config, panel):
    """The reference: each exposure's whole GWAS looked up on its own, as a single pair."""
    tables, audits = [], {"audit": [], "audit_counts": []}
    for name in names:
        gwas = Audited(exposures[exposures["trait"] == name].reset_index(drop=True), Audit.empty())
        if not len(gwas.table):
            continue
        found, proxied = (with_proxies(instruments, gwas, config, panel, StageTimer()) if config.use_proxies
                          else (instruments, gwas))
        pair = harmonise_tolerant(found, proxied, config.action) if len(found.table) else empty_carrying(found, proxied)
        tables.append(pair.table)
        for part, frame in trait_audit(pair.audit, OUTCOME, steps=STEPS, direction=REVERSE, exposure=OUTCOME,
                                       outcome=name).items():
            audits[part].append(frame)
    table = pd.concat([t for t in tables if len(t)], ignore_index=True)
    return table, {part: pd.concat([f for f in frames if len(f)], ignore_index=True) for part, frames in audits.items()}


def _joined(runs) -> pd.DataFrame:
    return pd.concat([run.frame for run in runs], ignore_index=True)


@pytest.mark.parametrize("proxies", [True, False])
def test_stacked_reverse_pairs_equal_one_look_up_per_exposure(pairs_input, proxies):
    instruments, exposures, names, config, panel = pairs_input
    config = dataclasses.replace(config, proxies=proxies)
    table, runs = reverse_pairs(instruments, Audited(exposures, Audit.empty()), names, OUTCOME, config, panel,
                                StageTimer())
    reference, audits = _one_look_up_each(instruments, exposures, names, config, panel)
    pd.testing.assert_frame_equal(table, reference, check_exact=True)
    for part in ("audit", "audit_counts"):
        pd.testing.assert_frame_equal(_joined(runs[part]), audits[part], check_exact=True)
        for run in runs[part]:  # each pair's rows are where its run says
            for name, start, end in zip(run.names, run.ends[:-1], run.ends[1:]):
                assert (run.frame["outcome"].iloc[start:end] == name).all()
    counts = audits["audit_counts"]
    assert set(counts["outcome"]) == set(names[:6])  # every pair read has records; the unread one none
    drops = audits["audit"]
    assert (drops["reason"] == "proxy used").any() == proxies
    assert not (table["outcome"] == names[3]).any() and (drops["outcome"] == names[3]).any()  # records only
    assert not (table["outcome"] == names[5]).any()
    assert all((table["outcome"] == name).any() for k, name in enumerate(names[:6]) if k not in (3, 5))
