"""Audit helpers of the GWAS steps: counted-only drops and stacking audited tables."""

from __future__ import annotations

import pandas as pd

from mrjax import audit
from mrjax.audit import UNLISTED_COLUMNS, unlisted_of  # noqa: F401  (public: mrjax.gwas.unlisted_of)


def concat_tables(tables):
    """Stack tables read one by one: ``Audited`` values give one ``Audited`` (rows stacked,
    records combined in order); plain tables (deprecated path) give one table carrying the
    records of every input in ``attrs`` (plain ``pd.concat`` keeps attrs only when all
    inputs carry the same)."""
    tables = list(tables)
    if not tables:
        raise ValueError("concat_tables: no tables given")
    if all(isinstance(t, audit.Audited) for t in tables):
        return audit.Audited(pd.concat([t.table for t in tables], ignore_index=True),
                             audit.Audit.combine(*(t.audit for t in tables)))
    records = audit.Audit.combine(*(audit.unwrap(t, False)[1] for t in tables))
    return audit.to_attrs(pd.concat([audit.unwrap(t, False)[0] for t in tables], ignore_index=True), records)
