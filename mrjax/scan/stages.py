"""The per-chunk data stages of a scan, each a function from audited tables to an audited
table (:class:`mrjax.audit.Audited`: the table and its records, passed on explicitly):
instrument selection and clumping, the outcome look-up with LD proxies and harmonisation
(the reverse direction's pairs: :mod:`mrjax.scan.reverse`).

A step that leaves a trait without instruments is data in a scan, not an error: the data
layer raises :class:`mrjax.errors.NoInstrumentError` (caught here by class) or warns, and the
scan goes on with an empty table whose audit says why.
"""

from __future__ import annotations

import warnings
import weakref

import numpy as np
import pandas as pd

from mrjax.audit import COUNT_COLUMNS, Audit, Audited, unwrap
from mrjax.errors import NoInstrumentError
from mrjax.gwas import filter_weak, harmonise, select_instruments
from mrjax.gwas.select import NoInstrumentWarning
from mrjax.ld import clump, find_proxies, substitute_proxies
from mrjax.ld.clump import NoIndexSNPWarning
from mrjax.outputs import StageTimer
from mrjax.scan.config import ScanConfig
from mrjax.scan.frames import at_snps
from mrjax.scan.store_source import count_rows_not_read

#: LD-proxy search radius in kb (``mrjax.ld.substitute_proxies``' default, LDlink LDproxy's
#: ±500 kb); the reverse direction also uses it to keep only the exposure rows a proxy
#: could come from.
PROXY_KB = 500


def select_and_clump(gwas: Audited, config: ScanConfig, panel, timings: StageTimer,
                     not_read: dict | None = None) -> Audited:
    """Instruments of one or many traits: p < ``config.p``, clumped, F ≥ ``config.f_min``.

    Uses ``mrjax.gwas.select_instruments``, ``mrjax.ld.clump`` (plink 1.9 ``--clump``
    semantics; skipped when there is no panel) and ``mrjax.gwas.filter_weak``; each step
    appends its audit records to those of ``gwas``. ``not_read``: per trait, the rows a
    store-backed or cut ``gwas`` left out (:func:`~mrjax.scan.store_source.count_rows_not_read`).
    Traits left without instruments give an empty result (its audit says why). A plain
    table for ``gwas`` counts as one without records.
    """
    gwas = Audited(*unwrap(gwas, True))
    with timings("select"):
        instruments = tolerate_empty(select_instruments, gwas, "select", p=config.p)
        instruments = count_rows_not_read(instruments, not_read)  # rows a store or a cut read left out
    if panel is not None and len(instruments.table):
        with timings("clump"):
            instruments = tolerate_empty(
                clump, instruments, "clump", ld_ref=panel, r2=config.clump_r2, kb=config.clump_kb, p1=config.p, p2=config.clump_p2
            )
    if len(instruments.table):
        with timings("strength"):
            instruments = tolerate_empty(filter_weak, instruments, "strength", f_min=config.f_min)
    return instruments


def empty_carrying(*inputs: Audited) -> Audited:
    """No rows (the first table's columns), with the records of every input in order."""
    return Audited(inputs[0].table.iloc[:0], Audit.combine(*(i.audit for i in inputs)))


