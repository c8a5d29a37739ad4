"""Streaming ingest: a GWAS file into store tables in memory bounded by the block size.

``mrjax.gwas.readers.stream_gwas`` hands each block of kept, normalised rows to a
:class:`StoreSink`; no step ever holds more than one block (or one row group, or one batch
of ``ROWS_PER_BATCH`` rows) of the file:

1. **Blocks** (read order): each row gets ``read_order`` (its position among the kept rows of
   the file, duplicates still counted) and goes to its trait's run — a parquet file written
   as ``variants.parquet`` is (one run of row groups per chromosome) while the trait's rows
   arrive in store order (chromosome, position: GWAS files are sorted), then as plain row
   groups once they do not. Each row's data row number goes to a side file; the rows with
   p <= ``keep_p`` to a top-hits run.
2. **Duplicates** (a SNP repeated within a trait; the first kept, as ``read_gwas``): duckdb's
   external sort of each run by (SNP, read order), where repeats are neighbours; it spills to
   disk beyond ``DUCKDB_MEMORY``. For a run that is already final, that sorted stream is
   written as the SNP index on the way.
3. **Final tables** per trait: a run that arrived sorted, in a file without duplicates, *is*
   ``variants.parquet``; otherwise duckdb's external sort (or the sorted run) is streamed
   through the writer with the duplicates dropped and ``read_order`` renumbered, and the SNP
   index is duckdb's sort of (SNP, row) of that file. Top hits: the top-hits run in read order.

The files are byte-identical to those of the in-memory path this replaced (``read_gwas``'s
whole table sorted and written at once: same rows, row groups, encodings and statistics;
compared on ../shared/data/gwas, the demo and a 2 M-row Catalog file), and the read audit
equals ``read_gwas``'s.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mrjax.gwas.columns import set_column
from mrjax.gwas.readers import OUTPUT_COLUMNS
from mrjax.store import tables
from mrjax.store.tables import ORDER_COLUMN, SCHEMA

#: Rows per batch read back from runs and from duckdb.
ROWS_PER_BATCH = 1 << 16
#: Runs up to this many rows are sorted in memory (duckdb's per-query cost dominates them:
#: a long table of 731 small traits).
SMALL_RUN = 1 << 16
#: duckdb's memory limit per ingest task (it spills to the work folder above it): on a 22 M-row
#: file its sort used the whole 1 GB it was once given, for the same CPU time as with 256 MB.
DUCKDB_MEMORY = "256MB"
ROWS_SCHEMA = pa.schema([("_row", pa.int64())])
FLOAT_COLUMNS = [name for name in OUTPUT_COLUMNS if SCHEMA.field(name).type == pa.float64()]


def observe(step: str, rows: int) -> None:
    """Called with the rows each step handles at once (a hook for tests of bounded memory)."""


class _TraitRun:
    """One trait's rows as they arrive: the run file, the side file of data row numbers, the
    and what the metadata needs (chromosomes, sample-size counts)."""

    def __init__(self, work: Path, index: int):
        self.work = work
        self.path = work / f"run{index}.parquet"
        self.writer = tables.variants_writer(self.path)
        self.index_path = None  # the SNP index, when written while finding duplicates
        self.in_order = True
        self.last = None  # (segment key, position) of the last row written in order
        self.chromosomes: set[str] = set()
        self.sizes: dict[float, int] = {}
        self.rows = 0

    def add(self, table: pa.Table) -> None:
        observe("run", table.num_rows)
        self.rows += table.num_rows
        codes, order = tables.segment_codes(table)
        self.chromosomes.update(order)
        _count_sizes(self.sizes, table.column("n"))
        if self.in_order:
            self.in_order = self._write_in_order(table, codes, order)
        else:
            self.writer.write(table)

    def _write_in_order(self, table: pa.Table, codes: np.ndarray, order: list[str]) -> bool:
        """Write a block of rows in store order, one run of row groups per chromosome; False
        (the block written as it is) when the block breaks the order."""
        positions = pc.fill_null(table.column("pos"), 0).to_numpy(zero_copy_only=False)
        step_code, step_pos = np.diff(codes), np.diff(positions)
        keys = segment_keys(order)
        first = (keys[codes[0]], int(positions[0]))
        if np.any((step_code < 0) | ((step_code == 0) & (step_pos < 0))) or (self.last is not None and first < self.last):
            self.writer.write(table)
            return False
        write_runs(self.writer, table, codes, keys, None if self.last is None else self.last[0])
        self.last = (keys[codes[-1]], int(positions[-1]))
        return True

    def close(self) -> None:
        self.writer.close()


class StoreSink:
    """Takes the kept blocks of ``stream_gwas`` (see the module docstring); ``finish`` finds
    the duplicates, ``write_trait`` writes a trait's final tables."""

    def __init__(self, work: Path, keep_p: float):
        self.work = Path(work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.keep_p = float(keep_p)
        self.runs: dict[str, _TraitRun] = {}
        # shared by the traits (one open file each, however many traits a long table holds):
        # every kept row's data row number (row k of the file: read_order k) and the top hits
        self.rows_path, self.top_path = self.work / "rows.parquet", self.work / "top.parquet"
        self.rows_writer = pq.ParquetWriter(self.rows_path, ROWS_SCHEMA, compression="zstd", compression_level=1,
                                            use_dictionary=False, column_encoding={"_row": "DELTA_BINARY_PACKED"})
        self.top = tables.GroupedWriter(self.top_path, SCHEMA, ROWS_PER_BATCH, **tables.VARIANT_ENCODING)
        self._top_hits = None
        self.read = 0  # kept rows so far: the next row's read_order
        self.duplicates: np.ndarray = np.zeros(0, dtype=np.int64)  # read_order of every duplicated row
        self._duckdb = None

    # -- step 1: blocks ----------------------------------------------------------------------
    def add(self, block: pa.Table) -> None:
        observe("block", block.num_rows)
        arrays = [_as_column(block.column(name), SCHEMA.field(name).type) for name in OUTPUT_COLUMNS]
        arrays.append(pa.array(np.arange(self.read, self.read + block.num_rows, dtype=np.int64)))
        table = pa.Table.from_arrays(arrays, schema=SCHEMA)
        self.read += block.num_rows
        self.rows_writer.write_table(pa.table({"_row": _as_column(block.column("_row"), pa.int64())}))
        self.top.write(table.filter(tables.significant(table, self.keep_p)))
        for trait, part in _by_trait(table):
            if trait not in self.runs:
                self.runs[trait] = _TraitRun(self.work, len(self.runs))
            self.runs[trait].add(part)

    # -- step 2: duplicates ------------------------------------------------------------------
    def finish(self) -> tuple[pd.Series, pd.DataFrame | None]:
        """Rows kept per trait (duplicates dropped) and the duplicated rows (``trait, SNP,
        _row, first_row`` in read order), as ``stream_gwas`` asks of its sink."""
        for run in self.runs.values():
            run.close()
        self.rows_writer.close()
        self.top.close()
        found = [self._duplicates(trait, run) for trait, run in self.runs.items()]
        found = [f for f in found if len(f)]
        kept = pd.Series({trait: run.rows for trait, run in self.runs.items()}, dtype="int64")
        if not found:
            return kept, None
        duplicates = pd.concat(found, ignore_index=True).sort_values("k", kind="stable").reset_index(drop=True)
        self.duplicates = duplicates["k"].to_numpy(dtype=np.int64)
        kept = kept.sub(duplicates.groupby("trait").size(), fill_value=0).astype("int64")
        return kept, duplicates[["trait", "SNP", "_row", "first_row"]]

    def _duplicates(self, trait: str, run: _TraitRun) -> pd.DataFrame:
        """A trait's repeated SNPs, from duckdb's external sort of its run by (SNP, read
        order), where repeats are neighbours. The same sorted stream is the trait's SNP index
        when the run is already final (in store order; written next to it)."""
        index = None
        if run.in_order:
            run.index_path = self.work / f"index_{run.path.stem}.parquet"
            index = tables.GroupedWriter(run.index_path, tables.INDEX_SCHEMA, tables.INDEX_GROUP_ROWS,
                                         **tables.INDEX_ENCODING)
        found, previous = [], None
        for batch in self._sorted(run.path, ["SNP", ORDER_COLUMN], run.rows):
            if index is not None:
                index.write(pa.Table.from_batches([batch]).select(["SNP", "row"]))
            table = pa.Table.from_batches([batch])
            if previous is not None:
                table = pa.concat_tables([previous, table])
            snp = table.column("SNP").combine_chunks()
            repeat = np.r_[False, pc.equal(snp.slice(1), snp.slice(0, len(snp) - 1)).to_numpy(zero_copy_only=False)]
            if repeat.any():
                starts = np.maximum.accumulate(np.where(repeat, 0, np.arange(len(repeat))))
                order = table.column(ORDER_COLUMN).to_numpy()
                hits = np.flatnonzero(repeat)
                found.append(pd.DataFrame({"SNP": snp.take(pa.array(hits)).to_pylist(), "k": order[hits],
                                           "first": order[starts[hits]]}))
            # carried into the next batch: the first row of the last run of equal SNPs
            last_start = int(np.flatnonzero(~repeat)[-1])
            previous = table.slice(last_start, 1)
        if index is not None:
            index.close()
        if not found:
            return pd.DataFrame(columns=["trait", "SNP", "k", "_row", "first_row"])
        repeats = pd.concat(found, ignore_index=True)
        if index is not None:
            run.index_path.unlink()
            run.index_path = None
        numbers = _rows_at(self.rows_path, np.union1d(repeats["k"], repeats["first"]))
        return pd.DataFrame({"trait": trait, "SNP": repeats["SNP"], "k": repeats["k"],
                             "_row": [numbers[k] for k in repeats["k"]], "first_row": [numbers[k] for k in repeats["first"]]})

    # -- step 3: a trait's final tables ------------------------------------------------------
    def write_trait(self, trait: str, folder: Path) -> dict:
        """Write ``variants``, ``snp_index`` and ``top_hits`` of ``trait`` into ``folder``;
        returns their descriptions, the chromosomes and the sample-size counts."""
        run = self.runs[trait]
        target = folder / "variants.parquet"
        chromosomes, sizes = tables.chromosome_order(run.chromosomes), run.sizes
        if run.in_order and not len(self.duplicates):
            os.replace(run.path, target)
        else:
            chromosomes, sizes = self._rewrite(run, target)
        metadata = pq.read_metadata(target)
        variants = {"rows": metadata.num_rows, "row_groups": metadata.num_row_groups, "bytes": target.stat().st_size}
        if run.index_path is not None:  # the run was final: its index was written with the duplicate check
            index = {"rows": pq.read_metadata(run.index_path).num_rows, "bytes": run.index_path.stat().st_size}
            os.replace(run.index_path, folder / "snp_index.parquet")
        else:
            index = tables.write_snp_index((b.select(["SNP", "row"]) for b in self._sorted(target, ["SNP"], run.rows)),
                                           folder / "snp_index.parquet")
        hits = tables.write_top_hits((self._renumbered(pa.Table.from_batches([b])) for b in self._top_batches(trait)),
                                     folder / "top_hits.parquet")
        return {"variants": variants, "snp_index": index, "top_hits": hits, "chromosomes": chromosomes,
                "sizes": sizes}

    def _sorted(self, path: Path, keys: list[str], rows: int):
        """Batches of ``keys`` and ``row`` (the position in the file) of a run sorted by
        ``keys``: in memory for a run of at most ``SMALL_RUN`` rows, else duckdb's external sort."""
        if rows <= SMALL_RUN:
            table = pq.read_table(path, columns=keys)
            observe("in-memory sort", table.num_rows)
            table = table.append_column("row", pa.array(np.arange(table.num_rows, dtype=np.int64)))
            table = table.take(pc.sort_indices(table, sort_keys=[(key, "ascending") for key in keys]))
            for batch in table.to_batches(max_chunksize=ROWS_PER_BATCH):
                observe("batch", batch.num_rows)
                yield batch
            return
        yield from self._batches(f"""SELECT {", ".join(keys)}, file_row_number AS row
                                     FROM read_parquet($path, file_row_number=true) ORDER BY {", ".join(keys)}""",
                                     {"path": str(path)})

    def _top_batches(self, trait: str):
        """The trait's top hits in read order: from the shared top-hits run (held sorted in
        memory when it has at most ``SMALL_RUN`` rows, else one duckdb query per trait)."""
        total = pq.read_metadata(self.top_path).num_rows
        if total <= SMALL_RUN:
            if self._top_hits is None:
                table = pq.read_table(self.top_path)
                observe("in-memory sort", table.num_rows)
                self._top_hits = table.take(pc.sort_indices(table, sort_keys=[("trait", "ascending"),
                                                                             (ORDER_COLUMN, "ascending")]))
            mine = self._top_hits.filter(pc.equal(self._top_hits.column("trait"), trait))
            yield from mine.to_batches(max_chunksize=ROWS_PER_BATCH)
            return
        query = f"SELECT * FROM read_parquet($path) WHERE trait = $trait ORDER BY {ORDER_COLUMN}"
        yield from self._batches(query, {"path": str(self.top_path), "trait": trait})

    def _rewrite(self, run: _TraitRun, target: Path) -> tuple[list[str], dict]:
        """The run in store order, duplicates dropped, through the variants writer."""
        if run.in_order:
            batches = pq.ParquetFile(run.path).iter_batches(batch_size=ROWS_PER_BATCH)
        else:
            chromosomes = tables.chromosome_order(run.chromosomes)
            ranks = pa.table({"chr": chromosomes, "rank": np.arange(len(chromosomes), dtype=np.int64)})
            self.duckdb.register("chromosome_ranks", ranks)
            batches = self._batches(f"""
                SELECT v.* FROM read_parquet($path) v LEFT JOIN chromosome_ranks c ON v.chr = c.chr
                ORDER BY CASE WHEN v.pos IS NULL OR c.rank IS NULL THEN {len(chromosomes)} ELSE c.rank END,
                         coalesce(v.pos, 0), v.{ORDER_COLUMN}""", {"path": str(run.path)})
        writer = tables.variants_writer(target)
        chromosomes, sizes, last = set(), {}, None
        for batch in batches:
            table = self._renumbered(pa.Table.from_batches([batch]).select(SCHEMA.names).cast(SCHEMA))
            if table.num_rows == 0:
                continue
            codes, order = tables.segment_codes(table)
            chromosomes.update(order)
            _count_sizes(sizes, table.column("n"))
            keys = segment_keys(order)
            last = write_runs(writer, table, codes, keys, last)
        writer.close()
        run.path.unlink()
        return tables.chromosome_order(chromosomes), sizes

    def _renumbered(self, table: pa.Table) -> pa.Table:
        """Duplicates dropped and ``read_order`` counted without them (``read_gwas``'s rows)."""
        if not len(self.duplicates) or table.num_rows == 0:
            return table
        order = table.column(ORDER_COLUMN).to_numpy()
        keep = ~np.isin(order, self.duplicates)
        table = table.filter(pa.array(keep))
        order = order[keep]
        return set_column(table, ORDER_COLUMN, pa.array(order - np.searchsorted(self.duplicates, order)))

    # -- duckdb ------------------------------------------------------------------------------
    @property
    def duckdb(self):
        if self._duckdb is None:
            import duckdb

            spill = self.work / "duckdb"
            spill.mkdir(exist_ok=True)
            self._duckdb = duckdb.connect(config={"threads": 1, "memory_limit": DUCKDB_MEMORY,
                                                  "temp_directory": str(spill), "preserve_insertion_order": False})
            self._duckdb.execute("SET enable_progress_bar = false")  # it would print on the worker's stdout
        return self._duckdb


    def _batches(self, query: str, params: dict):
        """A duckdb query's result, ``ROWS_PER_BATCH`` rows at a time (file paths and trait
        names passed as parameters, never pasted into the SQL)."""
        for batch in self.duckdb.sql(query, params=params).to_arrow_reader(ROWS_PER_BATCH):
            observe("batch", batch.num_rows)
            yield batch

    def close(self) -> None:
        for writer in (self.rows_writer.close, self.top.writer.close):
            try:
                writer()
            except Exception:  # noqa: BLE001 - already closed, or never written
                pass
        if self._duckdb is not None:
            self._duckdb.close()
            self._duckdb = None
        shutil.rmtree(self.work, ignore_errors=True)


def _by_trait(table: pa.Table):
    """(trait, its rows in read order) for each trait of a block, in order of appearance: one
    stable sort of the trait codes (a long table's block may hold hundreds of traits)."""
    encoded = pc.dictionary_encode(table.column("trait")).combine_chunks()
    names = encoded.dictionary.to_pylist()
    if len(names) == 1:
        yield names[0], table
        return
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    grouped = table.take(pa.array(np.argsort(codes, kind="stable")))
    counts = np.bincount(codes, minlength=len(names))
    for name, start, count in zip(names, np.r_[0, np.cumsum(counts)[:-1]], counts):
        yield name, grouped.slice(int(start), int(count))


def _rows_at(path: Path, positions: np.ndarray) -> dict:
    """Data row numbers of the run rows at ``positions`` (sorted), read a batch at a time."""
    found, offset = {}, 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=ROWS_PER_BATCH):
        values = batch.column(0).to_numpy()
        mine = positions[(positions >= offset) & (positions < offset + len(values))]
        found.update(zip(mine.tolist(), values[mine - offset].tolist()))
        offset += len(values)
    return found


