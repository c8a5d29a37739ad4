"""A scan's inputs from a GWAS store (``mrjax.ingest``) instead of files: no whole table is read.

Exposures and the outcome are trait names (globs allowed for exposures). Per trait the scan
takes, from :class:`mrjax.store.GWASStore`:

* for instrument selection, the top-hits table (p <= the store's ``keep_p``, which must be at
  least the scan's ``p``) with the read step's records of the whole file, and per trait the
  number of rows above ``keep_p`` that were not read: the select step counts them as "not
  significant", as it would have had the whole table been read (:func:`count_rows_not_read`);
* for the other side of a pair (the outcome in the forward direction, each exposure in the
  reverse one), a look-up of the instruments' SNPs and of every panel variant that could be
  their LD proxy (``mrjax.scan.stages.reachable_snps``), reading only the row groups that hold
  them. Rows come in the file's order, so the proxies chosen, the harmonised pairs and every
  estimate are those of the scan from the files.

Host-side only (pandas/pyarrow).
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd
import pyarrow as pa

from mrjax.audit import COUNT_COLUMNS, Audit, Audited
from mrjax.scan.errors import ScanError


@lru_cache(maxsize=8)
def open_store(path: str):
    from mrjax.store import GWASStore

    try:
        return GWASStore(path)
    except ValueError as error:
        raise ScanError(" ".join(str(error).split()), "pass --store the folder `mrjax ingest` wrote") from error


def exposure_traits(store_path: str, patterns) -> list[str]:
    """The store's traits matching the exposure patterns, in order of first mention."""
    store = open_store(store_path)
    names: list[str] = []
    for pattern in patterns:
        found = store.traits(str(pattern))
        if not found:
            raise ScanError(f"exposure {pattern!r} matches no trait of the store {store_path}",
                            f"`mrjax store ls {store_path}` lists the traits")
        names += [n for n in found if n not in names]
    return names


def check_trait(store_path: str, trait: str, what: str) -> None:
    if trait not in open_store(store_path).traits():
        raise ScanError(f"{what} {trait!r} is not a trait of the store {store_path}",
                        f"`mrjax store ls {store_path}` lists the traits")


def checksums(store_path: str, traits: list[str]) -> dict[str, str]:
    """Each trait's source checksum and ingest key (what the scan's fingerprint hashes)."""
    store = open_store(store_path)
    out = {}
    for trait in traits:
        info = store.metadata(trait)
        out[trait] = f"{info['source']['sha256']}:{info['ingest']['key']}"
    return out


def source_records(store_path: str, traits: list[str]) -> list[dict]:
    """Manifest records of the traits' source files (as ingested)."""
    store = open_store(store_path)
    records = []
    for trait in traits:
        source = store.metadata(trait)["source"]
        records.append({"path": source["path"], "bytes": source["size"], "sha256": source["sha256"], "trait": trait,
                        "store": str(store.root.resolve())})
    return records


def effect_scale(store_path: str, trait: str) -> str:
    return open_store(store_path).metadata(trait)["effect_scale"] or "beta"


def selection_table(store_path: str, trait: str, p: float, *, whole: bool) -> tuple[Audited, dict[str, int]]:
    """The rows instrument selection at ``p`` can use, with the read records of the file, and
    the rows of the trait's full table left out (``{trait: n}``; all above ``keep_p``).

    ``whole``: as the scan reads a file whole (bi-directional, or with proxies): the read
    step's counts are the whole file's and the rows left out are given for
    :func:`count_rows_not_read`; otherwise as ``read_gwas(p_max=p)`` (nothing left out).
    """
    store = open_store(store_path)
    info = store.metadata(trait)
    keep_p = info["ingest"]["keep_p"]
    whole = whole or bool(info.get("long_table"))  # the scan reads a long multi-trait file whole
    if p > keep_p:
        raise ScanError(f"the store keeps top hits at p <= {keep_p:g}, below the scan's p {p:g} (trait {trait!r})",
                        f"re-ingest with --keep-p {p:g} or lower --p")
    if not whole:
        return store.top_hits(trait, p=p, audited=True), {}
    table = store.top_hits(trait, audited=True).table
    return Audited(table, store.read_audit(trait)), {trait: store.metadata(trait)["rows"]["kept"] - len(table)}


