"""One trait's tables as parquet: the sorted variants, the SNP index and the top hits.

``variants.parquet`` holds the normalised columns of ``mrjax.read_gwas`` plus ``read_order``
(the row's position in ``read_gwas``'s output, so look-ups can return rows in the file's
order). Rows are sorted by chromosome (1-22, X, Y, XY, MT, then other contigs by name),
position and read order; rows without a chromosome or position come last. Each chromosome
is written as its own run of row groups, so every row group's ``chr`` statistics hold one
value and its ``pos`` statistics a position interval: a position look-up (here, or by any
parquet engine: pyarrow dataset filters, duckdb, polars) reads only the groups whose
interval holds a queried position.

``snp_index.parquet`` (``SNP``, ``row``) is sorted by SNP with its own small row groups, so
an rsID look-up reads the index groups whose SNP range holds a queried id, then the variant
row groups holding the rows found.

The files are written without pandas metadata and with fixed options, so the same table
always gives the same bytes (the store does not depend on the number of workers).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mrjax.gwas.readers import OUTPUT_COLUMNS

#: Rows per row group of variants.parquet: a 22 M-row trait has ~2,700 groups; a look-up of
#: one SNP decodes one group of 8 k rows. (On a 2 M-row trait, 50 SNPs at 50 loci: 8 k-row
#: groups 0.22 s, 32 k-row groups 1.0 s, 4 k-row groups 0.20 s with a 3x larger footer.)
VARIANT_GROUP_ROWS = 8192
#: Rows per row group of snp_index.parquet.
INDEX_GROUP_ROWS = 8192

STRING_COLUMNS = ("SNP", "chr", "effect_allele", "other_allele", "trait")
ORDER_COLUMN = "read_order"
SCHEMA = pa.schema(
    [(name, pa.string() if name in STRING_COLUMNS else pa.int64() if name == "pos" else pa.float64())
     for name in OUTPUT_COLUMNS]
    + [(ORDER_COLUMN, pa.int64())]
)
INDEX_SCHEMA = pa.schema([("SNP", pa.string()), ("row", pa.int64())])
#: Dictionary encoding only where values repeat (alleles, chromosome, trait, a constant N);
#: delta encoding for the sorted integers. zstd level 3. (On a 2 M-row Catalog file this
#: writes 2x faster and 15% smaller than the defaults.)
WRITE_OPTIONS = dict(compression="zstd", compression_level=3, write_statistics=True, write_page_index=True,
                     store_schema=False)
VARIANT_ENCODING = dict(use_dictionary=["chr", "effect_allele", "other_allele", "trait", "n"],
                        column_encoding={"pos": "DELTA_BINARY_PACKED", ORDER_COLUMN: "DELTA_BINARY_PACKED"})
INDEX_ENCODING = dict(use_dictionary=False, column_encoding={"row": "DELTA_BINARY_PACKED"})
PANDAS_DTYPES = {name: "str" if name in STRING_COLUMNS else "Int64" if name == "pos" else "float64"
                 for name in OUTPUT_COLUMNS}

_CHR_PREFIX = re.compile(r"^chr", re.IGNORECASE)
_NAMED = {"X": 23, "Y": 24, "XY": 25, "M": 26, "MT": 26}


def chromosome_key(name: str) -> tuple[int, str]:
    """Sort key of a chromosome name: 1..22, X, Y, XY, MT, then other contigs by name."""
    bare = _CHR_PREFIX.sub("", str(name)).upper()
    if bare.isdigit():
        return int(bare), bare
    return _NAMED.get(bare, 1000), bare


def bare_chromosome(name) -> str:
    """``chr2`` and ``2`` are the same chromosome in a look-up."""
    return _CHR_PREFIX.sub("", str(name)).upper()


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    """``read_gwas``'s table as arrow, with each row's position in it as ``read_order``."""
    arrays = [pa.array(frame[name], type=SCHEMA.field(name).type, from_pandas=True) for name in OUTPUT_COLUMNS]
    arrays.append(pa.array(np.arange(len(frame), dtype=np.int64)))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow rows of the store back into ``read_gwas``'s columns and dtypes."""
    frame = table.select(OUTPUT_COLUMNS).to_pandas()
    return frame.astype(PANDAS_DTYPES).reset_index(drop=True)


