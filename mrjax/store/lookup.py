"""``mrjax.GWASStore``: read traits back from a store, touching only the row groups needed.

Every table returned has ``mrjax.read_gwas``'s columns and dtypes, rows in the source file's
order, so code written for ``read_gwas`` runs unchanged on store tables. Each carries
``attrs["store_read"]``: row groups and rows read against the totals (what a look-up cost).
``table`` and ``top_hits`` also give the read step's audit records, rebuilt from the store as
``read_gwas(path)`` / ``read_gwas(path, p_max=p)`` give them: ``audited=True`` returns
``Audited(table, audit)``, the default the table with the records in ``attrs`` (deprecated;
see ``mrjax.audit``).
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mrjax import audit as audits
from mrjax.store import layout, tables


class GWASStore:
    """A folder of ingested GWAS traits (``mrjax.ingest``).

    >>> store = GWASStore("gwas_store")
    >>> store.traits("GCST9000*")                       # names, sorted; globs allowed
    >>> store.top_hits("CD4_Treg", p=5e-8)               # instruments without a full read
    >>> store.lookup("low_back_pain", snps=["rs123", "rs456"])
    >>> store.lookup("low_back_pain", positions=[("2", 101353572)])
    """

    def __init__(self, path):
        self.root = layout.open_store(path, create=False)
        self._folders: dict[str, Path] | None = None

    def __repr__(self) -> str:
        return f"GWASStore({str(self.root)!r}, {len(self.folders)} traits)"

    @property
    def folders(self) -> dict[str, Path]:
        if self._folders is None:
            self._folders = layout.trait_folders(self.root)
        return self._folders

    # -- what is in the store --------------------------------------------------------------
    def traits(self, pattern: str | list[str] | None = None) -> list[str]:
        """Trait names, sorted; ``pattern`` (a glob or a list of globs/names) selects some."""
        names = sorted(self.folders)
        if pattern is None:
            return names
        patterns = [pattern] if isinstance(pattern, str) else list(pattern)
        return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]

    def metadata(self, trait: str) -> dict:
        """The trait's metadata: source, checksum, read audit, sample size, scale, build."""
        return json.loads((self._folder(trait) / layout.METADATA).read_text())

    def summary(self) -> pd.DataFrame:
        """One row per trait with the main metadata fields (what ``mrjax store ls`` prints)."""
        rows = []
        for trait in self.traits():
            info = self.metadata(trait)
            reasons = info["rows"]["dropped_by_reason"]
            rows.append({
                "trait": trait,
                "rows_read": info["rows"]["read"],
                "rows_kept": info["rows"]["kept"],
                "rows_dropped": info["rows"]["dropped"],
                "dropped_by_reason": "; ".join(f"{k}: {v}" for k, v in sorted(reasons.items())),
                "top_hits": info["rows"]["top_hits"],
                "keep_p": info["ingest"]["keep_p"],
                "n": info["sample_size"]["n"],
                "n_cases": info["n_cases"],
                "n_controls": info["n_controls"],
                "effect_scale": info["effect_scale"],
                "genome_build": info["genome_build"],
                "format": info["source"]["format"],
                "source": info["source"]["path"],
                "size": info["source"]["size"],
                "sha256": info["source"]["sha256"],
                "mrjax_version": info["mrjax_version"],
                "ingested_at": info["ingest"]["ingested_at"],
            })
        return pd.DataFrame(rows)

    def audit(self, trait: str) -> pd.DataFrame:
        """The read step's listed drops for the trait (``step, trait, SNP, reason, detail``)."""
        frame = pq.read_table(self._folder(trait) / layout.AUDIT).to_pandas()
        frame["SNP"] = frame["SNP"].astype(object)  # as mrjax.audit.drops builds it
        return frame

    # -- reading rows -----------------------------------------------------------------------
    def top_hits(self, trait: str, p: float | None = None, *, audited: bool = False):
        """Rows with p <= ``p`` (default: the store's ``keep_p``), as ``read_gwas(p_max=p)``
        returns them; ``p`` above the ``keep_p`` of the ingest raises ``ValueError``."""
        keep_p = self.metadata(trait)["ingest"]["keep_p"]
        p = keep_p if p is None else float(p)
        if p > keep_p:
            raise ValueError(f"trait {trait!r}: the store keeps top hits at p <= {keep_p:g}, not {p:g}; "
                             f"re-ingest with a larger keep_p (mrjax ingest --keep-p {p:g})")
        table = self.top_hits_arrow(trait, p)
        read = self._with_read_audit(tables.to_pandas(table), trait, p)
        read.table.attrs["store_read"] = {"table": layout.TOP_HITS, "rows_read": table.num_rows}
        return audits.deliver(read, audited)

    def top_hits_arrow(self, trait: str, p: float) -> pa.Table:
        """The arrow rows of :meth:`top_hits` (``p`` at most the ingest's ``keep_p``; not
        checked here), without the pandas conversion or the read records: many traits' rows
        are stacked in arrow and converted once (:func:`tables.to_pandas`)."""
        # one file: ParquetFile.read skips read_table's dataset layer (~0.4 ms a call, 0.3 s a 731-trait scan)
        table = pq.ParquetFile(self._folder(trait) / layout.TOP_HITS).read()
        return table.filter(tables.significant(table, p))

    def table(self, trait: str, *, audited: bool = False):
        """Every row of the trait (a full read: what a scan from the store avoids)."""
        handle = pq.ParquetFile(self._folder(trait) / layout.VARIANTS)
        data = handle.read()
        frame = _in_read_order(data, _cost(handle, list(range(handle.num_row_groups)), data.num_rows))
        return audits.deliver(self._with_read_audit(frame, trait, None), audited)

    def head(self, trait: str, n: int = 1) -> pd.DataFrame:
        """The trait's first ``n`` rows in store order (reads the first row group only)."""
        data, cost = self.head_arrow(trait, n)
        return _in_read_order(data, cost)

    def head_arrow(self, trait: str, n: int = 1) -> tuple[pa.Table, dict]:
        """The arrow rows of :meth:`head` and what reading them cost."""
        handle = pq.ParquetFile(self._folder(trait) / layout.VARIANTS)
        data = handle.read_row_group(0).slice(0, n)
        return data, _cost(handle, [0], data.num_rows)

    def read_audit(self, trait: str) -> audits.Audit:
        """The records ``read_gwas`` gives for a whole-file read of the trait, without
        reading the table."""
        rows = self.metadata(trait)["rows"]
        counts = pd.DataFrame([{"step": "read", "trait": trait, "n_in": rows["read"], "n_kept": rows["kept"],
                                "n_dropped": rows["dropped"]}], columns=audits.COUNT_COLUMNS)
        for column in ("n_in", "n_kept", "n_dropped"):
            counts[column] = counts[column].astype("int64")
        return audits.Audit(drops=self.audit(trait), counts=counts)

    def read_audits(self, traits: list[str]) -> audits.Audit:
        """``Audit.combine(*(self.read_audit(t) for t in traits))``, built in one go: the
        counts as one frame, and only the audit files of traits that dropped rows read (the
        others list no drop, and ``combine`` skips empty frames)."""
        if len(traits) == 1:
            return self.read_audit(traits[0])
        infos = [self.metadata(trait)["rows"] for trait in traits]
        counts = pd.DataFrame([{"step": "read", "trait": trait, "n_in": rows["read"], "n_kept": rows["kept"],
                                "n_dropped": rows["dropped"]} for trait, rows in zip(traits, infos)],
                              columns=audits.COUNT_COLUMNS)
        for column in ("n_in", "n_kept", "n_dropped"):
            counts[column] = counts[column].astype("int64")
        listed = [self.audit(trait) for trait, rows in zip(traits, infos) if rows["dropped"]]
        return audits.Audit.combine(*(audits.Audit(drops=drops) for drops in listed), audits.Audit(counts=counts),
                                    audits.Audit())

    def _with_read_audit(self, frame: pd.DataFrame, trait: str, p: float | None) -> audits.Audited:
        """``frame`` with the read step's records as ``read_gwas`` gives them.

        For ``p`` the rows above it count as "not significant". Difference from
        ``read_gwas(p_max=p)``: rows dropped for a bad value are listed whatever their p (the
        file's reader lists only those passing p and counts the others as not significant), and
        a SNP repeated in the file keeps its first row even when only a later one passes p.
        """
        info = self.metadata(trait)
        n_in = pd.Series({trait: info["rows"]["read"]}, dtype="int64")
        listed = self.audit(trait)
        unlisted = None if p is None else pd.Series({trait: info["rows"]["kept"] - len(frame)}, dtype="int64")
        records = audits.step_audit("read", n_in, audits.kept_per_trait(frame, n_in.index), listed if len(listed) else None,
                                    unlisted)
        frame.attrs["source"] = info["source"]["path"]
        frame.attrs["format"] = info["source"]["format"]
        return audits.Audited(frame, records)

    def lookup(self, trait: str, snps=None, positions=None) -> pd.DataFrame:
        """The trait's rows for the given SNP ids or positions (give one of them).

        ``snps``: ids as in the table's ``SNP`` column (rsIDs; ``chr:pos:other:effect`` for rows
        the file gave none). ``positions``: ``(chr, pos)`` pairs, ``"chr:pos"`` strings or a
        frame with ``chr`` and ``pos`` columns; every row at a queried position is returned
        (all alleles); ``chr2`` and ``2`` match. Rows come in the source file's order, equal
        to filtering the full table. Only the row groups whose statistics can hold a queried
        id or position are read.
        """
        if (snps is None) == (positions is None):
            raise ValueError("lookup needs exactly one of snps= or positions=")
        if snps is not None:
            return _in_read_order(*self.lookup_arrow(trait, SNPQuery(snps)))
        handle = pq.ParquetFile(self._folder(trait) / layout.VARIANTS)
        queries = _position_queries(positions)
        groups = _groups_holding(handle, queries)
        data = _read_groups(handle, groups)
        data = data.filter(_at_positions(data, queries))
        return _in_read_order(data, _cost(handle, groups, data.num_rows))

    def lookup_arrow(self, trait: str, query: "SNPQuery") -> tuple[pa.Table, dict]:
        """The arrow rows of ``lookup(trait, snps=...)`` in read order and what reading them
        cost; ``query`` (:class:`SNPQuery`) is prepared once for many traits."""
        folder = self._folder(trait)
        handle = pq.ParquetFile(folder / layout.VARIANTS)
        rows = _index_rows(folder / layout.SNP_INDEX, query.wanted, query.values)
        starts = np.cumsum([0] + [handle.metadata.row_group(g).num_rows for g in range(handle.num_row_groups)])
        groups = sorted(set((np.searchsorted(starts, rows, side="right") - 1).tolist()))
        data = _read_groups(handle, groups)
        data = data.filter(pc.is_in(data.column("SNP"), value_set=query.values))
        data = data.take(pc.sort_indices(data, sort_keys=[(tables.ORDER_COLUMN, "ascending")]))
        return data, _cost(handle, groups, data.num_rows)

    def _folder(self, trait: str) -> Path:
        folder = self.folders.get(trait)
        if folder is None:
            close = [t for t in self.folders if t.lower() == str(trait).lower()]
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{self.root}: no trait {trait!r} in the store{hint} (`mrjax store ls {self.root}` lists them)")
        return folder


