"""The reverse direction of a bi-directional scan (outcome → exposure): the outcome's
instruments looked up in every exposure GWAS of a chunk.

Each exposure is its own pair, with its own LD proxies, harmonisation and audit, exactly as
one :func:`~mrjax.scan.stages.look_up` per exposure gives them. The pairs of a chunk are done
together and stay stacked: one ``substitute_proxies`` call over every exposure GWAS, one
``harmonise(..., pairs=)`` call, and the pairs' records cut into audit runs
(:class:`mrjax.scan.stacked.Run`) by one sort. Cutting 731 pairs apart as small frames and
joining them again cost ~5 s of a 22 s store scan (pandas' per-frame cost on arrow columns).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mrjax.audit import Audit, Audited
from mrjax.errors import NoInstrumentError
from mrjax.gwas import harmonise
from mrjax.ld import substitute_proxies
from mrjax.outputs import StageTimer
from mrjax.scan.audits import trait_audit
from mrjax.scan.config import REVERSE, ScanConfig
from mrjax.scan.frames import NO_ROWS, at_snps, rows_by
from mrjax.scan.stacked import Run, stack_parts
from mrjax.scan.stages import PROXY_KB, empty_carrying, look_up, reachable_snps

STEPS = ("harmonise", "proxies")  # the reverse pairs' own steps (the outcome's selection is reported once)


def reverse_pairs(instruments: Audited, exposures: Audited, names: list[str], outcome_name: str,
                  config: ScanConfig, panel, timings: StageTimer) -> tuple[pd.DataFrame, dict[str, list[Run]]]:
    """Outcome → exposure for a chunk: the outcome's ``instruments`` looked up in the GWAS
    of each exposure of ``names`` (the rows of ``exposures``), every pair with its own
    records. Returns the harmonised pairs (exposures in ``names`` order) and the pairs' audit
    runs, ``{"audit": [Run], "audit_counts": [Run]}``, labelled ``direction, exposure
    (the outcome), outcome (the exposure)``.

    Each exposure GWAS is first cut down to the rows the look-up can use
    (:func:`reachable_rows`), which leaves every result and audit record unchanged."""
    with timings("reverse_split"):
        exposures = exposures.table  # the exposure-side records belong to the forward direction
        table = instruments.table
        lookups = _lookups(table, exposures, names, config, panel) if len(table) else {}
    if len(lookups) > 1 and _stackable(table, lookups):
        return _stacked_pairs(table, lookups, outcome_name, config, panel, timings)
    pairs, audits = [], []
    for name in names:
        pair = (look_up(Audited(table, Audit.empty()), Audited(lookups[name], Audit.empty()), config, panel, timings)
                if name in lookups else empty_carrying(Audited(table, Audit.empty())))
        with timings("audit"):
            audits.append((name, trait_audit(pair.audit, outcome_name, steps=STEPS, direction=REVERSE,
                                             exposure=outcome_name, outcome=name)))
        pairs.append(pair.table)
    with timings("reverse_split"):
        frames = [t for t in pairs if len(t)]
        harmonised = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["exposure", "outcome"])
        return harmonised, {part: stack_parts([(name, a[part]) for name, a in audits])
                            for part in ("audit", "audit_counts")}


def _lookups(instruments: pd.DataFrame, exposures: pd.DataFrame, names: list[str], config: ScanConfig,
             panel) -> dict[str, pd.DataFrame]:
    """Each exposure's GWAS rows to look the instruments up in (``names`` order): the rows
    the look-up can use, or all of the exposure's rows when none can (so the audit says
    why); exposures without rows have nothing to look up and are left out."""
    traits = exposures["trait"].astype(str)
    keep = reachable_rows(instruments, exposures, config, panel)
    near = exposures[keep]
    rows_of = near.groupby(traits[keep].to_numpy(dtype=object), sort=False).indices
    present = set(traits.unique())
    lookups = {}
    for name in names:
        if name in rows_of:
            lookups[name] = near.iloc[rows_of[name]]
        elif name in present:
            lookups[name] = exposures[(traits == name).to_numpy()]
    return lookups


def _stackable(instruments: pd.DataFrame, lookups: dict[str, pd.DataFrame]) -> bool:
    """Whether the pairs can be done stacked: normalised instruments of one trait (their
    ``trait`` is relabelled per pair for harmonise) and exposure GWAS named by ``trait``."""
    return ("trait" in instruments.columns and instruments["trait"].nunique() == 1
            and not {"exposure", "id.exposure"} & set(instruments.columns)
            and all("trait" in g.columns for g in lookups.values()))


def _stacked_pairs(instruments: pd.DataFrame, lookups: dict[str, pd.DataFrame], outcome_name: str, config: ScanConfig,
                   panel, timings: StageTimer) -> tuple[pd.DataFrame, dict[str, list[Run]]]:
    """:func:`reverse_pairs` of two or more pairs, stacked (module docstring)."""
    pair_names = list(lookups)  # the pairs, in names order
    exposure = instruments["trait"].iloc[0]
    with timings("reverse_split"):
        gwas = pd.concat([lookups[name] for name in pair_names], ignore_index=True)
    proxy_records, proxy_labels = Audit.empty(), {}
    if config.use_proxies and panel is not None:
        with timings("proxies"):
            gwas, proxy_records = substitute_proxies(instruments, gwas, panel, r2_min=config.proxy_r2, kb=PROXY_KB,
                                                     audited=True)
        proxy_labels = {f"{exposure} / {name}": k for k, name in enumerate(pair_names)}
    with timings("harmonise"):
        gwas_rows = rows_by(gwas["trait"])
        # with proxies, those still missing are recorded once, by the proxies step; without,
        # harmonise records them
        found = (_found(instruments, gwas, gwas_rows, pair_names) if proxy_labels
                 else np.ones((len(pair_names), len(instruments)), bool))
        looked_up = [k for k in range(len(pair_names)) if found[k].any()]
        labels = {f"{k:09d}": k for k in looked_up}  # sorted as the pairs (harmonise sorts by id.exposure)
        pick = [np.flatnonzero(found[k]) for k in looked_up]
        sides = instruments.take(np.concatenate(pick) if pick else NO_ROWS).reset_index(drop=True)
        sides["trait"] = pd.Series(np.repeat(np.array(list(labels), dtype=object), [len(p) for p in pick]),
                                   dtype=instruments["trait"].dtype)
        rows = [gwas_rows.get(pair_names[k], NO_ROWS) for k in looked_up]
        outcome = gwas.take(np.concatenate(rows) if rows else NO_ROWS).reset_index(drop=True)
        if looked_up:
            try:
                table, records = harmonise(sides, outcome, action=config.action, audited=True,
                                           pairs={label: pair_names[k] for label, k in labels.items()})
            except NoInstrumentError as error:  # no pair keeps a SNP
                table, records = error.table, error.audit
        else:
            table, records = None, Audit.empty()
        harmonised = _harmonised(table, instruments, labels)
    with timings("audit"):
        runs = {}
        for part, frame in (("audit", "drops"), ("audit_counts", "counts")):
            proxied = getattr(proxy_records, frame)
            proxied = proxied.assign(_pair=proxied["trait"].map(proxy_labels)) if len(proxied) else proxied
            mine = getattr(records, frame)
            mine = mine.assign(_pair=mine["trait"].map(labels)) if len(mine) else mine
            runs[part] = _audit_run(proxied, mine, instruments["trait"], pair_names, outcome_name, relabel_counts=frame == "counts")
    return harmonised, runs


def _found(instruments: pd.DataFrame, gwas: pd.DataFrame, gwas_rows: dict, pair_names: list[str]) -> np.ndarray:
    """``[pair, instrument]``: whether the pair's exposure GWAS (now with proxies) has the
    instrument's SNP."""
    snps = pd.Index(pd.unique(instruments["SNP"].to_numpy(dtype=object)))
    pair = np.full(len(gwas), -1)
    for k, name in enumerate(pair_names):
        pair[gwas_rows.get(name, NO_ROWS)] = k
    snp = snps.get_indexer(gwas["SNP"].to_numpy(dtype=object))
    usable = (pair >= 0) & (snp >= 0)
    has = np.zeros((len(pair_names), len(snps)), bool)
    has[pair[usable], snp[usable]] = True
    return has[:, snps.get_indexer(instruments["SNP"].to_numpy(dtype=object))]


