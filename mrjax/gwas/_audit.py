"""Audit bookkeeping for steps whose bulk drops are counted but not listed one by one."""

from __future__ import annotations

import pandas as pd

from mrjax import audit

UNLISTED_COLUMNS = audit.UNLISTED_COLUMNS


def unlisted_of(table: pd.DataFrame) -> pd.DataFrame:
    """Drops that were counted but not listed per variant: ``step, trait, reason, n``."""
    return audit.records_of(table, "audit_unlisted", UNLISTED_COLUMNS)


def record_step(
    output: pd.DataFrame,
    step: str,
    n_in: pd.Series,
    listed: pd.DataFrame | None = None,
    unlisted: pd.Series | None = None,
    unlisted_reason: str = "not significant",
    *,
    inputs: tuple[pd.DataFrame, ...] = (),
    trait_column: str = "trait",
    kept: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """``mrjax.audit.record`` plus drops that are only counted.

    ``unlisted`` maps trait -> number of variants dropped for ``unlisted_reason`` without a
    row each in ``attrs["audit"]`` (for a 20-million-row GWAS, "not significant" would be
    millions of rows). They are added to ``n_in`` and ``n_dropped`` of this step's
    ``attrs["audit_counts"]`` rows, so the counts still balance, and summarised in
    ``attrs["audit_unlisted"]``. ``kept`` is the part of ``output`` that counts as kept when
    ``output`` also carries flagged rows (harmonise keeps ``mr_keep`` FALSE rows, as
    TwoSampleMR does); it defaults to ``output``.
    """
    n_in = pd.Series(n_in, dtype="int64")
    unlisted = (
        pd.Series(0, index=n_in.index, dtype="int64")
        if unlisted is None
        else pd.Series(unlisted, dtype="int64").reindex(n_in.index, fill_value=0)
    )
    target = output if kept is None else kept.copy()
    audit.record(target, step, n_in - unlisted, listed, inputs=inputs, trait_column=trait_column)
    counts = audit.counts_of(target).copy()
    ours = counts.index[-len(n_in):] if len(n_in) else counts.index[:0]
    add = unlisted.to_numpy()
    counts.loc[ours, "n_in"] = counts.loc[ours, "n_in"].to_numpy() + add
    counts.loc[ours, "n_dropped"] = counts.loc[ours, "n_dropped"].to_numpy() + add
    previous = [unlisted_of(t) for t in inputs]
    mine = pd.DataFrame({"step": step, "trait": n_in.index, "reason": unlisted_reason, "n": add})
    frames = [f for f in previous + [mine[mine["n"] > 0]] if len(f)]
    return audit.attach(
        output,
        audit=audit.audit_of(target),
        audit_counts=counts,
        audit_unlisted=pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=UNLISTED_COLUMNS),
    )


def concat_tables(tables) -> pd.DataFrame:
    """``pd.concat`` of audited tables: their rows, and the audit records of every input
    stacked (plain ``pd.concat`` keeps attrs only when all inputs carry the same)."""
    tables = list(tables)
    if not tables:
        raise ValueError("concat_tables: no tables given")
    return audit.carry(pd.concat(tables, ignore_index=True), *tables)
