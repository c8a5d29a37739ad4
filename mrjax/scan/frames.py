"""Small operations on a scan's tables: row positions per label, non-empty tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

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