class SNPQuery:
    """SNP ids to look up (:meth:`GWASStore.lookup_arrow`): sorted, unique, as strings, and
    as the arrow value set of the row filter."""

    def __init__(self, snps):
        self.wanted = _unique_strings(snps)
        self.values = pa.array(self.wanted, pa.string())


def _unique_strings(values) -> list[str]:
    if isinstance(values, str):
        values = [values]
    return sorted({str(v) for v in pd.Series(list(values), dtype=object).dropna()})


def _index_rows(path: Path, wanted: list[str], values: pa.Array) -> np.ndarray:
    """Rows of variants.parquet holding ``wanted`` ids, reading the index groups whose SNP
    range (row-group statistics; the index is sorted by SNP) can hold one."""
    if not wanted:
        return np.empty(0, dtype=np.int64)
    handle = pq.ParquetFile(path)
    meta = handle.metadata
    queries = np.array(wanted, dtype=object)
    groups = []
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(0).statistics
        if stats is None or not stats.has_min_max:
            groups.append(g)
            continue
        lo, hi = np.searchsorted(queries, stats.min, "left"), np.searchsorted(queries, stats.max, "right")
        if hi > lo:
            groups.append(g)
    if not groups:
        return np.empty(0, dtype=np.int64)
    index = _read_groups(handle, groups)
    found = index.filter(pc.is_in(index.column("SNP"), value_set=values))
    return found.column("row").to_numpy()