def tolerate_empty(step, table: Audited, name: str, trait_column: str = "trait", carry: tuple[Audited, ...] = (),
                   **options) -> Audited:
    """Run a data-layer step whose :class:`~mrjax.errors.NoInstrumentError` is, inside a scan,
    an empty result: the step's partial table when it has one (harmonise's, with its drop
    records), otherwise all the step's input rows counted as dropped; the earlier records of
    ``table`` and of the step's other inputs ``carry`` are kept.

    The warnings a step gives for some traits left empty (``mrjax.ld.clump``'s
    :class:`~mrjax.ld.clump.NoIndexSNPWarning`; ``select_instruments``/``filter_weak``'s
    :class:`~mrjax.gwas.select.NoInstrumentWarning`) are expected in a scan: the step's audit
    already counts those traits with no instrument kept, and the scan goes on with the others."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=NoIndexSNPWarning)
        warnings.filterwarnings("ignore", category=NoInstrumentWarning)
        try:
            return step(table, audited=True, **options)
        except NoInstrumentError as error:
            partial = error
    if partial.table is not None:
        return Audited(partial.table.iloc[:0], partial.audit)
    n_in = table.table[trait_column].astype(str).value_counts(sort=False)
    counts = pd.DataFrame({"step": name, "trait": n_in.index, "n_in": n_in.to_numpy(), "n_kept": 0, "n_dropped": n_in.to_numpy()})
    empty = empty_carrying(table, *carry)
    return Audited(empty.table, empty.audit + Audit(counts=counts[COUNT_COLUMNS]))


def look_up(instruments: Audited, outcome: Audited, config: ScanConfig, panel, timings: StageTimer) -> Audited:
    """Harmonise ``instruments`` against the ``outcome`` GWAS (TwoSampleMR
    ``harmonise_data`` with ``config.action``), first substituting LD proxies for
    instruments missing in the outcome when proxies are on. A pair with no usable SNP gives
    an empty table (with the harmonise audit counts), not an error. Plain tables count as
    ones without records."""
    instruments, outcome = Audited(*unwrap(instruments, True)), Audited(*unwrap(outcome, True))
    if config.use_proxies and panel is not None:
        instruments, outcome = with_proxies(instruments, outcome, config, panel, timings)
        if len(instruments.table) == 0:
            return empty_carrying(instruments, outcome)
    with timings("harmonise"):
        return harmonise_tolerant(instruments, outcome, config.action)


def with_proxies(instruments: Audited, outcome: Audited, config: ScanConfig, panel,
                 timings: StageTimer) -> tuple[Audited, Audited]:
    """The outcome with LD proxies for the instruments it lacks (``substitute_proxies``),
    and the instruments it now has."""
    with timings("proxies"):
        outcome = substitute_proxies(instruments.table, outcome, panel, r2_min=config.proxy_r2, kb=PROXY_KB,
                                     audited=True)
        # The proxies step has recorded every instrument the outcome lacks ("missing in
        # outcome"): only the others go on, so each loss is recorded once and harmonise's
        # counts start where the proxies step's end. (A scan's outcome is one trait.)
        found = snps_in(instruments.table["SNP"], outcome.table["SNP"])
        return Audited(instruments.table[found], instruments.audit), outcome


def harmonise_tolerant(instruments: Audited, outcome: Audited, action) -> Audited:
    """``harmonise`` of instruments and outcome, with a pair keeping no SNP as an empty
    table (:func:`tolerate_empty`)."""
    trait_column = "exposure" if "exposure" in instruments.table.columns else "trait"
    return tolerate_empty(harmonise, instruments, "harmonise", trait_column=trait_column, carry=(outcome,),
                          outcome=outcome, action=action)


def snps_in(few: pd.Series, many: pd.Series) -> np.ndarray:
    """``few.isin(many)`` for a short ``few`` and a long ``many``: pandas' string-array
    ``isin`` converts every one of its *values* to a Python scalar, so the long side is
    first cut down to the values the short side holds (≈ 0.4 s per 40 k-row GWAS saved)."""
    found = many[many.isin(pd.unique(few.to_numpy(dtype=object)))]
    return few.isin(pd.unique(found.to_numpy(dtype=object))).to_numpy()


def rows_at(gwas: Audited, snps) -> Audited:
    """The rows of ``gwas`` at ``snps``, with its records: for ``snps`` = :func:`reachable_snps`
    of some instruments, every row their :func:`look_up` can use (the same proxies, pairs and
    records as against the whole table, as a store's ``rows_for`` reads them). When none is
    there, the first row stands in (it matches no instrument), so the look-up still records
    every instrument as missing."""
    keep = at_snps(gwas.table, snps)
    if len(keep) and not keep.any():
        keep[0] = True
    return Audited(gwas.table[keep].reset_index(drop=True), gwas.audit)


def reachable_snps(instruments: pd.DataFrame, config: ScanConfig, panel) -> set:
    """The SNPs a look-up of ``instruments`` can use: the instruments' and their possible
    proxies (:func:`mrjax.scan.reverse.reachable_rows` keeps them).

    A target's possible proxies depend only on the panel (its whole window is searched), so
    they are found once per panel and target (:data:`_PROXIES_OF`): chunks of a scan share
    most instruments."""
    targets = pd.unique(instruments["SNP"].to_numpy(dtype=object))
    usable = set(targets)
    if config.use_proxies and panel is not None:
        known = _PROXIES_OF.setdefault(panel, {}).setdefault((config.proxy_r2, PROXY_KB), {})
        new = [t for t in targets if t not in known]
        if new:
            found = find_proxies(panel, new, panel.snp, r2_min=config.proxy_r2, kb=PROXY_KB)
            proxies_of = found.groupby("target", sort=False)["proxy"].agg(frozenset).to_dict() if len(found) else {}
            known.update({t: proxies_of.get(t, frozenset()) for t in new})
        for target in targets:
            usable |= known[target]
    return usable


#: Per LD panel and (r², kb): each target SNP's possible proxies in the whole panel.
_PROXIES_OF: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
