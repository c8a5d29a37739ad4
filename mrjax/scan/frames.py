"""Small operations on a scan's tables: row positions per label, rows at some SNPs, non-empty tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

NO_ROWS = np.zeros(0, np.intp)


def rows_by(labels: pd.Series) -> dict[str, np.ndarray]:
    """Row positions of each value of ``labels`` (as text), in table order."""
    if not len(labels):
        return {}
    codes, names = pd.factorize(labels.astype(str))  # missing labels get -1 and no rows
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    return {str(name): order[bounds[i] : bounds[i + 1]] for i, name in enumerate(names)}


def nonempty(tables: dict[str, pd.DataFrame], name: str) -> pd.DataFrame | None:
    """``tables[name]`` when it exists and has rows, else None."""
    table = tables.get(name)
    return table if table is not None and len(table) else None


def at_snps(table: pd.DataFrame, snps) -> np.ndarray:
    """Which rows of ``table`` have their ``SNP`` in ``snps`` (boolean mask), by arrow's
    ``is_in`` on the column's own arrow array: a whole GWAS of 22 M rows is never turned into
    Python strings."""
    if not len(snps) or not len(table):
        return np.zeros(len(table), bool)
    ids = pa.array(table["SNP"])  # no copy for arrow-backed strings
    wanted = pa.array([str(s) for s in snps], ids.type)
    return pc.fill_null(pc.is_in(ids, value_set=wanted), False).to_numpy(zero_copy_only=False)
