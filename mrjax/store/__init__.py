"""A local GWAS store: ingest each GWAS file once, then read only the rows a study needs.

``ingest(files, store=DIR)`` reads files in any format ``mrjax.read_gwas`` supports, in
parallel on Dask (:mod:`mrjax.store.engine`), into per-trait parquet tables sorted by
position with row-group statistics, an rsID index, a top-hits table and metadata
(:mod:`mrjax.store.layout`). ``GWASStore(DIR)`` reads them back: ``traits``, ``metadata``,
``top_hits``, ``lookup`` (by SNP or position, reading only the row groups that can hold
them). Host side only (pandas/pyarrow/Dask).
"""

from mrjax.store.ingest import DEFAULT_KEEP_P, ingest
from mrjax.store.layout import FORMAT_VERSION
from mrjax.store.lookup import GWASStore
from mrjax.store.sources import Source, plan_sources, read_manifest

__all__ = ["DEFAULT_KEEP_P", "FORMAT_VERSION", "GWASStore", "Source", "ingest", "plan_sources", "read_manifest"]
