"""Audit helpers of the GWAS steps: counted-only drops, stacking audited tables, and the read
step's records (bad-value rows' reasons, counts)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from mrjax import audit
from mrjax.audit import UNLISTED_COLUMNS, unlisted_of  # noqa: F401  (public: mrjax.gwas.unlisted_of)
from mrjax.gwas.columns import bad_rows


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


SCREENED = ["SNP", "effect_allele", "pval", "mlog10p", "beta", "se", "eaf", "trait", "_row", "_note"]


def bad_value_drops(step: str, found: list) -> list[pd.DataFrame]:
    """Audit rows in reading order: malformed lines as listed, and the rows with bad values
    (arrow tables of ``SCREENED`` columns) with the first problem of each (``bad_rows``)."""
    listed, pending = [], []

    def flush():
        if pending:
            rows = pa.concat_tables(pending, promote_options="permissive").to_pandas()
            reason = bad_rows(rows)
            ids = rows["SNP"].where(rows["SNP"].notna(), "data row " + rows["_row"].astype(str))
            detail = reason + " (data row " + rows["_row"].astype(str) + ")"
            listed.append(audit.drops(step, rows["trait"].tolist(), ids.tolist(), "bad value", detail.tolist()))
            pending.clear()

    for item in found:
        if isinstance(item, pa.Table):
            pending.append(item)
        else:
            flush()
            listed.append(item)
    flush()
    return listed


def read_records(step: str, kept: pd.Series, n_in: pd.Series, dropped, unlisted: dict[str, pd.Series]) -> audit.Audit:
    """The read step's records (``kept``: rows kept per trait), with drops counted (not
    listed) for several reasons."""
    unlisted = {reason: counts.reindex(n_in.index, fill_value=0) for reason, counts in unlisted.items()}
    records = audit.step_audit(step, n_in, kept, dropped, sum(unlisted.values()))
    if any(counts.sum() for reason, counts in unlisted.items() if reason != "not significant"):
        rows = [pd.DataFrame({"step": step, "trait": c.index, "reason": reason, "n": c.to_numpy().astype("int64")})
                for reason, c in unlisted.items() if reason == "not significant" or c.sum()]
        records = records.replace(unlisted=pd.concat([r[r["n"] > 0] for r in rows], ignore_index=True))
    return records