def _harmonised(table: pd.DataFrame | None, instruments: pd.DataFrame, labels: dict) -> pd.DataFrame:
    """The harmonised rows of the pairs that keep an instrument, pair by pair, named as the
    outcome's instruments (``exposure``, ``id.exposure``)."""
    if table is None or not len(table):
        return pd.DataFrame(columns=["exposure", "outcome"])
    rows_of = rows_by(table["id.exposure"])
    keep = table["mr_keep"].to_numpy(dtype=bool)
    rows = [rows_of.get(label, NO_ROWS) for label in labels]
    rows = [r for r in rows if keep[r].any()]
    if not rows:
        return pd.DataFrame(columns=["exposure", "outcome"])
    table = table.take(np.concatenate(rows)).reset_index(drop=True)
    same = pd.Series(instruments["trait"].iloc[0], index=table.index, dtype=instruments["trait"].dtype)
    return table.assign(exposure=same, **{"id.exposure": same})


def _audit_run(proxied: pd.DataFrame, harmonised: pd.DataFrame, trait: pd.Series, pair_names: list[str],
               outcome_name: str, relabel_counts: bool) -> list[Run]:
    """One audit table's rows of every pair (``_pair``: its position), pair by pair, each
    pair's proxies rows before its harmonise rows, as :func:`trait_audit` of one look-up per
    pair labels them (``trait`` = the outcome's instruments' trait)."""
    name, text = trait.iloc[0], pd.Series(["text"]).dtype  # text: the dtype a column of one label takes
    parts = []
    if len(proxied):
        parts.append(proxied.assign(trait=pd.Series(str(name), index=proxied.index, dtype=text)))
    if len(harmonised):
        relabelled = (pd.Series(name, index=harmonised.index, dtype=trait.dtype) if relabel_counts else name)
        parts.append(harmonised.assign(trait=relabelled))
    parts = [p[p["step"].isin(STEPS)] for p in parts]
    parts = [p for p in parts if len(p)]
    if not parts:
        return []
    together = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    pair = together["_pair"].to_numpy(dtype=np.int64)
    order = np.argsort(pair, kind="stable")
    together = together.take(order).drop(columns="_pair").reset_index(drop=True)
    sizes = np.bincount(pair, minlength=len(pair_names))
    together.insert(0, "outcome", pd.Series(np.repeat(np.array(pair_names, dtype=object), sizes),
                                            index=together.index, dtype=text))
    together.insert(0, "exposure", outcome_name)
    together.insert(0, "direction", REVERSE)
    return [Run(together, tuple(pair_names), np.cumsum(np.concatenate([[0], sizes])))]


def reachable_rows(instruments: pd.DataFrame, gwas: pd.DataFrame, config: ScanConfig, panel) -> np.ndarray:
    """Which rows of ``gwas`` :func:`~mrjax.scan.stages.look_up` can use for ``instruments``
    (boolean mask): the instruments' own SNPs and, with proxies on, every panel variant that
    ``substitute_proxies`` could pick for one of them — ``mrjax.ld.find_proxies`` against the
    whole panel (r² ≥ ``proxy_r2`` within ``PROXY_KB``). A proxy's r² depends only on the
    panel, so the proxies found in the cut table, and their order, are the same as in the
    whole GWAS. Harmonisation reads only the instruments' rows."""
    return at_snps(gwas, reachable_snps(instruments, config, panel))