def sort_variants(table: pa.Table) -> pa.Table:
    """Rows in store order: by trait, chromosome (``chromosome_key``), position, read order;
    rows without a chromosome or position last within their trait.

    One stable sort of a packed int64 key (trait rank, chromosome rank, position): rows arrive
    in read order, so ties keep it, and a file already sorted by position costs one pass.
    """
    chromosomes = chromosomes_of(table)
    rank = pc.index_in(table.column("chr"), value_set=pa.array(chromosomes, pa.string()))
    rank = pc.fill_null(rank, len(chromosomes)).to_numpy(zero_copy_only=False).astype(np.int64)
    pos = table.column("pos")
    rank[pc.is_null(pos).to_numpy(zero_copy_only=False)] = len(chromosomes)  # no position: with the unplaced
    positions = pc.fill_null(pos, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    traits = pc.dictionary_encode(table.column("trait")).combine_chunks()
    names = traits.dictionary.to_pylist()
    trait_rank = np.argsort(np.argsort(np.array(names, dtype=object)))[traits.indices.to_numpy(zero_copy_only=False)]
    if len(names) < 1 << 12 and len(chromosomes) < (1 << 10) - 1 and (len(positions) == 0 or (
            positions.min() >= 0 and positions.max() < 1 << 40)):
        key = (trait_rank.astype(np.int64) << 50) | (rank << 40) | positions
        order = np.argsort(key, kind="stable")
    else:
        order = np.lexsort((np.arange(len(positions)), positions, rank, trait_rank))
    if len(order) and np.all(order[1:] > order[:-1]):
        return table  # already in store order
    return table.take(pa.array(order))


def chromosomes_of(table: pa.Table) -> list[str]:
    """The chromosomes present, in store order."""
    return sorted({c for c in table.column("chr").unique().to_pylist() if c is not None}, key=chromosome_key)


def split_traits(table: pa.Table) -> dict[str, pa.Table]:
    """Zero-copy slices of a table sorted by ``sort_variants``, one per trait (sorted names)."""
    counts = {item["values"]: item["counts"] for item in pc.value_counts(table.column("trait")).to_pylist()}
    parts, start = {}, 0
    for name in sorted(counts):
        parts[name] = table.slice(start, counts[name])
        start += counts[name]
    return parts


def write_variants(table: pa.Table, chromosomes: list[str], path: Path) -> dict:
    """Write one trait's sorted rows, one run of row groups per chromosome; returns a description."""
    chr_column = table.column("chr")
    placed = pc.and_(pc.is_valid(chr_column), pc.is_valid(table.column("pos")))
    with pq.ParquetWriter(path, SCHEMA, **WRITE_OPTIONS, **VARIANT_ENCODING) as writer:
        start = 0
        for name in chromosomes:
            count = int(pc.sum(pc.and_(placed, pc.equal(chr_column, name))).as_py() or 0)
            if count == 0:
                continue
            writer.write_table(table.slice(start, count), row_group_size=VARIANT_GROUP_ROWS)
            start += count
        if start < table.num_rows:
            writer.write_table(table.slice(start), row_group_size=VARIANT_GROUP_ROWS)
        if table.num_rows == 0:
            writer.write_table(table, row_group_size=VARIANT_GROUP_ROWS)
    metadata = pq.read_metadata(path)
    return {"rows": metadata.num_rows, "row_groups": metadata.num_row_groups, "bytes": path.stat().st_size}


def write_snp_index(table: pa.Table, path: Path) -> dict:
    """``SNP -> row`` of the sorted variants, sorted by SNP (ids are unique within a trait)."""
    index = pa.Table.from_arrays([table.column("SNP"), pa.array(np.arange(table.num_rows, dtype=np.int64))],
                                 schema=INDEX_SCHEMA)
    index = index.take(pc.sort_indices(index, sort_keys=[("SNP", "ascending")]))
    pq.write_table(index, path, row_group_size=INDEX_GROUP_ROWS, **WRITE_OPTIONS, **INDEX_ENCODING)
    return {"rows": index.num_rows, "bytes": path.stat().st_size}


def significant(table: pa.Table, p: float) -> pa.Array:
    """Rows with p <= ``p``, judged as ``read_gwas(p_max=p)`` does: on ``pval``, or on
    ``mlog10p`` where p underflowed to 0."""
    pval, mlog10p = table.column("pval"), table.column("mlog10p")
    by_p = pc.less_equal(pval, p)
    by_log = pc.greater_equal(mlog10p, -np.log10(p) if p > 0 else np.inf)
    use_log = pc.or_(pc.is_null(pval), pc.and_(pc.equal(pval, 0.0), pc.is_valid(mlog10p)))
    return pc.fill_null(pc.if_else(use_log, by_log, by_p), False)


def write_top_hits(table: pa.Table, keep_p: float, path: Path) -> dict:
    """Rows with p <= ``keep_p`` in read order (the order ``read_gwas`` returns them)."""
    hits = table.filter(significant(table, keep_p))
    hits = hits.take(pc.sort_indices(hits, sort_keys=[(ORDER_COLUMN, "ascending")]))
    pq.write_table(hits, path, **WRITE_OPTIONS, **VARIANT_ENCODING)
    return {"rows": hits.num_rows, "bytes": path.stat().st_size}


def write_audit(listed: pd.DataFrame, path: Path) -> dict:
    columns = ["step", "trait", "SNP", "reason", "detail"]
    arrays = [pa.array(listed[name].astype(object).where(listed[name].notna(), None).tolist(), pa.string())
              for name in columns]
    table = pa.Table.from_arrays(arrays, names=columns)
    pq.write_table(table, path, **WRITE_OPTIONS)
    return {"rows": table.num_rows, "bytes": path.stat().st_size}
