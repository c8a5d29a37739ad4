"""Per-pair audit tables: the drop records and step counts of each exposure–outcome pair,
cut from a chunk's records (an :class:`mrjax.audit.Audit`) and labelled with direction,
exposure and outcome."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mrjax.audit import Audit
from mrjax.scan.config import FORWARD
from mrjax.scan.frames import NO_ROWS, rows_by
from mrjax.scan.stacked import Run, grouped_run


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


def forward_audit_runs(records: Audit, names: list[str], outcome_name: str) -> dict[str, list[Run]]:
    """The exposures' forward audit tables (``audit``, ``audit_counts``), cut from the chunk's
    records in one pass: the rows of every exposure taken together, labelled, grouped in
    ``names`` order (:class:`mrjax.scan.stacked.Run`; each exposure's rows are what
    :func:`trait_audit` gives it)."""
    out = {}
    for part, frame in (("audit", records.drops), ("audit_counts", records.counts)):
        if frame is None or len(frame) == 0 or "trait" not in frame.columns:
            out[part] = []
            continue
        run = grouped_run(frame, frame["trait"], names)
        together, sizes = run.frame, np.diff(run.ends)
        text = pd.Series(["text"]).dtype  # the dtype a column of one label (audit_rows) takes
        together.insert(0, "outcome", outcome_name)
        together.insert(0, "exposure", pd.Series(np.repeat(np.array(names, dtype=object), sizes),
                                                 index=together.index, dtype=text))
        together.insert(0, "direction", FORWARD)
        out[part] = [run]
    return out


def side_audit(records: Audit, trait: str, *, steps=None, **label) -> dict[str, pd.DataFrame]:
    """The audit tables of one side of the scan (the outcome's read, or its instrument
    selection in the reverse direction), labelled."""
    return trait_audit(records, trait, steps=steps, **label)