def _position_queries(positions) -> dict[str, np.ndarray]:
    """Queried positions as ``{bare chromosome: sorted unique positions}``."""
    if isinstance(positions, pd.DataFrame):
        missing = {"chr", "pos"} - set(positions.columns)
        if missing:
            raise ValueError(f"positions= frame needs columns chr and pos (missing {sorted(missing)})")
        pairs = zip(positions["chr"], positions["pos"])
    else:
        pairs = (_split_position(p) for p in positions)
    by_chr: dict[str, list[int]] = {}
    for chromosome, pos in pairs:
        if pd.isna(chromosome) or pd.isna(pos):
            continue
        by_chr.setdefault(tables.bare_chromosome(chromosome), []).append(int(pos))
    return {c: np.unique(np.array(p, dtype=np.int64)) for c, p in by_chr.items()}


def _split_position(item):
    if isinstance(item, str):
        chromosome, sep, pos = item.rpartition(":")
        if not sep:
            raise ValueError(f"positions= items are (chr, pos) pairs or 'chr:pos' strings, not {item!r}")
        return chromosome, int(pos)
    chromosome, pos = item
    return chromosome, pos


def _groups_holding(handle: pq.ParquetFile, queries: dict[str, np.ndarray]) -> list[int]:
    """Row groups whose (one) chromosome is queried and whose position range holds a query."""
    meta = handle.metadata
    names = handle.schema_arrow.names
    chr_at, pos_at = names.index("chr"), names.index("pos")
    groups = []
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        chr_stats, pos_stats = group.column(chr_at).statistics, group.column(pos_at).statistics
        if chr_stats is None or pos_stats is None or not (chr_stats.has_min_max and pos_stats.has_min_max):
            continue  # rows without a chromosome or position: no position matches them
        wanted = queries.get(tables.bare_chromosome(chr_stats.min))
        if wanted is None or chr_stats.min != chr_stats.max:
            continue
        lo, hi = np.searchsorted(wanted, pos_stats.min, "left"), np.searchsorted(wanted, pos_stats.max, "right")
        if hi > lo:
            groups.append(g)
    return groups


