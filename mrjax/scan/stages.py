"""The per-chunk data stages of a scan, each a function from audited tables to an audited
table (:class:`mrjax.audit.Audited`: the table and its records, passed on explicitly):
instrument selection and clumping, the outcome look-up with LD proxies and harmonisation,
and the reverse direction's pairs.

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
from mrjax.scan.audits import trait_audit
from mrjax.scan.config import REVERSE, ScanConfig
from mrjax.scan.frames import NO_ROWS, rows_by
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
    store-backed ``gwas`` left out (:func:`~mrjax.scan.store_source.count_rows_not_read`).
    Traits left without instruments give an empty result (its audit says why). A plain
    table for ``gwas`` counts as one without records.
    """
    gwas = Audited(*unwrap(gwas, True))
    with timings("select"):
        instruments = tolerate_empty(select_instruments, gwas, "select", p=config.p)
        instruments = count_rows_not_read(instruments, not_read)  # a store's rows above its keep_p
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


def with_proxies_each(instruments: Audited, outcomes: list[Audited], config: ScanConfig, panel,
                      timings: StageTimer) -> list[tuple[Audited, Audited]]:
    """:func:`with_proxies` of the instruments and each outcome (one trait each, all
    distinct), in one ``substitute_proxies`` call: it searches proxies outcome by outcome
    and labels each pair's records ``"{exposure} / {outcome}"``; the outcomes' tables and
    records are cut apart and relabelled as a call per outcome gives them."""
    traits = [o.table["trait"] for o in outcomes] if all("trait" in o.table.columns for o in outcomes) else []
    names = [t.iloc[0] for t in traits if len(t) and t.nunique() == 1]
    exposure = instruments.table["trait"] if "trait" in instruments.table.columns else None
    if (len(outcomes) < 2 or len(names) != len(outcomes) or len(set(names)) != len(names) or exposure is None
            or exposure.nunique() != 1 or any(len(o.audit.drops) or len(o.audit.counts) for o in outcomes)):
        return [with_proxies(instruments, o, config, panel, timings) for o in outcomes]
    exposure = exposure.iloc[0]
    with timings("proxies"):
        stacked = pd.concat([o.table for o in outcomes], ignore_index=True)
        table, records = substitute_proxies(instruments.table, stacked, panel, r2_min=config.proxy_r2, kb=PROXY_KB,
                                            audited=True)
        table_rows = rows_by(table["trait"])
        record_rows = [rows_by(frame["trait"]) if len(frame) else {} for frame in (records.drops, records.counts)]
        label_dtype = pd.Series([str(exposure)]).dtype
        out = []
        for name in names:
            label = f"{exposure} / {name}"
            proxied = table.iloc[table_rows.get(str(name), NO_ROWS)].reset_index(drop=True)
            drops = records.drops.iloc[record_rows[0].get(label, NO_ROWS)]
            counts = records.counts.iloc[record_rows[1].get(label, NO_ROWS)]
            own = Audit(drops=drops.assign(trait=pd.Series(exposure, index=drops.index, dtype=label_dtype)),
                        counts=counts.assign(trait=pd.Series(exposure, index=counts.index, dtype=label_dtype)),
                        unlisted=records.unlisted.iloc[:0])
            found = snps_in(instruments.table["SNP"], proxied["SNP"])
            out.append((Audited(instruments.table[found], instruments.audit), Audited(proxied, own)))
        return out


def harmonise_tolerant(instruments: Audited, outcome: Audited, action) -> Audited:
    """``harmonise`` of instruments and outcome, with a pair keeping no SNP as an empty
    table (:func:`tolerate_empty`)."""
    trait_column = "exposure" if "exposure" in instruments.table.columns else "trait"
    return tolerate_empty(harmonise, instruments, "harmonise", trait_column=trait_column, carry=(outcome,),
                          outcome=outcome, action=action)


def harmonise_each(pairs: list[tuple[Audited, Audited]], action) -> list[Audited]:
    """:func:`harmonise_tolerant` of every (instruments, outcome) pair, in one ``harmonise``
    call (``pairs=``) when the pairs allow it: normalised instruments of one trait each and
    outcomes of one trait each, all distinct. The instruments' trait is replaced, for the
    call, by a label per pair (so each pair's records can be told apart), then put back.
    Tables and records equal those of one call per pair."""
    traits = [o.table["trait"] for _, o in pairs] if all("trait" in o.table.columns for _, o in pairs) else []
    outcome_names = [str(t.iloc[0]) for t in traits if len(t) and t.nunique() == 1]
    batchable = (len(pairs) > 1 and len(outcome_names) == len(pairs) and len(set(outcome_names)) == len(pairs)
                 and all("trait" in i.table.columns and not {"exposure", "id.exposure"} & set(i.table.columns)
                         and i.table["trait"].nunique() == 1 for i, _ in pairs))
    if not batchable:
        return [harmonise_tolerant(i, o, action) for i, o in pairs]
    labels = [f"{k:09d}" for k in range(len(pairs))]
    names = [i.table["trait"].iloc[0] for i, _ in pairs]
    dtypes = [i.table["trait"].dtype for i, _ in pairs]
    exposure = pd.concat([i.table.assign(trait=pd.Series(label, index=i.table.index, dtype=dtype))
                          for (i, _), label, dtype in zip(pairs, labels, dtypes)], ignore_index=True)
    outcome = pd.concat([o.table for _, o in pairs], ignore_index=True)
    try:
        table, records = harmonise(exposure, outcome, action=action, pairs=dict(zip(labels, outcome_names)), audited=True)
    except NoInstrumentError as error:  # no pair keeps a SNP
        table, records = error.table, error.audit
    table_rows = rows_by(table["id.exposure"])
    record_rows = [rows_by(frame["trait"]) if len(frame) else {} for frame in (records.drops, records.counts)]
    out = []
    for (i, o), label, name, dtype in zip(pairs, labels, names, dtypes):
        mine = table.iloc[table_rows.get(label, NO_ROWS)].reset_index(drop=True)
        same = pd.Series(name, index=mine.index, dtype=dtype)
        mine = mine.assign(exposure=same, **{"id.exposure": same})
        drops = records.drops.iloc[record_rows[0].get(label, NO_ROWS)]
        counts = records.counts.iloc[record_rows[1].get(label, NO_ROWS)]
        counts = counts.assign(trait=pd.Series(name, index=counts.index, dtype=dtype))
        own = Audit(drops=drops.assign(trait=name), counts=counts, unlisted=records.unlisted.iloc[:0])
        out.append(Audited(mine if mine["mr_keep"].any() else mine.iloc[:0], Audit.combine(i.audit, o.audit, own)))
    return out