def segment_keys(order: list[str]) -> list[tuple]:
    """Sort keys of the segment codes of ``tables.segment_codes``: placed rows by chromosome,
    then the unplaced."""
    return [(0, tables.chromosome_key(name), name) for name in order] + [(1, (), "")]


def write_runs(writer, table: pa.Table, codes: np.ndarray, keys: list[tuple], last):
    """Write rows in store order, cutting the row groups where the chromosome changes
    (``last``: the key of the segment written before); returns the last row's key."""
    starts = np.r_[0, np.flatnonzero(np.diff(codes)) + 1]
    for start, stop in zip(starts, np.r_[starts[1:], len(codes)]):
        key = keys[codes[start]]
        if last is not None and key != last:
            writer.cut()
        writer.write(table.slice(start, stop - start))
        last = key
    return last


def _as_column(column, type_: pa.DataType):
    """A normalised column as the store keeps it: its type, NaN stored as null (as the
    pandas round trip of the in-memory path did)."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if column.type != type_:
        column = pc.cast(column, type_)
    if type_ == pa.float64() and column.null_count < len(column) and pc.any(pc.is_nan(column)).as_py():
        column = pc.if_else(pc.is_nan(column), pa.scalar(None, pa.float64()), column)
    return column


def _count_sizes(counts: dict, n) -> None:
    """Add a block's per-variant sample sizes to ``counts`` (value -> rows), for the median."""
    values = pc.value_counts(n.drop_null() if hasattr(n, "drop_null") else pc.drop_null(n))
    for value, count in zip(values.field("values").to_pylist(), values.field("counts").to_pylist()):
        counts[value] = counts.get(value, 0) + count


def sample_size(counts: dict) -> dict:
    """Median and range of the per-variant sample size from value counts (as
    ``metadata.sample_size`` of the whole column: finite values only)."""
    values = np.array(sorted(v for v in counts if np.isfinite(v)), dtype=np.float64)
    if not len(values):
        return {"n": None, "n_min": None, "n_max": None}
    weights = np.array([counts[v] for v in values], dtype=np.int64)
    ends = np.cumsum(weights)
    total = int(ends[-1])
    low, high = values[np.searchsorted(ends, (total - 1) // 2, side="right")], values[np.searchsorted(ends, total // 2, side="right")]
    return {"n": float((low + high) / 2) if low != high else float(low), "n_min": float(values[0]),
            "n_max": float(values[-1])}