def _at_positions(data: pa.Table, queries: dict[str, np.ndarray]) -> pa.Array:
    if data.num_rows == 0:
        return pa.array([], pa.bool_())
    bare = [tables.bare_chromosome(c) if c is not None else None for c in data.column("chr").to_pylist()]
    pos = data.column("pos").to_numpy(zero_copy_only=False)
    keep = np.zeros(data.num_rows, dtype=bool)
    bare = np.array(bare, dtype=object)
    for chromosome, wanted in queries.items():
        rows = np.flatnonzero(bare == chromosome)
        keep[rows] = np.isin(pos[rows], wanted)
    return pa.array(keep)


#: Above this fraction of a file's row groups, one whole-file read beats reading them one by one.
WHOLE_FILE = 0.5


def _read_groups(handle: pq.ParquetFile, groups: list[int]) -> pa.Table:
    if not groups:
        return handle.schema_arrow.empty_table()
    if len(groups) > WHOLE_FILE * handle.num_row_groups:
        return handle.read()
    return handle.read_row_groups(groups)


def _cost(handle: pq.ParquetFile, groups: list[int], rows_returned: int) -> dict:
    meta = handle.metadata
    if len(groups) > WHOLE_FILE * meta.num_row_groups:
        groups = list(range(meta.num_row_groups))
    return {
        "table": layout.VARIANTS,
        "row_groups_read": len(groups),
        "row_groups_total": meta.num_row_groups,
        "rows_read": int(sum(meta.row_group(g).num_rows for g in groups)),
        "rows_total": meta.num_rows,
        "rows_returned": int(rows_returned),
    }


def _in_read_order(data: pa.Table, cost: dict) -> pd.DataFrame:
    data = data.take(pc.sort_indices(data, sort_keys=[(tables.ORDER_COLUMN, "ascending")]))
    frame = tables.to_pandas(data)
    frame.attrs["store_read"] = cost
    return frame
