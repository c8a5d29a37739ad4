"""Small operations on a scan's tables: row positions per label, and copies without audit."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mrjax.audit import carry

NO_ROWS = np.zeros(0, np.intp)


def rows_by(labels: pd.Series) -> dict[str, np.ndarray]:
    """Row positions of each value of ``labels`` (as text), in table order."""
    if not len(labels):
        return {}
    codes, names = pd.factorize(labels.astype(str))  # missing labels get -1 and no rows
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    return {str(name): order[bounds[i] : bounds[i + 1]] for i, name in enumerate(names)}


def plain(table: pd.DataFrame) -> pd.DataFrame:
    """A shallow copy without ``attrs``: its audit records are carried or reported separately."""
    table = table.copy(deep=False)
    table.attrs = {}
    return table


def empty_carrying(*tables: pd.DataFrame) -> pd.DataFrame:
    """An empty copy of the first table carrying the audit records of all of them."""
    return carry(plain(tables[0].iloc[:0]), *tables)


def nonempty(tables: dict[str, pd.DataFrame], name: str) -> pd.DataFrame | None:
    """``tables[name]`` when it exists and has rows, else None."""
    table = tables.get(name)
    return table if table is not None and len(table) else None