def selection_tables(store_path: str, traits: list[str], p: float, *, whole: bool) -> tuple[Audited, dict[str, int]]:
    """:func:`selection_table` of many traits, stacked in order (what :func:`concat` of
    theirs gives). When every trait is read whole, the top hits are stacked in arrow and
    converted to pandas once, and the read records built in one go
    (:meth:`~mrjax.store.GWASStore.read_audits`): the per-trait cost is two small parquet
    reads instead of two pandas conversions and two audit reads."""
    from mrjax.store import tables

    store = open_store(store_path)
    infos = [store.metadata(trait) for trait in traits]
    if len(traits) < 2 or not all(whole or info.get("long_table") for info in infos):
        parts = [selection_table(store_path, trait, p, whole=whole) for trait in traits]
        return concat([read for read, _ in parts]), {k: v for _, left in parts for k, v in left.items()}
    hits = []
    for trait, info in zip(traits, infos):
        keep_p = info["ingest"]["keep_p"]
        if p > keep_p:
            raise ScanError(f"the store keeps top hits at p <= {keep_p:g}, below the scan's p {p:g} (trait {trait!r})",
                            f"re-ingest with --keep-p {p:g} or lower --p")
        hits.append(store.top_hits_arrow(trait, keep_p))
    table = tables.to_pandas(pa.concat_tables(hits))
    not_read = {trait: info["rows"]["kept"] - part.num_rows for trait, info, part in zip(traits, infos, hits)}
    return Audited(table, store.read_audits(traits)), not_read


def concat(frames: list[Audited]) -> Audited:
    """Stack per-trait store tables and their records."""
    if len(frames) == 1:
        return frames[0]
    return Audited(pd.concat([f.table for f in frames], ignore_index=True), Audit.combine(*(f.audit for f in frames)))


def count_rows_not_read(selected: Audited, not_read: dict[str, int] | None) -> Audited:
    """Add the rows a store-backed table, or a whole read cut to its usable rows
    (:func:`mrjax.scan.inputs.usable_rows`), left out (``not_read``: trait -> rows) to the
    select step's "not significant" counts (``n_in``, ``n_dropped`` and the unlisted drops),
    as selecting from the whole table counts them."""
    if not not_read:
        return selected
    counts = selected.audit.counts.copy()
    mine = (counts["step"] == "select") & counts["trait"].isin(list(not_read))
    extra = counts.loc[mine, "trait"].map(not_read).astype("int64")
    counts.loc[mine, "n_in"] += extra
    counts.loc[mine, "n_dropped"] += extra
    selecting = set(counts.loc[counts["step"] == "select", "trait"])
    extra_by_trait = {trait: n for trait, n in not_read.items() if n and trait in selecting}
    unlisted = selected.audit.unlisted.copy()
    at = ((unlisted["step"] == "select") & (unlisted["reason"] == "not significant")
          & unlisted["trait"].isin(list(extra_by_trait)))
    unlisted.loc[at, "n"] = unlisted.loc[at, "n"].astype("int64") + unlisted.loc[at, "trait"].astype(object).map(extra_by_trait)
    listed = set(unlisted.loc[at, "trait"])
    new_rows = [{"step": "select", "trait": trait, "reason": "not significant", "n": n}
                for trait, n in extra_by_trait.items() if trait not in listed]
    if new_rows:
        unlisted = pd.concat([unlisted, pd.DataFrame(new_rows)], ignore_index=True)
    return Audited(selected.table, selected.audit.replace(counts=counts[COUNT_COLUMNS], unlisted=unlisted))


def rows_for(store_path: str, trait: str, snps) -> Audited:
    """The trait's rows at ``snps`` (row-group pruned), with the read records of the file.

    When none is there, the trait's first row stands in (it matches no instrument), so the
    look-up still runs and its audit records every instrument as missing, as it does against
    the whole table."""
    store = open_store(store_path)
    table = store.lookup(trait, snps=list(snps))
    if table.empty:
        table = store.head(trait)
    return Audited(table, store.read_audit(trait))


def rows_of_traits(store_path: str, traits: list[str], snps) -> pd.DataFrame:
    """The rows of each trait at ``snps`` (as :func:`rows_for`, the first row standing in for
    a trait with none), stacked in the order of ``traits``, without read records (the
    reverse direction does not report the exposures' reads). The query is prepared once and
    the rows converted to pandas once."""
    from mrjax.store import tables
    from mrjax.store.lookup import SNPQuery

    store = open_store(store_path)
    query = SNPQuery(list(snps))
    parts = []
    for trait in traits:
        data, _ = store.lookup_arrow(trait, query)
        parts.append(data if data.num_rows else store.head_arrow(trait)[0])
    return tables.to_pandas(pa.concat_tables(parts))