def snps_in(few: pd.Series, many: pd.Series) -> np.ndarray:
    """``few.isin(many)`` for a short ``few`` and a long ``many``: pandas' string-array
    ``isin`` converts every one of its *values* to a Python scalar, so the long side is
    first cut down to the values the short side holds (≈ 0.4 s per 40 k-row GWAS saved)."""
    found = many[many.isin(pd.unique(few.to_numpy(dtype=object)))]
    return few.isin(pd.unique(found.to_numpy(dtype=object))).to_numpy()


def reverse_pairs(instruments: Audited, exposures: Audited, names: list[str], outcome_name: str,
                  config: ScanConfig, panel, timings: StageTimer) -> tuple[pd.DataFrame, dict]:
    """Outcome → exposure for a chunk: the outcome's instruments looked up in each exposure
    GWAS, one harmonisation per exposure so every pair has its own audit. Returns the
    harmonised pairs and each exposure's audit tables.

    Each exposure GWAS is first cut down to the rows the look-up can use
    (:func:`reachable_rows`), which leaves every result and audit record unchanged."""
    frames, audits = [], {}
    with timings("reverse_split"):
        exposures = exposures.table  # the exposure-side records belong to the forward direction
        # The outcome's own selection records are reported once (the outcome side), not per
        # pair: without them every pair's audit bookkeeping stays small.
        instruments = Audited(instruments.table, Audit.empty())
        traits = exposures["trait"].astype(str)
        present = set(traits.unique())
        some = len(instruments.table) > 0
        keep = reachable_rows(instruments.table, exposures, config, panel) if some else np.zeros(len(exposures), bool)
        near = exposures[keep]
        rows_of = near.groupby(traits[keep].to_numpy(dtype=object), sort=False).indices
    done, waiting = {}, {}  # each exposure's pair; those still to harmonise (in one call)
    for name in names:
        with timings("reverse_split"):
            if name in rows_of:
                gwas = near.iloc[rows_of[name]]
            elif name in present:  # nothing reachable: the full GWAS, so the audit says why
                gwas = exposures[(traits == name).to_numpy()]
            else:
                gwas = exposures.iloc[:0]
        if not (some and len(gwas)):
            done[name] = empty_carrying(instruments)
            continue
        waiting[name] = (instruments, Audited(gwas, instruments.audit))
    if config.use_proxies and panel is not None:
        proxied = with_proxies_each(instruments, [gwas for _, gwas in waiting.values()], config, panel, timings)
        for name, (found, gwas) in zip(list(waiting), proxied):
            waiting[name] = (found, gwas)
            if len(found.table) == 0:
                done[name] = empty_carrying(found, gwas)
                del waiting[name]
    with timings("harmonise"):
        done.update(zip(waiting, harmonise_each(list(waiting.values()), config.action)))
    for name in names:
        pair = done[name]
        with timings("audit"):
            audits[name] = trait_audit(pair.audit, outcome_name, steps=("harmonise", "proxies"),
                                       direction=REVERSE, exposure=outcome_name, outcome=name)
        if len(pair.table):
            frames.append(pair.table)
    with timings("reverse_split"):
        harmonised = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["exposure", "outcome"])
    return harmonised, audits


def reachable_rows(instruments: pd.DataFrame, gwas: pd.DataFrame, config: ScanConfig, panel) -> np.ndarray:
    """Which rows of ``gwas`` :func:`look_up` can use for ``instruments`` (boolean mask): the
    instruments' own SNPs and, with proxies on, every panel variant that
    ``substitute_proxies`` could pick for one of them — ``mrjax.ld.find_proxies`` against the
    whole panel (r² ≥ ``proxy_r2`` within ``PROXY_KB``). A proxy's r² depends only on the
    panel, so the proxies found in the cut table, and their order, are the same as in the
    whole GWAS. Harmonisation reads only the instruments' rows."""
    return gwas["SNP"].isin(list(reachable_snps(instruments, config, panel))).to_numpy(dtype=bool)


def reachable_snps(instruments: pd.DataFrame, config: ScanConfig, panel) -> set:
    """The SNPs :func:`reachable_rows` keeps: the instruments' and their possible proxies.

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
