"""Per-pair audit tables: the drop records and step counts of each exposure–outcome pair,
cut from a chunk's records (an :class:`mrjax.audit.Audit`) and labelled with direction,
exposure and outcome."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mrjax.audit import Audit
from mrjax.scan.config import FORWARD
from mrjax.scan.frames import NO_ROWS, rows_by


def audit_rows(records: pd.DataFrame, trait: str, *, direction: str, exposure: str, outcome: str, steps=None,
               rows_of: dict | None = None) -> pd.DataFrame:
    """The audit rows (drops or counts) of ``trait`` (optionally only some ``steps``), labelled
    with the direction and the exposure–outcome pair they belong to. ``rows_of``: the
    records' row positions per trait (:func:`mrjax.scan.frames.rows_by`), when many traits
    are cut from them."""
    if records is None or len(records) == 0 or "trait" not in records.columns:
        return pd.DataFrame()
    rows_of = rows_by(records["trait"]) if rows_of is None else rows_of
    rows = records.iloc[rows_of.get(trait, NO_ROWS)]
    if steps is not None:
        rows = rows[rows["step"].isin(steps)]
    rows = rows.copy()
    rows.insert(0, "outcome", outcome)
    rows.insert(0, "exposure", exposure)
    rows.insert(0, "direction", direction)
    return rows.reset_index(drop=True)


def trait_audit(records: Audit, trait: str, *, steps=None, rows_of: tuple = (None, None),
                **label) -> dict[str, pd.DataFrame]:
    """``{"audit": drops, "audit_counts": counts}`` of one trait, labelled (see :func:`audit_rows`)."""
    return {"audit": audit_rows(records.drops, trait, steps=steps, rows_of=rows_of[0], **label),
            "audit_counts": audit_rows(records.counts, trait, steps=steps, rows_of=rows_of[1], **label)}


def forward_audits(records: Audit, names: list[str], outcome_name: str) -> dict[str, dict[str, pd.DataFrame]]:
    """Each exposure's forward audit tables, cut from the chunk's records in one pass: the
    rows of every exposure taken and labelled together, then sliced (what :func:`trait_audit`
    gives each; an exposure without rows gets its empty table from :func:`audit_rows`)."""
    out = {name: {} for name in names}
    for part, frame in (("audit", records.drops), ("audit_counts", records.counts)):
        if frame is None or len(frame) == 0 or "trait" not in frame.columns:
            for name in names:
                out[name][part] = pd.DataFrame()
            continue
        rows_of = rows_by(frame["trait"])
        rows = [rows_of.get(name, NO_ROWS) for name in names]
        together = frame.take(np.concatenate(rows))
        text = pd.Series(["text"]).dtype  # the dtype a column of one label (audit_rows) takes
        together.insert(0, "outcome", outcome_name)
        together.insert(0, "exposure", pd.Series(np.repeat(np.array(names, dtype=object), [len(r) for r in rows]),
                                                 index=together.index, dtype=text))
        together.insert(0, "direction", FORWARD)
        together = together.reset_index(drop=True)
        ends = np.cumsum([0] + [len(r) for r in rows])
        for name, start, end in zip(names, ends[:-1], ends[1:]):
            out[name][part] = (together.iloc[start:end].reset_index(drop=True) if end > start else
                               audit_rows(frame, name, direction=FORWARD, exposure=name, outcome=outcome_name,
                                          rows_of=rows_of))
    return out


def side_audit(records: Audit, trait: str, *, steps=None, **label) -> dict[str, pd.DataFrame]:
    """The audit tables of one side of the scan (the outcome's read, or its instrument
    selection in the reverse direction), labelled."""
    return trait_audit(records, trait, steps=steps, **label)
